//! The idempotent Kafka producer behind the outbox relay.

use std::collections::HashMap;
use std::time::Duration;

use crate::settings::KafkaSettings;
use anyhow::Context;
use futures::future::Either;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

use crate::settings::client_config;

/// One message ready for the broker.
#[derive(Debug, Clone)]
pub struct OutgoingRecord {
    pub topic: String,
    pub key: String,
    pub headers: HashMap<String, String>,
    pub payload: Vec<u8>,
}

/// An idempotent producer (`enable.idempotence`, `acks=all`): retries never
/// duplicate or reorder a partition's messages, and a message counts as sent
/// only once every in-sync replica has it.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer<ProducerHealth>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    pub fn new(settings: &KafkaSettings, client_id: &str) -> anyhow::Result<Self> {
        let inner: FutureProducer<ProducerHealth> = client_config(settings, client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Low latency first: the relay already batches what it claims.
            .set("linger.ms", "1")
            .set("message.timeout.ms", "30000")
            .set("statistics.interval.ms", "5000")
            .create_with_context(ProducerHealth {
                client: client_id.to_owned(),
            })
            .context("create the kafka producer")?;
        Ok(Self { inner })
    }

    /// Sends `records` in order and waits for every acknowledgement; the
    /// result for each record is in the same position. Enqueuing in order is
    /// what keeps a key's messages in order within its partition.
    pub async fn send_all(&self, records: &[OutgoingRecord]) -> Vec<anyhow::Result<Delivery>> {
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            let headers =
                record
                    .headers
                    .iter()
                    .fold(OwnedHeaders::new(), |headers, (key, value)| {
                        headers.insert(Header {
                            key,
                            value: Some(value.as_str()),
                        })
                    });
            let mut future_record = FutureRecord::to(&record.topic)
                .key(record.key.as_str())
                .payload(record.payload.as_slice())
                .headers(headers);
            // Enqueue strictly one after another: a record that finds the local
            // queue full waits for room instead of letting a later one overtake it.
            loop {
                match self.inner.send_result(future_record) {
                    Ok(delivery) => {
                        pending.push(Either::Left(delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        future_record = returned;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((error, _)) => {
                        pending.push(Either::Right(error));
                        break;
                    }
                }
            }
        }
        let mut outcomes = Vec::with_capacity(pending.len());
        for entry in pending {
            let outcome = match entry {
                Either::Left(delivery) => match delivery.await {
                    Ok(Ok(delivery)) => Ok(delivery),
                    Ok(Err((error, _))) => {
                        Err(anyhow::Error::new(error).context("deliver to the broker"))
                    }
                    Err(_) => Err(anyhow::anyhow!("the producer dropped the delivery report")),
                },
                Either::Right(error) => {
                    Err(anyhow::Error::new(error).context("enqueue for the broker"))
                }
            };
            outcomes.push(outcome);
        }
        outcomes
    }
}

/// Exports what the producer knows of the broker from librdkafka's
/// statistics: the brokers it is connected to, their round-trip time, and
/// the messages waiting in its queue (which grow when the broker is slow or
/// gone, before any send fails).
struct ProducerHealth {
    client: String,
}

impl ClientContext for ProducerHealth {
    fn stats(&self, statistics: Statistics) {
        metrics::gauge!("kafka_producer_queue_messages", "client" => self.client.clone())
            .set(statistics.msg_cnt as f64);
        // Bootstrap entries (node id -1) are addresses, not brokers.
        let brokers = statistics
            .brokers
            .values()
            .filter(|broker| broker.nodeid >= 0);
        let mut up = 0_u32;
        for broker in brokers {
            if broker.state == "UP" {
                up += 1;
            }
            if let Some(rtt) = &broker.rtt {
                metrics::gauge!(
                    "kafka_broker_rtt_seconds",
                    "client" => self.client.clone(),
                    "broker" => broker.nodeid.to_string()
                )
                .set(rtt.avg as f64 / 1_000_000.0);
            }
        }
        metrics::gauge!("kafka_brokers_up", "client" => self.client.clone()).set(f64::from(up));
    }
}
