//! Where the flight aggregate meets the event store and the outbox.
//!
//! Every change to a flight goes through [`FlightStore::decide_in`]: the
//! event store's command loop ([`Repository::execute_in`]) loads the flight
//! (from the state cache, or the latest snapshot plus later events), decides
//! on it (pure domain) and appends the events expecting the loaded version,
//! inside the caller's transaction, retrying on a version conflict; then the
//! public events the decision amounts to ([`crate::integration`]) go to the
//! outbox in that same transaction, so the events and their publication
//! commit or fail together. After a commit, the flight's views in the read
//! cache are invalidated ([`crate::read_cache`]).

use anyhow::Context;
use cache::Cache;
use contracts::Envelope;
use eventstore::{
    Aggregate, ExecuteError, Executed, Loaded, PgEventStore, Repository, SnapshotPolicy,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::error::FlightError;
use crate::domain::events::FlightEvent;
use crate::domain::flight::Flight;
use crate::integration;
use crate::read_cache::flight_scope;

/// How many times [`FlightStore::decide`] starts over against a contended
/// flight. Seat commands for a flight arrive in order on its partition and
/// rarely conflict; this budget is for bursts of concurrent admin writes.
const MAX_ATTEMPTS: u32 = 100;

/// Flights whose latest state a process keeps (a flight's state is tens of
/// kilobytes once it has a few hundred bookings).
const RECENT_FLIGHTS: usize = 512;

impl Aggregate for Flight {
    type Event = FlightEvent;
    /// Bump when `Flight`'s serialized shape or `apply` changes: old snapshots are then ignored.
    const SCHEMA_VERSION: u32 = 1;

    fn event_type(event: &FlightEvent) -> &'static str {
        event.event_type()
    }

    fn apply(&mut self, event: &FlightEvent) {
        Flight::apply(self, event);
    }
}

/// The name of a flight's stream.
pub fn stream_of(flight_id: Uuid) -> String {
    format!("flight-{flight_id}")
}

/// Why a change to a flight did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The domain refused it: a business answer for the caller.
    #[error(transparent)]
    Refused(#[from] FlightError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<ExecuteError<FlightError>> for CommandError {
    fn from(error: ExecuteError<FlightError>) -> Self {
        match error {
            ExecuteError::Rejected(refusal) => CommandError::Refused(refusal),
            ExecuteError::Unexpected(error) => CommandError::Unexpected(error),
            // Lost a race inside the caller's transaction: the caller (a
            // consumer) applies the message again in a new one.
            ExecuteError::Conflict(error) => {
                CommandError::Unexpected(anyhow::Error::new(error).context("decide again"))
            }
            contended @ ExecuteError::TooManyConflicts { .. } => {
                metrics::counter!("flight_command_conflicts_total").increment(1);
                CommandError::Unexpected(contended.into())
            }
        }
    }
}

/// A decision that was appended (or that needed no events).
#[derive(Debug)]
pub struct Decided<R> {
    pub flight: Flight,
    pub version: u64,
    /// How many events this decision appended.
    pub appended: usize,
    pub outcome: R,
}

impl<R> From<Executed<Flight, R>> for Decided<R> {
    fn from(executed: Executed<Flight, R>) -> Self {
        Self {
            appended: executed.events.len(),
            flight: executed.state.state,
            version: executed.state.version,
            outcome: executed.outcome,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FlightStore {
    events: PgEventStore,
    flights: Repository<Flight, PgEventStore>,
    cache: Cache,
}

impl FlightStore {
    pub fn new(pool: PgPool, snapshot_every: u64) -> Self {
        let events = PgEventStore::new(pool);
        let flights = Repository::new(events.clone())
            .with_snapshots(SnapshotPolicy::every(snapshot_every))
            .with_max_attempts(MAX_ATTEMPTS)
            .with_state_cache(RECENT_FLIGHTS);
        Self {
            events,
            flights,
            cache: Cache::disabled(),
        }
    }

    /// Invalidates `cache` after each decision this store commits.
    #[must_use]
    pub fn with_cache(mut self, cache: Cache) -> Self {
        self.cache = cache;
        self
    }

    /// The read cache in front of this store's flights.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn events(&self) -> &PgEventStore {
        &self.events
    }

    pub fn repository(&self) -> &Repository<Flight, PgEventStore> {
        &self.flights
    }

    /// The flight as it is now. Through the state cache: the quote and
    /// availability a booking asks for cost one index read while the flight
    /// is unchanged.
    pub async fn load(&self, flight_id: Uuid) -> anyhow::Result<Loaded<Flight>> {
        let mut conn = self
            .events
            .pool()
            .acquire()
            .await
            .context("acquire a connection")?;
        Ok(self
            .flights
            .load_in(&mut conn, &stream_of(flight_id))
            .await?)
    }

    /// Decides on the flight and appends the decided events in `conn`'s
    /// transaction, with the public events they amount to; `cause` is the
    /// message that asked for the change, if any (its correlation carries
    /// over). The flight is read inside that transaction, so the commands of
    /// one batch see each other's appends; the expected version, not a lock,
    /// guards the decision against other writers: losing to one is an
    /// `Unexpected` error, for the transaction's owner to retry in a new
    /// transaction. Subscribers are woken after the commit, by whoever
    /// commits (see [`Self::notify_appended`]).
    pub async fn decide_in<R>(
        &self,
        conn: &mut PgConnection,
        flight_id: Uuid,
        cause: Option<&Envelope>,
        decide: impl Fn(&Flight) -> Result<(Vec<FlightEvent>, R), FlightError>,
    ) -> Result<Decided<R>, CommandError> {
        let executed = self
            .flights
            .execute_in(conn, &stream_of(flight_id), decide)
            .await?;
        integration::publish(
            conn,
            flight_id,
            executed.decided_on,
            &executed.events,
            cause,
        )
        .await?;
        Ok(executed.into())
    }

    /// [`decide_in`](Self::decide_in) in transactions of its own (admin
    /// requests, the sweeper): committed, subscribers woken, the flight's
    /// cached views invalidated (before the caller answers, so its caller
    /// reads its own write), and decided again in a new transaction if
    /// another writer got there first.
    pub async fn decide<R>(
        &self,
        flight_id: Uuid,
        decide: impl Fn(&Flight) -> Result<(Vec<FlightEvent>, R), FlightError>,
    ) -> Result<Decided<R>, CommandError> {
        let executed = self
            .flights
            .execute_committed(&stream_of(flight_id), decide, |conn, executed| {
                Box::pin(integration::publish(
                    conn,
                    flight_id,
                    executed.decided_on,
                    &executed.events,
                    None,
                ))
            })
            .await?;
        if !executed.events.is_empty() {
            self.cache.invalidate(&flight_scope(flight_id)).await;
        }
        Ok(executed.into())
    }

    /// Wakes the event store's subscribers (the search projection): call
    /// after committing a transaction that decided through this store.
    pub async fn notify_appended(&self) {
        self.events.notify_appended().await;
    }
}
