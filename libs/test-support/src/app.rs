//! [`TestApp`]: one service running in-process for a test, with what the test
//! needs around it — the database and topic prefix it runs on, a pool as its
//! own role for looking behind its API, an HTTP client and JSON helpers.
//!
//! Service-specific helpers (one per endpoint) live in each service's tests as
//! extension traits on `TestApp<ThatService>`; nothing here knows a service.
//!
//! A harness that cannot do what a test asks (create the database, start the
//! service, reach it over HTTP) panics with the reason: a test that cannot set
//! up fails loudly, at the line that asked.

use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;

use anyhow::Context;
use reqwest::{Client, Method, RequestBuilder};
use serde_json::Value;
use service_kit::runtime::Service;
use sqlx::PgPool;
use tokio::sync::OnceCell;

use crate::http::read_json;
use crate::tokens;
use crate::{
    brokers, kafka_settings, role_of, spawn, spawn_process, unique_topic_prefix, TestDatabase,
    TestService,
};

/// Connections in the pool a test uses to look behind a service's API; the
/// concurrency tests race this many writers.
const POOL_CONNECTIONS: u32 = 16;

/// Where a [`TestApp`]'s service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A task of the test's own runtime: quick to start, cannot be killed.
    InProcess,
    /// A child process (see [`crate::process`]) the test can `kill -9`.
    Process,
}

/// A service `S` running on port 0 against a test database and broker,
/// in-process or in a process of its own; dropping it stops the service.
pub struct TestApp<S: Service> {
    /// The database the service runs on; it holds every service's schema.
    pub database: TestDatabase,
    /// The prefix of the service's topics and consumer groups.
    pub topic_prefix: String,
    pub client: Client,
    settings: Vec<(&'static str, String)>,
    isolation: Isolation,
    service: Option<TestService>,
    /// The port the service last listened on, which a restarted process keeps.
    last_port: Option<u16>,
    pool: OnceCell<PgPool>,
    _service: PhantomData<fn() -> S>,
}

impl<S: Service> fmt::Debug for TestApp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestApp")
            .field("service", &S::NAME)
            .field("address", &self.service.as_ref().map(|s| s.address))
            .field("database", &self.database.name)
            .field("topic_prefix", &self.topic_prefix)
            .finish_non_exhaustive()
    }
}

