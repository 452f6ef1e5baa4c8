//! The transactional outbox and its relay.
//!
//! A service writes its messages with [`enqueue`] in the same transaction as
//! the state change that caused them: both commit or neither does. The
//! [`OutboxRelay`] then publishes committed rows and marks them published
//! once the broker has acknowledged them. A crash between the
//! acknowledgement and the mark publishes the row again on restart: the
//! consumers' inbox absorbs that duplicate, which is how "at least once"
//! becomes "effectively once".
//!
//! Ordering: rows are claimed in id order with `FOR UPDATE SKIP LOCKED`, so
//! several relays can run at once; a relay skips every row whose key has an
//! earlier unpublished row claimed by another relay, so a key's messages reach
//! the broker in id order, and the idempotent producer keeps that order within
//! the partition. If a delivery fails, the row stays unpublished and is sent
//! again on the next pass, which can put it after a later message of the same
//! key that did get through; consumers that care about order (sagas, event
//! projections) check attempt numbers or versions rather than trusting
//! arrival order blindly.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::settings::RelaySettings;
use anyhow::Context;
use chrono::{DateTime, Utc};
use contracts::{Envelope, Message};
use service_kit::wakeup::Wakeup;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::producer::{OutgoingRecord, Producer};
use crate::trace_context;

/// Wakes this process's relays when a message is written to the outbox.
///
/// Not a `NOTIFY` in the writing transaction: that would serialize every
/// business commit on Postgres's notify lock ([`service_kit::wakeup`]).
/// [`enqueue`] wakes the relay as it writes (the relay rechecks while the
/// transaction commits); the consumer runner wakes it again after its commit.
pub static OUTBOX_WRITTEN: Wakeup = Wakeup::new();

/// Writes `envelope` to the outbox inside the caller's transaction; it is
/// published to `topic` with `key` once that transaction commits.
pub async fn enqueue<P: Message>(
    conn: &mut PgConnection,
    topic: &str,
    key: &str,
    envelope: &Envelope<P>,
) -> anyhow::Result<()> {
    let payload = serde_json::to_vec(&envelope.to_json().context("encode the payload")?)
        .context("encode the envelope")?;
    let mut headers = trace_context::current_headers();
    headers.insert("message_type".to_owned(), envelope.message_type.clone());
    headers.insert("message_id".to_owned(), envelope.message_id.to_string());
    enqueue_raw(
        conn,
        envelope.message_id,
        topic,
        key,
        &envelope.message_type,
        &headers,
        &payload,
    )
    .await
}

/// Writes a new domain event to the outbox inside the caller's transaction:
/// a fresh envelope correlated with `correlation_id` (the booking the event
/// belongs to), published to `topic` under `key`. An event caused by an
/// incoming message carries that message's causation instead: build it with
/// `Envelope::caused_by` and write it with [`enqueue`].
pub async fn enqueue_event<M: Message>(
    conn: &mut PgConnection,
    topic: &str,
    key: &str,
    correlation_id: Uuid,
    event: M,
) -> anyhow::Result<()> {
    let envelope = Envelope::new(event, correlation_id);
    enqueue(conn, topic, key, &envelope)
        .await
        .with_context(|| format!("publish {} to {topic}", M::MESSAGE_TYPE))
}

/// Writes already-encoded bytes to the outbox (dead letters keep the bytes they received).
pub(crate) async fn enqueue_raw(
    conn: &mut PgConnection,
    message_id: Uuid,
    topic: &str,
    key: &str,
    message_type: &str,
    headers: &std::collections::HashMap<String, String>,
    payload: &[u8],
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (message_id, topic, partition_key, message_type, headers, payload)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(message_id)
    .bind(topic)
    .bind(key)
    .bind(message_type)
    .bind(Json(headers))
    .bind(payload)
    .execute(conn)
    .await
    .with_context(|| format!("write a {message_type} message to the outbox"))?;
    OUTBOX_WRITTEN.wake();
    Ok(())
}

/// Publishes the outbox of one schema.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    pool: PgPool,
    producer: Producer,
    topic_prefix: String,
    settings: RelaySettings,
}

struct ClaimedRow {
    id: i64,
    topic: String,
    key: String,
    headers: Json<std::collections::HashMap<String, String>>,
    payload: Vec<u8>,
    created_at: DateTime<Utc>,
}

impl OutboxRelay {
    pub fn new(pool: PgPool, producer: Producer, kafka: &crate::settings::KafkaSettings) -> Self {
        Self {
            pool,
            producer,
            topic_prefix: kafka.topic_prefix.clone(),
            settings: kafka.relay.clone(),
        }
    }

    /// Runs until `shutdown`: publishes whenever a commit notifies, polls as
    /// a fallback, backs off while the broker or the database is unreachable.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&self.pool)
            .await
            .context("read the outbox schema")?;
        let mut waiter = OUTBOX_WRITTEN.waiter();
        let poll_interval = Duration::from_millis(self.settings.poll_interval_ms);
        let maintenance_interval = Duration::from_secs(self.settings.maintenance_interval_secs);
        let mut last_maintenance = Instant::now() - maintenance_interval;
        let mut backoff = Duration::from_millis(100);
        tracing::info!(schema, "outbox relay started");

