//! A plain record stream with manual offset commits, for consumers whose
//! effect is not a database transaction — the data lake, which writes
//! files. The inbox does not apply: the consumer makes its own effect
//! idempotent and commits offsets only once that effect is durable
//! ([`RecordStream::commit`] after the write), so a crash redelivers and
//! never skips.
//!
//! Two ways in: [`RecordStream::subscribe`] joins a consumer group and
//! resumes from its committed offsets (from the beginning when it has
//! none); [`RecordStream::from_beginning`] reads every partition from
//! offset 0 without a group's bookkeeping (a rebuild), and
//! [`commit_group_offsets`] later hands the positions it reached to a group.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt as _;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message as _, Offset, TopicPartitionList};

use crate::settings::{client_config, KafkaSettings};

/// One record, copied out of the client's buffer.
#[derive(Debug, Clone)]
pub struct Record {
    /// The topic without the environment's prefix.
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub payload: Vec<u8>,
}

/// Where a partition stands: the offset of the next record to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub partition: i32,
    pub next_offset: i64,
}

/// Records of some topics, read in batches; offsets committed by the caller.
pub struct RecordStream {
    consumer: StreamConsumer,
    kafka: KafkaSettings,
    group: String,
}

impl std::fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl RecordStream {
    /// A member of the consumer group `group` (environment prefix applied)
    /// over `topics`, resuming from the group's committed offsets, or from
    /// the beginning of a partition the group never committed.
    pub fn subscribe(kafka: &KafkaSettings, group: &str, topics: &[&str]) -> anyhow::Result<Self> {
        let stream = Self::create(kafka, group)?;
        let names: Vec<String> = topics.iter().map(|topic| kafka.name(topic)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        stream
            .consumer
            .subscribe(&names)
            .with_context(|| format!("subscribe to {names:?}"))?;
        Ok(stream)
    }

    /// Every partition of `topics` from offset 0, outside any group's
    /// assignment (`group` only names the client). Returns the stream and,
    /// per topic, where each partition ended when it started: a rebuild is
    /// done once it has read up to there.
    pub fn from_beginning(
        kafka: &KafkaSettings,
        group: &str,
        topics: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<(Self, BTreeMap<String, Vec<Position>>)> {
        let stream = Self::create(kafka, group)?;
        let mut assignment = TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for topic in topics {
            let name = kafka.name(topic);
            let metadata = stream
                .consumer
                .fetch_metadata(Some(&name), timeout)
                .with_context(|| format!("read the partitions of {name}"))?;
            let mut positions = Vec::new();
            for found in metadata.topics() {
                if let Some(error) = found.error() {
                    anyhow::bail!("topic {name}: {:?}", RDKafkaErrorCode::from(error));
                }
                for partition in found.partitions() {
                    let (_, high) = stream
                        .consumer
                        .fetch_watermarks(&name, partition.id(), timeout)
                        .with_context(|| format!("read the end of {name}/{}", partition.id()))?;
                    assignment
                        .add_partition_offset(&name, partition.id(), Offset::Beginning)
                        .context("build the assignment")?;
                    positions.push(Position {
                        partition: partition.id(),
                        next_offset: high,
                    });
                }
            }
            positions.sort();
            ends.insert((*topic).to_owned(), positions);
        }
        stream
            .consumer
            .assign(&assignment)
            .context("assign every partition from the beginning")?;
        Ok((stream, ends))
    }

    fn create(kafka: &KafkaSettings, group: &str) -> anyhow::Result<Self> {
        let group = kafka.name(group);
        let consumer: StreamConsumer = client_config(kafka, &group)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                kafka.consumer.session_timeout_ms.to_string(),
            )
            .set(
                "fetch.wait.max.ms",
                kafka.consumer.fetch_wait_max_ms.to_string(),
            )
            .create()
            .with_context(|| format!("create the consumer of group {group}"))?;
        Ok(Self {
            consumer,
            kafka: kafka.clone(),
            group,
        })
    }

    /// Up to `max` records: waits up to `wait` for the first, then takes what
    /// the client has already fetched without waiting for more. An empty
    /// batch means nothing arrived in time.
    pub async fn next_batch(&self, max: usize, wait: Duration) -> anyhow::Result<Vec<Record>> {
        let mut batch = Vec::new();
        let first = match tokio::time::timeout(wait, self.consumer.recv()).await {
            Err(_) => return Ok(batch),
            Ok(received) => received,
        };
        if let Some(record) = self.accept(first)? {
            batch.push(record);
        }
        while batch.len() < max {
            match self.consumer.recv().now_or_never() {
                None => break,
                Some(received) => {
                    if let Some(record) = self.accept(received)? {
                        batch.push(record);
                    }
                }
            }
        }
        Ok(batch)
    }

    /// The record, or `None` for a topic that does not exist yet (its
    /// writer creates it when it starts; until then there is nothing to read).
    fn accept(
        &self,
        received: Result<BorrowedMessage<'_>, KafkaError>,
    ) -> anyhow::Result<Option<Record>> {
        match received {
            Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                Ok(None)
            }
            Err(error) => Err(error).context("read a record"),
            Ok(message) => {
                let topic = message
                    .topic()
                    .strip_prefix(&self.kafka.topic_prefix)
                    .unwrap_or(message.topic())
                    .to_owned();
                let headers = message
                    .headers()
                    .map(|headers| {
                        headers
                            .iter()
                            .filter_map(|header| {
                                let value = std::str::from_utf8(header.value?).ok()?;
                                Some((header.key.to_owned(), value.to_owned()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Some(Record {
                    topic,
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message
                        .key()
                        .and_then(|key| std::str::from_utf8(key).ok())
                        .map(str::to_owned),
                    headers,
                    payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                }))
            }
        }
    }

    /// Commits, synchronously, that everything before each position of each
    /// topic is done. Call only once the effect of those records is durable.
    pub fn commit(&self, positions: &BTreeMap<String, Vec<Position>>) -> anyhow::Result<()> {
        let offsets = offset_list(&self.kafka, positions)?;
        if offsets.count() == 0 {
            return Ok(());
        }
        self.consumer
            .commit(&offsets, CommitMode::Sync)
            .with_context(|| format!("commit offsets of group {}", self.group))
    }
}

/// Sets the committed offsets of consumer group `group` (environment prefix
/// applied) to `positions`: how a rebuild hands over to the live writer.
/// The group must have no running member.
pub fn commit_group_offsets(
    kafka: &KafkaSettings,
    group: &str,
    positions: &BTreeMap<String, Vec<Position>>,
) -> anyhow::Result<()> {
    let stream = RecordStream::create(kafka, group)?;
    stream.commit(positions)
}

fn offset_list(
    kafka: &KafkaSettings,
    positions: &BTreeMap<String, Vec<Position>>,
) -> anyhow::Result<TopicPartitionList> {
    let mut offsets = TopicPartitionList::new();
    for (topic, positions) in positions {
        for position in positions {
            offsets
                .add_partition_offset(
                    &kafka.name(topic),
                    position.partition,
                    Offset::Offset(position.next_offset),
                )
                .context("build the offsets to commit")?;
        }
    }
    Ok(offsets)
}
