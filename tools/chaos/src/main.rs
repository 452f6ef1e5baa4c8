//! `chaos`: the real services as separate processes on a private Kafka
//! broker and a private Postgres cluster, bookings flowing through the public
//! API, faults injected at moments drawn from a printed seed, and the
//! cross-service invariants checked after every run. A violation stops the
//! harness with the seed, the fault schedule and the checker's report.
//!
//! Everything it starts listens on 127.0.0.1 and is stopped when it ends;
//! runs, bookings, rate and total time are bounded whatever the arguments say.
#![allow(clippy::print_stdout)]

mod faults;
mod postgres;
mod report;
mod rng;
mod services;
mod stack;
mod traffic;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use invariant_checker::{Checker, CheckerSettings, DeadlineAllowance, Outage};
use loadgen::Targets;

use crate::faults::{FaultContext, FaultKind, FaultRecord};
use crate::report::{RunSummary, Summary};
use crate::rng::SeededRng;
use crate::services::Service;
use crate::stack::{Binaries, Infrastructure, RunStack};

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// The seed every run's schedule is drawn from (run N uses seed + N);
    /// printed, so a failing invocation can be replayed. Default: the clock.
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, default_value_t = 5)]
    runs: u64,
    /// Bookings per run.
    #[arg(long, default_value_t = 200)]
    bookings: u64,
    /// Bookings sent per second.
    #[arg(long, default_value_t = 5)]
    rate: u64,
    /// The fault kinds to draw from.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kill-service,kill-broker,restart-postgres,cut-database,rebalance,duplicates,previous-release"
    )]
    faults: Vec<FaultKind>,
    /// Faults per run; by default one of each enabled kind.
    #[arg(long)]
    faults_per_run: Option<usize>,
    /// Stop starting runs after this long.
    #[arg(long, default_value_t = 60)]
    max_minutes: u64,
    /// The longest the checker waits for open sagas before checking.
    #[arg(long, default_value_t = 180)]
    settle_timeout_secs: u64,
    /// Where the service binaries are; default: next to this one.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Where the previous release's service binaries are, for the
    /// previous-release fault (`scripts/previous-release.sh` builds them).
    #[arg(long)]
    previous_bin_dir: Option<PathBuf>,
    /// Logs and reports go to <out-dir>/<seed>/.
    #[arg(long, default_value = ".local/chaos")]
    out_dir: PathBuf,
}

const MAX_RUNS: u64 = 1_000;
const MAX_BOOKINGS: u64 = 10_000;
const MAX_RATE: u64 = 200;
const MAX_FAULTS_PER_RUN: usize = 20;
const MAX_MINUTES: u64 = 24 * 60;
/// Customers the traffic is spread over, each credited with miles.
const CUSTOMERS: usize = 20;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let finished = FinishedRuns::default();
    // Interrupted, the run is dropped where it stands: dropping it kills the
    // services and the broker and stops the private cluster. The runs that
    // had finished are still summed up: a long invocation stopped early
    // keeps its figures.
    let code = tokio::select! {
        outcome = run(args, finished.clone()) => match outcome {
            Ok(code) => code,
            Err(error) => {
                println!("chaos: error: {error:#}");
                ExitCode::FAILURE
            }
        },
        signal = interrupted() => {
            println!("chaos: {signal}; stopping everything the harness started");
            ExitCode::FAILURE
        }
    };
    if code == ExitCode::FAILURE {
        finished.print_unless_printed();
    }
    code
}

/// The summary of the runs finished so far, for an invocation that stops
/// without printing its own (interrupted, or an error of the harness).
/// Emptied once the invocation has printed it itself.
#[derive(Debug, Clone, Default)]
struct FinishedRuns(Arc<std::sync::Mutex<Option<(Summary, PathBuf)>>>);

impl FinishedRuns {
    fn record(&self, summary: &Summary, out_dir: &std::path::Path) {
        if let Ok(mut finished) = self.0.lock() {
            *finished = Some((summary.clone(), out_dir.to_path_buf()));
        }
    }

    /// The invocation printed its own summary: nothing is left to print.
    fn mark_printed(&self) {
        if let Ok(mut finished) = self.0.lock() {
            *finished = None;
        }
    }

    fn print_unless_printed(&self) {
        let Ok(finished) = self.0.lock() else { return };
        let Some((summary, out_dir)) = finished.as_ref() else {
            return;
        };
        println!("chaos: summary of the {} finished runs", summary.runs.len());
        summary.print();
        if let Err(error) = summary.write(out_dir) {
            println!("chaos: could not write the summary: {error:#}");
        }
    }
}

