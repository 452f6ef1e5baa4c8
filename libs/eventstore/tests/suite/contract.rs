//! What every event store promises, whatever holds the events.
//!
//! Each test is a generic function over [`EventStore`];
//! `event_store_test_suite!` instantiates all of them for one implementation.

use std::collections::HashSet;

use anyhow::ensure;
use chrono::Utc;
use eventstore::{
    AppendError, EventStore, NewEvent, Position, RecordedEvent, Snapshot, Subscription,
    SubscriptionSettings,
};
use tokio_util::sync::CancellationToken;

use crate::helpers::{numbered, DEADLINE, POLL};

macro_rules! event_store_test_suite {
    ($make_store:expr) => {
        event_store_test_suite!(@tests $make_store;
            appending_to_a_new_stream_starts_at_version_one,
            appending_with_a_stale_expected_version_is_a_version_conflict,
            appending_ahead_of_the_stream_is_a_version_conflict_and_leaves_no_gap,
            concurrent_appends_expecting_the_same_version_let_exactly_one_win,
            appending_nothing_checks_nothing_and_changes_nothing,
            reading_a_stream_returns_its_events_from_the_given_version,
            a_bounded_stream_read_returns_at_most_the_requested_count,
            reading_all_in_pages_returns_every_event_once_in_append_order,
            the_version_at_an_instant_counts_the_events_recorded_by_then,
            a_newer_snapshot_replaces_an_older_one_but_not_the_reverse,
            a_snapshot_of_another_schema_version_is_always_replaced,
            a_subscription_catches_up_from_its_checkpoint_then_follows_live_appends,
            a_cancelled_subscription_ends,
        );
    };
    (@tests $make_store:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() -> anyhow::Result<()> {
                let store = $make_store.await?;
                crate::contract::$test(store).await
            }
        )*
    };
}

mod postgres {
    event_store_test_suite!(crate::helpers::pg_store());
}

mod in_memory {
    event_store_test_suite!(async { anyhow::Ok(eventstore::InMemoryEventStore::new()) });
}

pub async fn appending_to_a_new_stream_starts_at_version_one(
    store: impl EventStore,
) -> anyhow::Result<()> {
    let version = store
        .append("flight-1", 0, &[numbered(1), numbered(2)])
        .await?;

    ensure!(version == 2, "version {version}");
    let events = store.read_stream("flight-1", 1).await?;
    let versions: Vec<u64> = events.iter().map(|event| event.version).collect();
    ensure!(versions == [1, 2], "versions {versions:?}");
    ensure!(events[0].payload["n"] == 1 && events[1].payload["n"] == 2);
    ensure!(events.iter().all(|event| event.stream_id == "flight-1"));
    Ok(())
}

pub async fn appending_with_a_stale_expected_version_is_a_version_conflict(
    store: impl EventStore,
) -> anyhow::Result<()> {
    store
        .append("flight-1", 0, &[numbered(1), numbered(2)])
        .await?;

    let result = store.append("flight-1", 1, &[numbered(3)]).await;

    match result {
        Err(AppendError::VersionConflict {
            stream,
            expected: 1,
            actual: 2,
        }) if stream == "flight-1" => {}
        other => anyhow::bail!("expected a version conflict, got {other:?}"),
    }
    ensure!(store.read_stream("flight-1", 1).await?.len() == 2);
    Ok(())
}

pub async fn appending_ahead_of_the_stream_is_a_version_conflict_and_leaves_no_gap(
    store: impl EventStore,
) -> anyhow::Result<()> {
    store.append("flight-1", 0, &[numbered(1)]).await?;

    let result = store.append("flight-1", 5, &[numbered(6)]).await;

    ensure!(
        matches!(
            result,
            Err(AppendError::VersionConflict {
                expected: 5,
                actual: 1,
                ..
            })
        ),
        "got {result:?}"
    );
    ensure!(store.read_stream("flight-1", 1).await?.len() == 1);
    Ok(())
}

pub async fn concurrent_appends_expecting_the_same_version_let_exactly_one_win(
    store: impl EventStore,
) -> anyhow::Result<()> {
    store.append("flight-1", 0, &[numbered(0)]).await?;

    let attempts = (1..=8).map(|writer| {
        let store = store.clone();
        tokio::spawn(async move { store.append("flight-1", 1, &[numbered(writer)]).await })
    });
    let results = futures::future::try_join_all(attempts).await?;

    let winners = results.iter().filter(|result| result.is_ok()).count();
    ensure!(winners == 1, "{winners} appends won: {results:?}");
    for result in &results {
        match result {
            Ok(2) | Err(AppendError::VersionConflict { actual: 2, .. }) => {}
            other => anyhow::bail!("unexpected outcome {other:?}"),
        }
    }
    ensure!(store.read_stream("flight-1", 1).await?.len() == 2);
    Ok(())
}

