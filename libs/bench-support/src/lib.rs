//! What every benchmark in `tools/` shares, so each prints its figures next
//! to the same kind of baseline measured the same way:
//!
//! - [`ScratchDatabase`]: a database of the bench's own, created and dropped
//!   by it, so a bench never touches anything else on the cluster;
//! - [`pgbench_baseline`]: pgbench running a given one-statement workload on
//!   that database, the plain-Postgres figure the bench is compared with;
//! - [`Latencies`]: percentiles of measured durations;
//! - [`load_average`]: how busy the machine was, printed beside the figures;
//! - [`CpuShares`]: how much CPU each part of the system used during a run.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};
use uuid::Uuid;

/// A database of its own, so the bench never touches anything else.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin: PgConnectOptions,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates `<prefix>_<uuid>` through `admin_url` (a role that may create
    /// databases, connected to any database of the cluster).
    pub async fn create(admin_url: &str, prefix: &str) -> anyhow::Result<Self> {
        let admin = PgConnectOptions::from_str(admin_url).context("parse the admin url")?;
        let name = format!("{prefix}_{}", Uuid::now_v7().simple());
        let mut conn = admin.connect().await.context("connect as administrator")?;
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .context("create the scratch database")?;
        conn.close().await.ok();
        let url = with_database(admin_url, &name)?;
        Ok(Self { admin, name, url })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The admin url with the scratch database in place of its own.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn drop_database(&self) -> anyhow::Result<()> {
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
pub fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
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

/// What pgbench runs: `setup_sql` once (it creates the table), then
/// `transaction_sql` as each transaction, as fast as the clients can.
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    pub setup_sql: &'a str,
    pub transaction_sql: &'a str,
}

/// A one-row INSERT per transaction: the closest plain-Postgres analogue of
/// a business write (plus its outbox row, which the same transaction holds).
pub const SINGLE_ROW_INSERT: Workload<'static> = Workload {
    setup_sql: "CREATE TABLE IF NOT EXISTS public.pgbench_baseline ( \
                    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
                    payload jsonb NOT NULL)",
    transaction_sql: "INSERT INTO public.pgbench_baseline (payload) VALUES \
                      ('{\"hold_id\": \"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\", \"seats\": 1}');\n",
};

/// pgbench's figures for one run.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    pub tps: f64,
    pub latency_ms: f64,
    pub clients: usize,
    pub duration: Duration,
}

/// Runs pgbench with `clients` connections for `duration` (whole seconds,
/// at least one) against `database_url`, after the workload's setup.
pub async fn pgbench_baseline(
    database_url: &str,
    workload: Workload<'_>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Baseline> {
    let mut conn = PgConnection::connect(database_url)
        .await
        .context("connect to the baseline database")?;
    conn.execute(workload.setup_sql)
        .await
        .context("create the baseline table")?;
    conn.close().await.ok();

    let script = std::env::temp_dir().join(format!("pgbench-{}.sql", Uuid::now_v7().simple()));
    std::fs::write(&script, workload.transaction_sql).context("write the pgbench script")?;
    let script_arg = script.display().to_string();
    let baseline = run_pgbench(database_url, &["-n", "-f", &script_arg], clients, duration).await;
    std::fs::remove_file(&script).ok();
    baseline
}

