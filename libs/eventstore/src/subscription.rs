//! Subscriptions: catch up from a checkpoint, then follow live.

use std::collections::VecDeque;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::{AppendNotifications, EventStore, Position, RecordedEvent, StoreError};

/// How a subscription reads.
#[derive(Debug, Clone)]
pub struct SubscriptionSettings {
    /// Events fetched per read.
    pub batch_size: usize,
    /// The longest a subscription waits without a notification before
    /// reading again: bounds the delay when a notification is lost, or when an
    /// event is withheld behind a transaction that commits without appending.
    pub poll_interval: Duration,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Every event after a checkpoint, in global order, then every event
/// appended later, each exactly once, until cancelled.
///
/// The subscriber owns its checkpoint: persist [`RecordedEvent::position`]
/// after handling an event and pass it to [`start`](Self::start) next time.
/// With the Postgres store a subscription holds one pooled connection for
/// its notifications.
#[derive(Debug)]
pub struct Subscription<S> {
    store: S,
    position: Position,
    settings: SubscriptionSettings,
    buffer: VecDeque<RecordedEvent>,
    notifications: Notifications,
    idle: IdleBackoff,
    cancel: CancellationToken,
}

/// The notification stream, which has no `Debug` of its own.
struct Notifications(AppendNotifications);

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppendNotifications")
    }
}

impl<S: EventStore> Subscription<S> {
    /// Starts listening before the first read, so an append that commits
    /// during catch-up still wakes the subscription.
    #[tracing::instrument(skip_all, fields(after = ?after), err)]
    pub async fn start(
        store: S,
        after: Position,
        settings: SubscriptionSettings,
        cancel: CancellationToken,
    ) -> Result<Self, StoreError> {
        let notifications = Notifications(store.append_notifications().await?);
        let idle = IdleBackoff::new(settings.poll_interval);
        Ok(Self {
            store,
            position: after,
            settings,
            buffer: VecDeque::new(),
            notifications,
            idle,
            cancel,
        })
    }

    /// The next event, waiting for one to be appended if need be; `None` once
    /// cancelled. Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Result<Option<RecordedEvent>, StoreError> {
        loop {
            if self.cancel.is_cancelled() {
                return Ok(None);
            }
            if let Some(event) = self.buffer.pop_front() {
                self.position = event.position;
                return Ok(Some(event));
            }
            let batch = self
                .store
                .read_all(self.position, self.settings.batch_size)
                .await?;
            if !batch.is_empty() {
                self.idle.reset();
                self.buffer.extend(batch);
                continue;
            }
            self.wait().await;
        }
    }

    /// The position of the last event handed out.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Until a notification, the next look, or cancellation.
    async fn wait(&mut self) {
        tokio::select! {
            () = self.cancel.cancelled() => {}
            () = self.idle.sleep() => {}
            notification = self.notifications.0.next() => {
                self.idle.reset();
                if notification.is_none() {
                    // The source is gone; keep following by polling alone.
                    self.notifications = Notifications(futures::stream::pending().boxed());
                }
            }
        }
        // One read covers every append notified so far.
        while let Some(Some(())) = self.notifications.0.next().now_or_never() {}
    }
}

/// How long an idle reader waits before looking again.
///
/// A notification (or a non-empty read) means events are arriving, but the
/// one notified may still be withheld behind an older open transaction,
/// possibly in another database, whose end notifies nobody. So after activity
/// the reader looks again soon, doubling the pause up to the poll interval.
#[derive(Debug)]
pub(crate) struct IdleBackoff {
    next: Duration,
    max: Duration,
}

impl IdleBackoff {
    const FIRST: Duration = Duration::from_millis(5);

    pub(crate) fn new(poll_interval: Duration) -> Self {
        Self {
            next: poll_interval,
            max: poll_interval,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST.min(self.max);
    }

    pub(crate) async fn sleep(&mut self) {
        let pause = self.next;
        self.next = (pause * 2).min(self.max);
        tokio::time::sleep(pause).await;
    }
}
