//! The four services as operating-system processes: the binaries `make up`
//! runs (`<service> serve`), configured only through their environment
//! variables, each on its own loopback port, logging to a file.
//!
//! [`ServiceProcess::kill9`] is `SIGKILL` ([`std::process::Child::kill`] on
//! Unix): no shutdown path runs, no offset is committed, nothing drains.

use service_kit::auth::development;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a debug build on a busy 2-core machine may take to become ready
/// (migrations, topic creation, the first broker metadata).
const READY_PATIENCE: Duration = Duration::from_secs(120);
/// SIGTERM, then SIGKILL after this long.
const STOP_PATIENCE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Service {
    FlightInventory,
    Payment,
    Notification,
    Booking,
}

impl Service {
    /// In start order: flight-inventory first, booking (which asks the
    /// others over HTTP) last, as `make up` starts them.
    pub const ALL: [Service; 4] = [
        Service::FlightInventory,
        Service::Payment,
        Service::Notification,
        Service::Booking,
    ];

    /// The binary's name, as in `contracts::services::ALL`.
    pub fn name(self) -> &'static str {
        match self {
            Self::FlightInventory => "flight-inventory",
            Self::Payment => "payment",
            Self::Notification => "notification",
            Self::Booking => "booking",
        }
    }

    /// Its database role and schema.
    pub fn role(self) -> String {
        test_support::role_of(self.name())
    }

    fn env_prefix(self) -> String {
        service_kit::settings::env_prefix(self.name())
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// What every process of one run shares.
#[derive(Debug, Clone)]
pub struct StackAddresses {
    /// The private cluster's port: the harness's own connections.
    pub postgres_port: u16,
    /// Where each service's processes reach Postgres: a proxy of its own in
    /// front of `postgres_port`, which the `cut-database` fault cuts.
    pub database_ports: BTreeMap<Service, u16>,
    pub database: String,
    pub brokers: String,
    pub topic_prefix: String,
    /// The first member's HTTP port, per service.
    pub ports: BTreeMap<Service, u16>,
    /// The token issuer's public key and booking's secrets, as files.
    pub auth_dir: PathBuf,
}

impl StackAddresses {
    /// The port `service` connects to Postgres on: its link if it has one.
    pub fn database_port(&self, service: Service) -> u16 {
        self.database_ports
            .get(&service)
            .copied()
            .unwrap_or(self.postgres_port)
    }

    pub fn url(&self, service: Service) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.ports.get(&service).copied().unwrap_or_default()
        )
    }
}

