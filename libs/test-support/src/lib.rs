//! Test harness shared by every crate's integration tests.
//!
//! - [`TestApp`] is one service running in-process for a test: spawned on
//!   port 0 against a fresh database with a topic prefix of its own, with an
//!   HTTP client, JSON `get`/`post` helpers and a pool as the service's role
//!   for looking behind its API. Each service's tests add their per-endpoint
//!   helpers to `TestApp<ThatService>`; the whole-system tests (`tests/system`)
//!   run four of them on one database and prefix;
//! - [`TestDatabase::create`] makes a fresh database with every service's
//!   role and schema provisioned exactly as `make up` does;
//! - [`spawn`] starts a service in-process against it on port 0 and returns
//!   once the listener is bound, so tests never sleep waiting for a server;
//!   [`spawn_process`] starts it in a process of its own, which a test can
//!   `kill -9` ([`process`]);
//! - [`fixtures`] are request bodies more than one crate's tests send;
//! - [`http`] reads JSON answers, [`wait`] polls until something holds,
//!   [`broker`] runs a private broker a test may stop and kill, [`redis`] gives
//!   the read cache's tests their Redis (and a refused or a silent one),
//!   [`proxy`] puts a link a test can cut between one client and its server.
//!
//! Tracing stays silent unless `TEST_LOG` is set. Test databases are named
//! `contrail_test_*` and are left behind for inspection; `make test` drops
//! the previous run's before starting.
//!
//! Environment: `CONTRAIL_TEST_ADMIN_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `CONTRAIL_TEST_BROKERS`
//! (default `127.0.0.1:9092`), `CONTRAIL_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`).

pub mod app;
pub mod broker;
pub mod conformance;
pub mod fixtures;
pub mod http;
mod outbox;
pub mod ports;
pub mod process;
pub mod proxy;
pub mod redis;
pub mod tokens;
pub mod wait;

pub use app::{Isolation, TestApp};
pub use http::{read_json, strings_of};
pub use wait::{eventually, poll_until};

use std::net::SocketAddr;
use std::str::FromStr;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use service_kit::db::SchemaOwner;
use service_kit::runtime::{launch, BoundService, Service};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgConnection, PgPool};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The role (and schema) a service owns: its name in snake case.
pub fn role_of(service_name: &str) -> String {
    service_name.replace('-', "_")
}

pub fn admin_url() -> String {
    std::env::var("CONTRAIL_TEST_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn brokers() -> String {
    std::env::var("CONTRAIL_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// A fresh database with every service's role and schema provisioned.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    admin: PgConnectOptions,
}

impl TestDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        service_kit::telemetry::init_for_tests();
        let name = format!("contrail_test_{}", uuid::Uuid::now_v7().simple());
        let admin_url = SecretString::from(admin_url());
        let owners: Vec<SchemaOwner> = contracts::services::ALL
            .iter()
            .map(|(_, role)| SchemaOwner {
                role: (*role).to_owned(),
                schema: (*role).to_owned(),
                password: None,
            })
            .collect();
        service_kit::db::provision(&admin_url, &name, &owners).await?;
        let admin =
            PgConnectOptions::from_str(admin_url.expose_secret()).context("parse the admin url")?;
        Ok(Self { name, admin })
    }

    /// The URL a service's role connects with.
    pub fn url_for(&self, role: &str) -> String {
        let port = self.admin.get_port();
        let host = self.admin.get_host();
        format!("postgres://{role}@{host}:{port}/{}", self.name)
    }

    /// The administrator's URL for this database: for tools that read every
    /// service's schema, like the invariant checker. Without a password, as
    /// [`url_for`](Self::url_for): test clusters trust loopback connections.
    pub fn admin_url(&self) -> String {
        self.url_for(self.admin.get_username())
    }

    /// A single connection as `role`, with `search_path` unset: for tests that probe privileges.
    pub async fn connect_as(&self, role: &str) -> anyhow::Result<PgConnection> {
        self.options_for(role)?
            .connect()
            .await
            .with_context(|| format!("connect as {role}"))
    }

    /// A pool connected as `role` with `search_path` set to its schema, as the
    /// service itself connects: for tests that look behind a service's API.
    pub async fn pool_as(&self, role: &str, max_connections: u32) -> anyhow::Result<PgPool> {
        let options = self.options_for(role)?.options([("search_path", role)]);
        PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .with_context(|| format!("connect a pool as {role}"))
    }

    /// A pool as `role`, like [`pool_as`](Self::pool_as), whose connections
    /// go through `proxy` instead of straight to the server: cut the proxy and
    /// this pool loses its database while every other client keeps it. It
    /// gives up acquiring after `acquire_timeout` and keeps no idle
    /// connection open, so a cut shows at once.
    pub async fn pool_through(
        &self,
        role: &str,
        max_connections: u32,
        proxy: &proxy::CuttableProxy,
        acquire_timeout: std::time::Duration,
    ) -> anyhow::Result<PgPool> {
        let address = proxy.address();
        let options = self
            .options_for(role)?
            .host(&address.ip().to_string())
            .port(address.port())
            .options([("search_path", role)]);
        PgPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await
            .with_context(|| format!("connect a pool as {role} through {address}"))
    }

    /// Where the server listens: the address a [`proxy::CuttableProxy`] forwards to.
    pub async fn server_address(&self) -> anyhow::Result<SocketAddr> {
        let target = format!("{}:{}", self.admin.get_host(), self.admin.get_port());
        let mut addresses = tokio::net::lookup_host(&target)
            .await
            .with_context(|| format!("resolve {target}"))?;
        addresses
            .next()
            .with_context(|| format!("{target} resolves to no address"))
    }

    fn options_for(&self, role: &str) -> anyhow::Result<PgConnectOptions> {
        PgConnectOptions::from_str(&self.url_for(role)).context("parse the role url")
    }
}

