//! A private Postgres 15 cluster for one invocation of the harness, so the
//! Postgres restart fault never touches the shared development cluster.
//!
//! `initdb` into a temporary directory, loopback only, on a free port,
//! trusting loopback connections (like the development cluster), no Unix
//! socket. Postgres refuses to run as root, so when the harness is root the
//! server binaries run as the `postgres` system user (`runuser`), which then
//! owns the data directory and the log file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use test_support::ports::free_port;

/// Where Debian's packages put the server binaries; `CONTRAIL_PG_BIN` overrides.
const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// `pg_ctl -w` gives up after this many seconds. More than pg_ctl's own 60:
/// a fast shutdown waits up to `authentication_timeout` (60 s) for a client
/// that opened a connection and has not yet sent its startup packet. The
/// long run met one in about one restart in ten (event-store listeners
/// suspended mid-reconnect, since fixed; see docs/event-store.md). A client
/// like that is an outage the services must ride out, not a failure of the
/// harness.
const PG_CTL_WAIT_SECS: &str = "180";

#[derive(Debug)]
pub struct PrivateCluster {
    port: u16,
    bin_dir: PathBuf,
    data_dir: PathBuf,
    log_path: PathBuf,
    /// `Some((uid, gid))` of `postgres` when the harness runs as root.
    run_as: Option<(u32, u32)>,
    running: bool,
    // Removed (with the data) when the cluster is dropped.
    _storage: tempfile::TempDir,
}

impl PrivateCluster {
    /// initdb, configure, start; returns once the server accepts connections.
    pub async fn start(log_path: &Path) -> anyhow::Result<Self> {
        let bin_dir = PathBuf::from(
            std::env::var("CONTRAIL_PG_BIN").unwrap_or_else(|_| DEFAULT_PG_BIN.into()),
        );
        if !bin_dir.join("initdb").exists() {
            bail!(
                "no initdb in {}; install postgresql-15 or set CONTRAIL_PG_BIN",
                bin_dir.display()
            );
        }
        let storage = tempfile::Builder::new()
            .prefix("contrail-chaos-pg-")
            .tempdir()
            .context("create the private cluster's directory")?;
        File::create(log_path).with_context(|| format!("create {}", log_path.display()))?;
        let run_as = if running_as_root()? {
            let ids = postgres_user_ids().await?;
            std::os::unix::fs::chown(storage.path(), Some(ids.0), Some(ids.1))
                .context("give the private cluster's directory to postgres")?;
            std::os::unix::fs::chown(log_path, Some(ids.0), Some(ids.1))
                .context("give the private cluster's log to postgres")?;
            Some(ids)
        } else {
            None
        };
        let port = free_port()?;
        let mut cluster = Self {
            port,
            bin_dir,
            data_dir: storage.path().join("data"),
            log_path: log_path.to_path_buf(),
            run_as,
            running: false,
            _storage: storage,
        };
        let data_dir = cluster.data_dir.display().to_string();
        cluster
            .run_tool(
                "initdb",
                &[
                    "-D",
                    &data_dir,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                    "--no-instructions",
                ],
            )
            .await
            .context("initdb the private cluster")?;
        let config_path = cluster.data_dir.join("postgresql.conf");
        let mut config = OpenOptions::new()
            .append(true)
            .open(&config_path)
            .with_context(|| format!("open {}", config_path.display()))?;
        // Four services and a second member at 6 connections, the checker
        // and the harness fit in the default 100. Connections are logged: a
        // fast shutdown once waited 60 s after its checkpoint (as long as
        // `authentication_timeout`), and the log should name the connection
        // it waited for when it happens again.
        writeln!(
            config,
            "\n# contrail chaos harness\nport = {port}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = ''\nmax_connections = 100\nshared_buffers = 128MB\n\
             log_connections = on\nlog_disconnections = on"
        )
        .context("configure the private cluster")?;
        drop(config);
        cluster.pg_ctl(&["start"]).await?;
        cluster.running = true;
        Ok(cluster)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's URL for `database`.
    pub fn admin_url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Writes `database` to `path` with `pg_dump --format=custom`, so a
    /// failed run's rows outlive the private cluster (`pg_restore` reads it).
    pub async fn dump(&self, database: &str, path: &Path) -> anyhow::Result<()> {
        let port = self.port.to_string();
        let dump = self
            .run_tool(
                "pg_dump",
                &[
                    "--format=custom",
                    "--host=127.0.0.1",
                    "--port",
                    &port,
                    "--username=postgres",
                    "--dbname",
                    database,
                ],
            )
            .await?;
        std::fs::write(path, dump).with_context(|| format!("write {}", path.display()))
    }

    /// `pg_ctl restart -m fast`: active transactions are rolled back, every
    /// client is disconnected, a shutdown checkpoint is written; then the
    /// server starts again. Returns once it accepts connections.
    pub async fn restart_fast(&mut self) -> anyhow::Result<()> {
        self.pg_ctl(&["restart", "-m", "fast"]).await
    }

    async fn pg_ctl(&self, action: &[&str]) -> anyhow::Result<()> {
        let data_dir = self.data_dir.display().to_string();
        let log_path = self.log_path.display().to_string();
        let mut args = vec![
            "-D",
            &data_dir,
            "-l",
            &log_path,
            "-w",
            "-t",
            PG_CTL_WAIT_SECS,
        ];
        args.extend_from_slice(action);
        self.run_tool("pg_ctl", &args)
            .await
            .with_context(|| format!("pg_ctl {}", action.join(" ")))?;
        Ok(())
    }

    /// Runs one of the cluster's tools (as `postgres` when the harness is
    /// root); returns what it wrote to stdout.
    async fn run_tool(&self, tool: &str, args: &[&str]) -> anyhow::Result<Vec<u8>> {
        let program = self.bin_dir.join(tool);
        let mut command = match self.run_as {
            Some(_) => {
                let mut command = tokio::process::Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(&program);
                command
            }
            None => tokio::process::Command::new(&program),
        };
        // The server inherits the working directory; make it one postgres can read.
        if let Some(storage) = self.data_dir.parent() {
            command.current_dir(storage);
        }
        let output = command
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .with_context(|| format!("run {}", program.display()))?;
        if !output.status.success() {
            bail!(
                "{tool} exited with {}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(output.stdout)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let data_dir = self.data_dir.display().to_string();
        let program = self.bin_dir.join("pg_ctl");
        let mut command = match self.run_as {
            Some(_) => {
                let mut command = std::process::Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(&program);
                command
            }
            None => std::process::Command::new(&program),
        };
        if let Some(storage) = self.data_dir.parent() {
            command.current_dir(storage);
        }
        let _ = command
            .args(["-D", &data_dir, "-m", "immediate", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `/proc/self` belongs to the process's effective user.
fn running_as_root() -> anyhow::Result<bool> {
    let metadata = std::fs::metadata("/proc/self").context("read /proc/self")?;
    Ok(metadata.uid() == 0)
}

async fn postgres_user_ids() -> anyhow::Result<(u32, u32)> {
    let id = |flag: &'static str| async move {
        let output = tokio::process::Command::new("id")
            .args([flag, "postgres"])
            .output()
            .await
            .context("run id")?;
        if !output.status.success() {
            bail!("there is no postgres system user to run the private cluster as");
        }
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse::<u32>()
            .context("read the postgres user's id")
    };
    Ok((id("-u").await?, id("-g").await?))
}
