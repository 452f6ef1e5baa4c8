//! An event store in memory, for pure domain tests: command handlers run
//! against it without a database, with the same semantics as Postgres.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::watch;

use crate::{
    AppendError, AppendNotifications, EventStore, NewEvent, Position, RecordedEvent, Snapshot,
    StoreError,
};

/// An [`EventStore`] in process memory; clones share the same events.
///
/// Appends are serialized by a lock and each append is one "transaction",
/// so the global order is the commit order and trivially gap-free.
#[derive(Debug, Clone)]
pub struct InMemoryEventStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    appended: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// Every event, in global order.
    log: Vec<RecordedEvent>,
    /// Per stream, indexes into `log` in version order.
    streams: HashMap<String, Vec<usize>>,
    snapshots: HashMap<String, Snapshot>,
    transactions: u64,
}

impl Default for InMemoryEventStore {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryEventStore {
    pub fn new() -> Self {
        let (appended, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                appended,
            }),
        }
    }

    fn state(&self) -> anyhow::Result<MutexGuard<'_, State>> {
        // A panic while holding the lock may have left a half-applied append.
        self.inner
            .state
            .lock()
            .map_err(|_| anyhow!("the in-memory event store was poisoned by a panic"))
    }
}

impl State {
    fn stream(&self, stream: &str) -> impl Iterator<Item = &RecordedEvent> {
        self.streams
            .get(stream)
            .into_iter()
            .flatten()
            .map(|&index| &self.log[index])
    }

    fn version(&self, stream: &str) -> u64 {
        self.streams
            .get(stream)
            .map_or(0, |indexes| indexes.len() as u64)
    }
}

impl EventStore for InMemoryEventStore {
    async fn append(
        &self,
        stream: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<u64, AppendError> {
        if events.is_empty() {
            return Ok(expected_version);
        }
        let version = {
            let mut state = self.state()?;
            let actual = state.version(stream);
            if actual != expected_version {
                return Err(AppendError::VersionConflict {
                    stream: stream.to_owned(),
                    expected: expected_version,
                    actual,
                });
            }
            let last_recorded_at = state.stream(stream).last().map(|event| event.recorded_at);
            // Same guarantee as Postgres: recorded_at never goes back within a stream.
            let recorded_at = last_recorded_at.map_or_else(Utc::now, |last| last.max(Utc::now()));
            state.transactions += 1;
            let transaction_id = state.transactions;
            for (offset, event) in events.iter().enumerate() {
                let index = state.log.len();
                state.log.push(RecordedEvent {
                    event_id: event.event_id,
                    stream_id: stream.to_owned(),
                    version: expected_version + offset as u64 + 1,
                    position: Position {
                        transaction_id,
                        sequence: index as u64 + 1,
                    },
                    event_type: event.event_type.clone(),
                    payload: event.payload.clone(),
                    metadata: event.metadata.clone(),
                    recorded_at,
                });
                state
                    .streams
                    .entry(stream.to_owned())
                    .or_default()
                    .push(index);
            }
            expected_version + events.len() as u64
        };
        self.inner.appended.send_modify(|appends| *appends += 1);
        Ok(version)
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_stream_bounded(stream, from_version, usize::MAX)
            .await
    }

    async fn read_stream_bounded(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let state = self.state()?;
        Ok(state
            .stream(stream)
            .filter(|event| event.version >= from_version)
            .take(max_count)
            .cloned()
            .collect())
    }

    async fn stream_version_at(&self, stream: &str, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let state = self.state()?;
        Ok(state
            .stream(stream)
            .take_while(|event| event.recorded_at <= at)
            .last()
            .map_or(0, |event| event.version))
    }

    async fn read_all(
        &self,
        after: Position,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let state = self.state()?;
        let start = state.log.partition_point(|event| event.position <= after);
        Ok(state.log[start..].iter().take(max_count).cloned().collect())
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.state()?.snapshots.get(stream).cloned())
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let mut state = self.state()?;
        let replace = state.snapshots.get(&snapshot.stream_id).is_none_or(|kept| {
            kept.version < snapshot.version || kept.schema_version != snapshot.schema_version
        });
        if replace {
            state
                .snapshots
                .insert(snapshot.stream_id.clone(), snapshot.clone());
        }
        Ok(())
    }

    async fn append_notifications(&self) -> Result<AppendNotifications, StoreError> {
        let receiver = self.inner.appended.subscribe();
        let wakeups = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.changed().await.ok()?;
            Some(((), receiver))
        });
        Ok(wakeups.boxed())
    }
}
