//! Read models: effectively-once application, rebuild and atomic swap.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, ensure, Context};
use eventstore::{
    EventStore, PgEventStore, Position, Projection, ProjectionError, ProjectionRunner,
    ProjectionSettings, RecordedEvent, Repository, Tables,
};
use sqlx::{Executor, PgConnection};
use tokio_util::sync::CancellationToken;

use crate::domain::{Flight, FlightEvent};
use crate::helpers::{pg_store_with_connections, until_all_events_are_readable, DEADLINE, POLL};

/// Seats held per flight, as a read model.
#[derive(Debug, Clone, Default)]
struct SeatCounts {
    /// When set, refuses `SeatsReleased` events, to test failure handling.
    refuse_releases: Arc<AtomicBool>,
}

impl Projection for SeatCounts {
    fn name(&self) -> &'static str {
        "seat_counts"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["seat_counts"]
    }

    async fn create_tables(&self, conn: &mut PgConnection, tables: &Tables) -> anyhow::Result<()> {
        let statement = format!(
            "CREATE TABLE {} (flight_id text PRIMARY KEY, capacity integer NOT NULL, \
             held integer NOT NULL, events bigint NOT NULL)",
            tables.name("seat_counts")
        );
        conn.execute(statement.as_str()).await?;
        Ok(())
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        tables: &Tables,
        event: &RecordedEvent,
    ) -> anyhow::Result<()> {
        let table = tables.name("seat_counts");
        let (capacity, held) = match event.decode::<FlightEvent>()? {
            FlightEvent::Scheduled { capacity } => (Some(capacity), 0),
            FlightEvent::SeatsHeld { seats } => (None, i64::from(seats)),
            FlightEvent::SeatsReleased { seats } => {
                if self.refuse_releases.load(Ordering::SeqCst) {
                    bail!("releases are refused");
                }
                (None, -i64::from(seats))
            }
        };
        sqlx::query(&format!(
            "INSERT INTO {table} AS t (flight_id, capacity, held, events) VALUES ($1, coalesce($2, 0), $3, 1) \
             ON CONFLICT (flight_id) DO UPDATE SET capacity = coalesce($2, t.capacity), \
                 held = t.held + $3, events = t.events + 1"
        ))
        .bind(&event.stream_id)
        .bind(capacity.map(|capacity| capacity as i32))
        .bind(held as i32)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// An order-sensitive digest of everything readers see through the view.
async fn checksum(store: &PgEventStore) -> anyhow::Result<String> {
    let digest: String = sqlx::query_scalar(
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.flight_id), '')) FROM seat_counts t",
    )
    .fetch_one(store.pool())
    .await
    .context("checksum the read model")?;
    Ok(digest)
}

/// The rows the read model must hold, computed from the log in memory.
async fn expected_rows(store: &PgEventStore) -> anyhow::Result<BTreeMap<String, (i32, i32, i64)>> {
    let mut rows: BTreeMap<String, (i32, i32, i64)> = BTreeMap::new();
    until_all_events_are_readable(store).await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await?;
    for event in
        crate::contract::read_everything(store, Position::START, 1000, count as usize).await?
    {
        let row = rows.entry(event.stream_id.clone()).or_default();
        match event.decode::<FlightEvent>()? {
            FlightEvent::Scheduled { capacity } => row.0 = capacity as i32,
            FlightEvent::SeatsHeld { seats } => row.1 += seats as i32,
            FlightEvent::SeatsReleased { seats } => row.1 -= seats as i32,
        }
        row.2 += 1;
    }
    Ok(rows)
}

async fn served_rows(store: &PgEventStore) -> anyhow::Result<BTreeMap<String, (i32, i32, i64)>> {
    let rows: Vec<(String, i32, i32, i64)> =
        sqlx::query_as("SELECT flight_id, capacity, held, events FROM seat_counts")
            .fetch_all(store.pool())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(flight, capacity, held, events)| (flight, (capacity, held, events)))
        .collect())
}