impl<S: Service> TestApp<S> {
    /// `S` with its default settings, on a fresh database and a topic prefix of its own.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// As [`spawn`](Self::spawn), with `settings` overriding the service's
    /// (`("saga.deadline_secs", "5".to_owned())`).
    pub async fn spawn_with(settings: &[(&'static str, String)]) -> Self {
        let database = must(TestDatabase::create().await, "create a test database");
        Self::spawn_on(database, unique_topic_prefix(), settings).await
    }

    /// `S` on a database and topic prefix it shares with other services: one
    /// part of a whole system.
    pub async fn spawn_on(
        database: TestDatabase,
        topic_prefix: String,
        settings: &[(&'static str, String)],
    ) -> Self {
        Self::spawn_isolated(Isolation::InProcess, database, topic_prefix, settings).await
    }

    /// As [`spawn_on`](Self::spawn_on), run as `isolation` says: a test that
    /// [`kill`](Self::kill)s the service needs [`Isolation::Process`].
    pub async fn spawn_isolated(
        isolation: Isolation,
        database: TestDatabase,
        topic_prefix: String,
        settings: &[(&'static str, String)],
    ) -> Self {
        let mut app = Self {
            database,
            topic_prefix,
            client: Client::new(),
            settings: settings.to_vec(),
            isolation,
            service: None,
            last_port: None,
            pool: OnceCell::new(),
            _service: PhantomData,
        };
        app.start().await;
        app
    }

    /// Starts the service (again, after [`shut_down`](Self::shut_down) or
    /// [`kill`](Self::kill)) on the same database, topics and settings;
    /// returns once it listens. An in-process service comes back on a new
    /// port; a process on the port it had, as a restarted pod keeps its
    /// Service's address, so the services that call it need not be told.
    pub async fn start(&mut self) {
        assert!(self.service.is_none(), "{} is already running", S::NAME);
        let service = match self.isolation {
            Isolation::InProcess => {
                spawn::<S>(&self.database, &self.topic_prefix, &self.settings).await
            }
            Isolation::Process => {
                let mut settings = self.settings.clone();
                if let Some(port) = self.last_port {
                    settings.push(("http.port", port.to_string()));
                }
                spawn_process::<S>(&self.database, &self.topic_prefix, &settings).await
            }
        };
        let service = must(service, format_args!("start {}", S::NAME));
        self.last_port = Some(service.address.port());
        self.service = Some(service);
    }

    /// Graceful stop, as SIGTERM: in-flight work drains, consumers leave their
    /// groups. The database and topics stay for [`start`](Self::start). Panics
    /// if the service ended with an error (a worker failed).
    pub async fn shut_down(&mut self) {
        if let Some(service) = self.service.take() {
            must(service.stop().await, format_args!("stop {}", S::NAME));
        }
    }

    /// `kill -9` of the service's process: no drain, no offset commit, no
    /// leaving the consumer group. The database and topics stay for
    /// [`start`](Self::start). Panics for a service started in-process (see
    /// [`Isolation`]).
    pub async fn kill(&mut self) {
        if let Some(service) = self.service.take() {
            must(service.kill().await, format_args!("kill {}", S::NAME));
        }
    }

    /// [`shut_down`](Self::shut_down), for good.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Where the service listens; panics while it is stopped.
    pub fn address(&self) -> SocketAddr {
        match &self.service {
            Some(service) => service.address,
            None => panic!("{} is not running", S::NAME),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address())
    }

    /// `method path`, to finish (headers, a raw body) and [`send`](Self::send):
    /// for what [`get`](Self::get) and [`post`](Self::post) do not cover.
    /// Sent with an admin's bearer token, so tests about one endpoint's
    /// behaviour need not be about authorization too; see
    /// [`request_as`](Self::request_as) for those that are.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_as(method, path, Some(&tokens::admin()))
    }

    /// `method path` with `token` as its bearer token, or with none.
    pub fn request_as(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.client.request(method, self.url(path));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A counter in the service's `/metrics`, summed over the series whose
    /// labels contain `labels` (`outcome="expired"`, say); 0 when none does.
    pub async fn counter(&self, name: &str, labels: &str) -> f64 {
        let response = must(
            self.client
                .get(self.url("/metrics"))
                .send()
                .await
                .context("send the request"),
            format_args!("reach {}'s /metrics", S::NAME),
        );
        let text = must(
            response.text().await.context("read the body"),
            format_args!("read {}'s /metrics", S::NAME),
        );
        text.lines()
            .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains(labels))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// `GET path` as the holder of `token` (or of none): the status and the JSON body.
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let (status, _, body) = self.send(self.request_as(Method::GET, path, token)).await;
        (status, body)
    }

    /// `POST path` with `body` as the holder of `token` (or of none).
    pub async fn post_as(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let request = self.request_as(Method::POST, path, token).json(&body);
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    /// Sends `request`: the status, the content type and the body as JSON
    /// (`null` where it is not JSON).
    pub async fn send(&self, request: RequestBuilder) -> (u16, String, Value) {
        let response = must(
            request.send().await.context("send the request"),
            format_args!("reach {}", S::NAME),
        );
        read_json(response).await
    }

    /// `GET path`: the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.send(self.request(Method::GET, path)).await;
        (status, body)
    }

    /// `POST path` with `body` as JSON: the status and the JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_with_headers(path, &[], body).await
    }

    /// `POST path` with `headers` (an `Idempotency-Key`, say) and `body` as
    /// JSON: the status and the JSON body.
    pub async fn post_with_headers(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> (u16, Value) {
        let mut request = self.request(Method::POST, path).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (status, _, body) = self.send(request).await;
        (status, body)
    }

    /// `GET path`, which must answer 200: its JSON body.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `GET path` of a listing, which must answer 200: its `items`.
    pub async fn get_items(&self, path: &str) -> Vec<Value> {
        let body = self.get_ok(path).await;
        match body["items"].as_array() {
            Some(items) => items.clone(),
            None => panic!("GET {path}: no items in {body}"),
        }
    }

    /// A pool connected as the service's own role, with its schema on the
    /// search path: for tests that look behind the API. One per app, made on
    /// first use.
    pub async fn pool(&self) -> PgPool {
        let role = role_of(S::NAME);
        let pool = self
            .pool
            .get_or_try_init(|| self.database.pool_as(&role, POOL_CONNECTIONS))
            .await;
        must(pool, format_args!("connect as {role}")).clone()
    }

    /// Settings that reach the service's broker with its topic prefix: for
    /// tests that publish to or read its topics themselves (as
    /// `messaging::KafkaSettings`; see [`kafka_settings`]).
    pub fn kafka<K: serde::de::DeserializeOwned>(&self) -> K {
        let brokers = self
            .settings
            .iter()
            .rev()
            .find(|(key, _)| *key == "kafka.brokers")
            .map_or_else(brokers, |(_, brokers)| brokers.clone());
        must(
            kafka_settings(&brokers, &self.topic_prefix),
            format_args!("reach {brokers}"),
        )
    }
}

/// The value, or a panic that says what could not be done and why.
fn must<T>(result: anyhow::Result<T>, what: impl fmt::Display) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error:#}"),
    }
}
