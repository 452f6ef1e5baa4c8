//! What goes into the store and what comes back out.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A place in the global order of all events: `(transaction_id, sequence)`.
///
/// Opaque to callers except for ordering and persistence: keep the last
/// position you processed and pass it back to [`read_all`](crate::EventStore::read_all).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position {
    /// The id of the transaction that wrote the event (Postgres `xid8`).
    pub transaction_id: u64,
    /// The event's place in the order its transaction wrote events.
    pub sequence: u64,
}

impl Position {
    /// Before the first event: reading after it reads everything.
    pub const START: Position = Position {
        transaction_id: 0,
        sequence: 0,
    };
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique across the store (UUIDv7); consumers deduplicate on it.
    pub event_id: Uuid,
    /// What happened, e.g. `SeatsHeld`; readers dispatch on it.
    pub event_type: String,
    pub payload: serde_json::Value,
    /// Correlation, causation, trace context: anything that is not the fact itself.
    pub metadata: serde_json::Value,
}

impl NewEvent {
    pub fn new(event_type: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            payload,
            metadata: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Serializes `payload` as the event's body.
    pub fn from_serializable(
        event_type: impl Into<String>,
        payload: &impl Serialize,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::new(event_type, serde_json::to_value(payload)?))
    }

    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An event as the store recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub event_id: Uuid,
    pub stream_id: String,
    /// 1 for a stream's first event, then consecutive.
    pub version: u64,
    pub position: Position,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    /// When the event was written (not when it committed).
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The payload as `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.payload)
    }
}

/// An aggregate's state after the event at `version`, serialized.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub stream_id: String,
    pub version: u64,
    /// The aggregate's [`SCHEMA_VERSION`](crate::Aggregate::SCHEMA_VERSION) when
    /// the snapshot was taken; a snapshot of another schema version is ignored.
    pub schema_version: u32,
    pub state: serde_json::Value,
}
