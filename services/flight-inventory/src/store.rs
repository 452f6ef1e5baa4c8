//! Where the flight aggregate meets the event store and the outbox.
//!
//! Every change to a flight goes through [`FlightStore::decide_in`]: load the
//! flight (latest snapshot + later events), decide on it (pure domain), and
//! append the events expecting the loaded version — inside the caller's
//! transaction, together with one `inventory.FlightEventRecorded.v1` outbox
//! message per event, so the events and their publication commit or fail
//! together. A version conflict (another writer got there first) reloads and
//! decides again on the fresh state.

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use contracts::inventory::FlightEventRecorded;
use contracts::{topics, Envelope};
use eventstore::{Aggregate, Loaded, PgEventStore, Repository, SnapshotPolicy, StateCache};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::error::FlightError;
use crate::domain::events::FlightEvent;
use crate::domain::flight::Flight;

/// How many times a decision is retried against a contended flight. Seat
/// commands for a flight arrive in order on its partition and rarely
/// conflict; this budget is for bursts of concurrent admin writes.
const MAX_ATTEMPTS: u32 = 100;

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

/// A decision that was appended (or that needed no events).
#[derive(Debug)]
pub struct Decided<R> {
    pub flight: Flight,
    pub version: u64,
    /// How many events this decision appended.
    pub appended: usize,
    pub outcome: R,
}

#[derive(Debug, Clone)]
pub struct FlightStore {
    events: PgEventStore,
    flights: Repository<Flight, PgEventStore>,
    /// The flights this process decided on last: a seat command then reads
    /// the stream's head instead of a snapshot and the events after it.
    recent: Arc<StateCache<Flight>>,
    snapshot_every: u64,
}

/// Flights whose latest state a process keeps (a flight's state is tens of
/// kilobytes once it has a few hundred bookings).
const RECENT_FLIGHTS: usize = 512;

impl FlightStore {
    pub fn new(pool: PgPool, snapshot_every: u64) -> Self {
        let events = PgEventStore::new(pool);
        let flights =
            Repository::new(events.clone()).with_snapshots(SnapshotPolicy::every(snapshot_every));
        Self {
            events,
            flights,
            recent: Arc::new(StateCache::new(RECENT_FLIGHTS)),
            snapshot_every,
        }
    }

    pub fn events(&self) -> &PgEventStore {
        &self.events
    }

    pub fn repository(&self) -> &Repository<Flight, PgEventStore> {
        &self.flights
    }

    /// The flight as it is now.
    /// Through the cache of recent flights: the quote and availability a
    /// booking asks for cost one index read while the flight is unchanged.
    pub async fn load(&self, flight_id: Uuid) -> anyhow::Result<Loaded<Flight>> {
        let mut conn = self
            .events
            .pool()
            .acquire()
            .await
            .context("acquire a connection")?;
        Ok(self
            .recent
            .load_in(&self.flights, &mut conn, &stream_of(flight_id))
            .await?)
    }

