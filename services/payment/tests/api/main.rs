#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly
mod cards;
mod conformance;
mod events;
mod helpers;
mod miles;
mod payment_commands;
