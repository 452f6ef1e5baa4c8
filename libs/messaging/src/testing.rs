//! Test helpers for services' integration tests: send a message to a topic
//! and read what lands on one, without the service's tests touching rdkafka.
//! Enabled by the `testing` feature, which only dev-dependencies turn on.

use std::time::Duration;

use crate::settings::KafkaSettings;
use anyhow::Context;
use contracts::{Envelope, Message};
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message as _;

use crate::producer::{OutgoingRecord, Producer};
use crate::settings::client_config;

/// Publishes `envelope` to `topic` (environment prefix applied) as a service's relay would.
pub async fn publish<P: Message>(
    kafka: &KafkaSettings,
    topic: &str,
    key: &str,
    envelope: &Envelope<P>,
) -> anyhow::Result<()> {
    let producer = Producer::new(kafka, "test-publisher")?;
    let record = OutgoingRecord {
        topic: kafka.name(topic),
        key: key.to_owned(),
        headers: [("message_type".to_owned(), envelope.message_type.clone())].into(),
        payload: serde_json::to_vec(&envelope.to_json()?)?,
    };
    for outcome in producer.send_all(&[record]).await {
        outcome?;
    }
    Ok(())
}

/// Reads a topic from its beginning, as a consumer group of its own.
pub struct TopicReader {
    consumer: StreamConsumer,
}

impl std::fmt::Debug for TopicReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicReader").finish_non_exhaustive()
    }
}

impl TopicReader {
    pub fn new(kafka: &KafkaSettings, topic: &str) -> anyhow::Result<Self> {
        let group = kafka.name(&format!("test-reader-{}", uuid::Uuid::now_v7().simple()));
        let consumer: StreamConsumer = client_config(kafka, &group)
            .set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "50")
            .create()
            .context("create the topic reader")?;
        consumer
            .subscribe(&[&kafka.name(topic)])
            .context("subscribe the topic reader")?;
        Ok(Self { consumer })
    }

    /// The next envelope on the topic, or `None` if none arrives within `timeout`.
    ///
    /// The topic may not exist yet: the service under test creates its
    /// topics as it starts, and the broker does not create them on first
    /// use. Until it does, the reader keeps waiting.
    pub async fn next(&self, timeout: Duration) -> anyhow::Result<Option<Envelope>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let received = match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Err(_) => return Ok(None),
                Ok(received) => received,
            };
            match received {
                Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                received => {
                    let message = received.context("read from the topic")?;
                    let envelope = serde_json::from_slice(message.payload().unwrap_or_default())
                        .context("decode an envelope")?;
                    return Ok(Some(envelope));
                }
            }
        }
    }

    /// Envelopes until `count` have matched `wanted`, or the deadline passes;
    /// returns the matching ones.
    pub async fn collect(
        &self,
        count: usize,
        timeout: Duration,
        wanted: impl Fn(&Envelope) -> bool,
    ) -> anyhow::Result<Vec<Envelope>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut matched = Vec::new();
        while matched.len() < count {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            if let Some(envelope) = self.next(left).await? {
                if wanted(&envelope) {
                    matched.push(envelope);
                }
            }
        }
        Ok(matched)
    }
}
