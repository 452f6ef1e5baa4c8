//! The repository: load, decide, append, retry; snapshots; time travel.

use anyhow::{bail, ensure};
use eventstore::{
    Aggregate, EventStore, ExecuteError, InMemoryEventStore, Loaded, PgEventStore, Repository,
    Snapshot, SnapshotPolicy, StateCache,
};
use proptest::prelude::*;

use crate::domain::{Flight, FlightEvent, HoldError};
use crate::helpers::pg_store_with_connections;

async fn scheduled<S: EventStore>(
    repository: &Repository<Flight, S>,
    flight: &str,
    capacity: u32,
) -> anyhow::Result<Loaded<Flight>> {
    let loaded = repository.load(flight).await?;
    Ok(repository
        .append(flight, loaded, &[FlightEvent::Scheduled { capacity }])
        .await?)
}

#[tokio::test]
async fn executing_a_command_appends_the_decided_events_and_returns_the_new_state(
) -> anyhow::Result<()> {
    let repository = Repository::<Flight, _>::new(InMemoryEventStore::new());
    scheduled(&repository, "flight-1", 10).await?;

    let held = repository
        .execute("flight-1", |flight: &Flight| flight.hold(3))
        .await?;

    ensure!(held.version == 2 && held.state.held == 3, "{held:?}");
    ensure!(repository.load("flight-1").await? == held);
    let stored = repository.store().read_stream("flight-1", 2).await?;
    ensure!(stored[0].event_type == "SeatsHeld" && stored[0].payload["seats"] == 3);
    Ok(())
}

