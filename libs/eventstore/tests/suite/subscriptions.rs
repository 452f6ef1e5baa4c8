//! Following the Postgres store live: notifications wake, polling covers for lost ones.

use std::time::Duration;

use anyhow::ensure;
use chrono::{DateTime, Utc};
use eventstore::{
    AppendError, AppendNotifications, EventStore, NewEvent, PgEventStore, Position, RecordedEvent,
    Snapshot, StoreError, Subscription, SubscriptionSettings,
};
use futures::{FutureExt, StreamExt};
use sqlx::Connection;
use test_support::wait::listening_backend;
use tokio_util::sync::CancellationToken;

use crate::contract::next_within_deadline;
use crate::helpers::{numbered, pg_store, DEADLINE};

#[tokio::test]
async fn a_notification_wakes_a_subscription_long_before_its_poll_interval() -> anyhow::Result<()> {
    let store = pg_store().await?;
    let cancel = CancellationToken::new();
    let mut subscription = Subscription::start(
        store.clone(),
        Position::START,
        SubscriptionSettings {
            poll_interval: Duration::from_secs(3600),
            ..SubscriptionSettings::default()
        },
        cancel.clone(),
    )
    .await?;

    let waiting = tokio::spawn(async move { next_within_deadline(&mut subscription).await });
    store.append("flight-1", 0, &[numbered(1)]).await?;

    let event = waiting.await??;
    ensure!(event.payload["n"] == 1);
    cancel.cancel();
    Ok(())
}

#[tokio::test]
async fn events_appended_in_a_callers_transaction_wake_subscribers_once_notified(
) -> anyhow::Result<()> {
    let store = pg_store().await?;
    let cancel = CancellationToken::new();
    let mut subscription = Subscription::start(
        store.clone(),
        Position::START,
        SubscriptionSettings {
            poll_interval: Duration::from_secs(3600),
            ..SubscriptionSettings::default()
        },
        cancel.clone(),
    )
    .await?;
    let waiting = tokio::spawn(async move { next_within_deadline(&mut subscription).await });

    let mut conn = store.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    PgEventStore::append_in(&mut tx, "flight-1", 0, &[numbered(1)]).await?;
    tx.commit().await?;
    store.notify_appended().await;

    let event = waiting.await??;
    ensure!(event.payload["n"] == 1);
    cancel.cancel();
    Ok(())
}

#[tokio::test]
async fn a_subscription_without_notifications_still_follows_by_polling() -> anyhow::Result<()> {
    let store = Deaf(pg_store().await?);
    let cancel = CancellationToken::new();
    let mut subscription = Subscription::start(
        store.clone(),
        Position::START,
        SubscriptionSettings {
            poll_interval: Duration::from_millis(50),
            ..SubscriptionSettings::default()
        },
        cancel.clone(),
    )
    .await?;

    let waiting = tokio::spawn(async move { next_within_deadline(&mut subscription).await });
    store.append("flight-1", 0, &[numbered(1)]).await?;

    let event = waiting.await??;
    ensure!(event.payload["n"] == 1);
    cancel.cancel();
    Ok(())
}

/// The Postgres store with every notification lost.
#[derive(Debug, Clone)]
struct Deaf(PgEventStore);

impl EventStore for Deaf {
    async fn append(
        &self,
        stream: &str,
        expected: u64,
        events: &[NewEvent],
    ) -> Result<u64, AppendError> {
        self.0.append(stream, expected, events).await
    }

    async fn read_stream(&self, stream: &str, from: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_stream(stream, from).await
    }

    async fn read_stream_bounded(
        &self,
        stream: &str,
        from: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_stream_bounded(stream, from, max_count).await
    }

    async fn stream_version_at(&self, stream: &str, at: DateTime<Utc>) -> Result<u64, StoreError> {
        self.0.stream_version_at(stream, at).await
    }

    async fn read_all(
        &self,
        after: Position,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_all(after, max_count).await
    }

    async fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>, StoreError> {
        self.0.load_snapshot(stream).await
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.0.save_snapshot(snapshot).await
    }

    async fn append_notifications(&self) -> Result<AppendNotifications, StoreError> {
        use futures::StreamExt;
        Ok(futures::stream::pending().boxed())
    }
}

/// The listener's connection is cut while nobody polls the notifications
/// (a subscriber busy catching up, or backing off through an outage). The
/// store must reconnect it on its own: a reconnect left to the subscriber's
/// next poll would hold a half-opened connection on the server meanwhile,
/// and notifications would stay lost until then.
#[tokio::test]
async fn a_cut_listener_reconnects_without_waiting_for_its_subscriber_to_poll() -> anyhow::Result<()>
{
    let store = pg_store().await?;
    let mut notifications = store.append_notifications().await?;
    let first = listening_backend(store.pool(), None, DEADLINE).await;
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(store.pool())
        .await?;
    ensure!(
        terminated,
        "the listener's backend {first} was not terminated"
    );

    // Nobody polls `notifications` until the listener is back.
    let second = listening_backend(store.pool(), Some(first), DEADLINE).await;
    ensure!(second != first);
    // Two appends, each after the wake-ups so far are drained: the first
    // wake-up may still be the reconnect's own; the second can only be an
    // append's notification through the new connection.
    for version in 0..2 {
        while let Some(Some(())) = notifications.next().now_or_never() {}
        store
            .append("flight-1", version, &[numbered(version + 1)])
            .await?;
        let woken = tokio::time::timeout(DEADLINE, notifications.next()).await?;
        ensure!(woken.is_some(), "the notifications ended");
    }
    Ok(())
}
