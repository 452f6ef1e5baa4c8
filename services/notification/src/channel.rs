//! Delivery channels: where a recorded message goes after commit.
//!
//! [`DeliveryChannel`] is the seam for a real provider (an SMTP relay, an SMS
//! gateway). The dispatcher calls it with a message whose `notification_id`
//! is stable across retries: an adapter passes it to the provider as the
//! idempotency key (a `Message-ID` header, an SMS API's idempotency field),
//! so a delivery repeated after a crash reaches the customer once.
//!
//! The only implementation shipped is [`DeliverySink`], which stands in for a
//! provider: it records the delivery in `sink_deliveries` (deduplicated by the
//! key, as a provider would) and writes a structured log line with the
//! recipient masked.

use anyhow::Context;
use contracts::notification::{Channel, NotificationKind};
use futures::future::BoxFuture;
use sqlx::PgPool;
use uuid::Uuid;

use crate::contact::mask;

/// A message on its way to a channel.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// The provider's idempotency key: the same on every attempt.
    pub notification_id: Uuid,
    pub booking_id: Uuid,
    pub kind: NotificationKind,
    pub channel: Channel,
    /// The full address; mask it before logging.
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The provider may accept it later (timeout, throttling, outage): retry with backoff.
    #[error("delivery failed, will retry: {0:#}")]
    Transient(#[from] anyhow::Error),
    /// The provider refused it for good (unknown mailbox, unreachable number).
    #[error("delivery refused: {0}")]
    Refused(String),
}

/// Hands messages of one channel to whoever delivers them.
pub trait DeliveryChannel: Send + Sync + std::fmt::Debug + 'static {
    fn channel(&self) -> Channel;

    /// Delivers `message`. Must be idempotent by `message.notification_id`: the
    /// dispatcher delivers at least once, and again after a crash between
    /// delivering and recording it.
    fn deliver<'a>(
        &'a self,
        message: &'a OutgoingMessage,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// The provider stand-in: a delivery is a row in `sink_deliveries` plus a log line.
#[derive(Debug, Clone)]
pub struct DeliverySink {
    channel: Channel,
    pool: PgPool,
}

impl DeliverySink {
    pub fn new(channel: Channel, pool: PgPool) -> Self {
        Self { channel, pool }
    }
}

impl DeliveryChannel for DeliverySink {
    fn channel(&self) -> Channel {
        self.channel
    }

    fn deliver<'a>(
        &'a self,
        message: &'a OutgoingMessage,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            // Its own connection, not the dispatcher's transaction: a provider
            // is outside our database, and the sink behaves like one.
            let requests: i32 = sqlx::query_scalar(
                "INSERT INTO sink_deliveries (notification_id, channel, recipient)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (notification_id) DO UPDATE
                     SET requests = sink_deliveries.requests + 1,
                         last_requested_at = clock_timestamp()
                 RETURNING requests",
            )
            .bind(message.notification_id)
            .bind(message.channel.as_str())
            .bind(&message.recipient)
            .fetch_one(&self.pool)
            .await
            .context("record the delivery in the sink")?;
            let recipient = mask(message.channel, &message.recipient);
            if requests == 1 {
                tracing::info!(
                    notification_id = %message.notification_id,
                    booking_id = %message.booking_id,
                    kind = message.kind.as_str(),
                    channel = message.channel.as_str(),
                    recipient,
                    subject = message.subject,
                    "message delivered"
                );
            } else {
                tracing::info!(
                    notification_id = %message.notification_id,
                    channel = message.channel.as_str(),
                    recipient,
                    requests,
                    "repeated delivery absorbed by its idempotency key"
                );
            }
            Ok(())
        })
    }
}