async fn book_some_flights(store: &PgEventStore, flights: u32) -> anyhow::Result<()> {
    let repository = Repository::<Flight, _>::new(store.clone());
    for flight in 0..flights {
        let stream = format!("flight-{flight}");
        let loaded = repository.load(&stream).await?;
        let events = [
            FlightEvent::Scheduled {
                capacity: 100 + flight,
            },
            FlightEvent::SeatsHeld {
                seats: flight % 7 + 1,
            },
            FlightEvent::SeatsHeld { seats: 2 },
            FlightEvent::SeatsReleased { seats: 1 },
        ];
        repository.append(&stream, loaded, &events).await?;
    }
    Ok(())
}

fn runner(
    store: &PgEventStore,
    projection: SeatCounts,
) -> anyhow::Result<ProjectionRunner<SeatCounts>> {
    Ok(ProjectionRunner::new(
        store.clone(),
        projection,
        ProjectionSettings {
            batch_size: 7,
            ..ProjectionSettings::default()
        },
    )?)
}

#[tokio::test]
async fn a_projection_applies_every_event_once_and_resumes_from_its_checkpoint(
) -> anyhow::Result<()> {
    let store = pg_store_with_connections(3).await?;
    let runner = runner(&store, SeatCounts::default())?;
    runner.initialize().await?;
    book_some_flights(&store, 5).await?;
    until_all_events_are_readable(&store).await?;

    let first = runner.catch_up().await?;
    let again = runner.catch_up().await?;
    book_some_flights(&store, 1).await?;
    until_all_events_are_readable(&store).await?;
    let resumed = runner.catch_up().await?;

    ensure!(first == 20 && again == 0, "first {first}, again {again}");
    ensure!(resumed == 4, "four more events for flight-0: {resumed}");
    ensure!(served_rows(&store).await? == expected_rows(&store).await?);
    let (_, checkpoint) = runner.live().await?;
    ensure!(checkpoint == store.head_position().await?);
    Ok(())
}

#[tokio::test]
async fn a_failing_event_rolls_back_its_batch_and_leaves_the_checkpoint_in_place(
) -> anyhow::Result<()> {
    let store = pg_store_with_connections(3).await?;
    let projection = SeatCounts::default();
    let runner = runner(&store, projection.clone())?;
    runner.initialize().await?;
    book_some_flights(&store, 3).await?;
    until_all_events_are_readable(&store).await?;
    projection.refuse_releases.store(true, Ordering::SeqCst);

    let result = runner.catch_up().await;
    let (_, stuck_at) = runner.live().await?;
    let partial = served_rows(&store).await?;
    projection.refuse_releases.store(false, Ordering::SeqCst);
    runner.catch_up().await?;

    match result {
        Err(ProjectionError::Apply { event_type, .. }) if event_type == "SeatsReleased" => {}
        other => bail!("expected an apply error, got {other:?}"),
    }
    ensure!(
        stuck_at == Position::START,
        "the batch holding the failure did not commit"
    );
    ensure!(
        partial.is_empty(),
        "no row of the failed batch is visible: {partial:?}"
    );
    ensure!(served_rows(&store).await? == expected_rows(&store).await?);
    Ok(())
}

