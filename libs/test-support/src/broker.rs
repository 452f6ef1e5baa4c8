//! A private Kafka-protocol broker for tests that stop and restart it.
//!
//! Runs the same `tansu` binary `make up` installs (or `CONTRAIL_TANSU_BIN`),
//! on a free loopback port, with durable SQLite storage in a temporary
//! directory, so a restart keeps its topics, messages and committed offsets.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

#[derive(Debug)]
pub struct PrivateBroker {
    address: SocketAddr,
    storage: tempfile::TempDir,
    process: Option<Child>,
}

impl PrivateBroker {
    pub async fn start() -> anyhow::Result<Self> {
        let address = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("find a free port")?;
        let storage = tempfile::tempdir().context("create the broker's storage directory")?;
        let mut broker = Self {
            address,
            storage,
            process: None,
        };
        broker.restart().await?;
        Ok(broker)
    }

    /// `host:port`, for `kafka.brokers`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Stops the broker (SIGTERM, then SIGKILL after 5 s) and waits until it is gone.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut process) = self.process.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(process.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while process
            .try_wait()
            .context("poll the broker process")?
            .is_none()
        {
            if Instant::now() > deadline {
                process.kill().context("kill the broker")?;
                process.wait().context("reap the broker")?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Starts the broker again on the same port and storage; returns once it accepts connections.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        let url = format!("tcp://{}", self.address);
        let process = Command::new(tansu_binary())
            .current_dir(self.storage.path())
            .args(["broker", "--storage-engine", "sqlite://tansu.db"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "start {} (install it with `make up` or scripts/ensure-broker.sh)",
                    tansu_binary().display()
                )
            })?;
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&self.address, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "the private broker did not listen on {} within 30 s",
                    self.address
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CONTRAIL_TANSU_BIN") {
        return PathBuf::from(path);
    }
    let in_cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|home| home.join("bin").join("tansu"));
    match in_cargo_home {
        Some(path) if path.exists() => path,
        _ => PathBuf::from("tansu"),
    }
}
