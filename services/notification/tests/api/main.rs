//! notification through its public API and its command topic, against real
//! Postgres and the broker.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

mod conformance;
mod dispatcher;
mod events;
mod helpers;
mod queries;
mod send_notification;