#[tokio::test]
async fn a_rebuilt_read_model_is_identical_to_the_live_one() -> anyhow::Result<()> {
    let store = pg_store_with_connections(3).await?;
    let runner = runner(&store, SeatCounts::default())?;
    runner.initialize().await?;
    for round in 1..=4 {
        book_some_flights(&store, round * 3).await?;
        until_all_events_are_readable(&store).await?;
        runner.catch_up().await?;
    }
    let live = checksum(&store).await?;
    let (live_tables, _) = runner.live().await?;

    let rebuilt = runner.rebuild().await?;

    ensure!(rebuilt.generation() == live_tables.generation() + 1);
    ensure!(
        checksum(&store).await? == live,
        "the rebuild changed what readers see"
    );
    ensure!(runner.live().await?.0 == rebuilt);
    let old_table_left: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(live_tables.name("seat_counts"))
        .fetch_one(store.pool())
        .await?;
    ensure!(!old_table_left, "the retired generation is dropped");
    ensure!(
        runner.catch_up().await? == 0,
        "the new generation is caught up"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_while_events_keep_arriving_and_the_live_runner_keeps_running_loses_nothing(
) -> anyhow::Result<()> {
    let store = pg_store_with_connections(5).await?;
    let live_runner = Arc::new(runner(&store, SeatCounts::default())?);
    live_runner.initialize().await?;
    book_some_flights(&store, 10).await?;
    let cancel = CancellationToken::new();
    let following = {
        let runner = Arc::clone(&live_runner);
        let cancel = cancel.clone();
        tokio::spawn(async move { runner.run(cancel).await })
    };
    let writing = {
        let store = store.clone();
        tokio::spawn(async move {
            let repository = Repository::<Flight, _>::new(store);
            for _ in 0..30 {
                for flight in 0..10 {
                    repository
                        .execute(&format!("flight-{flight}"), |flight: &Flight| {
                            flight.hold(1)
                        })
                        .await?;
                }
            }
            anyhow::Ok(())
        })
    };

    let rebuilding = runner(&store, SeatCounts::default())?;
    let first = rebuilding.rebuild().await?;
    let second = rebuilding.rebuild().await?;
    writing.await??;
    until_all_events_are_readable(&store).await?;
    let head = store.head_position().await?;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while live_runner.live().await?.1 < head {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the live runner did not catch up"
        );
        tokio::time::sleep(POLL).await;
    }
    cancel.cancel();
    following.await??;

    ensure!(second.generation() == first.generation() + 1);
    ensure!(served_rows(&store).await? == expected_rows(&store).await?);
    Ok(())
}

#[tokio::test]
async fn a_table_name_that_is_not_a_plain_identifier_is_refused() -> anyhow::Result<()> {
    #[derive(Debug)]
    struct Sneaky;
    impl Projection for Sneaky {
        fn name(&self) -> &'static str {
            "sneaky"
        }
        fn tables(&self) -> &'static [&'static str] {
            &["x; DROP TABLE events"]
        }
        async fn create_tables(&self, _: &mut PgConnection, _: &Tables) -> anyhow::Result<()> {
            Ok(())
        }
        async fn apply(
            &self,
            _: &mut PgConnection,
            _: &Tables,
            _: &RecordedEvent,
        ) -> anyhow::Result<()> {
            Ok(())
        }
    }
    let store = pg_store_with_connections(1).await?;

    let refused = ProjectionRunner::new(store.clone(), Sneaky, ProjectionSettings::default());

    ensure!(refused.is_err());
    ensure!(store.read_all(Position::START, 1).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_projection_outlives_an_event_it_refuses_and_catches_up_once_it_accepts(
) -> anyhow::Result<()> {
    let store = pg_store_with_connections(4).await?;
    let projection = SeatCounts::default();
    let live_runner = Arc::new(runner(&store, projection.clone())?);
    live_runner.initialize().await?;
    projection.refuse_releases.store(true, Ordering::SeqCst);
    let cancel = CancellationToken::new();
    let following = {
        let runner = Arc::clone(&live_runner);
        let cancel = cancel.clone();
        tokio::spawn(async move { runner.run(cancel).await })
    };
    book_some_flights(&store, 3).await?;
    until_all_events_are_readable(&store).await?;
    let head = store.head_position().await?;

    // Refusing, it stalls behind the refused event but keeps running.
    tokio::time::sleep(POLL * 10).await;
    ensure!(
        !following.is_finished(),
        "a refused event stopped the runner"
    );
    ensure!(live_runner.live().await?.1 < head);

    projection.refuse_releases.store(false, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while live_runner.live().await?.1 < head {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the runner did not catch up once the event was accepted"
        );
        tokio::time::sleep(POLL).await;
    }
    cancel.cancel();
    following.await??;
    ensure!(served_rows(&store).await? == expected_rows(&store).await?);
    Ok(())
}