/// One process of a service: member 1; member 2, the second a rebalance
/// adds; member 3, the previous release's.
#[derive(Debug)]
pub struct ServiceProcess {
    pub service: Service,
    pub member: u8,
    pub port: u16,
    binary: PathBuf,
    environment: Vec<(String, String)>,
    log_path: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    pub fn new(
        service: Service,
        member: u8,
        port: u16,
        bin_dir: &Path,
        log_dir: &Path,
        stack: &StackAddresses,
    ) -> Self {
        let suffix = if member == 1 {
            String::new()
        } else {
            format!("-member{member}")
        };
        Self {
            service,
            member,
            port,
            binary: bin_dir.join(service.name()),
            environment: environment(service, port, stack),
            log_path: log_dir.join(format!("{}{suffix}.log", service.name())),
            child: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Runs the binary in `bin_dir` from the next [`spawn`](Self::spawn) on
    /// (another release of the same service).
    pub fn switch_binary(&mut self, bin_dir: &Path) {
        self.binary = bin_dir.join(self.service.name());
    }

    pub fn label(&self) -> String {
        match self.member {
            1 => self.service.name().to_owned(),
            3 => format!("{} (member 3, previous release)", self.service),
            member => format!("{} (member {member})", self.service),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process (appending to its log); does not wait for it.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("{} is running already", self.label());
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("open {}", self.log_path.display()))?;
        let stderr = log.try_clone().context("share the service's log file")?;
        let mut command = Command::new(&self.binary);
        command.arg("serve");
        // Nothing from the caller's environment may point a service elsewhere.
        let prefix = format!("{}_", self.service.env_prefix());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with(&prefix) {
                command.env_remove(&key);
            }
        }
        let child = command
            .envs(self.environment.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Polls `/health/ready` until it answers 200; fails if the process exits.
    pub async fn wait_ready(&mut self, http: &reqwest::Client) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let url = self.url("/health/ready");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().context("poll the service process")? {
                    self.child = None;
                    bail!(
                        "{} exited with {status} before it was ready; see {}",
                        self.label(),
                        self.log_path.display()
                    );
                }
            } else {
                bail!("{} is not running", self.label());
            }
            let ready = http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return Ok(started.elapsed());
            }
            if started.elapsed() > READY_PATIENCE {
                bail!(
                    "{} was not ready within {READY_PATIENCE:?}; see {}",
                    self.label(),
                    self.log_path.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The exit status if the process has ended on its own (it is then
    /// reaped and counts as not running).
    pub fn exited(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait().context("poll the service process")?;
        if status.is_some() {
            self.child = None;
        }
        Ok(status)
    }

    /// Whether the process has ended (a zombie not reaped yet), without
    /// reaping it: readable through a shared reference, from `/proc`.
    pub fn has_exited(&self) -> bool {
        let Some(pid) = self.pid() else {
            return true;
        };
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // "pid (comm) state …"; comm may hold spaces, the state follows its ')'.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => true,
        }
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// `kill -9`: SIGKILL, then reap it.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            bail!("{} is not running", self.label());
        };
        child
            .kill()
            .with_context(|| format!("kill -9 {}", self.label()))?;
        child.wait().context("reap the killed service")?;
        Ok(())
    }

    /// As an operator stops it: SIGTERM (the service drains, commits its
    /// offsets and leaves its consumer groups), SIGKILL after 20 s.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let terminated = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .context("send SIGTERM")?;
        if !terminated.success() {
            bail!("kill -TERM {} failed", child.id());
        }
        let deadline = Instant::now() + STOP_PATIENCE;
        while child.try_wait().context("poll the service")?.is_none() {
            if Instant::now() > deadline {
                child.kill().context("kill the service that did not stop")?;
                child.wait().context("reap the service")?;
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// The process's consumer counters from `/metrics`.
    pub async fn consumer_counts(&self, http: &reqwest::Client) -> anyhow::Result<ConsumerCounts> {
        let url = self.url("/metrics");
        let text = http
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .with_context(|| format!("GET {url}"))?
            .error_for_status()
            .with_context(|| format!("GET {url}"))?
            .text()
            .await
            .with_context(|| format!("read {url}"))?;
        Ok(ConsumerCounts::parse(&text))
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `consumer_messages_total`, summed over the process's consumers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ConsumerCounts {
    /// Every outcome: applied, duplicate, skipped, dead-lettered.
    pub handled: f64,
    /// Deliveries the inbox recognised as already applied.
    pub duplicates: f64,
}

impl ConsumerCounts {
    /// Reads the Prometheus text format; a process that has handled nothing
    /// yet has no such series, which reads as zero.
    pub fn parse(text: &str) -> Self {
        let mut counts = Self::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("consumer_messages_total") else {
                continue;
            };
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                continue;
            }
            let Some(value) = rest
                .rsplit(' ')
                .next()
                .and_then(|value| value.parse::<f64>().ok())
            else {
                continue;
            };
            counts.handled += value;
            if rest.contains("outcome=\"duplicate\"") {
                counts.duplicates += value;
            }
        }
        counts
    }
}

fn auth_file(stack: &StackAddresses, name: &str) -> String {
    stack.auth_dir.join(name).display().to_string()
}

/// The settings a service reads from its environment (`<PREFIX>__SECTION__KEY`).
fn environment(service: Service, port: u16, stack: &StackAddresses) -> Vec<(String, String)> {
    let prefix = service.env_prefix();
    let mut variables = vec![
        ("HTTP__HOST", "127.0.0.1".to_owned()),
        ("HTTP__PORT", port.to_string()),
        (
            "DATABASE__URL",
            format!(
                "postgres://{}@127.0.0.1:{}/{}",
                service.role(),
                stack.database_port(service),
                stack.database
            ),
        ),
        ("DATABASE__MAX_CONNECTIONS", "6".to_owned()),
        ("KAFKA__BROKERS", stack.brokers.clone()),
        ("KAFKA__TOPIC_PREFIX", stack.topic_prefix.clone()),
        (
            "AUTH__PUBLIC_KEY_FILE",
            auth_file(stack, development::PUBLIC_KEY),
        ),
    ];
    if service == Service::Booking {
        variables.push((
            "DELEGATES__SERVICE_TOKEN_FILE",
            auth_file(stack, development::SERVICE_TOKEN),
        ));
        variables.push((
            "IDEMPOTENCY__FINGERPRINT_KEY_FILE",
            auth_file(stack, development::FINGERPRINT_KEY),
        ));
        variables.push((
            "DELEGATES__INVENTORY_URL",
            stack.url(Service::FlightInventory),
        ));
        variables.push(("DELEGATES__PAYMENT_URL", stack.url(Service::Payment)));
        variables.push((
            "DELEGATES__NOTIFICATION_URL",
            stack.url(Service::Notification),
        ));
    }
    variables
        .into_iter()
        .map(|(key, value)| (format!("{prefix}__{key}"), value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_counters_are_summed_over_consumers_and_outcomes() {
        let text = "\
# TYPE consumer_messages_total counter
consumer_messages_total{consumer=\"inventory-commands\",outcome=\"applied\"} 12
consumer_messages_total{consumer=\"inventory-commands\",outcome=\"duplicate\"} 3
consumer_messages_total{consumer=\"flight-events\",outcome=\"skipped\"} 1
consumer_messages_totally_else 99
outbox_published_total 40
";
        let counts = ConsumerCounts::parse(text);
        assert_eq!(counts.handled, 16.0);
        assert_eq!(counts.duplicates, 3.0);
        assert_eq!(ConsumerCounts::parse(""), ConsumerCounts::default());
    }

    #[test]
    fn a_service_is_pointed_at_the_runs_stack_only_through_its_environment() {
        let stack = StackAddresses {
            postgres_port: 6000,
            database_ports: BTreeMap::from([(Service::FlightInventory, 6001)]),
            database: "chaos_1_0".to_owned(),
            brokers: "127.0.0.1:7000".to_owned(),
            topic_prefix: "chaos1.".to_owned(),
            ports: Service::ALL
                .iter()
                .zip(8000..)
                .map(|(service, port)| (*service, port))
                .collect(),
            auth_dir: "/run/auth".into(),
        };
        let variables: BTreeMap<String, String> = environment(Service::Booking, 8003, &stack)
            .into_iter()
            .collect();
        assert_eq!(variables["BOOKING__HTTP__PORT"], "8003");
        assert_eq!(
            variables["BOOKING__DATABASE__URL"],
            "postgres://booking@127.0.0.1:6000/chaos_1_0"
        );
        assert_eq!(variables["BOOKING__KAFKA__TOPIC_PREFIX"], "chaos1.");
        assert_eq!(
            variables["BOOKING__DELEGATES__SERVICE_TOKEN_FILE"],
            "/run/auth/booking.token"
        );
        assert_eq!(
            variables["BOOKING__DELEGATES__INVENTORY_URL"],
            "http://127.0.0.1:8000"
        );
        let inventory: BTreeMap<String, String> =
            environment(Service::FlightInventory, 8000, &stack)
                .into_iter()
                .collect();
        assert_eq!(
            inventory["FLIGHT_INVENTORY__DATABASE__URL"],
            "postgres://flight_inventory@127.0.0.1:6001/chaos_1_0",
            "a service with a link of its own reaches Postgres through it"
        );
        assert!(!inventory.contains_key("FLIGHT_INVENTORY__DELEGATES__INVENTORY_URL"));
    }
}
