//! The messaging backbone against real Postgres and the real broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batching;
mod broker_outage;
mod database_outage;
mod dead_letters;
mod delivery;
mod harness;
mod ordering;
mod rebalance;
