//! The lake writer: a consumer group over every domain event topic that
//! turns records into Parquet files, then commits their offsets.
//!
//! One pass ([`LakeWriter::write_batch`]): collect up to `max_batch`
//! records (waiting at most `batch_wait` after the first), decode each
//! envelope into its table's row, group the rows by table, event date and
//! partition, put one file per group — named after the partition and the
//! batch's first offset — and only then ([`LakeWriter::commit`]) commit the
//! offsets past the batch. So:
//!
//! - a crash before the put leaves nothing behind: the batch is read again;
//! - a crash after the put and before the commit reads the same batch again
//!   from the same committed offset, and its files, named after that
//!   offset, replace the ones already there instead of adding to them;
//! - a reader never sees half a file (see [`crate::store`]).
//!
//! Should a batch be cut differently the second time (more records had
//! arrived), a few events can sit in two files; the tables the lake serves
//! are deduplicated by `message_id` ([`crate::query`]), so they count once.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use chrono::NaiveDate;
use contracts::Envelope;
use messaging::stream::{Position, Record, RecordStream};
use messaging::KafkaSettings;
use object_store::path::Path;
use tokio_util::sync::CancellationToken;

use crate::health::Heartbeat;
use crate::store::LakeStore;
use crate::tables::{self, KafkaPosition, LakeRow, Table};

/// How the writer batches.
#[derive(Debug, Clone)]
pub struct WriterSettings {
    /// The consumer group (environment prefix applied).
    pub group: String,
    /// Records per batch at most: one batch is one set of files.
    pub max_batch: usize,
    /// How long a batch stays open after its first record. Longer means
    /// fewer, bigger files; shorter means the lake lags less.
    pub batch_wait: Duration,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            group: DEFAULT_GROUP.to_owned(),
            max_batch: 10_000,
            batch_wait: Duration::from_secs(5),
        }
    }
}

/// The lake writer's consumer group.
pub const DEFAULT_GROUP: &str = "contrail-lake";

/// Every domain event topic.
pub fn topics() -> Vec<&'static str> {
    Table::ALL.iter().map(|table| table.topic()).collect()
}

/// A batch whose files are in the lake and whose offsets are not yet committed.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// Per topic, the next offset of each partition the batch read.
    pub positions: BTreeMap<String, Vec<Position>>,
    pub records: usize,
    pub files: Vec<Path>,
}

#[derive(Debug)]
pub struct LakeWriter {
    stream: RecordStream,
    store: LakeStore,
    settings: WriterSettings,
}

impl LakeWriter {
    /// A member of the writer's consumer group, resuming where it committed.
    pub fn subscribe(
        kafka: &KafkaSettings,
        store: LakeStore,
        settings: WriterSettings,
    ) -> anyhow::Result<Self> {
        let stream = RecordStream::subscribe(kafka, &settings.group, &topics())?;
        Ok(Self {
            stream,
            store,
            settings,
        })
    }

    /// A writer over `stream` (a rebuild reads from the beginning).
    pub fn over(stream: RecordStream, store: LakeStore, settings: WriterSettings) -> Self {
        Self {
            stream,
            store,
            settings,
        }
    }

    /// Reads one batch and puts its files; `None` if nothing arrived within
    /// `idle`. The offsets are not committed: see [`Self::commit`].
    pub async fn write_batch(&self, idle: Duration) -> anyhow::Result<Option<Written>> {
        let records = self.collect(idle).await?;
        if records.is_empty() {
            return Ok(None);
        }
        let written = self.write(&records).await?;
        Ok(Some(written))
    }

    /// Commits the offsets past `written`, whose files are durable.
    pub fn commit(&self, written: &Written) -> anyhow::Result<()> {
        self.stream.commit(&written.positions)
    }

    /// Writes and commits batch after batch until `shutdown`; a batch in
    /// flight is finished (written and committed) first.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        heartbeat: Heartbeat,
    ) -> anyhow::Result<()> {
        tracing::info!(group = %self.settings.group, root = %self.store.root_dir().display(), "lake writer started");
        loop {
            heartbeat.beat();
            let written = tokio::select! {
                () = shutdown.cancelled() => break,
                written = self.write_batch(Duration::from_secs(1)) => written?,
            };
            if let Some(written) = written {
                self.commit(&written)?;
                tracing::info!(
                    records = written.records,
                    files = written.files.len(),
                    "lake batch written and committed"
                );
            }
        }
        tracing::info!("lake writer stopped");
        Ok(())
    }

    async fn collect(&self, idle: Duration) -> anyhow::Result<Vec<Record>> {
        let mut records = self
            .stream
            .next_batch(self.settings.max_batch, idle)
            .await?;
        if records.is_empty() {
            return Ok(records);
        }
        let deadline = tokio::time::Instant::now() + self.settings.batch_wait;
        while records.len() < self.settings.max_batch {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let more = self
                .stream
                .next_batch(self.settings.max_batch - records.len(), left)
                .await?;
            records.extend(more);
        }
        Ok(records)
    }

    async fn write(&self, records: &[Record]) -> anyhow::Result<Written> {
        let mut written = Written {
            records: records.len(),
            ..Written::default()
        };
        // Per (topic, partition): the batch's first offset and the next one.
        let mut spans: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
        let mut groups: BTreeMap<(Table, NaiveDate, i32), Vec<LakeRow>> = BTreeMap::new();
        for record in records {
            let span = spans
                .entry((record.topic.clone(), record.partition))
                .or_insert((record.offset, record.offset + 1));
            span.0 = span.0.min(record.offset);
            span.1 = span.1.max(record.offset + 1);
            match decode(record) {
                Ok(Some(row)) => groups
                    .entry((row.table, row.date, record.partition))
                    .or_default()
                    .push(row),
                Ok(None) => {}
                // A record that is not an envelope cannot be a row; it is
                // reported and passed over, never allowed to stop the lake.
                Err(error) => tracing::error!(
                    topic = %record.topic,
                    partition = record.partition,
                    offset = record.offset,
                    error = format!("{error:#}"),
                    "record skipped: not a domain event envelope"
                ),
            }
        }
        for ((table, date, partition), rows) in &groups {
            let first_offset = spans
                .get(&(table.topic().to_owned(), *partition))
                .map(|(first, _)| *first)
                .context("a row without its partition's span")?;
            let rows: Vec<&tables::Row> = rows.iter().map(|row| &row.row).collect();
            let batch = tables::to_record_batch(*table, &rows)?;
            let path = LakeStore::file_path(*table, *date, *partition, first_offset);
            self.store.put_parquet(&path, &batch).await?;
            written.files.push(path);
        }
        for ((topic, partition), (_, next_offset)) in spans {
            written.positions.entry(topic).or_default().push(Position {
                partition,
                next_offset,
            });
        }
        Ok(written)
    }
}

/// The row for a record of a domain event topic; `None` for a topic the
/// lake has no table for.
fn decode(record: &Record) -> anyhow::Result<Option<LakeRow>> {
    let Some(table) = Table::of_topic(&record.topic) else {
        return Ok(None);
    };
    let envelope: Envelope =
        serde_json::from_slice(&record.payload).context("decode the envelope")?;
    if !tables::is_known(table, &envelope) {
        tracing::warn!(
            message_type = %envelope.message_type,
            table = table.name(),
            "message type without columns yet; kept with its envelope and payload"
        );
    }
    let position = KafkaPosition {
        partition: record.partition,
        offset: record.offset,
    };
    tables::to_row(table, &envelope, position).map(Some)
}