pub async fn appending_nothing_checks_nothing_and_changes_nothing(
    store: impl EventStore,
) -> anyhow::Result<()> {
    let version = store.append("flight-1", 7, &[]).await?;

    ensure!(version == 7);
    ensure!(store.read_stream("flight-1", 1).await?.is_empty());
    ensure!(store.read_all(Position::START, 10).await?.is_empty());
    Ok(())
}

pub async fn reading_a_stream_returns_its_events_from_the_given_version(
    store: impl EventStore,
) -> anyhow::Result<()> {
    let events: Vec<NewEvent> = (1..=5).map(numbered).collect();
    store.append("flight-1", 0, &events).await?;
    store.append("flight-2", 0, &[numbered(100)]).await?;

    let tail = store.read_stream("flight-1", 3).await?;

    let versions: Vec<u64> = tail.iter().map(|event| event.version).collect();
    ensure!(versions == [3, 4, 5], "versions {versions:?}");
    let ids: Vec<_> = tail.iter().map(|event| event.event_id).collect();
    let expected: Vec<_> = events[2..].iter().map(|event| event.event_id).collect();
    ensure!(
        ids == expected,
        "the stored event ids are the appended ones"
    );
    ensure!(store.read_stream("flight-1", 6).await?.is_empty());
    ensure!(store.read_stream("no-such-stream", 1).await?.is_empty());
    Ok(())
}

pub async fn a_bounded_stream_read_returns_at_most_the_requested_count(
    store: impl EventStore,
) -> anyhow::Result<()> {
    let events: Vec<NewEvent> = (1..=5).map(numbered).collect();
    store.append("flight-1", 0, &events).await?;

    let page = store.read_stream_bounded("flight-1", 2, 2).await?;

    let versions: Vec<u64> = page.iter().map(|event| event.version).collect();
    ensure!(versions == [2, 3], "versions {versions:?}");
    ensure!(store
        .read_stream_bounded("flight-1", 1, 0)
        .await?
        .is_empty());
    Ok(())
}

pub async fn reading_all_in_pages_returns_every_event_once_in_append_order(
    store: impl EventStore,
) -> anyhow::Result<()> {
    let mut appended = Vec::new();
    for round in 0..4_u64 {
        for stream in ["flight-a", "flight-b", "flight-c"] {
            let events = [numbered(round * 10), numbered(round * 10 + 1)];
            store.append(stream, round * 2, &events).await?;
            appended.extend(events.iter().map(|event| event.event_id));
        }
    }

    let read = read_everything(&store, Position::START, 5, appended.len()).await?;

    let ids: Vec<_> = read.iter().map(|event| event.event_id).collect();
    ensure!(
        ids == appended,
        "read_all returns the events in append order"
    );
    ensure!(
        read.windows(2)
            .all(|pair| pair[0].position < pair[1].position),
        "positions increase"
    );
    Ok(())
}

pub async fn the_version_at_an_instant_counts_the_events_recorded_by_then(
    store: impl EventStore,
) -> anyhow::Result<()> {
    let before = Utc::now() - chrono::Duration::days(1);
    store
        .append("flight-1", 0, &[numbered(1), numbered(2)])
        .await?;
    let first = store.read_stream("flight-1", 1).await?;
    let between = first[1].recorded_at;
    store.append("flight-1", 2, &[numbered(3)]).await?;
    let third = store.read_stream("flight-1", 3).await?;

    ensure!(store.stream_version_at("flight-1", before).await? == 0);
    ensure!(store.stream_version_at("flight-1", between).await? == 2);
    ensure!(
        store
            .stream_version_at("flight-1", third[0].recorded_at)
            .await?
            == 3
    );
    ensure!(first[0].recorded_at <= first[1].recorded_at && between <= third[0].recorded_at);
    Ok(())
}

