//! An event store on Postgres, and what services build on it.
//!
//! - [`EventStore`]: the contract. [`PgEventStore`] keeps events in the
//!   service's own schema; [`InMemoryEventStore`] runs pure domain tests
//!   without a database. Both pass the same contract tests.
//! - Appends use optimistic concurrency: `append(stream, expected_version,
//!   events)` fails with [`AppendError::VersionConflict`] when the stream moved
//!   on. The database decides the race (a unique `(stream_id, version)`
//!   constraint), never a check followed by an insert.
//! - [`EventStore::read_all`] ("get N after X") is gap-free, see below, and
//!   [`Subscription`] builds on it: catch up from a checkpoint, then follow
//!   live, woken by `LISTEN/NOTIFY` with polling as the fallback. The store
//!   notifies after an append commits, never inside the append's transaction
//!   (see [`PgEventStore::notify_appended`] for why).
//! - [`Aggregate`] and [`Repository`]: load (latest snapshot + later events),
//!   decide, append with the expected version, retry on conflict. Rolling
//!   snapshots every N events, ignored when the aggregate's schema version
//!   changes. Time travel: [`Repository::load_as_of_version`],
//!   [`Repository::load_as_of`].
//! - [`Repository::execute_in`]: the same command loop inside the caller's
//!   transaction, so the events commit with whatever else it writes (the
//!   outbox, a consumer's inbox row), the snapshot too. With
//!   [`Repository::with_state_cache`], its loads are answered from memory
//!   while the stream's head is still the event the cached state was folded
//!   up to ([`StateCache`]).
//! - [`ProjectionRunner`]: feeds a [`Projection`]'s read model, writing its
//!   checkpoint in the read model's transaction (effectively once), and
//!   rebuilds it beside the live copy with an atomic swap.
//! - [`MIGRATOR`]: the tables, as migrations 2000+ for the service to compose
//!   with its own; they are created in whatever schema the connection uses.
//! - [`metrics`]: the metric names recorded through the `metrics` facade
//!   (`eventstore_append_duration_seconds`, `eventstore_append_conflicts_total`,
//!   `eventstore_events_appended_total`, …); call [`metrics::describe`] once.
//!
//! # A command handler
//!
//! Load, decide (pure), append expecting the loaded version, retry on conflict:
//!
//! ```no_run
//! use eventstore::{Aggregate, PgEventStore, Repository};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Flight {
//!     capacity: u32,
//!     held: u32,
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! enum FlightEvent {
//!     SeatsHeld { seats: u32 },
//! }
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("sold out")]
//! struct SoldOut;
//!
//! impl Aggregate for Flight {
//!     type Event = FlightEvent;
//!     const SCHEMA_VERSION: u32 = 1;
//!
//!     fn event_type(_: &FlightEvent) -> &'static str {
//!         "SeatsHeld"
//!     }
//!
//!     fn apply(&mut self, FlightEvent::SeatsHeld { seats }: &FlightEvent) {
//!         self.held += seats;
//!     }
//! }
//!
//! async fn hold_seats(
//!     flights: &Repository<Flight, PgEventStore>,
//!     flight_id: &str,
//!     seats: u32,
//! ) -> anyhow::Result<()> {
//!     flights
//!         .execute(flight_id, |flight: &Flight| {
//!             if flight.held + seats > flight.capacity {
//!                 return Err(SoldOut);
//!             }
//!             Ok(vec![FlightEvent::SeatsHeld { seats }])
//!         })
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! To commit events together with outbox rows, load with the repository,
//! then [`PgEventStore::append_in`] the [`encode`]d events on the transaction
//! that also writes the outbox.
//!
//! # Why `read_all` never skips an event
//!
//! A `bigserial` position is assigned when a row is inserted, but rows become
//! visible when their transaction commits, and transactions commit in any
//! order. A reader that sees position 11 (committed) while 10 is still in
//! flight, and moves its checkpoint to 11, never sees 10.
//!
//! So each event also records the id of the transaction that wrote it
//! (`pg_current_xact_id()`, a 64-bit `xid8` that never wraps), the global
//! order is `(transaction_id, sequence)`, and a reader is only handed events
//! whose transaction id is below `pg_snapshot_xmin(pg_current_snapshot())`,
//! the oldest transaction still running. Every transaction below that has
//! ended, so its events are visible now or never will be. Every transaction
//! that can still commit is at or above it, and ids are handed out in
//! increasing order, so its events sort after everything handed out so far.
//! The checkpoint therefore only ever passes events that are final.
//!
//! Costs and their mitigations:
//! - A long-running *writing* transaction anywhere in the cluster (xmin is
//!   cluster-wide) holds back delivery, not correctness, until it ends. Keep
//!   write transactions short; read-only transactions do not count.
//! - Transaction ids are assigned at a transaction's first write, so a
//!   transaction that writes elsewhere first and appends to a stream later
//!   could sort before that stream's previous event. The append refuses this
//!   ([`AppendError::StaleTransaction`], retriable) so that every stream's
//!   events appear in version order in the global log.
//!
//! # Time
//!
//! `recorded_at` is taken from the database clock when the event is written
//! (not committed) and never goes back within a stream; "as of" a time means
//! every event recorded at or before it.

mod aggregate;
mod cache;
mod error;
mod event;
mod memory;
pub mod metrics;
mod postgres;
mod projection;
mod store;
mod subscription;

pub use aggregate::{encode, Aggregate, Executed, Loaded, Repository, SnapshotPolicy};
pub use cache::StateCache;
pub use error::{AppendError, ExecuteError, ProjectionError, StoreError};
pub use event::{NewEvent, Position, RecordedEvent, Snapshot};
pub use memory::InMemoryEventStore;
pub use postgres::PgEventStore;
pub use projection::{Projection, ProjectionRunner, ProjectionSettings, Tables};
pub use store::{AppendNotifications, EventStore};
pub use subscription::{Subscription, SubscriptionSettings};

/// The event store's tables: events, snapshots, projection checkpoints.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
