//! flight-inventory through its public API, against real Postgres and the broker.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

mod cache;
mod concurrency;
mod conformance;
mod flights;
mod helpers;
mod public_events;
mod read_model;
mod seat_commands;
