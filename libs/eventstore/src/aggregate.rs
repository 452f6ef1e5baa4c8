//! Aggregates over the store: load (latest snapshot + later events), decide,
//! append with the expected version, retry on conflict.

use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cache::StateCache;
use crate::metrics::record_snapshot;
use crate::{AppendError, EventStore, ExecuteError, NewEvent, RecordedEvent, Snapshot, StoreError};

/// A consistency boundary whose state is a left fold of its events.
///
/// Pure: no I/O, no clock, no randomness in `apply`, so replaying the same
/// events always gives the same state, and a snapshot is just a cached fold.
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    type Event: Serialize + DeserializeOwned + Send + Sync;

    /// Bump whenever the state's serialized shape or the meaning of `apply`
    /// changes: snapshots taken under another version are ignored and replaced.
    const SCHEMA_VERSION: u32;

    /// The stored `event_type` of `event`, e.g. `SeatsHeld`.
    fn event_type(event: &Self::Event) -> &'static str;

    fn apply(&mut self, event: &Self::Event);
}

/// An aggregate's state and the version of the stream it reflects: the
/// `expected_version` of the next append.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Loaded<A> {
    pub state: A,
    pub version: u64,
}

/// When the repository writes a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotPolicy {
    /// Neither take nor read snapshots: every load replays the whole stream.
    Never,
    /// Whenever an append crosses a multiple of this many events.
    Every(NonZeroU64),
}

impl SnapshotPolicy {
    pub const DEFAULT_INTERVAL: u64 = 100;

    /// `Every(interval)`, or `Never` for 0.
    pub fn every(interval: u64) -> Self {
        NonZeroU64::new(interval).map_or(SnapshotPolicy::Never, SnapshotPolicy::Every)
    }

    pub(crate) fn due(self, from_version: u64, to_version: u64) -> bool {
        match self {
            SnapshotPolicy::Never => false,
            SnapshotPolicy::Every(interval) => {
                from_version / interval.get() != to_version / interval.get()
            }
        }
    }
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        SnapshotPolicy::every(Self::DEFAULT_INTERVAL)
    }
}

/// Typed access to the streams of one aggregate type.
#[derive(Debug)]
pub struct Repository<A, S> {
    store: S,
    snapshots: SnapshotPolicy,
    max_attempts: u32,
    /// The states this process decided on last (see [`StateCache`]); shared by clones.
    pub(crate) recent: Option<Arc<StateCache<A>>>,
    aggregate: PhantomData<fn() -> A>,
}

impl<A, S: Clone> Clone for Repository<A, S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            snapshots: self.snapshots,
            max_attempts: self.max_attempts,
            recent: self.recent.clone(),
            aggregate: PhantomData,
        }
    }
}

/// What a command decided, and the state after it.
#[derive(Debug)]
pub struct Executed<A: Aggregate, R> {
    /// The state after the decision's events, at the stream's new version.
    pub state: Loaded<A>,
    /// The version the decision was made on: its events are numbered from the next one.
    pub decided_on: u64,
    /// What was appended; empty when the decision changed nothing.
    pub events: Vec<A::Event>,
    /// What the decision returned beside its events.
    pub outcome: R,
}