/// SIGINT or SIGTERM, by name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without handlers the default action (exit) remains; wait forever.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => "interrupted (SIGINT)",
        _ = terminate.recv() => "terminated (SIGTERM)",
    }
}

async fn run(args: Args, finished: FinishedRuns) -> anyhow::Result<ExitCode> {
    if args.runs == 0 || args.runs > MAX_RUNS {
        bail!("--runs must be 1..={MAX_RUNS}");
    }
    if args.bookings == 0 || args.bookings > MAX_BOOKINGS {
        bail!("--bookings must be 1..={MAX_BOOKINGS}");
    }
    if args.rate == 0 || args.rate > MAX_RATE {
        bail!("--rate must be 1..={MAX_RATE}");
    }
    let faults_per_run = args.faults_per_run.unwrap_or(args.faults.len());
    if faults_per_run > MAX_FAULTS_PER_RUN {
        bail!("--faults-per-run must be at most {MAX_FAULTS_PER_RUN}");
    }
    let max_time = Duration::from_secs(60 * args.max_minutes.clamp(1, MAX_MINUTES));
    let seed = match args.seed {
        Some(seed) => seed,
        None => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("read the clock")?
                .as_micros() as u64
                % 1_000_000_000
        }
    };
    let binaries = Binaries {
        current: stack::locate_binaries(args.bin_dir.clone())?,
        previous: match &args.previous_bin_dir {
            Some(dir) => Some(stack::locate_binaries(Some(dir.clone()))?),
            None if args.faults.contains(&FaultKind::PreviousRelease) => bail!(
                "the previous-release fault needs --previous-bin-dir (scripts/chaos.sh builds it)"
            ),
            None => None,
        },
    };
    let out_dir =
        std::path::absolute(args.out_dir.join(seed.to_string())).context("resolve --out-dir")?;
    std::fs::create_dir_all(&out_dir).with_context(|| format!("create {}", out_dir.display()))?;
    let send_window = Duration::from_secs_f64(args.bookings as f64 / args.rate as f64);
    println!(
        "chaos: seed {seed} (replay: --seed {seed}); {} runs x {} bookings at {}/s, {faults_per_run} faults per run from {}; logs in {}",
        args.runs,
        args.bookings,
        args.rate,
        args.faults
            .iter()
            .map(|kind| kind.name())
            .collect::<Vec<_>>()
            .join(","),
        out_dir.display()
    );

    let started = Instant::now();
    let mut infrastructure = Infrastructure::start(&out_dir).await?;
    // The harness schedules flights and books for many customers: an admin.
    let token = service_kit::auth::development::issuer(&infrastructure.auth_dir)?.issue(
        service_kit::auth::Scope::Admin,
        "chaos",
        TimeDelta::hours(24),
    )?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(45))
        .default_headers(invariant_checker::bearer(&token)?)
        .build()
        .context("build the HTTP client")?;
    println!(
        "chaos: private Postgres on 127.0.0.1:{}, private broker on {} (ready after {:.1}s)",
        infrastructure.postgres.port(),
        infrastructure.broker.address(),
        started.elapsed().as_secs_f64()
    );

    let mut summary = Summary::new(seed, &args.faults, args.bookings, args.rate);
    for run_index in 0..args.runs {
        if started.elapsed() > max_time {
            println!(
                "chaos: stopping after {run_index} runs: the {} minute bound is reached",
                args.max_minutes
            );
            break;
        }
        let run_seed = seed.wrapping_add(run_index);
        let mut rng = SeededRng::new(run_seed);
        let schedule = faults::plan(&mut rng, &args.faults, faults_per_run, send_window);
        println!(
            "\nrun {} of {} (seed {run_seed}; alone: {}):",
            run_index + 1,
            args.runs,
            replay_command(&args, run_seed, faults_per_run)
        );
        for fault in &schedule {
            println!("  planned t+{:>5.1}s {fault}", fault.at.as_secs_f64());
        }
        let log_dir = out_dir.join(format!("run-{}", run_index + 1));
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("create {}", log_dir.display()))?;
        let outcome = one_run(
            &mut infrastructure,
            &args,
            run_seed,
            &schedule,
            &log_dir,
            &binaries,
            &http,
        )
        .await;
        let run = match outcome {
            Ok(run) => run,
            Err(error) => {
                println!(
                    "\nchaos: run {} (seed {run_seed}) stopped: {error:#}",
                    run_index + 1
                );
                println!("fault schedule:");
                for fault in &schedule {
                    println!("  t+{:>5.1}s {fault}", fault.at.as_secs_f64());
                }
                println!(
                    "replay: {}",
                    replay_command(&args, run_seed, faults_per_run)
                );
                finished.mark_printed();
                summary.elapsed = started.elapsed();
                summary.print();
                summary.write(&out_dir)?;
                return Ok(ExitCode::FAILURE);
            }
        };
        let failed = !run.passed();
        summary.add(run);
        // Kept current, so that a summary printed early (a failure, an
        // interrupt) says how long the invocation ran.
        summary.elapsed = started.elapsed();
        finished.record(&summary, &out_dir);
        if failed {
            if let Some(run) = summary.runs.last() {
                run.print_failure(&replay_command(&args, run_seed, faults_per_run));
            }
            finished.mark_printed();
            summary.print();
            summary.write(&out_dir)?;
            return Ok(ExitCode::FAILURE);
        }
    }
    summary.elapsed = started.elapsed();
    summary.print();
    summary.write(&out_dir)?;
    Ok(ExitCode::SUCCESS)
}

