//! The dispatcher driven by hand against a migrated database, with channels
//! that fail on cue: retries, refusals, per-booking order and redelivery.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use contracts::notification::{Channel, NotificationKind};
use futures::future::BoxFuture;
use notification::channel::{DeliveryChannel, DeliveryError, DeliverySink, OutgoingMessage};
use notification::dispatcher::{Dispatcher, DispatcherSettings};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::migrated_database;

/// A channel that answers from a script (then succeeds) and records what it was given.
#[derive(Debug, Default)]
struct ScriptedChannel {
    script: Mutex<VecDeque<Result<(), DeliveryError>>>,
    delivered: Mutex<Vec<Uuid>>,
}

impl ScriptedChannel {
    fn failing(script: Vec<Result<(), DeliveryError>>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script.into()),
            delivered: Mutex::default(),
        })
    }

    fn delivered(&self) -> Vec<Uuid> {
        self.delivered.lock().unwrap().clone()
    }
}

impl DeliveryChannel for ScriptedChannel {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn deliver<'a>(
        &'a self,
        message: &'a OutgoingMessage,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let next = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
            if next.is_ok() {
                self.delivered.lock().unwrap().push(message.notification_id);
            }
            next
        })
    }
}

fn settings(max_attempts: u32) -> DispatcherSettings {
    DispatcherSettings {
        poll_interval_ms: 100,
        batch_size: 10,
        max_attempts,
        initial_backoff_ms: 0,
        max_backoff_ms: 0,
        delivery_timeout_ms: 5_000,
    }
}

fn transient() -> Result<(), DeliveryError> {
    Err(DeliveryError::Transient(anyhow::anyhow!(
        "provider timed out"
    )))
}

async fn record(pool: &PgPool, booking_id: Uuid, kind: NotificationKind) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notifications
             (notification_id, booking_id, kind, channel, recipient, subject, body, caused_by)
         VALUES ($1, $2, $3, 'email', 'jane@example.com', 'subject', 'body', $4)",
    )
    .bind(id)
    .bind(booking_id)
    .bind(kind.as_str())
    .bind(Uuid::now_v7())
    .execute(pool)
    .await
    .unwrap();
    id
}

