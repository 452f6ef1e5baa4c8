//! Contrail's cross-service invariants, checked against a running system.
//!
//! The checker is an auditor: it connects to the `contrail` database as the
//! cluster administrator and reads every service's schema, on purpose and
//! read-only (one `READ ONLY` snapshot transaction), the way a DBA audit
//! would. No service ever does this — each owns its schema and has no
//! privilege on the others'. Flight seats come from flight-inventory's API,
//! because its event store is the truth and only it folds those events.
//!
//! Parts:
//! - [`rows`]: the fetched data, plain structs;
//! - [`checks`]: each invariant as a pure function over those rows;
//! - [`fetch`]: the queries and HTTP calls that fill them;
//! - [`report`]: the table and JSON the binary and `loadgen` print.
//!
//! [`Checker::run`] first waits (bounded) for the system to settle — no saga
//! running or compensating, no notification waiting for delivery, no outbox
//! row unpublished — then checks.

pub mod checks;
pub mod fetch;
pub mod report;
pub mod rows;

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use uuid::Uuid;

pub use checks::{CheckResult, DeadlineAllowance, Outage};
pub use report::Report;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/contrail";
pub const DEFAULT_INVENTORY_URL: &str = "http://127.0.0.1:8081";

/// How often the settle phase looks again.
const SETTLE_POLL: Duration = Duration::from_millis(500);
/// How many still-open sagas the settle report names.
const OPEN_SAGAS_LISTED: i64 = 10;

#[derive(Debug, Clone)]
pub struct CheckerSettings {
    /// An administrator's url for the `contrail` database.
    pub database_url: String,
    pub inventory_url: String,
    /// The longest to wait for open sagas, pending deliveries and
    /// unpublished outbox rows.
    pub settle_timeout: Duration,
    /// How late after its deadline an unpivoted saga may finish; see
    /// [`checks::sagas_within_deadline`].
    pub deadline: DeadlineAllowance,
    /// The bearer token for flight-inventory's API; `None`: an admin token
    /// from the development issuer (or `CONTRAIL_TOKEN`).
    pub token: Option<String>,
}

impl Default for CheckerSettings {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            inventory_url: DEFAULT_INVENTORY_URL.to_owned(),
            settle_timeout: Duration::from_secs(120),
            deadline: DeadlineAllowance::grace(TimeDelta::seconds(10)),
            token: None,
        }
    }
}

/// What the settle phase saw.
#[derive(Debug, Clone, Serialize)]
pub struct SettleReport {
    pub settled: bool,
    pub waited_ms: u128,
    pub open_sagas: i64,
    /// The oldest of them: (saga id, status, started at).
    pub oldest_open: Vec<(Uuid, String, DateTime<Utc>)>,
    /// Notifications recorded but not yet delivered or failed.
    pub pending_deliveries: i64,
    pub unpublished_outbox_rows: i64,
}

#[derive(Debug)]
pub struct Checker {
    settings: CheckerSettings,
    pool: PgPool,
    http: reqwest::Client,
}

impl Checker {
    pub async fn connect(settings: CheckerSettings) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(&settings.database_url)
            .context("parse the database url")?
            .application_name("invariant-checker");
        // Two connections: the audit snapshot and the settle polls never
        // overlap, and the cluster's 100 connections are shared.
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .context("connect to the contrail database as the auditor")?;
        // flight-inventory's API wants a bearer token like any caller's.
        let token = match &settings.token {
            Some(token) => token.clone(),
            None => service_kit::auth::development::admin_token(
                std::path::Path::new(service_kit::auth::development::DIR),
                1,
            )?,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .default_headers(bearer(&token)?)
            .build()
            .context("build the HTTP client")?;
        Ok(Self {
            settings,
            pool,
            http,
        })
    }

    /// Waits until no saga is running or compensating, no notification is
    /// waiting for delivery and every outbox row is published, or until the
    /// settle timeout; reports what is still open.
    ///
    /// Work that outlives its saga counts: notification's dispatcher
    /// delivers after the saga's notify step replied, and each delivery
    /// writes an event to the outbox. Settling on sagas and the outbox alone
    /// let a check run between two of those writes and report a row that
    /// was about to be published (chaos seed 31301, a 24 s database cut).
    pub async fn wait_until_settled(&self, timeout: Duration) -> anyhow::Result<SettleReport> {
        let started = Instant::now();
        loop {
            let (open_sagas, oldest_open) =
                fetch::open_sagas(&self.pool, OPEN_SAGAS_LISTED).await?;
            let pending_deliveries = fetch::pending_deliveries(&self.pool).await?;
            // Read after the deliveries: a delivery settled between the two
            // reads has its event row counted here.
            let unpublished_outbox_rows = fetch::unpublished_outbox_rows(&self.pool).await?;
            let settled =
                open_sagas == 0 && pending_deliveries == 0 && unpublished_outbox_rows == 0;
            if settled || started.elapsed() >= timeout {
                return Ok(SettleReport {
                    settled,
                    waited_ms: started.elapsed().as_millis(),
                    open_sagas,
                    oldest_open,
                    pending_deliveries,
                    unpublished_outbox_rows,
                });
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }

    /// Every row, plus the seats of every flight that has bookings.
    pub async fn snapshot(&self) -> anyhow::Result<rows::Snapshot> {
        let mut snapshot = fetch::fetch_rows(&self.pool).await?;
        let flight_ids: BTreeSet<Uuid> = snapshot
            .bookings
            .iter()
            .map(|booking| booking.flight_id)
            .collect();
        let (flights, unreadable) = fetch::fetch_flight_seats(
            &self.http,
            &self.settings.inventory_url,
            flight_ids.into_iter().collect(),
        )
        .await;
        snapshot.flights = flights;
        snapshot.unreadable_flights = unreadable;
        Ok(snapshot)
    }

    /// Settle, then check every invariant.
    pub async fn run(&self) -> anyhow::Result<Report> {
        let settle = self
            .wait_until_settled(self.settings.settle_timeout)
            .await?;
        let snapshot = self.snapshot().await?;
        let checks = checks::check_all(&snapshot, &self.settings.deadline);
        Ok(Report::new(settle, checks))
    }
}

/// `Authorization: Bearer token`, marked sensitive so it is never printed.
pub fn bearer(token: &str) -> anyhow::Result<reqwest::header::HeaderMap> {
    let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .context("a bearer token is header text")?;
    value.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Ok(headers)
}