pub async fn a_newer_snapshot_replaces_an_older_one_but_not_the_reverse(
    store: impl EventStore,
) -> anyhow::Result<()> {
    let snapshot = |version: u64| Snapshot {
        stream_id: "flight-1".to_owned(),
        version,
        schema_version: 1,
        state: serde_json::json!({ "at": version }),
    };

    store.save_snapshot(&snapshot(10)).await?;
    store.save_snapshot(&snapshot(20)).await?;
    store.save_snapshot(&snapshot(15)).await?;

    let kept = store.load_snapshot("flight-1").await?;
    ensure!(kept == Some(snapshot(20)), "kept {kept:?}");
    ensure!(store.load_snapshot("flight-2").await?.is_none());
    Ok(())
}

pub async fn a_snapshot_of_another_schema_version_is_always_replaced(
    store: impl EventStore,
) -> anyhow::Result<()> {
    let old_schema = Snapshot {
        stream_id: "flight-1".to_owned(),
        version: 50,
        schema_version: 1,
        state: serde_json::json!({ "old": true }),
    };
    let new_schema = Snapshot {
        version: 30,
        schema_version: 2,
        state: serde_json::json!({ "new": true }),
        ..old_schema.clone()
    };

    store.save_snapshot(&old_schema).await?;
    store.save_snapshot(&new_schema).await?;

    ensure!(store.load_snapshot("flight-1").await? == Some(new_schema));
    Ok(())
}

pub async fn a_subscription_catches_up_from_its_checkpoint_then_follows_live_appends(
    store: impl EventStore,
) -> anyhow::Result<()> {
    store
        .append("flight-1", 0, &[numbered(1), numbered(2)])
        .await?;
    let checkpoint = read_everything(&store, Position::START, 10, 2).await?[0].position;
    let cancel = CancellationToken::new();
    let mut subscription = Subscription::start(
        store.clone(),
        checkpoint,
        SubscriptionSettings {
            batch_size: 2,
            ..SubscriptionSettings::default()
        },
        cancel.clone(),
    )
    .await?;

    let caught_up = next_within_deadline(&mut subscription).await?;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            store.append("flight-1", 2, &[numbered(3)]).await?;
            store.append("flight-2", 0, &[numbered(4)]).await
        })
    };
    let live = [
        next_within_deadline(&mut subscription).await?,
        next_within_deadline(&mut subscription).await?,
    ];
    writer.await??;

    ensure!(
        caught_up.payload["n"] == 2,
        "the checkpoint's event is not repeated"
    );
    let numbers: Vec<_> = live
        .iter()
        .map(|event| event.payload["n"].clone())
        .collect();
    ensure!(numbers == [3, 4], "live events {numbers:?}");
    ensure!(subscription.position() == live[1].position);
    cancel.cancel();
    ensure!(subscription.next().await?.is_none());
    Ok(())
}

pub async fn a_cancelled_subscription_ends(store: impl EventStore) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let mut subscription = Subscription::start(
        store.clone(),
        Position::START,
        SubscriptionSettings::default(),
        cancel.clone(),
    )
    .await?;

    let waiting = tokio::spawn(async move { subscription.next().await });
    cancel.cancel();

    let ended = tokio::time::timeout(DEADLINE, waiting).await???;
    ensure!(ended.is_none());
    Ok(())
}

/// Pages through `read_all` until `expected` events have come back, then
/// checks nothing follows them. Polls: with Postgres an event is withheld
/// while any transaction that might precede it is open, anywhere in the
/// cluster, so it may not be readable the instant its append returns.
pub async fn read_everything(
    store: &impl EventStore,
    mut after: Position,
    page: usize,
    expected: usize,
) -> anyhow::Result<Vec<RecordedEvent>> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut events = Vec::new();
    while events.len() < expected {
        let batch = store.read_all(after, page).await?;
        ensure!(batch.len() <= page, "a page holds at most {page} events");
        let Some(last) = batch.last() else {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "only {} of {expected} events became readable",
                events.len()
            );
            tokio::time::sleep(POLL).await;
            continue;
        };
        after = last.position;
        events.extend(batch);
    }
    let unique: HashSet<_> = events.iter().map(|event| event.event_id).collect();
    ensure!(unique.len() == events.len(), "an event was read twice");
    ensure!(
        events.len() == expected,
        "read {} events, expected {expected}",
        events.len()
    );
    ensure!(
        store.read_all(after, page).await?.is_empty(),
        "more events than expected"
    );
    Ok(events)
}

pub async fn next_within_deadline<S: EventStore>(
    subscription: &mut Subscription<S>,
) -> anyhow::Result<RecordedEvent> {
    tokio::time::timeout(DEADLINE, subscription.next())
        .await??
        .ok_or_else(|| anyhow::anyhow!("the subscription ended"))
}
