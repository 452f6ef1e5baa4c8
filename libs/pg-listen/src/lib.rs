//! A Postgres `LISTEN` that outlives its connection.
//!
//! sqlx's [`PgListener`] reconnects by itself, but only from inside
//! `try_recv`, so only while somebody polls it. A listener polled only
//! while its owner happens to wait (inside a stream a busy subscriber stops
//! polling, for example) can leave a reconnect half-way: a TCP connection
//! open on the server that never sends its startup packet. Postgres then
//! waits its whole `authentication_timeout` (60 s) for it before a shutdown
//! can finish — the long chaos run found exactly that (docs/chaos.md).
//!
//! [`forward`] therefore belongs on a task of its own that does nothing
//! else: it polls the listener all the time, replaces a connection that
//! failed (with backoff, never giving up) and hands what it hears to a
//! callback. Notifications sent while no connection was listening are lost;
//! [`Heard::MayHaveMissed`] says so, and whoever relies on them must look at
//! the table itself then.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgListener;
use sqlx::PgPool;

/// What the listener passes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A notification on the channel, with its payload.
    Notification(String),
    /// The connection was lost, or has just been replaced: notifications
    /// sent meanwhile are gone.
    MayHaveMissed,
}

/// How long to wait between failed reconnects: doubling from `first` up to
/// `longest`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub longest: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(100),
            longest: Duration::from_secs(5),
        }
    }
}

/// A listener on `channel`, connected with one of `pool`'s connect options
/// (its own connection, outside the pool's count).
pub async fn connect(pool: &PgPool, channel: &str) -> anyhow::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .context("connect the listener")?;
    listener
        .listen(channel)
        .await
        .with_context(|| format!("listen on {channel}"))?;
    Ok(listener)
}

/// Hands everything heard on `channel` to `on_heard` until `stop` completes.
///
/// `listener` is a connection made beforehand (so a caller can fail fast on
/// a wrong setup) or `None`, to connect here. `name` says which listener a
/// log line is about.
pub async fn forward(
    name: &'static str,
    pool: PgPool,
    channel: String,
    listener: Option<PgListener>,
    backoff: Backoff,
    stop: impl Future<Output = ()>,
    mut on_heard: impl FnMut(Heard),
) {
    tokio::pin!(stop);
    let mut listener = match listener {
        Some(listener) => listener,
        None => match reconnect(name, &pool, &channel, backoff, &mut stop).await {
            Some(listener) => listener,
            None => return,
        },
    };
    loop {
        let received = tokio::select! {
            () = &mut stop => return,
            received = listener.try_recv() => received,
        };
        match received {
            Ok(Some(notification)) => {
                on_heard(Heard::Notification(notification.payload().to_owned()));
            }
            // The connection dropped; the next `try_recv` reconnects.
            Ok(None) => on_heard(Heard::MayHaveMissed),
            Err(error) => {
                tracing::warn!(listener = name, %error, "listener failed; reconnecting");
                on_heard(Heard::MayHaveMissed);
                listener = match reconnect(name, &pool, &channel, backoff, &mut stop).await {
                    Some(listener) => listener,
                    None => return,
                };
                on_heard(Heard::MayHaveMissed);
            }
        }
    }
}

/// A new listener, retried with backoff until it connects or `stop`
/// completes (then `None`).
async fn reconnect(
    name: &'static str,
    pool: &PgPool,
    channel: &str,
    backoff: Backoff,
    stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<PgListener> {
    let mut retry_in = backoff.first;
    loop {
        let connected = tokio::select! {
            () = &mut *stop => return None,
            connected = connect(pool, channel) => connected,
        };
        match connected {
            Ok(listener) => return Some(listener),
            Err(error) => {
                tracing::warn!(
                    listener = name,
                    error = format!("{error:#}"),
                    retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
                    "listener could not connect; retrying"
                );
                tokio::select! {
                    () = &mut *stop => return None,
                    () = tokio::time::sleep(retry_in) => {}
                }
                retry_in = (retry_in * 2).min(backoff.longest);
            }
        }
    }
}
