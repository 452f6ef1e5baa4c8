//! The event store's integration tests, one binary.
//!
//! `contract` is the suite every [`eventstore::EventStore`] must pass, run
//! over Postgres and over memory; the other modules test what only the
//! Postgres store (or the layers on top of it) promises.

mod aggregates;
mod contract;
mod domain;
mod gap_free;
mod helpers;
mod in_transaction;
mod projections;
mod subscriptions;