#[tokio::test]
async fn a_rejected_command_appends_nothing() -> anyhow::Result<()> {
    let repository = Repository::<Flight, _>::new(InMemoryEventStore::new());
    scheduled(&repository, "flight-1", 2).await?;

    let result = repository
        .execute("flight-1", |flight: &Flight| flight.hold(3))
        .await;

    match result {
        Err(ExecuteError::Rejected(HoldError::SoldOut { available: 2 })) => {}
        other => bail!("expected a rejection, got {other:?}"),
    }
    ensure!(repository.load("flight-1").await?.version == 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_holds_are_retried_on_conflict_and_never_oversell() -> anyhow::Result<()> {
    let store = pg_store_with_connections(5).await?;
    let repository = Repository::<Flight, _>::new(store).with_max_attempts(50);
    scheduled(&repository, "flight-1", 8).await?;

    let holds = (0..10).map(|_| {
        let repository = repository.clone();
        tokio::spawn(async move {
            repository
                .execute("flight-1", |flight: &Flight| flight.hold(1))
                .await
        })
    });
    let results = futures::future::try_join_all(holds).await?;

    let succeeded = results.iter().filter(|result| result.is_ok()).count();
    let sold_out = results
        .iter()
        .filter(|result| {
            matches!(
                result,
                Err(ExecuteError::Rejected(HoldError::SoldOut { .. }))
            )
        })
        .count();
    ensure!(succeeded == 8 && sold_out == 2, "{results:?}");
    let flight = repository.load("flight-1").await?;
    ensure!(flight.state.held == 8 && flight.version == 9, "{flight:?}");
    Ok(())
}

#[tokio::test]
async fn loading_starts_from_the_latest_snapshot_and_applies_the_later_events() -> anyhow::Result<()>
{
    let store = pg_store_with_connections(2).await?;
    let repository =
        Repository::<Flight, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(3));
    scheduled(&repository, "flight-1", 100).await?;
    for _ in 0..9 {
        repository
            .execute("flight-1", |flight: &Flight| flight.hold(2))
            .await?;
    }

    let snapshot = store.load_snapshot("flight-1").await?;
    // Tamper with the snapshot: if loading uses it, the tampering shows.
    let Some(mut snapshot) = snapshot else {
        bail!("no snapshot was taken");
    };
    ensure!(
        snapshot.version == 9,
        "snapshot at version {}",
        snapshot.version
    );
    snapshot.state["capacity"] = serde_json::json!(500);
    sqlx::query("UPDATE snapshots SET state = $1")
        .bind(&snapshot.state)
        .execute(store.pool())
        .await?;
    let loaded = repository.load("flight-1").await?;

    ensure!(
        loaded.version == 10 && loaded.state.held == 18,
        "{loaded:?}"
    );
    ensure!(loaded.state.capacity == 500, "the snapshot was used");
    Ok(())
}

#[tokio::test]
async fn a_snapshot_of_another_schema_version_is_ignored_and_replaced() -> anyhow::Result<()> {
    let store = InMemoryEventStore::new();
    let repository =
        Repository::<Flight, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(2));
    scheduled(&repository, "flight-1", 10).await?;
    repository
        .execute("flight-1", |flight: &Flight| flight.hold(4))
        .await?;
    repository
        .execute("flight-1", |flight: &Flight| flight.hold(1))
        .await?;
    store
        .save_snapshot(&Snapshot {
            stream_id: "flight-1".to_owned(),
            version: 3,
            schema_version: Flight::SCHEMA_VERSION + 1,
            state: serde_json::json!({ "seats": "a shape this code does not know" }),
        })
        .await?;

    let loaded = repository.load("flight-1").await?;

    ensure!(loaded.state.held == 5 && loaded.version == 3, "{loaded:?}");
    let replaced = store.load_snapshot("flight-1").await?;
    ensure!(
        replaced
            .as_ref()
            .is_some_and(|snapshot| snapshot.schema_version == Flight::SCHEMA_VERSION
                && snapshot.version == 3),
        "{replaced:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_flight_can_be_loaded_as_of_a_version_or_an_instant() -> anyhow::Result<()> {
    let store = pg_store_with_connections(2).await?;
    let repository =
        Repository::<Flight, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(2));
    scheduled(&repository, "flight-1", 10).await?;
    for seats in 1..=4 {
        repository
            .execute("flight-1", |flight: &Flight| flight.hold(seats))
            .await?;
    }
    let events = store.read_stream("flight-1", 1).await?;

    let at_version_2 = repository.load_as_of_version("flight-1", 2).await?;
    let at_version_5 = repository.load_as_of_version("flight-1", 5).await?;
    let at_third_event = repository
        .load_as_of("flight-1", events[2].recorded_at)
        .await?;
    let before_anything = repository
        .load_as_of(
            "flight-1",
            events[0].recorded_at - chrono::Duration::seconds(1),
        )
        .await?;

    ensure!(
        at_version_2.version == 2 && at_version_2.state.held == 1,
        "{at_version_2:?}"
    );
    ensure!(at_version_5.state.held == 10, "{at_version_5:?}");
    ensure!(
        at_third_event.version == 3 && at_third_event.state.held == 3,
        "{at_third_event:?}"
    );
    ensure!(before_anything == Loaded::default(), "{before_anything:?}");
    Ok(())
}

fn flight_events() -> impl Strategy<Value = Vec<FlightEvent>> {
    let event = prop_oneof![
        (1..500_u32).prop_map(|capacity| FlightEvent::Scheduled { capacity }),
        (1..9_u32).prop_map(|seats| FlightEvent::SeatsHeld { seats }),
        (1..9_u32).prop_map(|seats| FlightEvent::SeatsReleased { seats }),
    ];
    proptest::collection::vec(event, 0..60)
}

proptest! {
    /// Snapshot + tail == full replay, at every version, for any interval and batching.
    #[test]
    fn loading_with_snapshots_equals_replaying_every_event(
        events in flight_events(),
        interval in 1..12_u64,
        batch in 1..5_usize,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        let outcome: anyhow::Result<()> = runtime.block_on(async {
            let store = InMemoryEventStore::new();
            let snapshotting = Repository::<Flight, _>::new(store.clone())
                .with_snapshots(SnapshotPolicy::every(interval));
            let replaying = Repository::<Flight, _>::new(store.clone())
                .with_snapshots(SnapshotPolicy::Never);
            let mut loaded = snapshotting.load("flight-1").await?;
            for chunk in events.chunks(batch) {
                loaded = snapshotting.append("flight-1", loaded, chunk).await?;
            }

            let mut full = Flight::default();
            events.iter().for_each(|event| full.apply(event));
            ensure!(snapshotting.load("flight-1").await? == Loaded { state: full.clone(), version: events.len() as u64 });
            ensure!(replaying.load("flight-1").await? == loaded);
            for version in 0..=events.len() {
                let mut expected = Flight::default();
                events[..version].iter().for_each(|event| expected.apply(event));
                let as_of = snapshotting.load_as_of_version("flight-1", version as u64).await?;
                ensure!(as_of.state == expected && as_of.version == version as u64, "as of {version}: {as_of:?}");
            }
            Ok(())
        });
        prop_assert!(outcome.is_ok(), "{:?}", outcome);
    }
}

