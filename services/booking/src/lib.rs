//! booking: the public booking API and the orchestrator of the booking saga,
//! a routing slip run over Kafka across flight-inventory, payment and
//! notification.
//!
//! - [`api`]: the HTTP API (bookings, customers' bookings, operator sagas);
//! - [`operator`]: the operator's searches and views: sagas by status, age,
//!   flight and customer, a saga's timeline, every service's dead letters;
//! - [`console`]: the operator console, a web page over the operator API;
//! - [`request`]: the booking request, its validation and fingerprint;
//! - [`delegates`]: the synchronous questions booking asks before a saga
//!   starts (a quote from flight-inventory, a card token from payment);
//! - [`steps`]: the saga, step by step: itinerary, commands, replies, status;
//! - [`flight_cancellations`]: an airline's cancellation cancels the flight's bookings;
//! - [`watch`]: `Prefer: wait`, by LISTEN/NOTIFY;
//! - [`db`]: the `bookings` table.

pub mod api;
pub mod console;
pub mod db;
pub mod delegates;
pub mod events;
pub mod flight_cancellations;
pub mod operator;
pub mod request;
pub mod steps;
pub mod watch;

use std::time::Duration;

use anyhow::Context;
use contracts::topics;
use saga::{Orchestrator, TimerSettings};
use secrecy::SecretString;
use serde::Deserialize;
use service_kit::admission::{self, Admission, AdmissionSettings};
use service_kit::backlog::{self, BacklogGate, BacklogSettings};
use service_kit::partitions::{MonthlyPartitions, PartitionSettings};
use service_kit::settings::ServiceSettings;
use service_kit::{Routes, Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

use crate::delegates::{DelegateSettings, Delegates};
use crate::flight_cancellations::FlightCancellations;
use crate::operator::{OperatorState, ServiceDirectory};
use crate::steps::{BookingSteps, SagaReplies, SagaSettings};
use crate::watch::BookingWatch;

/// The topics this service writes or reads, created at start if missing.
const TOPICS: [&str; 6] = [
    topics::INVENTORY_COMMANDS,
    topics::PAYMENT_COMMANDS,
    topics::NOTIFICATION_COMMANDS,
    topics::SAGA_REPLIES,
    topics::BOOKING_EVENTS,
    topics::INVENTORY_EVENTS,
];

/// booking's own settings: `[kafka]`, `[saga]`, `[delegates]`,
/// `[idempotency]`, `[admission]`, `[backlog]`, `[partitions]` and `[console]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub kafka: messaging::KafkaSettings,
    pub saga: SagaSettings,
    pub delegates: DelegateSettings,
    pub idempotency: IdempotencySettings,
    /// The waiting room in front of `POST /bookings` and the cancel endpoint.
    #[serde(default)]
    pub admission: AdmissionSettings,
    /// The gate in front of `POST /bookings` that stops taking bookings
    /// while the sagas already started are stuck behind a backlog.
    #[serde(default)]
    pub backlog: BacklogSettings,
    /// The monthly partitions of `bookings`, created ahead.
    #[serde(default)]
    pub partitions: PartitionSettings,
    #[serde(default)]
    pub console: console::ConsoleSettings,
}

/// `[idempotency]`: how `POST /bookings` recognises a repeated request.
#[derive(Debug, Clone, Deserialize)]
pub struct IdempotencySettings {
    /// The secret the request fingerprint is keyed with (HMAC-SHA256), so a
    /// stored fingerprint cannot be tested against guesses of the card
    /// number in the request. Required (or `fingerprint_key_file`, a
    /// mounted secret); `make up` generates one.
    #[serde(default)]
    pub fingerprint_key: Option<SecretString>,
    #[serde(default)]
    pub fingerprint_key_file: Option<std::path::PathBuf>,
}

impl IdempotencySettings {
    fn fingerprint_key(&self) -> anyhow::Result<request::FingerprintKey> {
        let secret = service_kit::settings::secret_from(
            self.fingerprint_key.as_ref(),
            self.fingerprint_key_file.as_deref(),
            "idempotency.fingerprint_key",
        )?;
        request::FingerprintKey::new(&secret)
    }
}

/// What the HTTP handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub orchestrator: Orchestrator<BookingSteps>,
    pub delegates: Delegates,
    pub fingerprint_key: request::FingerprintKey,
    pub watch: BookingWatch,
    pub saga: SagaSettings,
    /// The longest `Prefer: wait` honoured: within the API's promise and
    /// shorter than the request timeout, which would otherwise cut the wait
    /// short with a 503.
    pub max_wait: Duration,
}

#[derive(Debug)]
pub struct Booking;

