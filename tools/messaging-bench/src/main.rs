//! `messaging-bench`: how fast the outbox relay publishes and how long a
//! message takes from its commit to the consumer's handler, printed next to
//! what pgbench does on the same Postgres in the same run.
//!
//! It creates a scratch database (`contrail_bench_*`, dropped at the end) and
//! a topic prefix of its own, so it can run beside a live stack.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench_support::Workload;
use clap::Parser;
use contracts::{Envelope, Message};
use futures::future::BoxFuture;
use messaging::{
    Consumer, HandlerError, Incoming, KafkaSettings, MessageHandler, OutboxRelay, Producer,
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use service_kit::db::{provision, quote_ident, SchemaOwner};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The throughput run's topic; the latency run has its own, free of that backlog.
const TOPIC: &str = "bench.pings";
const LATENCY_TOPIC: &str = "bench.latency";

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    #[arg(
        long,
        env = "CONTRAIL_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    admin_url: String,
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Messages pre-committed to the outbox for the throughput run.
    #[arg(long, default_value_t = 50_000)]
    messages: usize,
    /// Messages per second for the latency run, one transaction each.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Length of the latency run and of the pgbench run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Only the latency run: no pgbench baseline, no throughput run (whose
    /// backlog also lands in the broker before the latency run starts).
    #[arg(long)]
    latency_only: bool,
    /// Overrides `kafka.consumer.fetch_wait_max_ms` (default: the built-in setting).
    #[arg(long)]
    fetch_wait_max_ms: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Ping {
    seq: u64,
}

impl Message for Ping {
    const MESSAGE_TYPE: &'static str = "bench.Ping.v1";
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database = format!("contrail_bench_{}", Uuid::now_v7().simple());
    let outcome = run(&args, &database).await;
    drop_database(&args.admin_url, &database).await?;
    outcome
}

async fn run(args: &Args, database: &str) -> anyhow::Result<()> {
    let admin_url = SecretString::from(args.admin_url.clone());
    let owner = SchemaOwner {
        role: "booking".to_owned(),
        schema: "booking".to_owned(),
        password: None,
    };
    provision(&admin_url, database, &[owner]).await?;
    let admin = PgConnectOptions::from_str(&args.admin_url)?;
    let url = format!(
        "postgres://booking@{}:{}/{database}",
        admin.get_host(),
        admin.get_port()
    );
    let options = PgConnectOptions::from_str(&url)?.options([("search_path", "booking")]);
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    messaging::MIGRATOR.run(&pool).await?;
    let mut kafka: KafkaSettings = serde_json::from_value(serde_json::json!({
        "brokers": args.brokers,
        "topic_prefix": format!("bench{}.", Uuid::now_v7().simple()),
        "partitions": 3,
    }))?;
    if let Some(fetch_wait_max_ms) = args.fetch_wait_max_ms {
        kafka.consumer.fetch_wait_max_ms = fetch_wait_max_ms;
    }
    println!(
        "consumer fetch_wait_max_ms {}, relay batch_size {}, poll_interval_ms {}",
        kafka.consumer.fetch_wait_max_ms, kafka.relay.batch_size, kafka.relay.poll_interval_ms
    );
    messaging::topics::ensure_topics(&kafka, &[TOPIC, LATENCY_TOPIC]).await?;

    println!(
        "messaging-bench: {} cores, Postgres and the broker on this machine, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        bench_support::load_average()
    );
    if !args.latency_only {
        let baseline = pgbench_baseline(&args.admin_url, database, args.seconds).await?;
        println!(
            "\nbaseline  pgbench, one-row INSERT per transaction, 4 clients, {}s: {baseline:.0} tps",
            args.seconds
        );

        let throughput = relay_throughput(&pool, &kafka, args.messages).await?;
        println!("\nrelay     {} messages committed beforehand, one relay: {throughput:.0} messages/s (commit → broker ack → marked)", args.messages);
        println!(
            "          = {:.2}× the pgbench transaction rate",
            throughput / baseline
        );
    }

    let latencies = end_to_end_latency(&pool, &kafka, args.rate, args.seconds).await?;
    println!(
        "\nlatency   {} msg/s for {}s, one transaction each, commit → consumer handler:\n          p50 {:.1} ms   p95 {:.1} ms   p99 {:.1} ms   max {:.1} ms   ({} messages)",
        args.rate,
        args.seconds,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        latencies.len(),
    );
    // The relay's share: insert → marked published, which is after the broker's
    // acknowledgement; the rest of the end-to-end time is the fetch and the handler.
    let relay_share: (Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag_ms),
                percentile_cont(0.95) WITHIN GROUP (ORDER BY lag_ms),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY lag_ms)
         FROM (SELECT extract(epoch FROM published_at - created_at) * 1000 AS lag_ms
               FROM outbox WHERE topic = $1 AND published_at IS NOT NULL) AS lags",
    )
    .bind(LATENCY_TOPIC)
    .fetch_one(&pool)
    .await
    .context("measure the relay's share of the latency")?;
    println!(
        "          of which insert → acknowledged and marked published (the relay): p50 {:.1} ms   p95 {:.1} ms   p99 {:.1} ms",
        relay_share.0.unwrap_or(f64::NAN),
        relay_share.1.unwrap_or(f64::NAN),
        relay_share.2.unwrap_or(f64::NAN),
    );
    println!(
        "\nload average at the end: {}",
        bench_support::load_average()
    );
    Ok(())
}

