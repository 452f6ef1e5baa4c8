//! What every benchmark in `tools/` shares, so each prints its figures next
//! to the same kind of baseline measured the same way:
//!
//! - [`ScratchDatabase`]: a database of the bench's own, created and dropped
//!   by it, so a bench never touches anything else on the cluster;
//! - [`pgbench_baseline`]: pgbench running a given one-statement workload on
//!   that database, the plain-Postgres figure the bench is compared with;
//! - [`Latencies`]: percentiles of measured durations;
//! - [`load_average`]: how busy the machine was, printed beside the figures.

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
    let seconds = duration.as_secs().max(1);
    let pgbench = pgbench_path();
    let output = tokio::process::Command::new(&pgbench)
        .args(["-n", "-c", &clients.to_string(), "-j", "2"])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(database_url)
        .output()
        .await
        .with_context(|| format!("run {pgbench} (install postgresql-contrib or set PGBENCH)"));
    std::fs::remove_file(&script).ok();
    let output = output?;
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
