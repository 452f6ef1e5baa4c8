//! A schema with the messaging tables, a test topic, a recording handler,
//! and ways to run the relay and consumers against them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use contracts::{Envelope, Message};
use futures::future::BoxFuture;
use messaging::consumer::ConsumerStats;
use messaging::producer::OutgoingRecord;
use messaging::{
    Consumer, HandlerError, Incoming, KafkaSettings, MessageHandler, OutboxRelay, Producer,
};
use serde::{Deserialize, Serialize};
use sqlx::{Executor, PgConnection, PgPool};
use test_support::{unique_topic_prefix, TestDatabase};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const TOPIC: &str = "test.recordings";
pub const CONSUMER: &str = "recorder";

/// What the test messages carry: a key, its sequence number within the key,
/// and whether the handler should fail on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    pub key: String,
    pub seq: i64,
    #[serde(default)]
    pub poison: bool,
}

impl Message for Recording {
    const MESSAGE_TYPE: &'static str = "test.Recording.v1";
}

pub struct Harness {
    pub database: TestDatabase,
    pub pool: PgPool,
    pub kafka: KafkaSettings,
}

impl Harness {
    /// A fresh schema and topic prefix, against the shared test broker.
    pub async fn new() -> Self {
        Self::with_brokers(&test_support::brokers()).await
    }

    pub async fn with_brokers(brokers: &str) -> Self {
        let database = TestDatabase::create().await.unwrap();
        let pool = database.pool_as("booking", 6).await.unwrap();
        messaging::MIGRATOR.run(&pool).await.unwrap();
        // No primary key on purpose: a message applied twice must show up as two rows.
        pool.execute(
            "CREATE TABLE effects (
                 received   bigint GENERATED ALWAYS AS IDENTITY,
                 message_id uuid NOT NULL,
                 key        text NOT NULL,
                 seq        bigint NOT NULL
             )",
        )
        .await
        .unwrap();
        let kafka: KafkaSettings = serde_json::from_value(serde_json::json!({
            "brokers": brokers,
            "topic_prefix": unique_topic_prefix(),
            "partitions": 3,
            "relay": { "poll_interval_ms": 100, "maintenance_interval_secs": 1 },
            "consumer": {
                "max_attempts": 3,
                "initial_backoff_ms": 10,
                "max_backoff_ms": 50,
                "maintenance_interval_ms": 100
            }
        }))
        .unwrap();
        messaging::topics::ensure_topics(
            &kafka,
            &[TOPIC, &contracts::topics::dead_letter_topic(TOPIC)],
        )
        .await
        .unwrap();
        Self {
            database,
            pool,
            kafka,
        }
    }

    /// Commits `recordings` to the outbox, one transaction each, in order.
    pub async fn enqueue(&self, recordings: impl IntoIterator<Item = Recording>) -> Vec<Uuid> {
        let mut tx = self.pool.begin().await.unwrap();
        let mut ids = Vec::new();
        for recording in recordings {
            let key = recording.key.clone();
            let envelope = Envelope::new(recording, Uuid::now_v7());
            ids.push(envelope.message_id);
            messaging::enqueue(&mut tx, TOPIC, &key, &envelope)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        ids
    }

    /// Publishes `payloads` straight to the test topic under key `k`,
    /// around the outbox: the way to send what no relay would (the same
    /// record twice, a message that is not an envelope).
    pub async fn publish_raw(&self, payloads: impl IntoIterator<Item = Vec<u8>>) {
        let records: Vec<OutgoingRecord> = payloads
            .into_iter()
            .map(|payload| OutgoingRecord {
                topic: self.kafka.name(TOPIC),
                key: "k".to_owned(),
                headers: Default::default(),
                payload,
            })
            .collect();
        let producer = Producer::new(&self.kafka, "raw-producer").unwrap();
        for outcome in producer.send_all(&records).await {
            outcome.unwrap();
        }
    }

    pub fn relay(&self) -> OutboxRelay {
        OutboxRelay::new(
            self.pool.clone(),
            Producer::new(&self.kafka, "test-relay").unwrap(),
            &self.kafka,
        )
    }

    /// Runs the relay until the returned token is cancelled.
    pub fn spawn_relay(&self) -> Running {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(self.relay().run(shutdown.clone()));
        Running {
            shutdown,
            task,
            stats: None,
        }
    }

    pub fn spawn_consumer(&self, handler: Arc<Recorder>) -> Running {
        self.spawn_consumer_on(handler, self.pool.clone())
    }

    /// A consumer whose database is `pool` (one through a cuttable proxy, say).
    pub fn spawn_consumer_on(&self, handler: Arc<Recorder>, pool: PgPool) -> Running {
        let consumer = Consumer::new(CONSUMER, &[TOPIC], handler, pool, &self.kafka);
        let stats = consumer.stats();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(consumer.run(shutdown.clone()));
        Running {
            shutdown,
            task,
            stats: Some(stats),
        }
    }

    pub async fn effect_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effects")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Message ids applied more than once (must always be empty).
    pub async fn applied_twice(&self) -> Vec<Uuid> {
        sqlx::query_scalar("SELECT message_id FROM effects GROUP BY message_id HAVING count(*) > 1")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    /// Applied messages whose sequence number is not above the one applied
    /// before them for the same key (must always be 0).
    pub async fn applied_out_of_order(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM (
                 SELECT seq <= lag(seq) OVER (PARTITION BY key ORDER BY received) AS backwards
                 FROM effects
             ) ordered WHERE backwards",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    pub async fn unpublished(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// [`test_support::eventually`], as a method for the tests' call chains.
    pub async fn eventually<F, Fut>(&self, timeout: Duration, what: &str, condition: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        test_support::eventually(timeout, what, condition).await;
    }
}

pub struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    pub stats: Option<ConsumerStats>,
}

impl Running {
    /// Graceful stop; the task must have ended without error.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Records each message's key and sequence; fails on poison while `cured` is false.
#[derive(Debug, Default)]
pub struct Recorder {
    pub cured: AtomicBool,
}

impl MessageHandler for Recorder {
    fn message_types(&self) -> &[&'static str] {
        &[Recording::MESSAGE_TYPE]
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        message: &'a Incoming,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let envelope = message
                .envelope
                .decode::<Recording>()
                .map_err(|error| HandlerError::Permanent(error.into()))?;
            if envelope.payload.poison && !self.cured.load(Ordering::SeqCst) {
                return Err(HandlerError::Transient(anyhow::anyhow!(
                    "the recorder cannot digest poison yet"
                )));
            }
            sqlx::query("INSERT INTO effects (message_id, key, seq) VALUES ($1, $2, $3)")
                .bind(envelope.message_id)
                .bind(&envelope.payload.key)
                .bind(envelope.payload.seq)
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

pub fn recording(key: &str, seq: i64) -> Recording {
    Recording {
        key: key.to_owned(),
        seq,
        poison: false,
    }
}
