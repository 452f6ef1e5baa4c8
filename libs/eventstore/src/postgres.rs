//! The event store on Postgres. See the crate docs for the global order.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::StreamExt;
use sqlx::postgres::PgPool;
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use crate::aggregate::{back_off, encode, fold, start_from, Executed};
use crate::metrics::{record_append, record_snapshot, AppendOutcome};
use crate::{
    Aggregate, AppendError, AppendNotifications, EventStore, ExecuteError, Loaded, NewEvent,
    Position, RecordedEvent, Repository, Snapshot, SnapshotPolicy, StoreError,
};

/// The unique constraint that decides which of two racing appends wins.
const STREAM_VERSION_CONSTRAINT: &str = "events_stream_version_key";

/// One statement checks the stream's head, refuses an append that would put
/// the stream out of global order, and inserts the batch. The head check
/// catches a stale `expected_version` (no gaps); the unique constraint catches
/// the race the check cannot see (two writers that both read the same head).
const APPEND: &str = r#"
WITH head AS (
    SELECT version, transaction_id
    FROM events
    WHERE stream_id = $1
    ORDER BY version DESC
    LIMIT 1
), guard AS (
    SELECT coalesce((SELECT version FROM head), 0) AS version,
           coalesce((SELECT transaction_id FROM head) <= pg_current_xact_id(), true) AS in_order
), inserted AS (
    INSERT INTO events (event_id, stream_id, version, event_type, payload, metadata)
    SELECT e.event_id, $1, $2 + e.ordinality, e.event_type, e.payload, e.metadata
    FROM unnest($3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[])
         WITH ORDINALITY AS e (event_id, event_type, payload, metadata, ordinality)
    WHERE (SELECT version FROM guard) = $2 AND (SELECT in_order FROM guard)
    ORDER BY e.ordinality
    RETURNING 1
)
SELECT (SELECT version FROM guard) AS actual,
       (SELECT in_order FROM guard) AS in_order,
       (SELECT count(*) FROM inserted) AS inserted
"#;

const SELECT_EVENTS: &str = "SELECT transaction_id::text::bigint AS transaction_id, sequence, \
     event_id, stream_id, version, event_type, payload, metadata, recorded_at FROM events";

/// Subscribers listen on this channel suffixed with the schema, so services
/// sharing a database do not wake each other.
const CHANNEL_PREFIX: &str = "eventstore_appended.";

/// Wakes subscribers after appends; see [`PgEventStore::notify_appended`].
/// A notification is a hint, so its transaction does not wait for a WAL
/// flush (`synchronous_commit` off for this statement's transaction only).
const NOTIFY: &str = "SELECT set_config('synchronous_commit', 'off', true), \
     pg_notify('eventstore_appended.' || current_schema(), '')";

/// An [`EventStore`] on a Postgres pool whose `search_path` is the service's schema.
#[derive(Debug, Clone)]
pub struct PgEventStore {
    pool: PgPool,
    notifier: Arc<Notifier>,
}