    /// Decides on the flight and appends the decided events in `conn`'s
    /// transaction, with their outbox messages; `cause` is the message that
    /// asked for the change, if any (its correlation carries over). The
    /// flight is read inside that transaction, so the commands of one batch
    /// see each other's appends; the expected version, not a lock, guards
    /// the decision against other writers.
    pub async fn decide_in<R>(
        &self,
        conn: &mut PgConnection,
        flight_id: Uuid,
        cause: Option<&Envelope>,
        decide: impl Fn(&Flight) -> Result<(Vec<FlightEvent>, R), FlightError>,
    ) -> Result<Decided<R>, CommandError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let loaded = self
                .recent
                .load_in(&self.flights, conn, &stream_of(flight_id))
                .await
                .context("load the flight")?;
            let (events, outcome) = decide(&loaded.state)?;
            if events.is_empty() {
                return Ok(Decided {
                    flight: loaded.state,
                    version: loaded.version,
                    appended: 0,
                    outcome,
                });
            }
            if let Some((flight, version)) = self
                .try_append(conn, flight_id, loaded, &events, cause)
                .await?
            {
                return Ok(Decided {
                    flight,
                    version,
                    appended: events.len(),
                    outcome,
                });
            }
            back_off(attempt).await;
        }
        Err(contended(flight_id))
    }

    /// Decides and commits in a transaction of its own (admin requests, the
    /// sweeper). Holds one connection at a time: it loads, then opens the
    /// transaction that appends, so concurrent requests cannot starve the pool.
    pub async fn decide<R>(
        &self,
        flight_id: Uuid,
        decide: impl Fn(&Flight) -> Result<(Vec<FlightEvent>, R), FlightError>,
    ) -> Result<Decided<R>, CommandError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let loaded = self.load(flight_id).await?;
            let (events, outcome) = decide(&loaded.state)?;
            if events.is_empty() {
                return Ok(Decided {
                    flight: loaded.state,
                    version: loaded.version,
                    appended: 0,
                    outcome,
                });
            }
            let mut tx = self.events.pool().begin().await.context("begin")?;
            if let Some((flight, version)) = self
                .try_append(&mut tx, flight_id, loaded, &events, None)
                .await?
            {
                tx.commit().await.context("commit flight events")?;
                self.events.notify_appended().await;
                return Ok(Decided {
                    flight,
                    version,
                    appended: events.len(),
                    outcome,
                });
            }
            drop(tx);
            back_off(attempt).await;
        }
        Err(contended(flight_id))
    }

    /// Appends `events` decided on `loaded`, their outbox messages and a
    /// snapshot when one is due; `None` if another writer got there first.
    async fn try_append(
        &self,
        conn: &mut PgConnection,
        flight_id: Uuid,
        loaded: Loaded<Flight>,
        events: &[FlightEvent],
        cause: Option<&Envelope>,
    ) -> Result<Option<(Flight, u64)>, CommandError> {
        let stream = stream_of(flight_id);
        let encoded = eventstore::encode::<Flight>(events).context("encode flight events")?;
        let version = match PgEventStore::append_in(conn, &stream, loaded.version, &encoded).await {
            Ok(version) => version,
            Err(error) if error.is_conflict() => {
                metrics::counter!("flight_command_conflicts_total").increment(1);
                tracing::debug!(%flight_id, "version conflict; deciding again on the fresh flight");
                return Ok(None);
            }
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context("append flight events")
                    .into())
            }
        };
        publish_events(conn, flight_id, loaded.version, events, cause).await?;
        let mut flight = loaded.state;
        flight.apply_all(events);
        if let Some(head) = encoded.last() {
            let appended = Loaded {
                state: flight,
                version,
            };
            self.recent.remember(&stream, &appended, head.event_id);
            flight = appended.state;
        }
        if self.snapshot_due(loaded.version, version) {
            let snapshot = eventstore::Snapshot {
                stream_id: stream,
                version,
                schema_version: Flight::SCHEMA_VERSION,
                state: serde_json::to_value(&flight).context("encode the snapshot")?,
            };
            // In the same transaction: the snapshot exists only if its events do.
            PgEventStore::save_snapshot_in(conn, &snapshot)
                .await
                .context("save the snapshot")?;
        }
        Ok(Some((flight, version)))
    }

    fn snapshot_due(&self, from_version: u64, to_version: u64) -> bool {
        self.snapshot_every > 0
            && from_version / self.snapshot_every != to_version / self.snapshot_every
    }
}

fn contended(flight_id: Uuid) -> CommandError {
    anyhow::anyhow!("flight {flight_id} stayed contended for {MAX_ATTEMPTS} attempts").into()
}

/// A short, randomized pause before deciding again, so the losers of a
/// conflict do not collide again in lockstep.
async fn back_off(attempt: u32) {
    let ceiling_ms = u64::from(attempt.min(6)) * 2;
    let jitter_ms = (Uuid::new_v4().as_u128() % 1000) as u64 * ceiling_ms / 1000;
    tokio::time::sleep(std::time::Duration::from_millis(1 + jitter_ms)).await;
}

/// One `inventory.FlightEventRecorded.v1` per event, keyed by flight id.
async fn publish_events(
    conn: &mut PgConnection,
    flight_id: Uuid,
    from_version: u64,
    events: &[FlightEvent],
    cause: Option<&Envelope>,
) -> anyhow::Result<()> {
    let recorded_at = Utc::now();
    for (offset, event) in events.iter().enumerate() {
        let payload = FlightEventRecorded {
            flight_id,
            version: from_version + offset as u64 + 1,
            recorded_at,
            event: serde_json::to_value(event).context("encode the event")?,
        };
        let envelope = match cause {
            Some(cause) => Envelope::caused_by(payload, cause),
            None => Envelope::new(payload, flight_id),
        };
        messaging::enqueue(
            conn,
            topics::INVENTORY_EVENTS,
            &flight_id.to_string(),
            &envelope,
        )
        .await?;
    }
    Ok(())
}