        while !shutdown.is_cancelled() {
            if last_maintenance.elapsed() >= maintenance_interval {
                if let Err(error) = self.maintain().await {
                    tracing::warn!(error = format!("{error:#}"), "outbox maintenance failed");
                }
                last_maintenance = Instant::now();
            }
            match self.relay_batch().await {
                Ok(count) if count as i64 >= self.settings.batch_size => continue,
                Ok(count) => {
                    backoff = Duration::from_millis(100);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = waiter.wait(poll_interval, count > 0) => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        retry_in_ms = backoff.as_millis() as u64,
                        "outbox relay pass failed"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::info!(schema, "outbox relay stopped");
        Ok(())
    }

    /// Claims one batch, publishes it and marks what the broker acknowledged.
    /// Returns how many rows were claimed.
    pub async fn relay_batch(&self) -> anyhow::Result<usize> {
        self.relay(true).await
    }

    /// A relay that crashes between the broker's acknowledgement and the
    /// mark: publishes one batch and leaves it unpublished. For tests of the
    /// at-least-once path only.
    #[doc(hidden)]
    pub async fn publish_without_marking(&self) -> anyhow::Result<usize> {
        self.relay(false).await
    }

    async fn relay(&self, mark: bool) -> anyhow::Result<usize> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("begin the relay transaction")?;
        let rows = sqlx::query(
            "WITH claimed AS (
                 SELECT id, partition_key FROM outbox
                 WHERE published_at IS NULL
                 ORDER BY id
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED
             )
             SELECT o.id, o.topic, o.partition_key, o.headers, o.payload, o.created_at
             FROM outbox o JOIN claimed c ON c.id = o.id
             WHERE NOT EXISTS (
                 SELECT 1 FROM outbox earlier
                 WHERE earlier.partition_key = c.partition_key
                   AND earlier.published_at IS NULL
                   AND earlier.id < c.id
                   AND earlier.id NOT IN (SELECT id FROM claimed)
             )
             ORDER BY o.id",
        )
        .bind(self.settings.batch_size)
        .fetch_all(&mut *tx)
        .await
        .context("claim outbox rows")?;
        if rows.is_empty() {
            return Ok(0);
        }
        let claimed = rows
            .iter()
            .map(|row| {
                Ok(ClaimedRow {
                    id: row.try_get("id")?,
                    topic: row.try_get("topic")?,
                    key: row.try_get("partition_key")?,
                    headers: row.try_get("headers")?,
                    payload: row.try_get("payload")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .context("read claimed outbox rows")?;

        let records: Vec<OutgoingRecord> = claimed
            .iter()
            .map(|row| OutgoingRecord {
                topic: format!("{}{}", self.topic_prefix, row.topic),
                key: row.key.clone(),
                headers: row.headers.0.clone(),
                payload: row.payload.clone(),
            })
            .collect();
        let started = Instant::now();
        let outcomes = self.producer.send_all(&records).await;
        metrics::histogram!("outbox_publish_duration_seconds")
            .record(started.elapsed().as_secs_f64());

        let mut published = Vec::with_capacity(claimed.len());
        let mut failed_keys = HashSet::new();
        let now = Utc::now();
        for (row, outcome) in claimed.iter().zip(outcomes) {
            match outcome {
                Ok(_) => {
                    published.push(row.id);
                    let lag = (now - row.created_at).to_std().unwrap_or_default();
                    metrics::histogram!("outbox_publish_lag_seconds").record(lag.as_secs_f64());
                }
                Err(error) => {
                    if failed_keys.insert(row.key.clone()) {
                        tracing::warn!(
                            outbox_id = row.id,
                            topic = row.topic,
                            error = format!("{error:#}"),
                            "publish failed; the row stays for the next pass"
                        );
                    }
                }
            }
        }
        metrics::counter!("outbox_published_total").increment(published.len() as u64);
        if !failed_keys.is_empty() {
            metrics::counter!("outbox_publish_failures_total")
                .increment((claimed.len() - published.len()) as u64);
        }
        if mark && !published.is_empty() {
            sqlx::query("UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY($1)")
                .bind(&published)
                .execute(&mut *tx)
                .await
                .context("mark outbox rows published")?;
        }
        tx.commit().await.context("commit the relay transaction")?;
        if published.len() < claimed.len() {
            anyhow::bail!(
                "{} of {} messages were not acknowledged by the broker",
                claimed.len() - published.len(),
                claimed.len()
            );
        }
        Ok(claimed.len())
    }

    /// Prunes old published rows and refreshes the backlog gauges.
    async fn maintain(&self) -> anyhow::Result<()> {
        let pruned = sqlx::query(
            "DELETE FROM outbox WHERE id IN (
                 SELECT id FROM outbox
                 WHERE published_at < now() - make_interval(secs => $1)
                 LIMIT 10000
             )",
        )
        .bind(self.settings.retention_secs as f64)
        .execute(&self.pool)
        .await
        .context("prune published outbox rows")?
        .rows_affected();
        if pruned > 0 {
            tracing::debug!(pruned, "pruned published outbox rows");
        }
        let (backlog, oldest_age): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM now() - min(created_at))::float8
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .context("measure the outbox backlog")?;
        metrics::gauge!("outbox_backlog").set(backlog as f64);
        metrics::gauge!("outbox_oldest_unpublished_age_seconds").set(oldest_age.unwrap_or(0.0));
        Ok(())
    }
}