impl PgEventStore {
    /// The pool must have [`MIGRATOR`](crate::MIGRATOR) applied.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            notifier: Arc::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// [`EventStore::append`] inside the caller's transaction, so events commit
    /// together with whatever else the transaction writes (outbox rows).
    ///
    /// Runs in a savepoint: on a conflict the caller's transaction is still
    /// usable, but it must not commit as if the decision had been recorded.
    /// Call [`notify_appended`](Self::notify_appended) after the commit, or
    /// subscribers only see the events at their next poll.
    #[tracing::instrument(skip_all, fields(stream = %stream, expected_version = expected_version, events = events.len()), err(level = "debug"))]
    pub async fn append_in(
        conn: &mut PgConnection,
        stream: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<u64, AppendError> {
        if events.is_empty() {
            return Ok(expected_version);
        }
        let started = Instant::now();
        let mut savepoint = conn.begin().await.context("open a savepoint")?;
        let result = insert_events(&mut savepoint, stream, expected_version, events).await;
        // Keep the savepoint only for a full insert: a race lost to the unique
        // constraint has aborted it, and a refusal inserted nothing.
        match &result {
            Ok(Inserted::All) => savepoint.commit().await.context("release the savepoint")?,
            _ => savepoint
                .rollback()
                .await
                .context("roll back to the savepoint")?,
        }
        finish_append(
            conn,
            stream,
            expected_version,
            events.len(),
            result,
            started,
        )
        .await
    }

    /// Wakes subscribers: call after committing a transaction that used
    /// [`append_in`](Self::append_in). Coalesced: while one notification is
    /// being sent, later calls only make sure another follows it.
    ///
    /// Sent from its own transaction rather than from the append's: a
    /// transaction that notifies holds a database-wide lock through its
    /// commit, which serializes notifying commits (no group commit) and cut
    /// append throughput by two thirds in `eventstore-bench`.
    pub async fn notify_appended(&self) {
        self.notifier.notify(&self.pool).await;
    }

    /// [`Repository::load`] inside the caller's transaction: the state
    /// includes what that transaction has appended so far, so several
    /// decisions on one stream can share a transaction (a consumer's batch).
    /// The expected version of the next append still guards against other
    /// writers, which READ COMMITTED lets this read see as they commit.
    #[tracing::instrument(skip_all, fields(stream = %stream), err)]
    pub async fn load_in<A: Aggregate>(
        repository: &Repository<A, PgEventStore>,
        conn: &mut PgConnection,
        stream: &str,
    ) -> Result<Loaded<A>, StoreError> {
        let start = if repository.snapshot_policy() == SnapshotPolicy::Never {
            Loaded::default()
        } else {
            let snapshot = select_snapshot(&mut *conn, stream).await?;
            start_from::<A>(snapshot, u64::MAX).0
        };
        let events = select_stream(&mut *conn, stream, start.version + 1, None).await?;
        fold(start, &events)
    }

    /// [`EventStore::save_snapshot`] inside the caller's transaction: a
    /// snapshot taken right after an [`append_in`](Self::append_in) then
    /// exists only if the events it folds commit too.
    pub async fn save_snapshot_in(
        conn: &mut PgConnection,
        snapshot: &Snapshot,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO snapshots (stream_id, version, schema_version, state) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, \
                 schema_version = excluded.schema_version, state = excluded.state, taken_at = now() \
             WHERE snapshots.version < excluded.version \
                OR snapshots.schema_version <> excluded.schema_version",
        )
        .bind(&snapshot.stream_id)
        .bind(i64_to_db(snapshot.version)?)
        .bind(i32::try_from(snapshot.schema_version).context("schema version out of range")?)
        .bind(&snapshot.state)
        .execute(conn)
        .await
        .context("upsert the snapshot")?;
        record_snapshot("saved");
        Ok(())
    }

    /// The position of the newest event a reader can be handed now; later
    /// events may exist but are still withheld.
    #[tracing::instrument(skip_all, err)]
    pub async fn head_position(&self) -> Result<Position, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT transaction_id::text::bigint, sequence FROM events \
             WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY transaction_id DESC, sequence DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .context("select the head position")?;
        match row {
            Some((transaction_id, sequence)) => Ok(position_from_db(transaction_id, sequence)?),
            None => Ok(Position::START),
        }
    }
}

impl EventStore for PgEventStore {
    #[tracing::instrument(skip_all, fields(stream = %stream, expected_version = expected_version, events = events.len()), err(level = "debug"))]
    async fn append(
        &self,
        stream: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<u64, AppendError> {
        if events.is_empty() {
            return Ok(expected_version);
        }
        let started = Instant::now();
        let mut conn = self.pool.acquire().await.context("acquire a connection")?;
        // One statement in autocommit is atomic; no BEGIN/COMMIT round trips.
        let result = insert_events(&mut conn, stream, expected_version, events).await;
        let version = finish_append(
            &mut conn,
            stream,
            expected_version,
            events.len(),
            result,
            started,
        )
        .await?;
        drop(conn);
        self.notifier.notify(&self.pool).await;
        Ok(version)
    }

    #[tracing::instrument(skip_all, fields(stream = %stream, from_version = from_version), err)]
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        select_stream(&self.pool, stream, from_version, None).await
    }

