//! `loadgen`: books flights through the public API at a fixed rate (open
//! loop), measures how long bookings take to settle and how many settle per
//! second, prints that next to a pgbench baseline from the same run on the
//! same Postgres; then sends a read mix (search, detail, availability,
//! booking status) with flight-inventory's read cache on and off, beside
//! pgbench's select-only baseline; and ends with the invariant checks.
//!
//! It schedules flights and credits customers of its own, talks only to
//! 127.0.0.1, and bounds every loop in count and time.
#![allow(clippy::print_stdout)]

mod traffic;

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use bench_support::{Baseline, CpuShares, ScratchDatabase};
use chrono::TimeDelta;
use clap::Parser;
use invariant_checker::{Checker, CheckerSettings, DeadlineAllowance};
use loadgen::reads::{self, ReadFigures, ReadPlan};
use loadgen::{mix, setup, Targets};
use sqlx::postgres::PgConnectOptions;

use crate::traffic::{StepFigures, StepPlan};

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    booking_url: String,
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    inventory_url: String,
    #[arg(long, default_value = "http://127.0.0.1:8082")]
    payment_url: String,
    /// An administrator's url for the contrail database: for the invariant
    /// checks (read-only) and the pgbench baseline (in a scratch database).
    #[arg(long, default_value = invariant_checker::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Bookings per second.
    #[arg(long, default_value_t = 150)]
    rate: u64,
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Rates to measure latency at, each for --seconds, before anything else
    /// (e.g. 50,150,300); overrides --rate.
    #[arg(long, value_delimiter = ',')]
    fixed_rates: Vec<u64>,
    /// Step the rate up until the system no longer keeps up.
    #[arg(long)]
    find_max: bool,
    /// The rates --find-max tries, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "50,100,150,200,300,400,600,800"
    )]
    steps: Vec<u64>,
    /// Seconds per --find-max step.
    #[arg(long, default_value_t = 10)]
    step_seconds: u64,
    /// A step keeps up only if its p99 request → settled latency is within this.
    #[arg(long, default_value_t = 5000)]
    p99_bound_ms: u64,
    /// Requests in flight at most; beyond it requests are not sent (and counted).
    #[arg(long, default_value_t = 2000)]
    max_in_flight: usize,
    /// `Prefer: wait` seconds for the settle call (booking honours up to 30).
    #[arg(long, default_value_t = 30)]
    wait_secs: u64,
    /// Customers the traffic is spread over, each credited with miles.
    #[arg(long, default_value_t = 100)]
    customers: usize,
    /// Length of the pgbench baseline; 0 skips it.
    #[arg(long, default_value_t = 10)]
    baseline_seconds: u64,
    /// pgbench clients for the baseline.
    #[arg(long, default_value_t = 4)]
    baseline_clients: usize,
    /// Seconds of the read mix, with the cache on and again off; 0 skips it.
    #[arg(long, default_value_t = 15)]
    read_seconds: u64,
    /// Readers of the read mix, each sending its next read when the last answered.
    #[arg(long, default_value_t = 32)]
    readers: usize,
    /// Skip the invariant checks at the end.
    #[arg(long)]
    skip_check: bool,
    #[arg(long, default_value_t = 180)]
    settle_timeout_secs: u64,
}

