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
//! then `/usr/lib/postgresql/15/bin/pgbench`).

use std::io::Write;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use eventstore::{
    Aggregate, EventStore, NewEvent, PgEventStore, Position, Repository, SnapshotPolicy,
};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};
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

    let scratch = Scratch::create(&admin_url).await?;
    let outcome = tokio::time::timeout(BUDGET, run(&scratch, run_for)).await;
    let dropped = scratch.drop_database().await;
    let figures = outcome.context("the benchmark overran its time budget")??;
    dropped?;
    figures.print(run_for)
}

async fn run(scratch: &Scratch, run_for: Duration) -> anyhow::Result<Figures> {
    let options = PgConnectOptions::from_str(&scratch.url)
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
    let baseline = pgbench_baseline(scratch, run_for).await?;
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

/// A database of its own, so the bench never touches anything else.
struct Scratch {
    admin: PgConnectOptions,
    name: String,
    url: String,
}

impl Scratch {
    async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let admin = PgConnectOptions::from_str(admin_url).context("parse the admin url")?;
        let name = format!("eventstore_bench_{}", Uuid::now_v7().simple());
        let mut conn = admin.connect().await.context("connect as administrator")?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .context("create the scratch database")?;
        conn.close().await.ok();
        let url = with_database(admin_url, &name)?;
        let mut conn = PgConnection::connect(&url)
            .await
            .context("connect to the scratch database")?;
        conn.execute(
            "CREATE SCHEMA bench; \
             CREATE TABLE bench.pgbench_baseline ( \
                 id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload jsonb NOT NULL)",
        )
        .await
        .context("create the baseline table")?;
        conn.close().await.ok();
        Ok(Self { admin, name, url })
    }

    async fn drop_database(&self) -> anyhow::Result<()> {
        let mut conn = self
            .admin
            .connect()
            .await
            .context("connect as administrator")?;
        conn.execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .context("drop the scratch database")?;
        Ok(())
    }
}

/// `url` with its database replaced by `database`, keeping any parameters.
fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let (before_path, path_and_query) = url
        .split_once("://")
        .and_then(|(scheme, rest)| {
            rest.split_once('/')
                .map(|(authority, path)| (format!("{scheme}://{authority}"), path))
        })
        .context("the admin url has no database path")?;
    Ok(match path_and_query.split_once('?') {
        Some((_, query)) => format!("{before_path}/{database}?{query}"),
        None => format!("{before_path}/{database}"),
    })
}

struct Baseline {
    tps: f64,
    latency_ms: f64,
}

/// pgbench inserting single rows with the same concurrency as the writers.
async fn pgbench_baseline(scratch: &Scratch, run_for: Duration) -> anyhow::Result<Baseline> {
    let script = std::env::temp_dir().join(format!("{}.sql", scratch.name));
    std::fs::write(
        &script,
        "INSERT INTO bench.pgbench_baseline (payload) VALUES ('{\"hold_id\": \"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\", \"seats\": 1}');\n",
    )
    .context("write the pgbench script")?;
    let output = tokio::process::Command::new(pgbench_path())
        .args(["-n", "-c", &WRITERS.to_string(), "-j", "2"])
        .args(["-T", &run_for.as_secs().to_string(), "-f"])
        .arg(&script)
        .arg(&scratch.url)
        .output()
        .await
        .context("run pgbench")?;
    std::fs::remove_file(&script).ok();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let number_after = |prefix: &str| -> anyhow::Result<f64> {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse().ok())
            .with_context(|| format!("no {prefix:?} in pgbench output:\n{stdout}"))
    };
    Ok(Baseline {
        tps: number_after("tps =")?,
        latency_ms: number_after("latency average =")?,
    })
}

fn pgbench_path() -> String {
    if let Ok(path) = std::env::var("PGBENCH") {
        return path;
    }
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("pgbench").is_file())
    });
    if on_path {
        "pgbench".to_owned()
    } else {
        "/usr/lib/postgresql/15/bin/pgbench".to_owned()
    }
}

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

struct Latencies(Vec<Duration>);

impl From<Vec<Duration>> for Latencies {
    fn from(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }
}

impl Latencies {
    fn percentile_ms(&self, quantile: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let index = ((self.0.len() - 1) as f64 * quantile).round() as usize;
        self.0[index].as_secs_f64() * 1000.0
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
            self.no_snapshot.0.len(),
            stream as f64 / (self.no_snapshot.percentile_ms(0.50) / 1000.0)
        )?;
        writeln!(
            out,
            "load {stream}-event stream, snapshot + {STREAM_TAIL} events p50 {:>7.2} ms   p99 {:>7.2} ms   ({} loads)",
            self.with_snapshot.percentile_ms(0.50),
            self.with_snapshot.percentile_ms(0.99),
            self.with_snapshot.0.len()
        )?;
        Ok(())
    }
}