    #[tracing::instrument(skip_all, fields(stream = %stream, from_version = from_version, max_count = max_count), err)]
    async fn read_stream_bounded(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        select_stream(&self.pool, stream, from_version, Some(max_count)).await
    }

    #[tracing::instrument(skip_all, fields(stream = %stream, at = %at), err)]
    async fn stream_version_at(&self, stream: &str, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let version: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1 AND recorded_at <= $2",
        )
        .bind(stream)
        .bind(at)
        .fetch_one(&self.pool)
        .await
        .context("select the stream version at an instant")?;
        Ok(u64_from_db(version)?)
    }

    #[tracing::instrument(skip_all, fields(after = ?after, max_count = max_count), err)]
    async fn read_all(
        &self,
        after: Position,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut conn = self.pool.acquire().await.context("acquire a connection")?;
        Ok(read_all_in(&mut conn, after, max_count).await?)
    }

    #[tracing::instrument(skip_all, fields(stream = %stream), err)]
    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        select_snapshot(&self.pool, stream).await
    }

    #[tracing::instrument(skip_all, fields(stream = %snapshot.stream_id, version = snapshot.version), err)]
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.context("acquire a connection")?;
        PgEventStore::save_snapshot_in(&mut conn, snapshot).await
    }

    /// The listener runs on a task of its own ([`pg_listen::forward`]) and
    /// hands wake-ups over a channel. It must not live inside the returned
    /// stream: a stream is polled only while its subscriber waits, and a
    /// subscriber busy catching up (or backing off through a database
    /// outage) would leave a reconnect stuck half-way, holding up a Postgres
    /// shutdown for 60 s — the long chaos run found exactly that.
    #[tracing::instrument(skip_all, err)]
    async fn append_notifications(&self) -> Result<AppendNotifications, StoreError> {
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&self.pool)
            .await
            .context("select the current schema")?;
        let channel = format!("{CHANNEL_PREFIX}{schema}");
        let listener = pg_listen::connect(&self.pool, &channel).await?;
        // One slot: a wake-up already waiting covers every later one.
        let (wake, wakeups) = tokio::sync::mpsc::channel::<()>(1);
        let stop = wake.clone();
        // A notification and a gap are both a wake-up: the subscriber reads
        // from its position either way. Runs until every receiver is gone.
        tokio::spawn(pg_listen::forward(
            "append listener",
            self.pool.clone(),
            channel,
            Some(listener),
            pg_listen::Backoff::default(),
            async move { stop.closed().await },
            move |_heard| {
                // A full channel means a wake-up is pending already.
                let _ = wake.try_send(());
            },
        ));
        let wakeups = futures::stream::unfold(wakeups, |mut wakeups| async move {
            wakeups.recv().await.map(|()| ((), wakeups))
        });
        Ok(wakeups.boxed())
    }
}

/// Coalesces notifications: at most one in flight per store, and every
/// append that commits while one is in flight gets another one after it.
#[derive(Debug, Default)]
struct Notifier {
    state: AtomicU8,
}

impl Notifier {
    const IDLE: u8 = 0;
    const SENDING: u8 = 1;
    /// Sending, and an append committed meanwhile: send again when done.
    const SENDING_AGAIN: u8 = 2;

    async fn notify(&self, pool: &PgPool) {
        let claimed = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                Some(if state == Self::IDLE {
                    Self::SENDING
                } else {
                    Self::SENDING_AGAIN
                })
            });
        if claimed != Ok(Self::IDLE) {
            return;
        }
        // If this future is dropped mid-send, the next append must not find
        // the notifier stuck in SENDING.
        let mut sending = Sending {
            state: &self.state,
            finished: false,
        };
        loop {
            if let Err(error) = send_notification(pool).await {
                tracing::warn!(error = %format!("{error:#}"), "could not notify subscribers; they will poll");
            }
            let finished = self.state.compare_exchange(
                Self::SENDING,
                Self::IDLE,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if finished.is_ok() {
                sending.finished = true;
                return;
            }
            self.state.store(Self::SENDING, Ordering::Release);
        }
    }
}