/// Hard bounds whatever the arguments say.
const MAX_RATE: u64 = 5_000;
const MAX_SECONDS: u64 = 600;
const MAX_STEPS: usize = 20;
/// Between --find-max steps: the backlog of one must not count against the next.
const SETTLE_BETWEEN_STEPS: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let targets = Targets {
        booking_url: loopback_http(&args.booking_url)?,
        inventory_url: loopback_http(&args.inventory_url)?,
        payment_url: loopback_http(&args.payment_url)?,
    };
    let database =
        PgConnectOptions::from_str(&args.database_url).context("parse --database-url")?;
    if database.get_host() != "127.0.0.1" {
        bail!(
            "--database-url must point at 127.0.0.1, not {}",
            database.get_host()
        );
    }
    if args.rate == 0 || args.rate > MAX_RATE || args.seconds == 0 || args.seconds > MAX_SECONDS {
        bail!("--rate must be 1..={MAX_RATE} and --seconds 1..={MAX_SECONDS}");
    }
    let steps = bounded_rates(&args.steps);
    let step_seconds = args.step_seconds.clamp(2, 120);

    // An admin token: the generator books for many customers and schedules flights.
    let token = service_kit::auth::development::admin_token(
        std::path::Path::new(service_kit::auth::development::DIR),
        24,
    )?;
    let http = reqwest::Client::builder()
        .default_headers(invariant_checker::bearer(&token)?)
        .timeout(Duration::from_secs(
            args.wait_secs.min(traffic::MAX_WAIT_SECS) + 10,
        ))
        .pool_max_idle_per_host(args.max_in_flight)
        .build()
        .context("build the HTTP client")?;
    let fixed_rates = bounded_rates(&args.fixed_rates);
    let fixed_planned: u64 = fixed_rates.iter().map(|rate| rate * args.seconds).sum();
    let planned = if args.find_max {
        fixed_planned + steps.iter().map(|rate| rate * step_seconds).sum::<u64>()
    } else if fixed_rates.is_empty() {
        args.rate * args.seconds
    } else {
        fixed_planned
    };

    println!(
        "loadgen: {} cores, load average {} at the start",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        bench_support::load_average()
    );
    let world = setup::prepare(&http, &targets, planned, args.customers.clamp(1, 1000))
        .await
        .context("set up the flights and customers")?;
    println!(
        "run {}: {} flights of {} seats, {} of {} seats (to sell out), {} customers with {} miles each",
        world.run_id,
        world.big_flights.len(),
        setup::BIG_FLIGHT_CAPACITY,
        world.small_flights.len(),
        setup::SMALL_FLIGHT_CAPACITY,
        world.customers.len(),
        setup::MILES_CREDITED
    );

    let baseline = if args.baseline_seconds > 0 {
        let baselines = measure_baselines(&args).await?;
        for baseline in [
            &baselines.single_row_insert,
            &baselines.tpcb,
            &baselines.select_only,
        ] {
            println!(
                "baseline: pgbench, {}, {} clients, {} s: {:.0} tps (avg {:.2} ms), load average {}",
                baseline.0,
                baseline.1.clients,
                baseline.1.duration.as_secs(),
                baseline.1.tps,
                baseline.1.latency_ms,
                bench_support::load_average()
            );
        }
        Some(baselines)
    } else {
        None
    };
    let select_only = baseline.as_ref().map(|b| b.select_only.1);
    let baseline = baseline.map(|b| b.single_row_insert.1);

    let checker_settings = CheckerSettings {
        database_url: args.database_url.clone(),
        inventory_url: targets.inventory_url.clone(),
        settle_timeout: Duration::from_secs(args.settle_timeout_secs),
        deadline: DeadlineAllowance::grace(TimeDelta::seconds(10)),
        token: None,
    };
    let checker = Checker::connect(checker_settings).await?;
    let plan = |rate: u64, seconds: u64, first_sequence: u64| StepPlan {
        rate,
        duration: Duration::from_secs(seconds),
        max_in_flight: args.max_in_flight.max(1),
        wait_secs: args.wait_secs,
        first_sequence,
    };

    let mut first_sequence = 0;
    for &rate in fixed_rates.iter() {
        let step = plan(rate, args.seconds, first_sequence);
        first_sequence += rate * args.seconds;
        let (figures, cpu) = measured_step(&http, &targets, &world, &step).await;
        println!("\nfixed rate {rate}/s for {} s:", args.seconds);
        print_figures(&figures, baseline.as_ref());
        print_cpu(&cpu);
        if let Some(why) = keeps_up(&figures, args.p99_bound_ms) {
            println!("  did not keep up: {why}");
        }
        settle_after_step(&checker).await?;
    }

    if args.find_max {
        let mut sustained = None;
        for rate in steps {
            let step = plan(rate, step_seconds, first_sequence);
            first_sequence += rate * step_seconds;
            let (figures, cpu) = measured_step(&http, &targets, &world, &step).await;
            let verdict = keeps_up(&figures, args.p99_bound_ms);
            println!(
                "\nstep {rate}/s for {step_seconds} s: {}",
                verdict.as_deref().unwrap_or("keeps up")
            );
            print_figures(&figures, baseline.as_ref());
            print_cpu(&cpu);
            settle_after_step(&checker).await?;
            if verdict.is_some() {
                break;
            }
            sustained = Some(rate);
        }
        match sustained {
            Some(rate) => println!(
                "\nhighest sustained rate: {rate} bookings/s (load average {})",
                bench_support::load_average()
            ),
            None => println!(
                "\nno step was sustained (load average {})",
                bench_support::load_average()
            ),
        }
    } else if fixed_rates.is_empty() {
        let step = plan(args.rate, args.seconds, 0);
        let (figures, cpu) = measured_step(&http, &targets, &world, &step).await;
        println!("\n{} bookings/s for {} s:", args.rate, args.seconds);
        print_figures(&figures, baseline.as_ref());
        print_cpu(&cpu);
        if let Some(why) = keeps_up(&figures, args.p99_bound_ms) {
            println!("  did not keep up: {why}");
        }
    }
    if args.read_seconds > 0 {
        read_mix(&http, &targets, &world, &args, select_only.as_ref()).await?;
    }
    println!(
        "\nload average at the end of the load: {}",
        bench_support::load_average()
    );

    if args.skip_check {
        return Ok(ExitCode::SUCCESS);
    }
    println!("\ninvariants:");
    let report = checker.run().await.context("check the invariants")?;
    print!("{}", report.render_table());
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The rates within bounds, at most [`MAX_STEPS`] of them.
fn bounded_rates(rates: &[u64]) -> Vec<u64> {
    rates
        .iter()
        .copied()
        .filter(|rate| (1..=MAX_RATE).contains(rate))
        .take(MAX_STEPS)
        .collect()
}

