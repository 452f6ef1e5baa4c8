//! A private Apache Kafka broker for tests that stop, kill and restart it.
//!
//! Runs the same broker `make up` runs (`scripts/kafka-broker.sh`: Apache
//! Kafka in KRaft mode from the Maven Central jars), on free loopback ports,
//! with its log directory in a temporary directory, so a restart keeps its
//! topics, messages and committed offsets. The script execs the JVM, so the
//! child's pid is the broker's: [`PrivateBroker::kill`] is a real `kill -9`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A single-node Kafka of its own, stopped (or killed) when dropped.
#[derive(Debug)]
pub struct PrivateBroker {
    port: u16,
    controller_port: u16,
    storage: tempfile::TempDir,
    process: Option<Child>,
}

/// How long a cold JVM on a busy 2-core machine may take to answer.
const START_PATIENCE: Duration = Duration::from_secs(120);
/// Kafka's controlled shutdown takes a few seconds; after this it is killed.
const STOP_PATIENCE: Duration = Duration::from_secs(30);

impl PrivateBroker {
    pub async fn start() -> anyhow::Result<Self> {
        // The broker's and its controller's.
        let [port, controller_port] = crate::ports::free_ports()?;
        let storage = tempfile::tempdir().context("create the broker's storage directory")?;
        let mut broker = Self {
            port,
            controller_port,
            storage,
            process: None,
        };
        broker.restart().await?;
        Ok(broker)
    }

    /// `host:port`, for `kafka.brokers`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker as an operator would (SIGTERM: a controlled shutdown),
    /// killing it if it has not exited within 30 s.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut process) = self.process.take() else {
            return Ok(());
        };
        let terminated = Command::new("kill")
            .arg("-TERM")
            .arg(process.id().to_string())
            .status()
            .context("send SIGTERM to the broker")?;
        if !terminated.success() {
            bail!("kill -TERM {} failed", process.id());
        }
        let deadline = Instant::now() + STOP_PATIENCE;
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

    /// Crashes the broker: SIGKILL, no controlled shutdown, no flush.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut process) = self.process.take() {
            process.kill().context("kill -9 the broker")?;
            process.wait().context("reap the broker")?;
        }
        Ok(())
    }

    /// Starts the broker (again) on the same ports and storage; returns once
    /// it answers a metadata request that lists itself.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        let log_path = self.storage.path().join("broker.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("open {}", log_path.display()))?;
        let stderr = log.try_clone().context("share the broker's log file")?;
        let script = repository_root().join("scripts/kafka-broker.sh");
        let process = Command::new("bash")
            .arg(&script)
            .arg("run")
            .arg(self.storage.path().join("kafka"))
            .arg(self.port.to_string())
            .arg(self.controller_port.to_string())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("start {}", script.display()))?;
        self.process = Some(process);

        let deadline = Instant::now() + START_PATIENCE;
        while !self.answers()? {
            if let Some(process) = self.process.as_mut() {
                if let Some(status) = process.try_wait().context("poll the broker process")? {
                    self.process = None;
                    bail!(
                        "the private broker exited with {status}:\n{}",
                        tail(&log_path)
                    );
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "the private broker did not answer on {} within {START_PATIENCE:?}:\n{}",
                    self.address(),
                    tail(&log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// The same probe `make up` uses: a Metadata request that lists a broker.
    fn answers(&self) -> anyhow::Result<bool> {
        let status = Command::new("python3")
            .arg(repository_root().join("scripts/broker-answers.py"))
            .arg("127.0.0.1")
            .arg(self.port.to_string())
            .status()
            .context("run scripts/broker-answers.py")?;
        Ok(status.success())
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

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