/// A short, randomized pause before deciding again, so the losers of a
/// conflict do not collide again in lockstep.
pub(crate) async fn back_off(attempt: u32) {
    let ceiling_ms = u64::from(attempt.min(6)) * 2;
    let jitter_ms = (uuid::Uuid::new_v4().as_u128() % 1000) as u64 * ceiling_ms / 1000;
    tokio::time::sleep(Duration::from_millis(1 + jitter_ms)).await;
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

    pub fn new(store: S) -> Self {
        Self {
            store,
            snapshots: SnapshotPolicy::default(),
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            recent: None,
            aggregate: PhantomData,
        }
    }

    /// Keeps the latest state of up to `streams` streams this process decided
    /// on, so in-transaction loads ([`Repository::load_in`]) of a stream
    /// nobody else changed cost one index read.
    pub fn with_state_cache(mut self, streams: usize) -> Self
    where
        A: Clone,
    {
        self.recent = Some(Arc::new(StateCache::new(streams)));
        self
    }

    pub(crate) fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    pub fn with_snapshots(mut self, policy: SnapshotPolicy) -> Self {
        self.snapshots = policy;
        self
    }

    /// How many times [`execute`](Self::execute) tries before giving up on a contended stream.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The current state: the latest usable snapshot plus the events after it.
    #[tracing::instrument(skip_all, fields(stream = %stream), err)]
    pub async fn load(&self, stream: &str) -> Result<Loaded<A>, StoreError> {
        let (start, snapshot_ignored) = self.snapshot_at_most(stream, u64::MAX).await?;
        let events = self.store.read_stream(stream, start.version + 1).await?;
        let loaded = fold(start, &events)?;
        // Replace a snapshot of another schema version now rather than at the
        // next multiple of the interval.
        if snapshot_ignored && self.snapshots.due(0, loaded.version) {
            self.save_snapshot(stream, &loaded).await;
        }
        Ok(loaded)
    }

    /// The state as it was right after version `version` (time travel).
    #[tracing::instrument(skip_all, fields(stream = %stream, version = version), err)]
    pub async fn load_as_of_version(
        &self,
        stream: &str,
        version: u64,
    ) -> Result<Loaded<A>, StoreError> {
        let (start, _) = self.snapshot_at_most(stream, version).await?;
        let wanted = version - start.version;
        let events = self
            .store
            .read_stream_bounded(
                stream,
                start.version + 1,
                usize::try_from(wanted).unwrap_or(usize::MAX),
            )
            .await?;
        fold(start, &events)
    }

    /// The state as it was at instant `at`: every event recorded at or before it.
    #[tracing::instrument(skip_all, fields(stream = %stream, at = %at), err)]
    pub async fn load_as_of(
        &self,
        stream: &str,
        at: DateTime<Utc>,
    ) -> Result<Loaded<A>, StoreError> {
        let version = self.store.stream_version_at(stream, at).await?;
        self.load_as_of_version(stream, version).await
    }

    /// Appends `events` decided on `loaded`, expecting the stream still to be
    /// at `loaded.version`; returns the state after them. Takes a snapshot when
    /// one is due, without failing the append if that write fails.
    #[tracing::instrument(skip_all, fields(stream = %stream, expected_version = loaded.version, events = events.len()), err(level = "debug"))]
    pub async fn append(
        &self,
        stream: &str,
        loaded: Loaded<A>,
        events: &[A::Event],
    ) -> Result<Loaded<A>, AppendError> {
        let encoded = encode::<A>(events)?;
        let version = self.store.append(stream, loaded.version, &encoded).await?;
        let mut state = loaded.state;
        for event in events {
            state.apply(event);
        }
        let appended = Loaded { state, version };
        if self.snapshots.due(loaded.version, version) {
            self.save_snapshot(stream, &appended).await;
        }
        Ok(appended)
    }

    /// A command handler: load, `decide` (pure), append, and on a conflict
    /// start over with the fresh state, up to the configured number of attempts.
    #[tracing::instrument(skip_all, fields(stream = %stream), err(level = "debug"))]
    pub async fn execute<E>(
        &self,
        stream: &str,
        decide: impl Fn(&A) -> Result<Vec<A::Event>, E>,
    ) -> Result<Loaded<A>, ExecuteError<E>>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        for attempt in 1..=self.max_attempts {
            let loaded = self.load(stream).await?;
            let events = decide(&loaded.state).map_err(ExecuteError::Rejected)?;
            match self.append(stream, loaded, &events).await {
                Ok(appended) => return Ok(appended),
                Err(AppendError::Unexpected(error)) => return Err(ExecuteError::Unexpected(error)),
                Err(conflict) => {
                    tracing::debug!(attempt, error = %conflict, "append lost a race; retrying");
                    back_off(attempt).await;
                }
            }
        }
        Err(ExecuteError::TooManyConflicts {
            stream: stream.to_owned(),
            attempts: self.max_attempts,
        })
    }

    /// The latest snapshot at or before `max_version` that this code can use,
    /// as a starting point; also whether a snapshot was there but unusable.
    async fn snapshot_at_most(
        &self,
        stream: &str,
        max_version: u64,
    ) -> Result<(Loaded<A>, bool), StoreError> {
        if self.snapshots == SnapshotPolicy::Never {
            return Ok((Loaded::default(), false));
        }
        let snapshot = self.store.load_snapshot(stream).await?;
        Ok(start_from(snapshot, max_version))
    }

    pub(crate) fn snapshot_policy(&self) -> SnapshotPolicy {
        self.snapshots
    }

    async fn save_snapshot(&self, stream: &str, loaded: &Loaded<A>) {
        let snapshot = match serde_json::to_value(&loaded.state) {
            Ok(state) => Snapshot {
                stream_id: stream.to_owned(),
                version: loaded.version,
                schema_version: A::SCHEMA_VERSION,
                state,
            },
            Err(error) => {
                record_snapshot("failed");
                tracing::warn!(stream, %error, "could not serialize a snapshot");
                return;
            }
        };
        // The events are committed; a missing snapshot only costs a longer load.
        if let Err(error) = self.store.save_snapshot(&snapshot).await {
            record_snapshot("failed");
            tracing::warn!(stream, error = %format!("{error:#}"), "could not save a snapshot");
        }
    }
}

