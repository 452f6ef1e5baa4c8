//! `forward` against a real Postgres: notifications arrive, and a listener
//! whose backend is terminated says it may have missed some, listens again
//! on a new connection without anybody asking, and stops when told to.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

use std::time::Duration;

use anyhow::{ensure, Context};
use pg_listen::{Backoff, Heard};
use sqlx::PgPool;
use test_support::wait::listening_backend;
use test_support::TestDatabase;
use tokio::sync::{mpsc, oneshot};

const CHANNEL: &str = "pg_listen_test";
/// Generous: only a broken listener waits this long.
const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_terminated_listener_reports_the_gap_and_listens_again() -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let pool = database.pool_as("booking", 2).await?;
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let forwarding = tokio::spawn(pg_listen::forward(
        "test listener",
        pool.clone(),
        CHANNEL.to_owned(),
        None,
        Backoff::default(),
        async move {
            let _ = stop_rx.await;
        },
        move |event| {
            let _ = heard_tx.send(event);
        },
    ));

    let first = listening_backend(&pool, None, DEADLINE).await;
    notify(&pool, "before").await?;
    ensure!(next_notification(&mut heard).await? == "before");

    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&pool)
        .await?;
    ensure!(terminated, "backend {first} was not terminated");
    let second = listening_backend(&pool, Some(first), DEADLINE).await;
    ensure!(second != first);
    let gap = tokio::time::timeout(DEADLINE, heard.recv())
        .await
        .context("nothing heard after the termination")?;
    ensure!(
        gap == Some(Heard::MayHaveMissed),
        "expected the gap first, got {gap:?}"
    );
    notify(&pool, "after").await?;
    ensure!(next_notification(&mut heard).await? == "after");

    ensure!(stop_tx.send(()).is_ok(), "the listener stopped by itself");
    tokio::time::timeout(DEADLINE, forwarding)
        .await
        .context("the listener did not stop")??;
    Ok(())
}

async fn notify(pool: &PgPool, payload: &str) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(pool)
        .await?;
    Ok(())
}

/// The next notification's payload, past any gaps reported before it.
async fn next_notification(heard: &mut mpsc::UnboundedReceiver<Heard>) -> anyhow::Result<String> {
    loop {
        match tokio::time::timeout(DEADLINE, heard.recv()).await? {
            Some(Heard::Notification(payload)) => return Ok(payload),
            Some(Heard::MayHaveMissed) => continue,
            None => anyhow::bail!("the listener stopped"),
        }
    }
}