/// The command that runs `run_seed`'s run again alone: every argument the
/// schedule depends on (the fault kinds and how many a run gets) included.
fn replay_command(args: &Args, run_seed: u64, faults_per_run: usize) -> String {
    format!(
        "scripts/chaos.sh --seed {run_seed} --runs 1 --bookings {} --rate {} --faults {} --faults-per-run {faults_per_run}",
        args.bookings,
        args.rate,
        faults_arg(&args.faults)
    )
}

fn faults_arg(kinds: &[FaultKind]) -> String {
    kinds
        .iter()
        .map(|kind| kind.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// One run: a fresh database and services, setup, traffic with the faults
/// injected meanwhile, then settle and check.
async fn one_run(
    infrastructure: &mut Infrastructure,
    args: &Args,
    run_seed: u64,
    schedule: &[faults::PlannedFault],
    log_dir: &std::path::Path,
    binaries: &Binaries,
    http: &reqwest::Client,
) -> anyhow::Result<RunSummary> {
    let run_started = Instant::now();
    let database = format!("chaos_{run_seed}");
    let topic_prefix = format!("chaos{run_seed}.");
    let mut stack = RunStack::start(
        infrastructure,
        &database,
        &topic_prefix,
        binaries,
        log_dir,
        http,
    )
    .await?;
    let targets = Targets {
        booking_url: stack.addresses.url(Service::Booking),
        inventory_url: stack.addresses.url(Service::FlightInventory),
        payment_url: stack.addresses.url(Service::Payment),
    };
    println!(
        "  stack ready after {:.1}s: booking {}, flight-inventory {}, payment {}, notification {}",
        run_started.elapsed().as_secs_f64(),
        targets.booking_url,
        targets.inventory_url,
        targets.payment_url,
        stack.addresses.url(Service::Notification)
    );
    let world = Arc::new(
        loadgen::setup::prepare(
            http,
            &targets,
            args.bookings * traffic::MAX_EXTRA_FACTOR,
            CUSTOMERS,
        )
        .await
        .context("schedule the run's flights and credit its customers")?,
    );

    let traffic_started = Instant::now();
    // The services stamp deadlines on this clock (one machine, one clock).
    let traffic_started_wall = Utc::now();
    let (faults_done_tx, faults_done_rx) = tokio::sync::watch::channel(false);
    let traffic = tokio::spawn(traffic::drive(
        http.clone(),
        targets.clone(),
        Arc::clone(&world),
        args.bookings,
        args.rate,
        format!("chaos-{run_seed}"),
        faults_done_rx,
    ));
    let mut context = FaultContext {
        infrastructure: &mut *infrastructure,
        stack: &mut stack,
        http,
        targets: &targets,
        world: &world,
        probe_prefix: format!("chaos-{run_seed}-probe"),
    };
    let injected = faults::inject_all(&mut context, schedule, traffic_started, &mut |line| {
        println!("{line}")
    })
    .await;
    let records = match injected {
        Ok(records) => records,
        Err(error) => {
            // The run is over: its bookings need not be waited for.
            traffic.abort();
            stack.stop().await.ok();
            return Err(error);
        }
    };
    // The driver only reads this; it has not gone away before being joined.
    let _ = faults_done_tx.send(true);
    let traffic = traffic.await.context("join the traffic task")?;
    println!(
        "  traffic done after {:.1}s: {} sent ({} asked for, the rest while faults were still being injected), {} accepted, {} refused (sold out), {} given up, {} requests retried",
        traffic_started.elapsed().as_secs_f64(),
        traffic.sent,
        args.bookings,
        traffic.accepted,
        traffic.refused,
        traffic.gave_up,
        traffic.retried_requests
    );

    stack.ensure_alive()?;
    let token = service_kit::auth::development::issuer(&infrastructure.auth_dir)?.issue(
        service_kit::auth::Scope::Admin,
        "chaos-checker",
        TimeDelta::hours(1),
    )?;
    let checker = Checker::connect(CheckerSettings {
        database_url: infrastructure.postgres.admin_url(&database),
        inventory_url: targets.inventory_url.clone(),
        settle_timeout: Duration::from_secs(args.settle_timeout_secs),
        deadline: DeadlineAllowance {
            grace: TimeDelta::seconds(10),
            outages: outages(traffic_started_wall, &records),
        },
        token: Some(token),
    })
    .await
    .context("connect the invariant checker")?;
    let report = checker.run().await.context("check the invariants")?;
    let snapshot = checker
        .snapshot()
        .await
        .context("read the bookings' outcomes")?;
    drop(checker);
    stack.stop().await.context("stop the run's services")?;
    let leaks = card_data_in_logs(log_dir)?;
    if !leaks.is_empty() {
        anyhow::bail!(
            "card data in the services' logs (a card number or the CVC {}):\n  {}",
            loadgen::mix::CVC,
            leaks.join("\n  ")
        );
    }
    let run = RunSummary::new(
        run_seed,
        schedule.to_vec(),
        records,
        traffic,
        report,
        &snapshot,
        run_started.elapsed(),
    );
    run.write(log_dir)?;
    println!("  {}", run.one_line());
    if run.passed() {
        infrastructure
            .forget_run(&database, &topic_prefix)
            .await
            .context("remove the passed run's database and topics")?;
    } else {
        // The cluster goes when the harness stops; the rows a violation is
        // about should not.
        let dump = log_dir.join("database.dump");
        match infrastructure.postgres.dump(&database, &dump).await {
            Ok(()) => println!(
                "  the run's database: {} (pg_restore --create --dbname postgres …)",
                dump.display()
            ),
            Err(error) => println!("  could not keep the run's database: {error:#}"),
        }
    }
    Ok(run)
}

/// When the run's faults held something down, on the wall clock: the
/// checker does not count that time against a saga's deadline.
fn outages(traffic_started: DateTime<Utc>, records: &[FaultRecord]) -> Vec<Outage> {
    records
        .iter()
        .filter_map(|record| {
            let from = traffic_started + TimeDelta::from_std(record.started_at).ok()?;
            let until = from + TimeDelta::from_std(record.outage?).ok()?;
            Some(Outage { from, until })
        })
        .collect()
}

/// Lines of the run's service logs that hold a card number the traffic sent,
/// or its CVC as a JSON string: there must be none.
fn card_data_in_logs(log_dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let cvc = format!("\"{}\"", loadgen::mix::CVC);
    let mut leaks = Vec::new();
    for entry in
        std::fs::read_dir(log_dir).with_context(|| format!("list {}", log_dir.display()))?
    {
        let path = entry.context("read a log entry")?.path();
        if path.extension().is_none_or(|extension| extension != "log") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        for line in text.lines() {
            if line.contains(&cvc)
                || loadgen::mix::ALL_CARDS
                    .iter()
                    .any(|card| line.contains(card))
            {
                leaks.push(format!("{}: {line}", path.display()));
            }
        }
    }
    Ok(leaks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_number_or_the_cvc_in_a_service_log_is_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("booking.log"),
            "{\"message\":\"booking accepted\",\"card\":\"…4242\"}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("payment.log"),
            "{\"time\":\"12:00:00.737Z\"}\n",
        )
        .unwrap();
        assert!(card_data_in_logs(dir.path()).unwrap().is_empty());

        std::fs::write(
            dir.path().join("payment.log"),
            "{\"body\":{\"number\":\"4000000000000002\"}}\n{\"cvc\":\"737\"}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("report.json"), "4242424242424242").unwrap();
        assert_eq!(card_data_in_logs(dir.path()).unwrap().len(), 2);
    }
}