struct Sending<'a> {
    state: &'a AtomicU8,
    finished: bool,
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.state.store(Notifier::IDLE, Ordering::Release);
        }
    }
}

async fn send_notification(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query(NOTIFY).execute(pool).await.context("notify")?;
    Ok(())
}

/// Outcome of the append statement, before it is turned into the caller's answer.
enum Inserted {
    All,
    Refused { actual: u64, in_order: bool },
    Raced,
}

async fn insert_events(
    conn: &mut PgConnection,
    stream: &str,
    expected_version: u64,
    events: &[NewEvent],
) -> anyhow::Result<Inserted> {
    let count = events.len();
    let mut event_ids: Vec<Uuid> = Vec::with_capacity(count);
    let mut event_types: Vec<&str> = Vec::with_capacity(count);
    let mut payloads: Vec<&serde_json::Value> = Vec::with_capacity(count);
    let mut metadata: Vec<&serde_json::Value> = Vec::with_capacity(count);
    for event in events {
        event_ids.push(event.event_id);
        event_types.push(&event.event_type);
        payloads.push(&event.payload);
        metadata.push(&event.metadata);
    }
    let result: Result<(i64, bool, i64), sqlx::Error> = sqlx::query_as(APPEND)
        .bind(stream)
        .bind(i64_to_db(expected_version)?)
        .bind(&event_ids)
        .bind(&event_types)
        .bind(&payloads)
        .bind(&metadata)
        .fetch_one(&mut *conn)
        .await;
    match result {
        Ok((_, _, inserted)) if usize::try_from(inserted).ok() == Some(count) => Ok(Inserted::All),
        Ok((actual, in_order, _)) => Ok(Inserted::Refused {
            actual: u64_from_db(actual)?,
            in_order,
        }),
        Err(sqlx::Error::Database(error))
            if error.constraint() == Some(STREAM_VERSION_CONSTRAINT) =>
        {
            Ok(Inserted::Raced)
        }
        Err(error) => Err(error).context("insert events"),
    }
}

/// Turns the statement's outcome into the caller's answer and records metrics.
async fn finish_append(
    conn: &mut PgConnection,
    stream: &str,
    expected_version: u64,
    count: usize,
    inserted: anyhow::Result<Inserted>,
    started: Instant,
) -> Result<u64, AppendError> {
    let outcome = match inserted {
        Ok(Inserted::All) => {
            record_append(AppendOutcome::Appended { events: count }, started.elapsed());
            return Ok(expected_version + count as u64);
        }
        Ok(Inserted::Refused {
            in_order: false, ..
        }) => Err(AppendError::StaleTransaction {
            stream: stream.to_owned(),
        }),
        Ok(Inserted::Refused { actual, .. }) => Err(AppendError::VersionConflict {
            stream: stream.to_owned(),
            expected: expected_version,
            actual,
        }),
        // The winner has committed (the unique check waited for it), so a
        // fresh statement sees the version it reached.
        Ok(Inserted::Raced) => {
            let actual = stream_version(conn, stream).await?;
            Err(AppendError::VersionConflict {
                stream: stream.to_owned(),
                expected: expected_version,
                actual,
            })
        }
        Err(error) => Err(AppendError::Unexpected(error)),
    };
    let kind = match &outcome {
        Err(AppendError::Unexpected(_)) => AppendOutcome::Error,
        _ => AppendOutcome::Conflict,
    };
    record_append(kind, started.elapsed());
    outcome
}

async fn stream_version(conn: &mut PgConnection, stream: &str) -> anyhow::Result<u64> {
    let version: i64 =
        sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1")
            .bind(stream)
            .fetch_one(&mut *conn)
            .await
            .context("select the stream version")?;
    u64_from_db(version)
}

