//! The dispatcher: delivers recorded messages after their transaction commits.
//!
//! Delivery to the outside world cannot be part of a database transaction, so
//! it follows the outbox's shape: the consumer records a `pending` row in its
//! transaction; this worker claims pending rows with a short lease
//! (`FOR UPDATE SKIP LOCKED` inside the claiming statement, so several
//! instances share the work), hands each to its channel with
//! `notification_id` as the provider's idempotency key, and marks it
//! `delivered`. No transaction is open while a provider works. A crash
//! between delivering and marking delivers again with the same key once the
//! lease runs out, which the provider (here, the sink) absorbs: at-least-once
//! delivery, deduplicated by key.
//!
//! Order: a row is not claimed while an earlier row (by `seq`) of the same
//! booking and channel is still pending, so a cancellation never reaches a
//! customer before the confirmation it retracts. Failures back off
//! exponentially; a refusal, or the retry budget running out, marks the row
//! `failed` (visible in `GET /notifications`, counted in metrics).
//!
//! Marking a row delivered or failed and publishing the public event that
//! says so ([`crate::events`]) commit together, and only the transaction
//! that moved the row out of `pending` publishes: one event per message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use contracts::notification::{Channel, NotificationKind};
use serde::Deserialize;
use service_kit::wakeup::Wakeup;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::channel::{DeliveryChannel, DeliveryError, OutgoingMessage};
use crate::commands::{parse_channel, parse_kind};
use crate::contact::mask;
use crate::events;

/// Wakes this process's dispatcher when a notification is recorded (not a
/// `NOTIFY` in the recording transaction: see [`service_kit::wakeup`]).
pub static NOTIFICATIONS_RECORDED: Wakeup = Wakeup::new();

/// `[dispatcher]` (`NOTIFICATION__DISPATCHER__…`).
#[derive(Debug, Clone, Deserialize)]
pub struct DispatcherSettings {
    /// How often pending rows are looked for when no notification wakes the dispatcher.
    pub poll_interval_ms: u64,
    /// Rows claimed per transaction.
    pub batch_size: u32,
    /// Deliveries tried before a message is marked failed.
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// The longest one delivery may take before it counts as a transient failure.
    pub delivery_timeout_ms: u64,
}

#[derive(Debug)]
pub struct Dispatcher {
    pool: PgPool,
    channels: HashMap<Channel, Arc<dyn DeliveryChannel>>,
    settings: DispatcherSettings,
}

#[derive(Debug, sqlx::FromRow)]
struct PendingRow {
    notification_id: Uuid,
    seq: i64,
    booking_id: Uuid,
    kind: String,
    channel: String,
    recipient: String,
    subject: String,
    body: String,
    attempts: i32,
    customer_id: Option<String>,
}

/// How long past the delivery timeout a claim stays leased.
const LEASE_MARGIN_SECS: f64 = 30.0;

/// What happened to one claimed row, for the metrics.
enum Outcome {
    Delivered(NotificationKind, Channel),
    Retry(Channel),
    Failed(Channel),
}

impl Dispatcher {
    pub fn new(
        pool: PgPool,
        channels: Vec<Arc<dyn DeliveryChannel>>,
        settings: DispatcherSettings,
    ) -> Self {
        let channels = channels
            .into_iter()
            .map(|channel| (channel.channel(), channel))
            .collect();
        Self {
            pool,
            channels,
            settings,
        }
    }

