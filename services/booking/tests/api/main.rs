//! booking on its own through its public API, against real Postgres and the
//! broker. The saga and everything else that needs the other three services
//! running are whole-system tests, in `tests/system`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

mod bookings;
mod conformance;
mod console;
mod partitions;
