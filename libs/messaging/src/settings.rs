//! The `[kafka]` section of a service's settings, and the broker clients built from it.
//!
//! Each service embeds [`KafkaSettings`] as a field named `kafka` of its own
//! settings, so the keys stay `kafka.brokers`, `kafka.topic_prefix`, … and
//! the environment variables `<SERVICE>__KAFKA__BROKERS`, … as before.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use service_kit::ReadinessCheck;

/// How a service reaches the broker.
#[derive(Debug, Clone, Deserialize)]
pub struct KafkaSettings {
    /// Bootstrap servers, comma separated: `127.0.0.1:9092`.
    pub brokers: String,
    /// Prepended to every topic and consumer group name; lets tests and
    /// several environments share one broker without seeing each other.
    #[serde(default)]
    pub topic_prefix: String,
    /// Partitions of the topics a service creates; the unit of consumer parallelism.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replicas of the topics a service creates: 1 for a single local broker, 3 in production.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    #[serde(default)]
    pub relay: RelaySettings,
    #[serde(default)]
    pub consumer: ConsumerSettings,
    /// Further client properties for every producer, consumer and admin
    /// client, as librdkafka names them: in production the broker's TLS and
    /// SASL (`security.protocol = "SASL_SSL"`, `sasl.mechanism`,
    /// `sasl.username`, `sasl.password`). Values are secrets: never printed.
    #[serde(default)]
    pub client: std::collections::BTreeMap<String, SecretString>,
}

impl KafkaSettings {
    /// `brokers`, everything else at its default: for tools that only talk
    /// to the broker (an admin command, a benchmark).
    pub fn for_brokers(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: String::new(),
            partitions: default_partitions(),
            replication_factor: default_replication_factor(),
            relay: RelaySettings::default(),
            consumer: ConsumerSettings::default(),
            client: std::collections::BTreeMap::new(),
        }
    }
}

fn default_partitions() -> i32 {
    3
}
fn default_replication_factor() -> i32 {
    1
}

impl KafkaSettings {
    /// The topic's (or consumer group's) name in this environment.
    pub fn name(&self, base: &str) -> String {
        format!("{}{}", self.topic_prefix, base)
    }
}

/// How the outbox relay paces itself.
#[derive(Debug, Clone, Deserialize)]
pub struct RelaySettings {
    /// Rows claimed and published per transaction.
    #[serde(default = "default_batch_size")]
    pub batch_size: i64,
    /// How often to look for rows when no notification arrives.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Published rows are deleted after this long.
    #[serde(default = "default_retention_secs")]
    pub retention_secs: u64,
    /// How often to prune and to refresh the backlog gauges.
    #[serde(default = "default_maintenance_interval_secs")]
    pub maintenance_interval_secs: u64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: default_batch_size(),
            poll_interval_ms: default_poll_interval_ms(),
            retention_secs: default_retention_secs(),
            maintenance_interval_secs: default_maintenance_interval_secs(),
        }
    }
}

fn default_batch_size() -> i64 {
    500
}
fn default_poll_interval_ms() -> u64 {
    500
}
fn default_retention_secs() -> u64 {
    24 * 3600
}
fn default_maintenance_interval_secs() -> u64 {
    5
}

/// A consumer's retry budget and pacing.
#[derive(Debug, Clone, Deserialize)]
pub struct ConsumerSettings {
    /// Attempts before a failing message is parked.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// How often stored offsets are committed to the broker. A crash loses
    /// at most this much progress, which the inbox makes harmless.
    #[serde(default = "default_auto_commit_interval_ms")]
    pub auto_commit_interval_ms: u64,
    /// How often to look for replay requests and prune the inbox.
    #[serde(default = "default_maintenance_interval_ms")]
    pub maintenance_interval_ms: u64,
    /// How long the broker may hold a fetch while it has nothing new. Kafka
    /// answers as soon as data arrives, so this only sets how often an idle
    /// consumer asks again.
    #[serde(default = "default_fetch_wait_max_ms")]
    pub fetch_wait_max_ms: u64,
    /// Inbox rows older than this are pruned; a redelivery older than that is not expected.
    #[serde(default = "default_inbox_retention_secs")]
    pub inbox_retention_secs: u64,
    /// Members of each consumer group this process runs. A partition has one
    /// member at a time, so up to the topic's partition count apply messages in
    /// parallel while each key's messages stay in order. More members mean
    /// more group rebalancing work for the broker.
    #[serde(default = "default_instances")]
    pub instances: u32,
    /// The most messages applied in one database transaction. A batch is
    /// what the client has already fetched, never waited for: at low load it
    /// is one message, under load it saves a commit per message.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// How long the group coordinator waits for a silent member before it
    /// hands its partitions to the others. A member killed with `kill -9`
    /// never says goodbye: until this passes, its partitions stay with it and
    /// a restarted process is assigned nothing. 10 s (Kafka's default is
    /// 45 s) keeps recovery after a crash within the sagas' step timeouts.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// How often a member tells the coordinator it is alive: a third of the
    /// session timeout, so two lost heartbeats are survived.
    #[serde(default = "default_heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u64,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            auto_commit_interval_ms: default_auto_commit_interval_ms(),
            maintenance_interval_ms: default_maintenance_interval_ms(),
            inbox_retention_secs: default_inbox_retention_secs(),
            fetch_wait_max_ms: default_fetch_wait_max_ms(),
            instances: default_instances(),
            max_batch: default_max_batch(),
            session_timeout_ms: default_session_timeout_ms(),
            heartbeat_interval_ms: default_heartbeat_interval_ms(),
        }
    }
}

