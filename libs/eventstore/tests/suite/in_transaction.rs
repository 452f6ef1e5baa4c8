//! Appending inside the caller's transaction (`PgEventStore::append_in`):
//! the events commit with whatever else the transaction writes, and a lost
//! race leaves that transaction usable.

use anyhow::Context;
use eventstore::{AppendError, EventStore, PgEventStore};
use sqlx::{Connection, Executor};

use crate::helpers::{numbered, pg_store_with_connections, DEADLINE, POLL};

#[tokio::test]
async fn a_race_lost_to_the_unique_version_inside_a_caller_transaction_is_a_conflict_and_the_transaction_goes_on(
) -> anyhow::Result<()> {
    let store = pg_store_with_connections(4).await?;
    let mut first = store.pool().acquire().await?;
    let mut winner = first.begin().await?;
    PgEventStore::append_in(&mut winner, "race", 0, &[numbered(1)]).await?;

    // The loser reads version 0 too, so its insert waits on the winner's
    // uncommitted version 1 and fails on the unique constraint once the winner commits.
    let loser_store = store.clone();
    let loser = tokio::spawn(async move {
        let mut second = loser_store.pool().acquire().await?;
        let mut tx = second.begin().await?;
        let outcome = PgEventStore::append_in(&mut tx, "race", 0, &[numbered(2)]).await;
        // The caller's transaction is still usable after the lost race.
        tx.execute("CREATE TEMPORARY TABLE after_the_race (id int)")
            .await
            .context("use the transaction")?;
        tx.commit().await.context("commit after the race")?;
        anyhow::Ok(outcome)
    });
    // Commit the winner only once the loser is blocked on its uncommitted row,
    // so the race is decided by the unique constraint and not by the version check.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(store.pool())
        .await?;
        if waiting > 0 {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the loser never blocked on the winner's row"
        );
        tokio::time::sleep(POLL).await;
    }
    winner.commit().await?;

    let outcome = loser.await??;
    assert!(
        matches!(
            outcome,
            Err(AppendError::VersionConflict {
                expected: 0,
                actual: 1,
                ..
            })
        ),
        "{outcome:?}"
    );
    let events = store.read_stream("race", 1).await?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload["n"], 1);
    Ok(())
}