impl Service for Booking {
    const NAME: &'static str = "booking";
    const DEFAULT_SETTINGS: &'static str = include_str!("../config/default.toml");
    const OPENAPI: &'static str = include_str!("../openapi.json");
    const MIGRATIONS: &'static [&'static Migrator] = &[
        &messaging::MIGRATOR,
        &saga::MIGRATOR,
        &sqlx::migrate!("../../migrations/booking"),
    ];
    type Domain = Settings;

    async fn build(
        settings: ServiceSettings<Self::Domain>,
        pool: PgPool,
    ) -> anyhow::Result<ServiceApp> {
        let saga_settings = settings.domain.saga.clone();
        let orchestrator = Orchestrator::new(BookingSteps);
        let watch = BookingWatch::default();
        let state = AppState {
            pool: pool.clone(),
            orchestrator: orchestrator.clone(),
            delegates: Delegates::new(&settings.domain.delegates)?,
            fingerprint_key: settings.domain.idempotency.fingerprint_key()?,
            watch: watch.clone(),
            saga: saga_settings.clone(),
            max_wait: settings
                .http
                .request_timeout()
                .saturating_sub(Duration::from_secs(1))
                .min(api::MAX_WAIT),
        };
        settings
            .domain
            .admission
            .check_against(&settings.http)
            .context("check the admission settings")?;
        // Bookings and cancellations start sagas: under a surge they wait
        // their turn in the waiting room. Reads and the operator's endpoints
        // never queue behind them.
        let waiting_room = Admission::new("bookings", settings.domain.admission);
        // New bookings also stop while the sagas already started are stuck
        // (a broker back from an outage, a participant catching up): taking
        // more would only queue them behind work that is already late.
        // Cancellations pass, since they shorten the backlog. The gate is
        // outside the waiting room, so a refused booking never waits in line.
        let backlog_gate = BacklogGate::new("bookings", settings.domain.backlog);
        let router = Routes::new()
            .post("/bookings", api::create)
            .route_layer(axum::middleware::from_fn_with_state(
                waiting_room.clone(),
                admission::guard,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                backlog_gate.clone(),
                backlog::guard,
            ))
            .merge(
                Routes::new()
                    .post("/bookings/{booking_id}/cancel", api::cancel)
                    .route_layer(axum::middleware::from_fn_with_state(
                        waiting_room,
                        admission::guard,
                    )),
            )
            .get("/bookings/{booking_id}", api::get)
            .get("/customers/{customer_id}/bookings", api::for_customer)
            .get("/sagas/{saga_id}", api::get_saga)
            .post("/sagas/{saga_id}/retry", api::retry_saga)
            .post("/sagas/{saga_id}/compensate", api::compensate_saga)
            .with_state(state)
            .merge(operator::routes(OperatorState {
                pool: pool.clone(),
                trace_url: settings.domain.console.trace_url()?,
                services: ServiceDirectory::new(&settings.domain.delegates)?,
            }))
            .merge(console::routes());

        let replies = SagaReplies {
            orchestrator: orchestrator.clone(),
        };
        let cancellations = FlightCancellations {
            orchestrator: orchestrator.clone(),
            saga: saga_settings.clone(),
        };
        let timers = TimerSettings {
            poll_interval: Duration::from_millis(saga_settings.timer_poll_interval_ms),
            ..TimerSettings::default()
        };
        let partitions = MonthlyPartitions::new(db::TABLE, settings.domain.partitions);
        let partitions_pool = pool.clone();
        let timer_pool = pool.clone();
        let listener_pool = pool.clone();
        let backlog_pool = pool.clone();
        let app = ServiceApp::new(router)
            .worker("saga-timers", move |context| {
                orchestrator.run_timers(timer_pool, timers, context.shutdown)
            })
            .worker("booking-status-listener", move |context| {
                watch.listen(listener_pool, context.shutdown)
            })
            .worker("booking-partitions", move |context| {
                partitions.maintain(partitions_pool, context.shutdown)
            })
            .worker("booking-backlog", move |context| {
                let undecided_sagas = move |older_than| {
                    let pool = backlog_pool.clone();
                    async move {
                        let mut conn = pool.acquire().await.context("acquire a connection")?;
                        saga::store::count_undecided_older_than(&mut conn, older_than).await
                    }
                };
                backlog_gate.watch(undecided_sagas, context.shutdown)
            });
        messaging::Backbone::new(Self::NAME, &pool, &settings.kafka)
            .topics(&TOPICS)
            .consume(
                steps::replies::CONSUMER,
                &[topics::SAGA_REPLIES],
                replies.participant(),
            )
            .consume(
                flight_cancellations::CONSUMER,
                &[topics::INVENTORY_EVENTS],
                cancellations.participant(),
            )
            .attach(app)
            .await
    }
}