#[tokio::test]
async fn a_load_inside_a_transaction_sees_what_that_transaction_appended() -> anyhow::Result<()> {
    let store = pg_store_with_connections(3).await?;
    let repository =
        Repository::<Flight, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(2));
    scheduled(&repository, "flight-1", 10).await?;

    // Two decisions in one transaction, as a consumer's batch makes them:
    // the second must start from the first's events, not the committed state.
    let mut tx = store.pool().begin().await?;
    for expected_version in [1, 2] {
        let loaded = PgEventStore::load_in(&repository, &mut tx, "flight-1").await?;
        ensure!(loaded.version == expected_version, "{loaded:?}");
        let events = eventstore::encode::<Flight>(&loaded.state.hold(2)?)?;
        PgEventStore::append_in(&mut tx, "flight-1", loaded.version, &events).await?;
    }
    ensure!(
        repository.load("flight-1").await?.version == 1,
        "nothing is visible outside before the commit"
    );
    tx.commit().await?;

    let loaded = repository.load("flight-1").await?;
    ensure!(loaded.version == 3 && loaded.state.held == 4, "{loaded:?}");
    Ok(())
}

#[tokio::test]
async fn a_cached_state_is_served_only_while_the_stream_head_is_what_it_was_folded_to(
) -> anyhow::Result<()> {
    let store = pg_store_with_connections(3).await?;
    let repository = Repository::<Flight, _>::new(store.clone());
    let cache = StateCache::<Flight>::new(16);
    scheduled(&repository, "flight-1", 10).await?;

    // A decision remembered, then rolled back: its event never committed.
    let mut tx = store.pool().begin().await?;
    let loaded = cache.load_in(&repository, &mut tx, "flight-1").await?;
    let events = eventstore::encode::<Flight>(&loaded.state.hold(2)?)?;
    let version = PgEventStore::append_in(&mut tx, "flight-1", loaded.version, &events).await?;
    let mut state = loaded.state.clone();
    for event in loaded.state.hold(2)? {
        state.apply(&event);
    }
    cache.remember("flight-1", &Loaded { state, version }, events[0].event_id);
    tx.rollback().await?;

    let mut conn = store.pool().acquire().await?;
    let loaded = cache.load_in(&repository, &mut conn, "flight-1").await?;
    ensure!(
        loaded.version == 1 && loaded.state.held == 0,
        "a rolled-back state is never served: {loaded:?}"
    );

    // Another writer moves the stream on: the cache notices.
    repository
        .execute("flight-1", |flight: &Flight| flight.hold(3))
        .await?;
    let loaded = cache.load_in(&repository, &mut conn, "flight-1").await?;
    ensure!(loaded.version == 2 && loaded.state.held == 3, "{loaded:?}");
    // And serves the state it just read while nothing changes.
    let again = cache.load_in(&repository, &mut conn, "flight-1").await?;
    ensure!(again == loaded);
    Ok(())
}

