//! `read_all` under transactions that commit out of position order.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{ensure, Context};
use eventstore::{AppendError, EventStore, PgEventStore, Position};
use sqlx::Connection;

use crate::contract::read_everything;
use crate::helpers::{numbered, pg_store, pg_store_with_connections, DEADLINE, POLL};

#[tokio::test]
async fn an_event_that_commits_after_a_later_one_is_neither_skipped_nor_repeated(
) -> anyhow::Result<()> {
    let store = pg_store().await?;
    let mut slow = store.pool().acquire().await?;
    let mut slow_tx = slow.begin().await?;

    // A writes first (lower sequence) but is still open when B commits.
    PgEventStore::append_in(&mut slow_tx, "flight-a", 0, &[numbered(1)]).await?;
    store.append("flight-b", 0, &[numbered(2)]).await?;
    let visible_sequences: Vec<i64> = sqlx::query_scalar("SELECT sequence FROM events")
        .fetch_all(store.pool())
        .await?;
    let first_read = store.read_all(Position::START, 100).await?;
    slow_tx.commit().await?;
    let checkpoint = first_read
        .last()
        .map_or(Position::START, |event| event.position);
    let second_read = read_everything(&store, checkpoint, 100, 2).await?;

    // The hazard is real: B is visible and a sequence-only reader would take it.
    ensure!(
        visible_sequences.len() == 1,
        "only B is committed: {visible_sequences:?}"
    );
    ensure!(
        first_read.is_empty(),
        "B is withheld while A may still commit: {first_read:?}"
    );
    let delivered: Vec<_> = first_read
        .iter()
        .chain(&second_read)
        .map(|event| event.payload["n"].clone())
        .collect();
    ensure!(delivered == [1, 2], "delivered {delivered:?}");
    let sequences: Vec<u64> = second_read
        .iter()
        .map(|event| event.position.sequence)
        .collect();
    ensure!(
        sequences[0] < sequences[1],
        "A has the lower sequence: {sequences:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_transaction_that_rolls_back_leaves_no_trace_in_the_global_log() -> anyhow::Result<()> {
    let store = pg_store().await?;
    let mut conn = store.pool().acquire().await?;
    let mut tx = conn.begin().await?;
    PgEventStore::append_in(&mut tx, "flight-a", 0, &[numbered(1)]).await?;
    store.append("flight-b", 0, &[numbered(2)]).await?;

    tx.rollback().await?;
    let read = read_everything(&store, Position::START, 100, 1).await?;

    let delivered: Vec<_> = read
        .iter()
        .map(|event| event.payload["n"].clone())
        .collect();
    ensure!(delivered == [2], "delivered {delivered:?}");
    ensure!(store.append("flight-a", 0, &[numbered(3)]).await? == 1);
    Ok(())
}

#[tokio::test]
async fn a_transaction_older_than_the_streams_last_writer_must_retry_in_a_new_one(
) -> anyhow::Result<()> {
    let store = pg_store().await?;
    let mut old = store.pool().acquire().await?;
    let mut old_tx = old.begin().await?;
    // The old transaction takes its id by writing elsewhere first.
    PgEventStore::append_in(&mut old_tx, "booking-1", 0, &[numbered(1)]).await?;
    store.append("flight-1", 0, &[numbered(2)]).await?;

    let result = PgEventStore::append_in(&mut old_tx, "flight-1", 1, &[numbered(3)]).await;

    ensure!(
        matches!(&result, Err(AppendError::StaleTransaction { stream }) if stream == "flight-1"),
        "got {result:?}"
    );
    ensure!(result.as_ref().is_err_and(AppendError::is_conflict));
    // The savepoint kept the rest of the transaction usable.
    old_tx.commit().await?;
    let mut retry = old.begin().await?;
    PgEventStore::append_in(&mut retry, "flight-1", 1, &[numbered(3)]).await?;
    retry.commit().await?;
    let flight: Vec<_> = read_everything(&store, Position::START, 100, 3)
        .await?
        .into_iter()
        .filter(|event| event.stream_id == "flight-1")
        .map(|event| event.version)
        .collect();
    ensure!(
        flight == [1, 2],
        "the stream is in version order globally: {flight:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_committing_out_of_order_never_make_a_reader_skip_or_repeat_an_event(
) -> anyhow::Result<()> {
    const WRITERS: u64 = 4;
    const TRANSACTIONS: u64 = 25;
    let store = pg_store_with_connections(5).await?;

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                for round in 0..TRANSACTIONS {
                    let mut conn = store.pool().acquire().await?;
                    let mut tx = conn.begin().await?;
                    let events = [
                        numbered(writer * 1000 + round * 2),
                        numbered(writer * 1000 + round * 2 + 1),
                    ];
                    PgEventStore::append_in(
                        &mut tx,
                        &format!("stream-{writer}"),
                        round * 2,
                        &events,
                    )
                    .await?;
                    // Hold some transactions open so commits overtake each other.
                    let pause = (writer * 7 + round * 3) % 4;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    tx.commit().await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();

    let expected = WRITERS * TRANSACTIONS * 2;
    let mut seen = HashSet::new();
    let mut positions = Vec::new();
    let mut after = Position::START;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while (seen.len() as u64) < expected {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "read only {} of {expected} events",
            seen.len()
        );
        let batch = store.read_all(after, 7).await?;
        for event in &batch {
            ensure!(
                seen.insert(event.event_id),
                "event {} delivered twice",
                event.event_id
            );
            positions.push(event.position);
        }
        match batch.last() {
            Some(last) => after = last.position,
            None => tokio::time::sleep(POLL).await,
        }
    }
    for writer in writers {
        writer.await.context("join a writer")??;
    }

    ensure!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "positions increase"
    );
    let all = read_everything(&store, Position::START, 1000, expected as usize).await?;
    let stored: HashSet<_> = all.iter().map(|event| event.event_id).collect();
    ensure!(stored == seen, "the reader saw exactly the stored events");
    Ok(())
}
