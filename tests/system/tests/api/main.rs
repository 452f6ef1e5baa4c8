//! The whole system through its public APIs: flight-inventory, payment,
//! notification and booking in one process, against real Postgres and the broker.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

mod authorization;
mod bookings;
mod domain_events;
mod helpers;
mod lake;
mod saga;