/// pgbench's own TPC-B-like workload (three updates, a select and an insert
/// per transaction) at `scale`, initialised in `database_url` first: the
/// figure people quote for a Postgres, measured on this one.
pub async fn pgbench_tpcb_baseline(
    database_url: &str,
    scale: u32,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Baseline> {
    initialise_pgbench_tables(database_url, scale).await?;
    run_pgbench(database_url, &["-b", "tpcb-like"], clients, duration).await
}

/// pgbench's built-in select-only workload (`-S`: one primary-key SELECT
/// per transaction) at `scale`, initialised in `database_url` first: the
/// ceiling a read path on this Postgres is read against.
pub async fn pgbench_select_only_baseline(
    database_url: &str,
    scale: u32,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Baseline> {
    initialise_pgbench_tables(database_url, scale).await?;
    run_pgbench(database_url, &["-S"], clients, duration).await
}

/// `pgbench -i` at `scale`: the tables pgbench's built-in workloads use.
async fn initialise_pgbench_tables(database_url: &str, scale: u32) -> anyhow::Result<()> {
    let pgbench = pgbench_path();
    let output = tokio::process::Command::new(&pgbench)
        .args(["-i", "-q", "-s", &scale.max(1).to_string()])
        .arg(database_url)
        .output()
        .await
        .with_context(|| format!("run {pgbench} -i (install postgresql-contrib or set PGBENCH)"))?;
    if !output.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

async fn run_pgbench(
    database_url: &str,
    workload_args: &[&str],
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Baseline> {
    let seconds = duration.as_secs().max(1);
    let pgbench = pgbench_path();
    let output = tokio::process::Command::new(&pgbench)
        .args(["-c", &clients.to_string(), "-j", "2"])
        .args(["-T", &seconds.to_string()])
        .args(workload_args)
        .arg(database_url)
        .output()
        .await
        .with_context(|| format!("run {pgbench} (install postgresql-contrib or set PGBENCH)"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(Baseline {
        tps: number_after(&stdout, "tps =")?,
        latency_ms: number_after(&stdout, "latency average =")?,
        clients,
        duration: Duration::from_secs(seconds),
    })
}

/// The number following `prefix` on the first line that starts with it.
fn number_after(stdout: &str, prefix: &str) -> anyhow::Result<f64> {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .with_context(|| format!("no {prefix:?} in pgbench output:\n{stdout}"))
}

/// `PGBENCH` if set, else `pgbench` on `PATH`, else Debian's versioned
/// install (`/usr/lib/postgresql/<version>/bin/pgbench`), which is not on
/// `PATH` by default.
pub fn pgbench_path() -> String {
    if let Ok(path) = std::env::var("PGBENCH") {
        return path;
    }
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("pgbench").is_file())
    });
    if on_path {
        return "pgbench".to_owned();
    }
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin/pgbench"))
        .find(|path| path.is_file())
        .map_or_else(|| "pgbench".to_owned(), |path| path.display().to_string())
}

/// The 1, 5 and 15 minute load averages, as `uptime` prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Measured durations, sorted once so percentiles are lookups.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<Duration>);

impl From<Vec<Duration>> for Latencies {
    fn from(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }
}

impl Latencies {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The nearest-rank percentile in milliseconds; NaN when nothing was measured.
    pub fn percentile_ms(&self, quantile: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let index = ((self.0.len() - 1) as f64 * quantile.clamp(0.0, 1.0)).round() as usize;
        self.0[index].as_secs_f64() * 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.percentile_ms(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_keeps_its_parameters_when_the_database_is_replaced() {
        assert_eq!(
            with_database(
                "postgres://postgres@127.0.0.1:5432/contrail?sslmode=disable",
                "x"
            )
            .ok()
            .as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/x?sslmode=disable")
        );
        assert!(with_database("postgres://postgres@127.0.0.1:5432", "x").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank_over_sorted_samples() {
        let latencies = Latencies::from(
            (1..=100)
                .rev()
                .map(Duration::from_millis)
                .collect::<Vec<_>>(),
        );
        assert_eq!(latencies.percentile_ms(0.5).round(), 51.0);
        assert_eq!(latencies.percentile_ms(0.99).round(), 99.0);
        assert_eq!(latencies.max_ms().round(), 100.0);
        assert!(Latencies::default().percentile_ms(0.5).is_nan());
    }

    #[test]
    fn pgbench_figures_are_read_from_its_summary() {
        let stdout = "number of failed transactions: 0 (0.000%)\nlatency average = 1.234 ms\ntps = 3210.5 (without initial connection time)\n";
        assert_eq!(number_after(stdout, "tps =").ok(), Some(3210.5));
        assert_eq!(number_after(stdout, "latency average =").ok(), Some(1.234));
        assert!(number_after("nothing", "tps =").is_err());
    }
}

/// CPU time used by groups of processes between two readings, from
/// `/proc/<pid>/stat`: which part of the system a run kept busy.
#[derive(Debug, Clone)]
pub struct CpuShares {
    taken_at: std::time::Instant,
    ticks: std::collections::BTreeMap<&'static str, u64>,
}

/// The groups of processes a run is measured by.
const CPU_GROUPS: &[&str] = &[
    "postgres",
    "kafka",
    "booking",
    "flight-inventory",
    "payment",
    "notification",
    "loadgen",
];

impl CpuShares {
    /// Reads every process's CPU time now.
    pub fn read() -> Self {
        let mut ticks = std::collections::BTreeMap::new();
        let processes = std::fs::read_dir("/proc").into_iter().flatten().flatten();
        for entry in processes {
            let path = entry.path();
            let Some(group) = std::fs::read(path.join("cmdline"))
                .ok()
                .and_then(|cmdline| cpu_group(&cmdline))
            else {
                continue;
            };
            let Some(used) = std::fs::read_to_string(path.join("stat"))
                .ok()
                .and_then(|stat| cpu_ticks(&stat))
            else {
                continue;
            };
            *ticks.entry(group).or_insert(0) += used;
        }
        Self {
            taken_at: std::time::Instant::now(),
            ticks,
        }
    }

    /// Cores each group kept busy on average since `earlier` (1.0 = one
    /// core all the time), largest first. A process that started or ended
    /// in between counts only for what the later reading saw.
    pub fn since(&self, earlier: &Self) -> Vec<(&'static str, f64)> {
        let seconds = self.taken_at.duration_since(earlier.taken_at).as_secs_f64();
        if seconds <= 0.0 {
            return Vec::new();
        }
        let mut shares: Vec<(&'static str, f64)> = self
            .ticks
            .iter()
            .map(|(group, now)| {
                let before = earlier.ticks.get(group).copied().unwrap_or(0);
                let cores = now.saturating_sub(before) as f64 / CLOCK_TICKS_PER_SECOND / seconds;
                (*group, cores)
            })
            .collect();
        shares.sort_by(|a, b| b.1.total_cmp(&a.1));
        shares
    }
}

/// `USER_HZ`, 100 on every Linux this runs on.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// Which group a process belongs to, from its command line: a Postgres
/// backend renames itself (`postgres: 15/contrail: booking …`), the broker is
/// a JVM known by its main class, a service or tool by its binary's name.
fn cpu_group(cmdline: &[u8]) -> Option<&'static str> {
    let mut arguments = cmdline.split(|byte| *byte == 0);
    let program = arguments.next()?;
    if program.starts_with(b"postgres:") {
        return Some("postgres");
    }
    let program_name = program.rsplit(|byte| *byte == b'/').next()?;
    if program_name == b"java" {
        return arguments
            .any(|argument| argument == b"kafka.Kafka")
            .then_some("kafka");
    }
    CPU_GROUPS
        .iter()
        .copied()
        .find(|group| group.as_bytes() == program_name)
}

/// utime + stime from a `/proc/<pid>/stat` line (fields 14 and 15, counted
/// after the parenthesised command name, which may contain spaces).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

#[cfg(test)]
mod cpu_tests {
    use super::*;

    #[test]
    fn processes_are_grouped_by_what_they_run() {
        assert_eq!(
            cpu_group(b"/usr/lib/postgresql/15/bin/postgres\0-D\0/var\0"),
            Some("postgres")
        );
        assert_eq!(
            cpu_group(b"postgres: 15/contrail: booking contrail 127.0.0.1(5) idle\0"),
            Some("postgres")
        );
        assert_eq!(
            cpu_group(b"java\0-Xmx768m\0-cp\0libs/*\0kafka.Kafka\0server.properties\0"),
            Some("kafka")
        );
        assert_eq!(
            cpu_group(b"/x/target/release/flight-inventory\0serve\0"),
            Some("flight-inventory")
        );
        assert_eq!(cpu_group(b"bash\0scripts/kafka-broker.sh\0run\0"), None);
        assert_eq!(cpu_group(b"java\0-cp\0x\0org.other.Main\0"), None);
    }

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "42 (tokio (worker)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(cpu_ticks(stat), Some(300));
    }
}