async fn state(pool: &PgPool, id: Uuid) -> (String, i32, Option<String>) {
    sqlx::query_as(
        "SELECT status, attempts, last_error FROM notifications WHERE notification_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_message_that_fails_transiently_is_retried_and_then_delivered_once() {
    let (_database, pool) = migrated_database().await;
    let channel = ScriptedChannel::failing(vec![transient(), transient()]);
    let dispatcher = Dispatcher::new(pool.clone(), vec![channel.clone()], settings(5));
    let id = record(&pool, Uuid::now_v7(), NotificationKind::Confirmation).await;

    for _ in 0..2 {
        dispatcher.dispatch_batch().await.unwrap();
        let (status, _, error) = state(&pool, id).await;
        assert_eq!(status, "pending");
        assert!(error.unwrap().contains("provider timed out"));
    }
    dispatcher.dispatch_batch().await.unwrap();
    let claimed_again = dispatcher.dispatch_batch().await.unwrap();

    assert_eq!(state(&pool, id).await, ("delivered".to_owned(), 3, None));
    assert_eq!(channel.delivered(), [id]);
    assert_eq!(claimed_again, 0, "a delivered message is not claimed again");
}

#[tokio::test]
async fn a_message_that_runs_out_of_retries_is_marked_failed() {
    let (_database, pool) = migrated_database().await;
    let channel = ScriptedChannel::failing(vec![transient(), transient()]);
    let dispatcher = Dispatcher::new(pool.clone(), vec![channel.clone()], settings(2));
    let id = record(&pool, Uuid::now_v7(), NotificationKind::Confirmation).await;

    dispatcher.dispatch_batch().await.unwrap();
    dispatcher.dispatch_batch().await.unwrap();

    let (status, attempts, _) = state(&pool, id).await;
    assert_eq!((status.as_str(), attempts), ("failed", 2));
    assert_eq!(dispatcher.dispatch_batch().await.unwrap(), 0);
    assert!(channel.delivered().is_empty());
}

#[tokio::test]
async fn a_refused_message_is_failed_at_once_and_the_next_message_of_its_booking_goes_out() {
    let (_database, pool) = migrated_database().await;
    let refusal = Err(DeliveryError::Refused("mailbox does not exist".to_owned()));
    let channel = ScriptedChannel::failing(vec![refusal]);
    let dispatcher = Dispatcher::new(pool.clone(), vec![channel.clone()], settings(5));
    let booking_id = Uuid::now_v7();
    let confirmation = record(&pool, booking_id, NotificationKind::Confirmation).await;
    let cancellation = record(&pool, booking_id, NotificationKind::Cancellation).await;

    dispatcher.dispatch_batch().await.unwrap();
    dispatcher.dispatch_batch().await.unwrap();

    let (status, attempts, error) = state(&pool, confirmation).await;
    assert_eq!((status.as_str(), attempts), ("failed", 1));
    assert!(error.unwrap().contains("mailbox does not exist"));
    assert_eq!(state(&pool, cancellation).await.0, "delivered");
    assert_eq!(channel.delivered(), [cancellation]);
}

#[tokio::test]
async fn a_message_waits_while_an_earlier_message_of_its_booking_and_channel_is_pending() {
    let (_database, pool) = migrated_database().await;
    let channel = ScriptedChannel::failing(vec![transient()]);
    let mut slow_retry = settings(5);
    slow_retry.initial_backoff_ms = 3_600_000;
    slow_retry.max_backoff_ms = 3_600_000;
    let dispatcher = Dispatcher::new(pool.clone(), vec![channel.clone()], slow_retry);
    let booking_id = Uuid::now_v7();
    let confirmation = record(&pool, booking_id, NotificationKind::Confirmation).await;
    let cancellation = record(&pool, booking_id, NotificationKind::Cancellation).await;
    let other_booking = record(&pool, Uuid::now_v7(), NotificationKind::Confirmation).await;

    // The confirmation fails and backs off for an hour; the cancellation
    // behind it must not overtake it, other bookings are not held up.
    dispatcher.dispatch_batch().await.unwrap();
    dispatcher.dispatch_batch().await.unwrap();

    assert_eq!(state(&pool, confirmation).await.0, "pending");
    assert_eq!(state(&pool, cancellation).await.0, "pending");
    assert_eq!(state(&pool, other_booking).await.0, "delivered");
    assert_eq!(channel.delivered(), [other_booking]);
}

#[tokio::test]
async fn a_delivery_repeated_after_a_crash_reaches_the_customer_once() {
    let (_database, pool) = migrated_database().await;
    let sink = Arc::new(DeliverySink::new(Channel::Email, pool.clone()));
    let dispatcher = Dispatcher::new(pool.clone(), vec![sink.clone()], settings(5));
    let booking_id = Uuid::now_v7();
    let id = record(&pool, booking_id, NotificationKind::Confirmation).await;
    // A dispatcher delivered the message, then crashed before marking it.
    let message = OutgoingMessage {
        notification_id: id,
        booking_id,
        kind: NotificationKind::Confirmation,
        channel: Channel::Email,
        recipient: "jane@example.com".to_owned(),
        subject: "subject".to_owned(),
        body: "body".to_owned(),
    };
    sink.deliver(&message).await.unwrap();

    dispatcher.dispatch_batch().await.unwrap();

    assert_eq!(state(&pool, id).await.0, "delivered");
    let deliveries: Vec<(Uuid, i32)> =
        sqlx::query_as("SELECT notification_id, requests FROM sink_deliveries")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        deliveries,
        [(id, 2)],
        "delivered once, the repeat absorbed by its key"
    );
}

#[tokio::test]
async fn the_same_booking_kind_and_channel_cannot_be_recorded_twice() {
    let (_database, pool) = migrated_database().await;
    let booking_id = Uuid::now_v7();
    record(&pool, booking_id, NotificationKind::Confirmation).await;

    let again = sqlx::query(
        "INSERT INTO notifications
             (notification_id, booking_id, kind, channel, recipient, subject, body, caused_by)
         VALUES ($1, $2, 'confirmation', 'email', 'other@example.com', 's', 'b', $3)",
    )
    .bind(Uuid::now_v7())
    .bind(booking_id)
    .bind(Uuid::now_v7())
    .execute(&pool)
    .await;

    let error = again.unwrap_err();
    let constraint = error.as_database_error().and_then(|e| e.constraint());
    assert_eq!(
        constraint,
        Some("notifications_once_per_booking_kind_channel")
    );
}