/// A one-row INSERT of a 200-byte payload per transaction, the closest
/// plain-Postgres analogue of a business write plus its outbox row.
const BASELINE_WORKLOAD: Workload<'static> = Workload {
    setup_sql: "CREATE TABLE public.pgbench_rows (id bigserial PRIMARY KEY, payload bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    transaction_sql: "INSERT INTO public.pgbench_rows (payload) VALUES (convert_to(repeat('x', 200), 'UTF8'));\n",
};

/// pgbench on the same cluster, 4 clients, in the scratch database.
async fn pgbench_baseline(admin_url: &str, database: &str, seconds: u64) -> anyhow::Result<f64> {
    let url = bench_support::with_database(admin_url, database)?;
    let baseline =
        bench_support::pgbench_baseline(&url, BASELINE_WORKLOAD, 4, Duration::from_secs(seconds))
            .await?;
    Ok(baseline.tps)
}

async fn relay_throughput(
    pool: &PgPool,
    kafka: &KafkaSettings,
    messages: usize,
) -> anyhow::Result<f64> {
    let correlation = Uuid::now_v7();
    for chunk_start in (0..messages).step_by(1000) {
        let mut tx = pool.begin().await?;
        for seq in chunk_start..(chunk_start + 1000).min(messages) {
            let envelope = Envelope::new(Ping { seq: seq as u64 }, correlation);
            messaging::enqueue(&mut tx, TOPIC, &format!("key-{}", seq % 100), &envelope).await?;
        }
        tx.commit().await?;
    }
    let relay = OutboxRelay::new(pool.clone(), Producer::new(kafka, "bench-relay")?, kafka);
    let started = Instant::now();
    let mut relayed = 0;
    while relayed < messages {
        relayed += relay.relay_batch().await?;
    }
    Ok(messages as f64 / started.elapsed().as_secs_f64())
}

/// Commit and handling instants by message id. Both sides record, and the
/// latencies are computed after the run, so a message handled before its
/// commit instant was written down is still counted.
#[derive(Default)]
struct Clock {
    committed: Mutex<HashMap<Uuid, Instant>>,
    handled: Mutex<HashMap<Uuid, Instant>>,
}

impl Clock {
    fn handled_count(&self) -> usize {
        self.handled.lock().map_or(0, |handled| handled.len())
    }
}

struct Timer(Arc<Clock>);

impl MessageHandler for Timer {
    fn message_types(&self) -> &[&'static str] {
        &[Ping::MESSAGE_TYPE]
    }

    fn handle<'a>(
        &'a self,
        _conn: &'a mut PgConnection,
        message: &'a Incoming,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let now = Instant::now();
            if let Ok(mut handled) = self.0.handled.lock() {
                handled.entry(message.envelope.message_id).or_insert(now);
            }
            Ok(())
        })
    }
}

async fn end_to_end_latency(
    pool: &PgPool,
    kafka: &KafkaSettings,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<Vec<f64>> {
    let clock = Arc::new(Clock::default());
    let shutdown = CancellationToken::new();
    let relay = OutboxRelay::new(
        pool.clone(),
        Producer::new(kafka, "bench-latency-relay")?,
        kafka,
    );
    let relay_task = tokio::spawn(relay.run(shutdown.clone()));
    let consumer = Consumer::new(
        "bench-timer",
        &[LATENCY_TOPIC],
        Arc::new(Timer(Arc::clone(&clock))),
        pool.clone(),
        kafka,
    );
    let stats = consumer.stats();
    let consumer_task = tokio::spawn(consumer.run(shutdown.clone()));

    // One message first, so the consumer has joined its group before anything is timed.
    let correlation = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    messaging::enqueue(
        &mut tx,
        LATENCY_TOPIC,
        "warm-up",
        &Envelope::new(Ping { seq: 0 }, correlation),
    )
    .await?;
    tx.commit().await?;
    let warm_up = Instant::now();
    while stats.applied() == 0 {
        if warm_up.elapsed() > Duration::from_secs(60) {
            bail!("the consumer did not receive its first message within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let total = rate * seconds;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for seq in 0..total {
        ticker.tick().await;
        let envelope = Envelope::new(Ping { seq }, correlation);
        let mut tx = pool.begin().await?;
        messaging::enqueue(
            &mut tx,
            LATENCY_TOPIC,
            &format!("key-{}", seq % 100),
            &envelope,
        )
        .await?;
        tx.commit().await?;
        if let Ok(mut committed) = clock.committed.lock() {
            committed.insert(envelope.message_id, Instant::now());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    // The warm-up message is handled too, hence the + 1.
    while clock.handled_count() < total as usize + 1 {
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    relay_task.await??;
    consumer_task.await??;
    let mut latencies: Vec<f64> = match (clock.committed.lock(), clock.handled.lock()) {
        (Ok(committed), Ok(handled)) => committed
            .iter()
            .filter_map(|(id, committed)| {
                let handled = handled.get(id)?;
                Some(handled.saturating_duration_since(*committed).as_secs_f64() * 1000.0)
            })
            .collect(),
        _ => bail!("a timing lock was poisoned"),
    };
    latencies.sort_by(f64::total_cmp);
    if latencies.len() < total as usize {
        // Still print what arrived: the percentiles are then a floor, not a measure.
        println!(
            "\nWARNING   only {} of {total} messages reached the handler within 60 s of the run's end; \
             the figures below leave the rest out and understate the latency",
            latencies.len()
        );
    }
    Ok(latencies)
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn drop_database(admin_url: &str, database: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url)
        .await
        .context("connect as administrator")?;
    admin
        .execute(
            format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(database)
            )
            .as_str(),
        )
        .await
        .context("drop the scratch database")?;
    Ok(())
}