async fn select_snapshot<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    stream: &str,
) -> Result<Option<Snapshot>, StoreError> {
    let row: Option<(i64, i32, serde_json::Value)> =
        sqlx::query_as("SELECT version, schema_version, state FROM snapshots WHERE stream_id = $1")
            .bind(stream)
            .fetch_optional(executor)
            .await
            .context("select the snapshot")?;
    let Some((version, schema_version, state)) = row else {
        return Ok(None);
    };
    Ok(Some(Snapshot {
        stream_id: stream.to_owned(),
        version: u64_from_db(version)?,
        schema_version: u32::try_from(schema_version).context("negative schema version")?,
        state,
    }))
}

async fn select_stream<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    stream: &str,
    from_version: u64,
    max_count: Option<usize>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let limit = max_count
        .map(i64::try_from)
        .transpose()
        .context("max_count out of range")?;
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "{SELECT_EVENTS} WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3"
    ))
    .bind(stream)
    .bind(i64_to_db(from_version)?)
    .bind(limit)
    .fetch_all(executor)
    .await
    .context("select stream events")?;
    Ok(rows
        .into_iter()
        .map(RecordedEvent::try_from)
        .collect::<anyhow::Result<_>>()?)
}

/// [`EventStore::read_all`] on a given connection, so a projection reads and
/// writes its read model in one transaction.
///
/// Events are handed out only when their transaction id is below the xmin of
/// the statement's snapshot: every transaction below it has ended, and every
/// transaction still to commit has (or will get) an id at or above it, so no
/// event can later appear before one handed out here.
pub(crate) async fn read_all_in(
    conn: &mut PgConnection,
    after: Position,
    max_count: usize,
) -> anyhow::Result<Vec<RecordedEvent>> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "{SELECT_EVENTS} \
         WHERE (transaction_id, sequence) > ($1::text::xid8, $2) \
           AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY transaction_id, sequence \
         LIMIT $3"
    ))
    .bind(after.transaction_id.to_string())
    .bind(i64_to_db(after.sequence)?)
    .bind(i64::try_from(max_count).context("max_count out of range")?)
    .fetch_all(&mut *conn)
    .await
    .context("select events after a position")?;
    rows.into_iter().map(RecordedEvent::try_from).collect()
}

#[derive(sqlx::FromRow)]
struct EventRow {
    transaction_id: i64,
    sequence: i64,
    event_id: Uuid,
    stream_id: String,
    version: i64,
    event_type: String,
    payload: serde_json::Value,
    metadata: serde_json::Value,
    recorded_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for RecordedEvent {
    type Error = anyhow::Error;

    fn try_from(row: EventRow) -> anyhow::Result<Self> {
        Ok(RecordedEvent {
            event_id: row.event_id,
            stream_id: row.stream_id,
            version: u64_from_db(row.version)?,
            position: position_from_db(row.transaction_id, row.sequence)?,
            event_type: row.event_type,
            payload: row.payload,
            metadata: row.metadata,
            recorded_at: row.recorded_at,
        })
    }
}

pub(crate) fn position_from_db(transaction_id: i64, sequence: i64) -> anyhow::Result<Position> {
    Ok(Position {
        transaction_id: u64_from_db(transaction_id)?,
        sequence: u64_from_db(sequence)?,
    })
}

// Postgres has no unsigned integers; versions and positions never go negative.
pub(crate) fn u64_from_db(value: i64) -> anyhow::Result<u64> {
    u64::try_from(value).with_context(|| format!("negative value {value} from the database"))
}

pub(crate) fn i64_to_db(value: u64) -> anyhow::Result<i64> {
    i64::try_from(value).with_context(|| format!("value {value} does not fit a bigint"))
}

/// The command loop inside the caller's transaction: what a service uses when
/// a change must commit with other writes (the outbox, the inbox row).
impl<A: Aggregate + Clone> Repository<A, PgEventStore> {
    /// The current state, read in `conn`'s transaction (so it includes what
    /// that transaction appended), from the state cache when the stream's
    /// head is still where the cached state was folded up to.
    pub async fn load_in(
        &self,
        conn: &mut PgConnection,
        stream: &str,
    ) -> Result<Loaded<A>, StoreError> {
        match &self.recent {
            Some(cache) => cache.load_in(self, conn, stream).await,
            None => PgEventStore::load_in(self, conn, stream).await,
        }
    }

