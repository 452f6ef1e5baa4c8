//! The errors callers can act on; everything else is `Unexpected` with its context chain.

/// Why an append did not happen. The conflicts are retriable: reload the
/// stream, decide again, append again ([`Repository::execute`](crate::Repository::execute) does).
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Someone else appended to the stream since the caller read it.
    #[error("stream {stream} is at version {actual}, not at the expected version {expected}")]
    VersionConflict {
        stream: String,
        expected: u64,
        actual: u64,
    },
    /// The stream's last event was written by a transaction that started
    /// writing after this one. Appending would put this stream's events out
    /// of order in the global log, so the append is refused; retry in a new
    /// transaction. Happens only when a transaction writes something else
    /// first and appends later.
    #[error(
        "stream {stream} was last appended to by a younger transaction; retry in a new transaction"
    )]
    StaleTransaction { stream: String },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl AppendError {
    /// Whether reloading and retrying can succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            AppendError::VersionConflict { .. } | AppendError::StaleTransaction { .. }
        )
    }
}

/// A read, a snapshot or a load failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why [`Repository::execute`](crate::Repository::execute) did not append.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E> {
    /// The command was refused by the aggregate's decision.
    #[error(transparent)]
    Rejected(E),
    /// Another writer appended first; decide again in a new transaction
    /// (from [`Repository::execute_in`](crate::Repository::execute_in), which
    /// cannot retry inside its caller's transaction).
    #[error(transparent)]
    Conflict(AppendError),
    /// Every attempt lost a race with another writer.
    #[error("stream {stream} kept changing; gave up after {attempts} attempts")]
    TooManyConflicts { stream: String, attempts: u32 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl<E> From<StoreError> for ExecuteError<E> {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unexpected(error) => ExecuteError::Unexpected(error),
        }
    }
}

/// Why a projection stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The projection's own code refused an event; its transaction was rolled
    /// back and the checkpoint did not move, so the same event comes next.
    #[error("projection {projection} failed to apply event {event_id} ({event_type})")]
    Apply {
        projection: String,
        event_id: uuid::Uuid,
        event_type: String,
        #[source]
        source: anyhow::Error,
    },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for ProjectionError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unexpected(error) => ProjectionError::Unexpected(error),
        }
    }
}