/// `url` without a trailing slash, if it is http on 127.0.0.1.
fn loopback_http(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("parse {url}"))?;
    if parsed.scheme() != "http" || parsed.host_str() != Some("127.0.0.1") {
        bail!("{url}: loadgen only targets http://127.0.0.1");
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// The plain-Postgres figures a run is read against, each labelled.
struct Baselines {
    single_row_insert: (&'static str, Baseline),
    tpcb: (&'static str, Baseline),
    select_only: (&'static str, Baseline),
}

/// The read mix with the cache on, then off, each beside pgbench's select-only figure.
async fn read_mix(
    http: &reqwest::Client,
    targets: &Targets,
    world: &setup::World,
    args: &Args,
    select_only: Option<&Baseline>,
) -> anyhow::Result<()> {
    let bookings = reads::some_bookings(http, targets, world, 200)
        .await
        .context("list bookings for the read mix")?;
    for cache_off in [false, true] {
        let plan = ReadPlan {
            readers: args.readers.clamp(1, 512),
            duration: Duration::from_secs(args.read_seconds.min(MAX_SECONDS)),
            cache_off,
        };
        let cpu_before = CpuShares::read();
        let figures = reads::run_reads(http, targets, world, &bookings, &plan).await;
        let cpu = CpuShares::read().since(&cpu_before);
        println!(
            "\nread mix, cache {}, {} readers for {} s ({} bookings to check):",
            if cache_off { "off" } else { "on" },
            plan.readers,
            plan.duration.as_secs(),
            bookings.len()
        );
        print_read_figures(&figures, select_only);
        print_cpu(&cpu);
    }
    Ok(())
}

fn print_read_figures(figures: &ReadFigures, select_only: Option<&Baseline>) {
    let line = |label: &str, latencies: &bench_support::Latencies| {
        println!(
            "  {label:<15} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.1} ms   ({} reads)",
            latencies.percentile_ms(0.50),
            latencies.percentile_ms(0.99),
            latencies.max_ms(),
            latencies.len()
        );
    };
    line("all reads", &figures.all);
    for (kind, latencies) in &figures.by_kind {
        line(kind.label(), latencies);
    }
    println!(
        "  throughput: {:.0} reads/s ({} errors of {} requests)",
        figures.throughput(),
        figures.errors,
        figures.requests
    );
    if let Some(baseline) = select_only {
        println!(
            "  beside the baseline: {:.0} reads/s = {:.3}× pgbench's {:.0} select-only tps",
            figures.throughput(),
            figures.throughput() / baseline.tps,
            baseline.tps
        );
    }
}

async fn measure_baselines(args: &Args) -> anyhow::Result<Baselines> {
    let scratch = ScratchDatabase::create(&args.database_url, "loadgen_baseline").await?;
    let clients = args.baseline_clients.clamp(1, 16);
    let duration = Duration::from_secs(args.baseline_seconds.min(60));
    let measured = async {
        let single_row_insert = bench_support::pgbench_baseline(
            scratch.url(),
            bench_support::SINGLE_ROW_INSERT,
            clients,
            duration,
        )
        .await
        .context("measure the one-row insert baseline")?;
        // Scale at least the client count, so the clients do not queue on one branch row.
        let tpcb =
            bench_support::pgbench_tpcb_baseline(scratch.url(), clients as u32, clients, duration)
                .await
                .context("measure the TPC-B baseline")?;
        let select_only = bench_support::pgbench_select_only_baseline(
            scratch.url(),
            clients as u32,
            clients,
            duration,
        )
        .await
        .context("measure the select-only baseline")?;
        anyhow::Ok(Baselines {
            single_row_insert: ("one-row INSERT per transaction", single_row_insert),
            tpcb: ("TPC-B (tpcb-like)", tpcb),
            select_only: ("select-only (-S)", select_only),
        })
    }
    .await;
    let dropped = scratch.drop_database().await;
    let baselines = measured?;
    dropped?;
    Ok(baselines)
}

/// Runs one step and reads the cores each part of the system used meanwhile.
async fn measured_step(
    http: &reqwest::Client,
    targets: &Targets,
    world: &setup::World,
    step: &StepPlan,
) -> (StepFigures, Vec<(&'static str, f64)>) {
    let cpu_before = CpuShares::read();
    let figures = traffic::run_step(http, targets, world, step).await;
    (figures, CpuShares::read().since(&cpu_before))
}

/// Lets the backlog of one step drain before the next, so it does not count against it.
async fn settle_after_step(checker: &Checker) -> anyhow::Result<()> {
    let settle = checker.wait_until_settled(SETTLE_BETWEEN_STEPS).await?;
    if !settle.settled {
        println!(
            "  not settled {} s after the step: {} sagas open",
            SETTLE_BETWEEN_STEPS.as_secs(),
            settle.open_sagas
        );
    }
    Ok(())
}

/// The cores each part of the system kept busy during a step.
fn print_cpu(shares: &[(&'static str, f64)]) {
    let total: f64 = shares.iter().map(|(_, cores)| cores).sum();
    let parts: Vec<String> = shares
        .iter()
        .filter(|(_, cores)| *cores >= 0.005)
        .map(|(group, cores)| format!("{group} {cores:.2}"))
        .collect();
    println!(
        "  cpu (cores of {}): {} — {total:.2} in all",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        parts.join(", ")
    );
}

/// Why a step did not keep up, or `None` if it did.
fn keeps_up(figures: &StepFigures, p99_bound_ms: u64) -> Option<String> {
    let target = figures.rate as f64;
    let mut reasons = Vec::new();
    if figures.steady_throughput < 0.95 * target {
        reasons.push(format!(
            "settled {:.0}/s < 95% of {}/s",
            figures.steady_throughput, figures.rate
        ));
    }
    let p99 = figures.terminal.percentile_ms(0.99);
    if p99.is_nan() || p99 > p99_bound_ms as f64 {
        reasons.push(format!("p99 {p99:.0} ms > {p99_bound_ms} ms"));
    }
    if figures.error_share() > 0.01 {
        reasons.push(format!(
            "{} errors ({:.1}% of requests)",
            figures.errors,
            100.0 * figures.error_share()
        ));
    }
    if figures.shed_at_cap > 0 {
        reasons.push(format!(
            "{} requests not sent: in-flight cap reached",
            figures.shed_at_cap
        ));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

fn print_figures(figures: &StepFigures, baseline: Option<&Baseline>) {
    let ms = |quantile| figures.terminal.percentile_ms(quantile);
    println!(
        "  sent {} ({} not sent: in-flight cap {}), peak in flight {}, sender at most {:.1} ms behind schedule",
        figures.sent,
        figures.shed_at_cap,
        if figures.shed_at_cap > 0 { "HIT" } else { "not hit" },
        figures.peak_in_flight,
        figures.max_send_lag.as_secs_f64() * 1000.0
    );
    println!(
        "  request → settled   p50 {:>8.1} ms   p95 {:>8.1} ms   p99 {:>8.1} ms   max {:>8.1} ms   ({} settled)",
        ms(0.50),
        ms(0.95),
        ms(0.99),
        figures.terminal.max_ms(),
        figures.terminal.len()
    );
    println!(
        "  request → accepted  p50 {:>8.1} ms   p95 {:>8.1} ms   p99 {:>8.1} ms   max {:>8.1} ms",
        figures.accept.percentile_ms(0.50),
        figures.accept.percentile_ms(0.95),
        figures.accept.percentile_ms(0.99),
        figures.accept.max_ms()
    );
    println!(
        "  throughput: {:.1} bookings settled/s (window shifted by the median latency; target {}/s), {} settled in all, last answer {:.1} s after the start",
        figures.steady_throughput,
        figures.rate,
        figures.settled,
        figures.elapsed.as_secs_f64()
    );
    if let Some(baseline) = baseline {
        println!(
            "  beside the baseline: {:.0} bookings/s = {:.3}× pgbench's {:.0} one-row tps",
            figures.steady_throughput,
            figures.steady_throughput / baseline.tps,
            baseline.tps
        );
    }
    println!("  outcomes ({} errors):", figures.errors);
    for (outcome, count) in &figures.outcomes {
        println!("    {count:>7}  {outcome}");
    }
    println!("  by scenario:");
    for ((scenario, outcome), count) in &figures.by_scenario {
        println!("    {count:>7}  {:<26} → {outcome}", scenario.label());
    }
    for (cancel, count) in &figures.cancellations {
        println!("    {count:>7}  {cancel}");
    }
}
