//! `Prefer: wait=N`: waiting for a booking to settle without polling the
//! database in a loop. Every status change is announced with `pg_notify`
//! in the transaction that makes it (so only committed changes are heard,
//! whichever booking instance applied them); one listener per instance fans
//! the announcements out to the requests waiting on them.

use std::time::Duration;

use anyhow::Context;
use pg_listen::Heard;
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
    /// The listener: forwards announcements until `shutdown`, reconnecting
    /// as needed. Announcements missed while it reconnects need nothing
    /// here: every waiter re-reads at least every [`RECHECK_EVERY`].
    pub async fn listen(self, pool: PgPool, shutdown: CancellationToken) -> anyhow::Result<()> {
        pg_listen::forward(
            "booking status listener",
            pool,
            STATUS_CHANNEL.to_owned(),
            None,
            pg_listen::Backoff::default(),
            shutdown.cancelled_owned(),
            |heard| {
                if let Heard::Notification(payload) = heard {
                    if let Ok(booking_id) = payload.parse::<Uuid>() {
                        // No receiver is fine: nobody is waiting.
                        let _ = self.changes.send(booking_id);
                    }
                }
            },
        )
        .await;
        Ok(())
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
