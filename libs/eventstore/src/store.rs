//! The contract every event store keeps, whatever holds the events.

use std::future::Future;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::{AppendError, NewEvent, Position, RecordedEvent, Snapshot, StoreError};

/// An append-only log of streams of events.
///
/// Implemented by [`PgEventStore`](crate::PgEventStore) (production) and
/// [`InMemoryEventStore`](crate::InMemoryEventStore) (pure domain tests); both
/// pass the same contract tests.
pub trait EventStore: Clone + Send + Sync + 'static {
    /// Appends `events` to `stream` as versions `expected_version + 1 ..`,
    /// provided the stream is at `expected_version` (0: the stream does not
    /// exist yet), and returns the stream's new version. Appending nothing
    /// checks nothing and returns `expected_version`.
    fn append(
        &self,
        stream: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> impl Future<Output = Result<u64, AppendError>> + Send;

    /// The events of `stream` with version ≥ `from_version`, in version order.
    fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// At most `max_count` events of `stream` with version ≥ `from_version`.
    fn read_stream_bounded(
        &self,
        stream: &str,
        from_version: u64,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// The version `stream` had at instant `at`: that of its last event
    /// recorded at or before `at`, 0 if none.
    fn stream_version_at(
        &self,
        stream: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Up to `max_count` events after `after`, in global order.
    ///
    /// Gap-free: an event this returns is never followed, in a later call, by
    /// an event with a lower position. An event is withheld until every event
    /// that could be ordered before it has committed or aborted.
    fn read_all(
        &self,
        after: Position,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// The stream's latest snapshot, whatever its schema version.
    fn load_snapshot(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;

    /// Replaces the stream's snapshot if `snapshot` is newer or of another
    /// schema version; otherwise keeps the one there.
    fn save_snapshot(
        &self,
        snapshot: &Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A stream that yields soon after appends commit. A hint only: it may
    /// yield spuriously or miss appends, so subscribers also poll.
    fn append_notifications(
        &self,
    ) -> impl Future<Output = Result<AppendNotifications, StoreError>> + Send;
}

/// Wake-ups after appends; see [`EventStore::append_notifications`]. Ends
/// when the source is gone, after which subscribers only poll.
pub type AppendNotifications = BoxStream<'static, ()>;