#[tokio::test]
async fn a_command_in_the_callers_transaction_commits_or_rolls_back_with_it_snapshot_included(
) -> anyhow::Result<()> {
    let store = pg_store_with_connections(3).await?;
    let repository = Repository::<Flight, _>::new(store.clone())
        .with_snapshots(SnapshotPolicy::every(2))
        .with_state_cache(16);
    scheduled(&repository, "flight-1", 10).await?;

    let mut tx = store.pool().begin().await?;
    let first = repository
        .execute_in(&mut tx, "flight-1", |flight: &Flight| {
            flight.hold(2).map(|events| (events, "first"))
        })
        .await?;
    let second = repository
        .execute_in(&mut tx, "flight-1", |flight: &Flight| {
            flight.hold(3).map(|events| (events, "second"))
        })
        .await?;
    ensure!(first.decided_on == 1 && first.state.version == 2 && first.outcome == "first");
    ensure!(
        second.decided_on == 2 && second.state.state.held == 5,
        "{second:?}"
    );
    ensure!(
        store.load_snapshot("flight-1").await?.is_none(),
        "neither events nor their snapshot are visible before the commit"
    );
    tx.rollback().await?;
    ensure!(repository.load("flight-1").await?.version == 1);
    ensure!(
        store.load_snapshot("flight-1").await?.is_none(),
        "rolled back with its events"
    );

    let mut tx = store.pool().begin().await?;
    repository
        .execute_in(&mut tx, "flight-1", |flight: &Flight| {
            flight.hold(2).map(|events| (events, ()))
        })
        .await?;
    tx.commit().await?;
    let snapshot = store.load_snapshot("flight-1").await?;
    ensure!(
        snapshot.map(|s| s.version) == Some(2),
        "the snapshot commits with its events"
    );
    let loaded = repository.load("flight-1").await?;
    ensure!(loaded.version == 2 && loaded.state.held == 2, "{loaded:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_race_in_the_callers_transaction_is_a_conflict_for_its_owner_to_retry(
) -> anyhow::Result<()> {
    let store = pg_store_with_connections(4).await?;
    let repository = Repository::<Flight, _>::new(store.clone());
    scheduled(&repository, "flight-1", 10).await?;

    let mut winner = store.pool().begin().await?;
    repository
        .execute_in(&mut winner, "flight-1", |flight: &Flight| {
            flight.hold(1).map(|events| (events, ()))
        })
        .await?;
    // The loser read version 1 too; its append waits on the winner's.
    let loser = {
        let repository = repository.clone();
        let store = store.clone();
        tokio::spawn(async move {
            let mut tx = store.pool().begin().await?;
            let outcome = repository
                .execute_in(&mut tx, "flight-1", |flight: &Flight| {
                    flight.hold(2).map(|events| (events, ()))
                })
                .await;
            // Its transaction is still usable: the savepoint took the failure.
            sqlx::query("SELECT 1").execute(&mut *tx).await?;
            anyhow::Ok(outcome)
        })
    };
    while !loser.is_finished()
        && sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        .fetch_one(store.pool())
        .await?
            == 0
    {
        tokio::task::yield_now().await;
    }
    winner.commit().await?;

    match loser.await?? {
        Err(ExecuteError::Conflict(_)) => {}
        other => bail!("expected a conflict, got {other:?}"),
    }
    let loaded = repository.load("flight-1").await?;
    ensure!(loaded.version == 2 && loaded.state.held == 1, "{loaded:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_command_decides_again_in_a_new_transaction_until_it_wins() -> anyhow::Result<()>
{
    let store = pg_store_with_connections(6).await?;
    let repository = Repository::<Flight, _>::new(store).with_max_attempts(50);
    scheduled(&repository, "flight-1", 8).await?;
    let also_ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));

    let holds = (0..10).map(|_| {
        let repository = repository.clone();
        let also_ran = also_ran.clone();
        tokio::spawn(async move {
            repository
                .execute_committed(
                    "flight-1",
                    |flight: &Flight| flight.hold(1).map(|events| (events, ())),
                    |conn, executed| {
                        let also_ran = also_ran.clone();
                        Box::pin(async move {
                            // Written in the command's own transaction.
                            sqlx::query("SELECT 1").execute(conn).await?;
                            assert_eq!(executed.events.len(), 1);
                            also_ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            Ok(())
                        })
                    },
                )
                .await
        })
    });
    let results = futures::future::try_join_all(holds).await?;

    let succeeded = results.iter().filter(|result| result.is_ok()).count();
    let sold_out = results
        .iter()
        .filter(|result| {
            matches!(
                result,
                Err(ExecuteError::Rejected(HoldError::SoldOut { .. }))
            )
        })
        .count();
    ensure!(succeeded == 8 && sold_out == 2, "{results:?}");
    ensure!(also_ran.load(std::sync::atomic::Ordering::SeqCst) == 8);
    let flight = repository.load("flight-1").await?;
    ensure!(flight.state.held == 8 && flight.version == 9, "{flight:?}");
    Ok(())
}