/// The events as they are stored.
pub fn encode<A: Aggregate>(events: &[A::Event]) -> anyhow::Result<Vec<NewEvent>> {
    events
        .iter()
        .map(|event| {
            NewEvent::from_serializable(A::event_type(event), event)
                .with_context(|| format!("serialize a {} event", A::event_type(event)))
        })
        .collect()
}

/// Applies recorded events to `start`, checking they continue it without a gap.
/// Where a load starts: `snapshot` if it is at or before `max_version` and
/// this code can read it, else the empty state; also whether a snapshot was
/// there but unusable (so it should be replaced).
pub(crate) fn start_from<A: Aggregate>(
    snapshot: Option<Snapshot>,
    max_version: u64,
) -> (Loaded<A>, bool) {
    let Some(snapshot) = snapshot else {
        return (Loaded::default(), false);
    };
    if snapshot.version > max_version {
        return (Loaded::default(), false);
    }
    if snapshot.schema_version != A::SCHEMA_VERSION {
        record_snapshot("schema_mismatch");
        tracing::debug!(
            stream = snapshot.stream_id,
            snapshot_schema = snapshot.schema_version,
            schema = A::SCHEMA_VERSION,
            "ignoring a snapshot of another schema version"
        );
        return (Loaded::default(), true);
    }
    match A::deserialize(&snapshot.state) {
        Ok(state) => (
            Loaded {
                state,
                version: snapshot.version,
            },
            false,
        ),
        Err(error) => {
            // Same schema version yet unreadable: someone forgot to bump
            // SCHEMA_VERSION. Replaying is always correct, so do that.
            record_snapshot("undecodable");
            tracing::warn!(stream = snapshot.stream_id, %error, "ignoring an undecodable snapshot");
            (Loaded::default(), true)
        }
    }
}

pub(crate) fn fold<A: Aggregate>(
    start: Loaded<A>,
    events: &[RecordedEvent],
) -> Result<Loaded<A>, StoreError> {
    let mut loaded = start;
    for recorded in events {
        if recorded.version != loaded.version + 1 {
            return Err(anyhow::anyhow!(
                "stream {} jumps from version {} to {}",
                recorded.stream_id,
                loaded.version,
                recorded.version
            )
            .into());
        }
        let event: A::Event = recorded.decode().with_context(|| {
            format!(
                "decode {} event {} of stream {}",
                recorded.event_type, recorded.version, recorded.stream_id
            )
        })?;
        loaded.state.apply(&event);
        loaded.version = recorded.version;
    }
    Ok(loaded)
}
