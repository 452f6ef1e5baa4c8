//! notification's public events on `notification.events`, keyed by booking
//! id: that a message reached its channel, or never will. They name the
//! channel and the kind of message, never the address or number it went to.

use chrono::{DateTime, Utc};
use contracts::notification::{
    Channel, NotificationDelivered, NotificationFailed, NotificationKind,
};
use contracts::{topics, Message};
use sqlx::PgConnection;
use uuid::Uuid;

/// A message whose delivery is settled, one way or the other.
#[derive(Debug, Clone)]
pub struct Settled {
    pub notification_id: Uuid,
    pub booking_id: Uuid,
    pub customer_id: Option<String>,
    pub kind: NotificationKind,
    pub channel: Channel,
    pub attempts: u32,
}

/// Writes `NotificationDelivered` to the outbox in `conn`'s transaction.
pub async fn publish_delivered(
    conn: &mut PgConnection,
    settled: Settled,
    delivered_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let booking_id = settled.booking_id;
    let event = NotificationDelivered {
        notification_id: settled.notification_id,
        booking_id,
        customer_id: settled.customer_id,
        kind: settled.kind,
        channel: settled.channel,
        attempts: settled.attempts,
        delivered_at,
    };
    enqueue(conn, booking_id, event).await
}

/// Writes `NotificationFailed` to the outbox in `conn`'s transaction.
pub async fn publish_failed(
    conn: &mut PgConnection,
    settled: Settled,
    failed_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let booking_id = settled.booking_id;
    let event = NotificationFailed {
        notification_id: settled.notification_id,
        booking_id,
        customer_id: settled.customer_id,
        kind: settled.kind,
        channel: settled.channel,
        attempts: settled.attempts,
        failed_at,
    };
    enqueue(conn, booking_id, event).await
}

async fn enqueue<M: Message>(
    conn: &mut PgConnection,
    booking_id: Uuid,
    event: M,
) -> anyhow::Result<()> {
    let key = booking_id.to_string();
    messaging::enqueue_event(conn, topics::NOTIFICATION_EVENTS, &key, booking_id, event).await
}