fn default_instances() -> u32 {
    1
}

fn default_max_batch() -> usize {
    100
}

fn default_session_timeout_ms() -> u64 {
    10_000
}

fn default_heartbeat_interval_ms() -> u64 {
    3_000
}

fn default_max_attempts() -> u32 {
    8
}
fn default_initial_backoff_ms() -> u64 {
    100
}
fn default_max_backoff_ms() -> u64 {
    5_000
}
fn default_auto_commit_interval_ms() -> u64 {
    1_000
}
fn default_maintenance_interval_ms() -> u64 {
    1_000
}
fn default_fetch_wait_max_ms() -> u64 {
    500
}
fn default_inbox_retention_secs() -> u64 {
    7 * 24 * 3600
}

/// A client configuration with the bootstrap servers set.
pub(crate) fn client_config(settings: &KafkaSettings, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", client_id)
        // After a broker restart, try again every 2 s at most rather than
        // librdkafka's 10 s: the chaos harness measured consumers resuming
        // up to 10 s after the broker already answered.
        .set("reconnect.backoff.max.ms", "2000");
    for (property, value) in &settings.client {
        config.set(property, value.expose_secret());
    }
    config
}

/// Readiness: the broker answers a metadata request.
#[derive(Clone)]
pub struct BrokerReadiness {
    client: Arc<BaseConsumer>,
}

impl std::fmt::Debug for BrokerReadiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerReadiness").finish_non_exhaustive()
    }
}

impl BrokerReadiness {
    pub fn new(settings: &KafkaSettings, client_id: &str) -> anyhow::Result<Self> {
        let client: BaseConsumer = client_config(settings, client_id)
            .create()
            .context("create the broker readiness client")?;
        Ok(Self {
            client: Arc::new(client),
        })
    }
}

impl ReadinessCheck for BrokerReadiness {
    fn name(&self) -> &'static str {
        "broker"
    }

    fn check(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        let client = Arc::clone(&self.client);
        Box::pin(async move {
            // fetch_metadata blocks its thread until the broker answers or the timeout passes.
            tokio::task::spawn_blocking(move || {
                client
                    .fetch_metadata(None, Duration::from_millis(1500))
                    .map(|_| ())
                    .context("fetch broker metadata")
            })
            .await
            .context("join the metadata request")?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a service's settings look like to serde: its own sections,
    /// `kafka` among them, flattened next to service-kit's shared ones.
    #[derive(Debug, Deserialize)]
    struct Own {
        kafka: KafkaSettings,
    }

    #[derive(Debug, Deserialize)]
    struct Document {
        #[serde(flatten)]
        own: Own,
    }

    #[test]
    fn the_kafka_section_keeps_its_keys_and_typed_overrides_inside_a_services_settings() {
        let defaults = "[kafka]\nbrokers = \"127.0.0.1:9092\"\n";
        let overrides = [
            ("kafka.topic_prefix", "t1.".to_owned()),
            ("kafka.partitions", "6".to_owned()),
            ("kafka.consumer.instances", "2".to_owned()),
        ];
        let document: Document =
            service_kit::settings::load_with_overrides("sample-kafka", defaults, &overrides)
                .unwrap();
        let kafka = document.own.kafka;
        assert_eq!(kafka.brokers, "127.0.0.1:9092");
        assert_eq!(kafka.name("booking.events"), "t1.booking.events");
        assert_eq!(kafka.partitions, 6);
        assert_eq!(kafka.consumer.instances, 2);
        assert_eq!(kafka.relay.batch_size, 500);
    }
}
