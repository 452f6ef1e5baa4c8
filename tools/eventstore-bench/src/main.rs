//! Measures the event store on a scratch database and prints:
//!
//! - append throughput and latency, single-event appends from 16 concurrent
//!   writers, next to a pgbench baseline (16 clients, a single-row `INSERT`)
//!   measured in the same run on the same Postgres;
//! - replay speed: `read_all` through the whole log;
//! - load time of a 10,000-event stream, with and without a snapshot.
//!
//! Not a test: it asserts nothing. It creates `eventstore_bench_<uuid>`,
//! drops it at the end, and gives up after a fixed budget.
//!
//! Environment: `EVENTSTORE_BENCH_ADMIN_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), `EVENTSTORE_BENCH_SECONDS`
//! (per throughput run, default 5), `PGBENCH` (default: `pgbench` on `PATH`,
//! then Debian's `/usr/lib/postgresql/<version>/bin/pgbench`).

use std::io::Write;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench_support::{Baseline, Latencies, ScratchDatabase, Workload};
use eventstore::{
    Aggregate, EventStore, NewEvent, PgEventStore, Position, Repository, SnapshotPolicy,
};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

const WRITERS: usize = 16;
const STREAM_EVENTS: u64 = 10_000;
/// Appended after the last snapshot, so a snapshot load also replays a tail.
const STREAM_TAIL: u64 = 37;
const LOADS_WITHOUT_SNAPSHOT: usize = 40;
const LOADS_WITH_SNAPSHOT: usize = 400;
const BUDGET: Duration = Duration::from_secs(180);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("EVENTSTORE_BENCH_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let seconds: u64 = match std::env::var("EVENTSTORE_BENCH_SECONDS") {
        Ok(value) => value.parse().context("EVENTSTORE_BENCH_SECONDS")?,
        Err(_) => 5,
    };
    let run_for = Duration::from_secs(seconds.clamp(1, 30));

    let scratch = create_scratch(&admin_url).await?;
    let outcome = tokio::time::timeout(BUDGET, run(&scratch, run_for)).await;
    let dropped = scratch.drop_database().await;
    let figures = outcome.context("the benchmark overran its time budget")??;
    dropped?;
    figures.print(run_for)
}

async fn run(scratch: &ScratchDatabase, run_for: Duration) -> anyhow::Result<Figures> {
    let options = PgConnectOptions::from_str(scratch.url())
        .context("parse the scratch url")?
        .options([("search_path", "bench")]);
    let pool = PgPoolOptions::new()
        .max_connections(WRITERS as u32 + 1)
        .connect_with(options)
        .await
        .context("connect to the scratch database")?;
    eventstore::MIGRATOR
        .run(&pool)
        .await
        .context("apply the event store migrations")?;
    let store = PgEventStore::new(pool);

    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(store.pool())
        .await?;
    let baseline =
        bench_support::pgbench_baseline(scratch.url(), BASELINE_WORKLOAD, WRITERS, run_for).await?;
    let appends = append_throughput(&store, run_for).await?;
    let (no_snapshot, with_snapshot) = stream_loads(&store).await?;
    let replay = replay_speed(&store).await?;
    Ok(Figures {
        server_version,
        baseline,
        appends,
        replay,
        no_snapshot,
        with_snapshot,
    })
}

/// The scratch database, with the schema the event store lives in.
async fn create_scratch(admin_url: &str) -> anyhow::Result<ScratchDatabase> {
    let scratch = ScratchDatabase::create(admin_url, "eventstore_bench").await?;
    let mut conn = PgConnection::connect(scratch.url())
        .await
        .context("connect to the scratch database")?;
    conn.execute("CREATE SCHEMA bench")
        .await
        .context("create the bench schema")?;
    conn.close().await.ok();
    Ok(scratch)
}

/// pgbench inserting single rows with the same concurrency as the writers.
const BASELINE_WORKLOAD: Workload<'static> = bench_support::SINGLE_ROW_INSERT;

struct Appends {
    count: usize,
    elapsed: Duration,
    latencies: Latencies,
}

/// Each writer appends one event at a time to a stream of its own, so the
/// figure is the store's cost, not contention on one stream.
async fn append_throughput(store: &PgEventStore, run_for: Duration) -> anyhow::Result<Appends> {
    let started = Instant::now();
    let deadline = started + run_for;
    let writers = (0..WRITERS).map(|writer| {
        let store = store.clone();
        tokio::spawn(async move {
            let stream = format!("writer-{writer}");
            let mut latencies = Vec::new();
            let mut version = 0;
            while Instant::now() < deadline {
                let event = NewEvent::from_serializable(
                    "SeatsHeld",
                    &FlightEvent::SeatsHeld {
                        hold_id: Uuid::now_v7(),
                        seats: 1,
                    },
                )?;
                let began = Instant::now();
                version = store.append(&stream, version, &[event]).await?;
                latencies.push(began.elapsed());
            }
            anyhow::Ok(latencies)
        })
    });
    let mut latencies = Vec::new();
    for writer in futures::future::try_join_all(writers).await? {
        latencies.extend(writer?);
    }
    Ok(Appends {
        count: latencies.len(),
        elapsed: started.elapsed(),
        latencies: Latencies::from(latencies),
    })
}

struct Replay {
    events: usize,
    elapsed: Duration,
}

