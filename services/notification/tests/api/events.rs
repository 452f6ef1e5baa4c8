//! notification's public events on `notification.events`: a message's
//! delivery, or its failure, published once with the row that records it,
//! naming the channel and kind but never the recipient.

use std::sync::Arc;

use contracts::notification::{
    Channel, NotificationDelivered, NotificationFailed, NotificationKind,
};
use contracts::topics::NOTIFICATION_EVENTS;
use contracts::{Envelope, Message};
use futures::future::BoxFuture;
use notification::channel::{DeliveryChannel, DeliveryError, DeliverySink, OutgoingMessage};
use notification::dispatcher::{Dispatcher, DispatcherSettings};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::migrated_database;

const RECIPIENT: &str = "jane.doe@example.com";

fn settings() -> DispatcherSettings {
    DispatcherSettings {
        poll_interval_ms: 100,
        batch_size: 10,
        max_attempts: 3,
        initial_backoff_ms: 0,
        max_backoff_ms: 0,
        delivery_timeout_ms: 5_000,
    }
}

async fn record(pool: &PgPool, booking_id: Uuid) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notifications
             (notification_id, booking_id, kind, channel, recipient, subject, body, caused_by,
              customer_id)
         VALUES ($1, $2, 'confirmation', 'email', $3, 'subject', 'body', $4, 'cust-9')",
    )
    .bind(id)
    .bind(booking_id)
    .bind(RECIPIENT)
    .bind(Uuid::now_v7())
    .execute(pool)
    .await
    .unwrap();
    id
}

/// The raw outbox payloads of `M` for `booking_id`, and their envelopes.
async fn published<M: Message>(pool: &PgPool, booking_id: Uuid) -> Vec<(String, Envelope<M>)> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox
         WHERE topic = $1 AND partition_key = $2 AND message_type = $3 ORDER BY id",
    )
    .bind(NOTIFICATION_EVENTS)
    .bind(booking_id.to_string())
    .bind(M::MESSAGE_TYPE)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|payload| {
            let text = String::from_utf8(payload).unwrap();
            let envelope: Envelope = serde_json::from_str(&text).unwrap();
            (text, envelope.decode::<M>().unwrap())
        })
        .collect()
}

/// A provider that refuses everything.
#[derive(Debug)]
struct RefusingChannel;

impl DeliveryChannel for RefusingChannel {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn deliver<'a>(&'a self, _: &'a OutgoingMessage) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async { Err(DeliveryError::Refused("mailbox does not exist".to_owned())) })
    }
}

#[tokio::test]
async fn a_delivered_message_is_published_once_with_its_channel_and_kind_but_not_its_recipient() {
    let (_database, pool) = migrated_database().await;
    let sink = Arc::new(DeliverySink::new(Channel::Email, pool.clone()));
    let dispatcher = Dispatcher::new(pool.clone(), vec![sink], settings());
    let booking_id = Uuid::now_v7();
    let id = record(&pool, booking_id).await;

    dispatcher.dispatch_batch().await.unwrap();
    dispatcher.dispatch_batch().await.unwrap();

    let events = published::<NotificationDelivered>(&pool, booking_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (raw, event) = &events[0];
    assert_eq!(event.correlation_id, booking_id);
    assert_eq!(event.payload.notification_id, id);
    assert_eq!(event.payload.booking_id, booking_id);
    assert_eq!(event.payload.customer_id.as_deref(), Some("cust-9"));
    assert_eq!(event.payload.kind, NotificationKind::Confirmation);
    assert_eq!(event.payload.channel, Channel::Email);
    assert_eq!(event.payload.attempts, 1);
    assert!(!raw.contains("jane"), "the recipient leaked: {raw}");
    assert!(published::<NotificationFailed>(&pool, booking_id)
        .await
        .is_empty());
}

#[tokio::test]
async fn a_message_that_can_never_be_delivered_is_published_as_failed_once() {
    let (_database, pool) = migrated_database().await;
    let dispatcher = Dispatcher::new(pool.clone(), vec![Arc::new(RefusingChannel)], settings());
    let booking_id = Uuid::now_v7();
    let id = record(&pool, booking_id).await;

    dispatcher.dispatch_batch().await.unwrap();
    dispatcher.dispatch_batch().await.unwrap();

    let events = published::<NotificationFailed>(&pool, booking_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (raw, event) = &events[0];
    assert_eq!(event.payload.notification_id, id);
    assert_eq!(event.payload.attempts, 1);
    assert!(!raw.contains("jane"), "the recipient leaked: {raw}");
    assert!(published::<NotificationDelivered>(&pool, booking_id)
        .await
        .is_empty());
}
