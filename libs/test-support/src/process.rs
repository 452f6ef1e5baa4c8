//! Services in processes of their own, so that a test can crash one the way
//! production crashes: `kill -9`, with no shutdown path run at all — no
//! offset commit, no leaving the consumer group, no drain, no `Drop`. The
//! kernel closes its sockets; Postgres rolls back its open transactions; the
//! broker notices only when the member's session times out.
//!
//! A crash cannot be faked in-process: dropping a runtime still runs every
//! task's destructors (the Kafka client's among them, which leaves the group
//! and commits what it stored), and freezing it keeps its transactions open
//! forever. So the test binary runs itself again: the child is the same
//! executable asked to run one ignored entry-point test,
//! [`ENTRY_POINT`], which each test crate that kills services declares:
//!
//! ```ignore
//! #[test]
//! #[ignore = "the entry point of a service process a crash test starts; not a test"]
//! fn service_process() {
//!     test_support::process::serve(&[ServiceEntry::of::<Booking>(), ...]);
//! }
//! ```
//!
//! The parent passes the service's name and settings in an environment
//! variable, reads the bound address from the child's first line of output,
//! and holds the child's stdin: closing it is the graceful stop (SIGTERM's
//! equivalent), `SIGKILL` the crash. A child whose parent dies sees its stdin
//! close and stops too, so an interrupted test run leaves no services behind.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use service_kit::runtime::{launch, Service};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// The name of the entry-point test a test crate declares.
pub const ENTRY_POINT: &str = "service_process";

/// Carries a [`ProcessRequest`] from parent to child.
const REQUEST_VARIABLE: &str = "CONTRAIL_TEST_SERVICE_PROCESS";

/// Starts the child's line announcing its address.
const LISTENING: &str = "contrail-test-service-listening ";

/// How long a child may take to migrate, build and bind: generous, because
/// tests never fail for a slow machine.
const START_PATIENCE: Duration = Duration::from_secs(180);

#[derive(Debug, Serialize, Deserialize)]
struct ProcessRequest {
    service: String,
    settings: Vec<(String, String)>,
}

/// A service the entry point can run: its name and how to serve it.
#[derive(Debug, Clone, Copy)]
pub struct ServiceEntry {
    name: &'static str,
    serve: fn(Vec<(String, String)>) -> anyhow::Result<()>,
}

impl ServiceEntry {
    pub fn of<S: Service>() -> Self {
        Self {
            name: S::NAME,
            serve: serve_service::<S>,
        }
    }
}

/// The entry point's body: when this process was started by [`spawn`], runs
/// the requested service until its stdin closes; otherwise (a run with
/// `--ignored` by hand) returns at once.
pub fn serve(entries: &[ServiceEntry]) {
    let Ok(request) = std::env::var(REQUEST_VARIABLE) else {
        return;
    };
    let outcome = serde_json::from_str::<ProcessRequest>(&request)
        .context("read the service process request")
        .and_then(|request| {
            let entry = entries
                .iter()
                .find(|entry| entry.name == request.service)
                .with_context(|| {
                    format!(
                        "no entry for service {} in this test crate",
                        request.service
                    )
                })?;
            (entry.serve)(request.settings)
        });
    if let Err(error) = outcome {
        // The parent sees this on its stderr and the process's failure.
        panic!("service process failed: {error:#}");
    }
}

fn serve_service<S: Service>(settings: Vec<(String, String)>) -> anyhow::Result<()> {
    service_kit::telemetry::init_for_tests();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("build the service process's runtime")?;
    runtime.block_on(async {
        let overrides: Vec<(&str, String)> = settings
            .iter()
            .map(|(key, value)| (key.as_str(), value.clone()))
            .collect();
        let settings: service_kit::settings::ServiceSettings<S::Domain> =
            service_kit::settings::load_with_overrides(S::NAME, S::DEFAULT_SETTINGS, &overrides)?;
        let bound = launch::<S>(settings).await?;
        announce(bound.local_addr())?;
        bound.run_until(stdin_closed()).await
    })
}

fn announce(address: SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "\n{LISTENING}{address}").context("announce the address")?;
    stdout.flush().context("flush the announcement")
}

/// Resolves when the parent closes our stdin (or dies).
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut sink = [0_u8; 64];
    while let Ok(read) = stdin.read(&mut sink).await {
        if read == 0 {
            break;
        }
    }
}

/// A service process started by [`spawn`].
#[derive(Debug)]
pub struct ServiceProcess {
    pub address: SocketAddr,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ServiceProcess {
    /// The graceful stop: closes the child's stdin, which it takes as its
    /// shutdown signal, and waits for it to drain and exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .await
            .context("wait for the service process")?;
        if !status.success() {
            bail!("the service process exited with {status}");
        }
        Ok(())
    }

    /// `kill -9`, and waits until the process is gone.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("kill the service process")
    }
}

/// Starts service `S` with `settings` in a child process running this test
/// binary's entry point; returns once the child listens.
pub async fn spawn<S: Service>(settings: &[(&str, String)]) -> anyhow::Result<ServiceProcess> {
    let request = ProcessRequest {
        service: S::NAME.to_owned(),
        settings: settings
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect(),
    };
    let executable = std::env::current_exe().context("find the test executable")?;
    let mut child = Command::new(executable)
        .args([
            ENTRY_POINT,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            REQUEST_VARIABLE,
            serde_json::to_string(&request).context("encode the service process request")?,
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start a {} process", S::NAME))?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().context("take the child's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let address = tokio::time::timeout(START_PATIENCE, async {
        while let Some(line) = lines.next_line().await.context("read the child's output")? {
            // libtest may have begun the line ("test service_process ... ").
            if let Some((_, address)) = line.split_once(LISTENING) {
                return address
                    .trim()
                    .parse::<SocketAddr>()
                    .context("parse the announced address");
            }
        }
        bail!("the {} process exited before listening", S::NAME)
    })
    .await
    .with_context(|| format!("the {} process did not listen in time", S::NAME))??;
    // The rest of its output (libtest's summary) is read and dropped, so the
    // child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(ServiceProcess {
        address,
        child,
        stdin,
    })
}