    /// Delivers until `shutdown`; a batch in flight is finished first.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let poll = Duration::from_millis(self.settings.poll_interval_ms);
        let mut waiter = NOTIFICATIONS_RECORDED.waiter();
        tracing::info!(channels = ?self.channels.keys().collect::<Vec<_>>(), "dispatcher started");
        let mut found_work = false;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = waiter.wait(poll, found_work) => {}
            }
            found_work = self.drain().await;
        }
        tracing::info!("dispatcher stopped");
        Ok(())
    }

    /// Batches until a short one; a database failure waits for the next wake-up.
    /// Returns whether it claimed anything.
    async fn drain(&self) -> bool {
        let mut claimed_any = false;
        loop {
            match self.dispatch_batch().await {
                Ok(claimed) if claimed >= self.settings.batch_size as usize => claimed_any = true,
                Ok(claimed) => return claimed_any || claimed > 0,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "dispatch failed; will retry");
                    return claimed_any;
                }
            }
        }
    }

    /// Claims, delivers and marks one batch; returns how many rows it claimed.
    ///
    /// The claim is a lease, not a held lock: it pushes `next_attempt_at` past
    /// the delivery timeout and commits at once, so no transaction or
    /// connection is held while a provider takes its time. A dispatcher that
    /// dies mid-delivery leaves rows that become claimable again when the lease
    /// runs out, and they are delivered again under the same key.
    pub async fn dispatch_batch(&self) -> anyhow::Result<usize> {
        let lease_secs = self.settings.delivery_timeout_ms as f64 / 1000.0 + LEASE_MARGIN_SECS;
        let mut rows: Vec<PendingRow> = sqlx::query_as(
            "UPDATE notifications n
             SET next_attempt_at = clock_timestamp() + make_interval(secs => $2)
             WHERE n.notification_id IN (
                 SELECT c.notification_id FROM notifications c
                 WHERE c.status = 'pending' AND c.next_attempt_at <= clock_timestamp()
                   AND NOT EXISTS (
                       SELECT 1 FROM notifications earlier
                       WHERE earlier.booking_id = c.booking_id AND earlier.channel = c.channel
                         AND earlier.status = 'pending' AND earlier.seq < c.seq)
                 ORDER BY c.seq
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
             RETURNING n.notification_id, n.seq, n.booking_id, n.kind, n.channel, n.recipient,
                       n.subject, n.body, n.attempts, n.customer_id",
        )
        .bind(i64::from(self.settings.batch_size))
        .bind(lease_secs)
        .fetch_all(&self.pool)
        .await
        .context("claim pending notifications")?;
        rows.sort_by_key(|row| row.seq);
        let claimed = rows.len();
        for row in rows {
            match self.deliver_one(row).await? {
                Outcome::Delivered(kind, channel) => metrics::counter!(
                    "notifications_sent_total",
                    "kind" => kind.as_str(),
                    "channel" => channel.as_str()
                )
                .increment(1),
                Outcome::Retry(channel) => metrics::counter!(
                    "notification_delivery_failures_total",
                    "channel" => channel.as_str(),
                    "outcome" => "retry"
                )
                .increment(1),
                Outcome::Failed(channel) => metrics::counter!(
                    "notification_delivery_failures_total",
                    "channel" => channel.as_str(),
                    "outcome" => "failed"
                )
                .increment(1),
            }
        }
        Ok(claimed)
    }

    async fn deliver_one(&self, row: PendingRow) -> anyhow::Result<Outcome> {
        let channel = parse_channel(&row.channel)?;
        let kind = parse_kind(&row.kind)?;
        let attempts = row.attempts.saturating_add(1);
        let message = OutgoingMessage {
            notification_id: row.notification_id,
            booking_id: row.booking_id,
            kind,
            channel,
            recipient: row.recipient,
            subject: row.subject,
            body: row.body,
        };
        let delivered = match self.channels.get(&channel) {
            None => Err(DeliveryError::Refused(format!(
                "no delivery channel configured for {}",
                channel.as_str()
            ))),
            Some(adapter) => {
                let timeout = Duration::from_millis(self.settings.delivery_timeout_ms);
                match tokio::time::timeout(timeout, adapter.deliver(&message)).await {
                    Ok(result) => result,
                    Err(_) => Err(DeliveryError::Transient(anyhow::anyhow!(
                        "delivery timed out after {timeout:?}"
                    ))),
                }
            }
        };
        let recipient = mask(channel, &message.recipient);
        let settled = events::Settled {
            notification_id: message.notification_id,
            booking_id: message.booking_id,
            customer_id: row.customer_id,
            kind,
            channel,
            attempts: u32::try_from(attempts).context("delivery attempts out of range")?,
        };
        match delivered {
            Ok(()) => {
                let mut tx = self.pool.begin().await.context("begin marking delivered")?;
                let delivered_at: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "UPDATE notifications
                     SET status = 'delivered', delivered_at = clock_timestamp(),
                         attempts = $2, last_error = NULL
                     WHERE notification_id = $1 AND status = 'pending'
                     RETURNING delivered_at",
                )
                .bind(message.notification_id)
                .bind(attempts)
                .fetch_optional(&mut *tx)
                .await
                .context("mark a notification delivered")?;
                if let Some(delivered_at) = delivered_at {
                    events::publish_delivered(&mut tx, settled, delivered_at).await?;
                }
                tx.commit().await.context("commit a delivery")?;
                Ok(Outcome::Delivered(kind, channel))
            }
            Err(DeliveryError::Transient(error))
                if u32::try_from(attempts).unwrap_or(u32::MAX) < self.settings.max_attempts =>
            {
                let retry_at = Utc::now() + self.backoff(attempts);
                let error = format!("{error:#}");
                tracing::warn!(
                    notification_id = %message.notification_id,
                    channel = channel.as_str(),
                    recipient,
                    attempts,
                    %retry_at,
                    error,
                    "delivery failed; will retry"
                );
                mark_retry(
                    &self.pool,
                    message.notification_id,
                    attempts,
                    &error,
                    retry_at,
                )
                .await?;
                Ok(Outcome::Retry(channel))
            }
            Err(error) => {
                tracing::error!(
                    notification_id = %message.notification_id,
                    booking_id = %message.booking_id,
                    channel = channel.as_str(),
                    recipient,
                    attempts,
                    error = %error,
                    "delivery failed for good; the message needs an operator"
                );
                let mut tx = self.pool.begin().await.context("begin marking failed")?;
                let failed_at: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "UPDATE notifications SET status = 'failed', attempts = $2, last_error = $3
                     WHERE notification_id = $1 AND status = 'pending'
                     RETURNING clock_timestamp()",
                )
                .bind(message.notification_id)
                .bind(attempts)
                .bind(error.to_string())
                .fetch_optional(&mut *tx)
                .await
                .context("mark a notification failed")?;
                if let Some(failed_at) = failed_at {
                    events::publish_failed(&mut tx, settled, failed_at).await?;
                }
                tx.commit().await.context("commit a delivery failure")?;
                Ok(Outcome::Failed(channel))
            }
        }
    }

    fn backoff(&self, attempts: i32) -> chrono::TimeDelta {
        let exponent = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        let millis = self
            .settings
            .initial_backoff_ms
            .saturating_mul(1u64 << exponent)
            .min(self.settings.max_backoff_ms);
        chrono::TimeDelta::milliseconds(i64::try_from(millis).unwrap_or(i64::MAX))
    }
}

async fn mark_retry(
    pool: &PgPool,
    notification_id: Uuid,
    attempts: i32,
    error: &str,
    retry_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE notifications SET attempts = $2, last_error = $3, next_attempt_at = $4
         WHERE notification_id = $1 AND status = 'pending'",
    )
    .bind(notification_id)
    .bind(attempts)
    .bind(error)
    .bind(retry_at)
    .execute(pool)
    .await
    .context("schedule a notification's retry")?;
    Ok(())
}