/// A service a test started: in-process, or in a process of its own that
/// the test can [`kill`](Self::kill). Dropping it stops the service at once
/// (a task is aborted, a process killed).
#[derive(Debug)]
pub struct TestService {
    pub address: SocketAddr,
    running: Running,
}

#[derive(Debug)]
enum Running {
    InProcess(InProcessService),
    Process(Box<process::ServiceProcess>),
}

/// A service on a task of the test's runtime; dropping it aborts the task.
#[derive(Debug)]
struct InProcessService {
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Drop for InProcessService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestService {
    /// Serves `bound` on a task of the test's runtime.
    pub(crate) fn serve(bound: BoundService) -> Self {
        let address = bound.local_addr();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.run_until(async move {
            let _ = shutdown_rx.await;
        }));
        Self {
            address,
            running: Running::InProcess(InProcessService {
                shutdown: Some(shutdown_tx),
                task,
            }),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Graceful stop: waits for in-flight work to drain and reports how the service ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        match self.running {
            Running::InProcess(mut service) => {
                if let Some(shutdown) = service.shutdown.take() {
                    let _ = shutdown.send(());
                }
                (&mut service.task).await.context("join the service task")?
            }
            Running::Process(process) => process.stop().await,
        }
    }

    /// `kill -9`: the service stops at once and runs none of its shutdown
    /// paths. Only a service in a process of its own can be killed; see
    /// [`process`] for why.
    pub async fn kill(self) -> anyhow::Result<()> {
        match self.running {
            Running::InProcess(_) => anyhow::bail!(
                "an in-process service cannot be killed honestly; start it in a process of its own"
            ),
            Running::Process(process) => process.kill().await,
        }
    }
}

/// The settings overrides that point a service at `database` and the test broker.
pub fn overrides_for<S: Service>(
    database: &TestDatabase,
    topic_prefix: &str,
) -> Vec<(&'static str, String)> {
    let role = role_of(S::NAME);
    vec![
        ("http.port", "0".to_owned()),
        ("database.url", database.url_for(&role)),
        ("database.max_connections", "4".to_owned()),
        ("database.startup_timeout_ms", "10000".to_owned()),
        ("kafka.brokers", brokers()),
        ("kafka.topic_prefix", topic_prefix.to_owned()),
        ("auth.public_key_pem", tokens::public_key_pem().to_owned()),
        // Read by booking (its calls to flight-inventory and payment); other
        // services ignore it.
        ("delegates.service_token", tokens::service(S::NAME)),
        (
            "idempotency.fingerprint_key",
            "a test-only fingerprint key".to_owned(),
        ),
    ]
}

/// Starts `S` in-process against `database`, with `extra` settings overrides on top.
pub async fn spawn<S: Service>(
    database: &TestDatabase,
    topic_prefix: &str,
    extra: &[(&'static str, String)],
) -> anyhow::Result<TestService> {
    let mut overrides = overrides_for::<S>(database, topic_prefix);
    overrides.extend_from_slice(extra);
    let settings: service_kit::settings::ServiceSettings<S::Domain> =
        service_kit::settings::load_with_overrides(S::NAME, S::DEFAULT_SETTINGS, &overrides)?;
    let bound = launch::<S>(settings).await?;
    Ok(TestService::serve(bound))
}

/// Starts `S` in a process of its own (see [`process`]) against `database`,
/// with `extra` settings overrides on top; returns once it listens.
pub async fn spawn_process<S: Service>(
    database: &TestDatabase,
    topic_prefix: &str,
    extra: &[(&'static str, String)],
) -> anyhow::Result<TestService> {
    let mut overrides = overrides_for::<S>(database, topic_prefix);
    overrides.extend_from_slice(extra);
    let process = process::spawn::<S>(&overrides).await?;
    Ok(TestService {
        address: process.address,
        running: Running::Process(Box::new(process)),
    })
}

/// Settings that reach `brokers` with `topic_prefix`, the rest at their
/// defaults: for tests that publish to or read a service's topics themselves.
/// Generic so that this crate needs no messaging dependency (which would make
/// messaging's own tests build a second copy of it): the caller's
/// `messaging::KafkaSettings` is the one type it is used as.
pub fn kafka_settings<T: serde::de::DeserializeOwned>(
    brokers: &str,
    topic_prefix: &str,
) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::json!({
        "brokers": brokers,
        "topic_prefix": topic_prefix,
    }))
    .context("build the test kafka settings")
}

/// A topic prefix no other test uses.
pub fn unique_topic_prefix() -> String {
    format!("t{}.", uuid::Uuid::now_v7().simple())
}