/// Reads the whole log through `read_all`, as a new subscriber would.
async fn replay_speed(store: &PgEventStore) -> anyhow::Result<Replay> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(store.pool())
        .await?;
    let total = usize::try_from(total)?;
    let started = Instant::now();
    let mut after = Position::START;
    let mut events = 0;
    while events < total {
        let batch = store.read_all(after, 1000).await?;
        match batch.last() {
            Some(last) => after = last.position,
            // Withheld behind some other open transaction; it will end.
            None => tokio::time::sleep(Duration::from_millis(1)).await,
        }
        events += batch.len();
    }
    Ok(Replay {
        events,
        elapsed: started.elapsed(),
    })
}

/// Loads of one long stream, replaying it all and from its latest snapshot.
async fn stream_loads(store: &PgEventStore) -> anyhow::Result<(Latencies, Latencies)> {
    let stream = "flight-long";
    let snapshotting =
        Repository::<Flight, _>::new(store.clone()).with_snapshots(SnapshotPolicy::every(1000));
    let mut loaded = snapshotting.load(stream).await?;
    let batch: Vec<FlightEvent> = (0..100)
        .map(|_| FlightEvent::SeatsHeld {
            hold_id: Uuid::now_v7(),
            seats: 2,
        })
        .collect();
    for _ in 0..STREAM_EVENTS / 100 {
        loaded = snapshotting.append(stream, loaded, &batch).await?;
    }
    let tail = eventstore::encode::<Flight>(&batch[..STREAM_TAIL as usize])?;
    store.append(stream, loaded.version, &tail).await?;

    let replaying =
        Repository::<Flight, _>::new(store.clone()).with_snapshots(SnapshotPolicy::Never);
    let mut without = Vec::with_capacity(LOADS_WITHOUT_SNAPSHOT);
    for _ in 0..LOADS_WITHOUT_SNAPSHOT {
        let began = Instant::now();
        let flight = replaying.load(stream).await?;
        without.push(began.elapsed());
        if flight.version != STREAM_EVENTS + STREAM_TAIL {
            bail!("loaded version {} of the long stream", flight.version);
        }
    }
    if snapshotting.load(stream).await? != replaying.load(stream).await? {
        bail!("a snapshot load differs from a full replay");
    }
    let mut with = Vec::with_capacity(LOADS_WITH_SNAPSHOT);
    for _ in 0..LOADS_WITH_SNAPSHOT {
        let began = Instant::now();
        snapshotting.load(stream).await?;
        with.push(began.elapsed());
    }
    Ok((Latencies::from(without), Latencies::from(with)))
}

/// A flight as far as the bench cares: seats held by many holds.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Flight {
    held: u64,
    holds: u64,
    last_hold: Option<Uuid>,
}

#[derive(Debug, Serialize, Deserialize)]
enum FlightEvent {
    SeatsHeld { hold_id: Uuid, seats: u32 },
}

impl Aggregate for Flight {
    type Event = FlightEvent;
    const SCHEMA_VERSION: u32 = 1;

    fn event_type(event: &FlightEvent) -> &'static str {
        match event {
            FlightEvent::SeatsHeld { .. } => "SeatsHeld",
        }
    }

    fn apply(&mut self, event: &FlightEvent) {
        match event {
            FlightEvent::SeatsHeld { hold_id, seats } => {
                self.held += u64::from(*seats);
                self.holds += 1;
                self.last_hold = Some(*hold_id);
            }
        }
    }
}

struct Figures {
    server_version: String,
    baseline: Baseline,
    appends: Appends,
    replay: Replay,
    no_snapshot: Latencies,
    with_snapshot: Latencies,
}

impl Figures {
    fn print(&self, run_for: Duration) -> anyhow::Result<()> {
        let appends_per_second = self.appends.count as f64 / self.appends.elapsed.as_secs_f64();
        let stream = STREAM_EVENTS + STREAM_TAIL;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "eventstore-bench: PostgreSQL {}, {WRITERS} concurrent writers, {} s per throughput run",
            self.server_version,
            run_for.as_secs()
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "append, 1 event per append      {appends_per_second:>10.0} appends/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} appends)",
            self.appends.latencies.percentile_ms(0.50),
            self.appends.latencies.percentile_ms(0.99),
            self.appends.count
        )?;
        writeln!(
            out,
            "pgbench baseline, 1-row INSERT  {:>10.0} tps         avg {:>7.2} ms",
            self.baseline.tps, self.baseline.latency_ms
        )?;
        writeln!(
            out,
            "  event store / baseline        {:>10.0} %",
            100.0 * appends_per_second / self.baseline.tps
        )?;
        writeln!(
            out,
            "replay via read_all (1000/page) {:>10.0} events/s    ({} events in {:.2} s)",
            self.replay.events as f64 / self.replay.elapsed.as_secs_f64(),
            self.replay.events,
            self.replay.elapsed.as_secs_f64()
        )?;
        writeln!(
            out,
            "load {stream}-event stream, full replay       p50 {:>7.2} ms   p99 {:>7.2} ms   ({} loads, {:.0} events/s folded at p50)",
            self.no_snapshot.percentile_ms(0.50),
            self.no_snapshot.percentile_ms(0.99),
            self.no_snapshot.len(),
            stream as f64 / (self.no_snapshot.percentile_ms(0.50) / 1000.0)
        )?;
        writeln!(
            out,
            "load {stream}-event stream, snapshot + {STREAM_TAIL} events p50 {:>7.2} ms   p99 {:>7.2} ms   ({} loads)",
            self.with_snapshot.percentile_ms(0.50),
            self.with_snapshot.percentile_ms(0.99),
            self.with_snapshot.len()
        )?;
        Ok(())
    }
}
