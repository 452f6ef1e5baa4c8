#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly
mod bookings;
mod conformance;
mod helpers;
mod saga;
