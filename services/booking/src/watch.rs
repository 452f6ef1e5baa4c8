//! `Prefer: wait=N`: waiting for a booking to settle without polling the
//! database in a loop. Every status change is announced with `pg_notify`
//! in the transaction that makes it (so only committed changes are heard,
//! whichever booking instance applied them); one listener per instance fans
//! the announcements out to the requests waiting on them.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::{self, BookingStatus};
use crate::steps::STATUS_CHANNEL;

/// Announcements can be lost while the listener reconnects; a waiter
/// re-reads at least this often so it never waits on a lost one.
const RECHECK_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct BookingWatch {
    changes: broadcast::Sender<Uuid>,
}

impl Default for BookingWatch {
    fn default() -> Self {
        let (changes, _) = broadcast::channel(4096);
        Self { changes }
    }
}

impl BookingWatch {
    /// The listener: forwards announcements until `shutdown`, reconnecting as needed.
    pub async fn listen(self, pool: PgPool, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            let mut listener = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                listener = connect(&pool) => match listener {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "booking status listener could not connect; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return Ok(()),
                            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                },
            };
            loop {
                let notification = tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    notification = listener.try_recv() => notification,
                };
                match notification {
                    Ok(Some(notification)) => {
                        if let Ok(booking_id) = notification.payload().parse::<Uuid>() {
                            // No receiver is fine: nobody is waiting.
                            let _ = self.changes.send(booking_id);
                        }
                    }
                    // The connection dropped; the next call reconnects.
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(error = %error, "booking status listener failed; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    /// The booking's status once it settles, or as it is when `wait` runs out.
    pub async fn settled(
        &self,
        pool: &PgPool,
        booking_id: Uuid,
        wait: Duration,
    ) -> anyhow::Result<Option<BookingStatus>> {
        let mut changes = self.changes.subscribe();
        let deadline = Instant::now() + wait;
        loop {
            let mut conn = pool.acquire().await.context("acquire a connection")?;
            let status = db::status_of(&mut conn, booking_id).await?;
            drop(conn);
            if status.is_none_or(BookingStatus::is_settled) || Instant::now() >= deadline {
                return Ok(status);
            }
            let recheck = (Instant::now() + RECHECK_EVERY).min(deadline);
            loop {
                tokio::select! {
                    change = changes.recv() => match change {
                        Ok(id) if id != booking_id => continue,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => {
                            tokio::time::sleep_until(recheck).await;
                            break;
                        }
                    },
                    () = tokio::time::sleep_until(recheck) => break,
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> anyhow::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .context("connect the listener")?;
    listener
        .listen(STATUS_CHANNEL)
        .await
        .context("listen for booking status changes")?;
    Ok(listener)
}