    /// Load, `decide` (pure), append expecting the loaded version — once, in
    /// `conn`'s transaction, with a snapshot in the same transaction when the
    /// policy says one is due. The caller writes whatever else belongs with
    /// the events (outbox rows) in the same transaction, then commits.
    ///
    /// Another writer that appended first is [`ExecuteError::Conflict`]: the
    /// append's savepoint is rolled back, but deciding again must happen in
    /// a *new* transaction (this one may be older than the winner's, and the
    /// global log must stay in commit order), so it is the transaction
    /// owner's to retry: [`execute_committed`](Self::execute_committed) does,
    /// a message consumer does by applying the message again.
    #[tracing::instrument(skip_all, fields(stream = %stream), err(level = "debug"))]
    pub async fn execute_in<R, E>(
        &self,
        conn: &mut PgConnection,
        stream: &str,
        decide: impl Fn(&A) -> Result<(Vec<A::Event>, R), E>,
    ) -> Result<Executed<A, R>, ExecuteError<E>>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let loaded = self.load_in(conn, stream).await?;
        let (events, outcome) = decide(&loaded.state).map_err(ExecuteError::Rejected)?;
        if events.is_empty() {
            return Ok(Executed {
                decided_on: loaded.version,
                state: loaded,
                events,
                outcome,
            });
        }
        let encoded = encode::<A>(&events)?;
        let version = match PgEventStore::append_in(conn, stream, loaded.version, &encoded).await {
            Ok(version) => version,
            Err(error) if error.is_conflict() => return Err(ExecuteError::Conflict(error)),
            Err(error) => {
                return Err(ExecuteError::Unexpected(
                    anyhow::Error::new(error).context("append the decided events"),
                ))
            }
        };
        let decided_on = loaded.version;
        let mut state = loaded.state;
        for event in &events {
            state.apply(event);
        }
        let appended = Loaded { state, version };
        if let (Some(cache), Some(head)) = (&self.recent, encoded.last()) {
            cache.remember(stream, &appended, head.event_id);
        }
        if self.snapshot_policy().due(decided_on, version) {
            let snapshot = Snapshot {
                stream_id: stream.to_owned(),
                version,
                schema_version: A::SCHEMA_VERSION,
                state: serde_json::to_value(&appended.state).context("encode the snapshot")?,
            };
            // In the same transaction: the snapshot exists only if its events do.
            PgEventStore::save_snapshot_in(conn, &snapshot).await?;
        }
        Ok(Executed {
            state: appended,
            decided_on,
            events,
            outcome,
        })
    }

    /// [`execute_in`](Self::execute_in) in a transaction of its own: `also`
    /// writes what belongs with the events (outbox rows) in it, then it
    /// commits and wakes subscribers. A conflict starts over in a new
    /// transaction after a short randomized pause, up to the configured
    /// attempts. Holds one connection at a time.
    pub async fn execute_committed<R, E>(
        &self,
        stream: &str,
        decide: impl Fn(&A) -> Result<(Vec<A::Event>, R), E>,
        also: impl for<'c> Fn(
            &'c mut PgConnection,
            &'c Executed<A, R>,
        ) -> BoxFuture<'c, anyhow::Result<()>>,
    ) -> Result<Executed<A, R>, ExecuteError<E>>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        for attempt in 1..=self.max_attempts() {
            let mut tx = self.store().pool().begin().await.context("begin")?;
            match self.execute_in(&mut tx, stream, &decide).await {
                Ok(executed) => {
                    also(&mut tx, &executed).await?;
                    tx.commit().await.context("commit the events")?;
                    if !executed.events.is_empty() {
                        self.store().notify_appended().await;
                    }
                    return Ok(executed);
                }
                Err(ExecuteError::Conflict(error)) => {
                    drop(tx);
                    tracing::debug!(attempt, %error, "append lost a race; deciding again");
                    back_off(attempt).await;
                }
                Err(error) => return Err(error),
            }
        }
        Err(ExecuteError::TooManyConflicts {
            stream: stream.to_owned(),
            attempts: self.max_attempts(),
        })
    }
}
