//! flight-inventory: the delegate service, sole owner of flights, seats, fares
//! and flight status. Other services ask it over HTTP or send it commands over
//! Kafka; nothing else reads or writes its schema.
//!
//! - [`domain`]: the event-sourced flight aggregate (pure);
//! - [`store`]: the aggregate on the event store, with its events published through the outbox;
//! - [`api`]: the HTTP API; [`commands`]: the seat commands from the saga;
//! - [`integration`]: the public events other services see on `inventory.events`;
//! - [`search`]: the flight search read model; [`sweeper`]: hold expiry;
//! - [`read_cache`]: the Redis cache in front of search, detail and availability;
//! - [`sample`]: the demo's sample network; [`admin`]: the CLI subcommands.

pub mod admin;
pub mod api;
pub mod commands;
pub mod domain;
pub mod integration;
pub mod read_cache;
pub mod sample;
pub mod search;
pub mod store;
pub mod sweeper;

use std::time::Duration;

use cache::{Cache, CacheSettings};
use chrono::TimeDelta;
use contracts::topics;
use eventstore::{ProjectionRunner, ProjectionSettings};
use serde::Deserialize;
use service_kit::settings::ServiceSettings;
use service_kit::{Routes, Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

use crate::commands::SeatCommands;
use crate::search::FlightSearchProjection;
use crate::store::FlightStore;

/// The topics this service writes or reads, created at start if missing.
const TOPICS: [&str; 3] = [
    topics::INVENTORY_COMMANDS,
    topics::INVENTORY_EVENTS,
    topics::SAGA_REPLIES,
];

/// flight-inventory's own settings (`[kafka]`, `[inventory]`, `[cache]`, `FLIGHT_INVENTORY__INVENTORY__…`).
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub kafka: messaging::KafkaSettings,
    pub inventory: InventorySettings,
    /// The Redis read cache; without `cache.redis_url`, reads go to Postgres.
    pub cache: CacheSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InventorySettings {
    /// How long a seat hold lasts before it expires on its own.
    pub hold_ttl_secs: i64,
    /// A snapshot every this many events of a flight's stream (0: never).
    pub snapshot_every: u64,
    /// How often lapsed holds are looked for.
    pub sweep_interval_ms: u64,
}

/// What the HTTP handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: FlightStore,
    pub pool: PgPool,
}

#[derive(Debug)]
pub struct FlightInventory;

impl Service for FlightInventory {
    const NAME: &'static str = "flight-inventory";
    const DEFAULT_SETTINGS: &'static str = include_str!("../config/default.toml");
    const OPENAPI: &'static str = include_str!("../openapi.json");
    const MIGRATIONS: &'static [&'static Migrator] = &[
        &messaging::MIGRATOR,
        &eventstore::MIGRATOR,
        &sqlx::migrate!("../../migrations/flight-inventory"),
    ];
    type Domain = Settings;

    async fn build(
        settings: ServiceSettings<Self::Domain>,
        pool: PgPool,
    ) -> anyhow::Result<ServiceApp> {
        let inventory = &settings.domain.inventory;
        let cache = Cache::new(&settings.domain.cache)?;
        tracing::info!(enabled = cache.is_enabled(), "read cache");
        let store =
            FlightStore::new(pool.clone(), inventory.snapshot_every).with_cache(cache.clone());
        eventstore::metrics::describe();

        let projected = cache.clone();
        let search = ProjectionRunner::new(
            store.events().clone(),
            FlightSearchProjection,
            ProjectionSettings::default(),
        )?
        .after_commit(move |streams| {
            let cache = projected.clone();
            async move { read_cache::invalidate_projected(&cache, streams).await }
        });
        // The read model's views must exist before the first search.
        search.initialize().await?;

        let state = AppState {
            store: store.clone(),
            pool: pool.clone(),
        };
        let router = Routes::new()
            .get("/flights", api::search)
            .post("/flights", api::schedule)
            .get("/flights/{flight_id}", api::detail)
            .get("/flights/{flight_id}/availability", api::availability)
            .get("/flights/{flight_id}/quote", api::quote)
            .get("/flights/{flight_id}/history", api::history)
            .post("/flights/{flight_id}/fare", api::change_fare)
            .post("/flights/{flight_id}/status", api::change_status)
            .post("/flights/{flight_id}/position", api::report_position)
            .post("/flights/{flight_id}/cancel", api::cancel)
            .with_state(state);

        let seat_commands = SeatCommands {
            store: store.clone(),
            hold_ttl: TimeDelta::seconds(inventory.hold_ttl_secs),
            changed: read_cache::CommittedFlights::default(),
        };
        let sweep_interval = Duration::from_millis(inventory.sweep_interval_ms);
        let sweeper_store = store.clone();
        let sweeper_pool = pool.clone();
        let app = ServiceApp::new(router)
            .worker("flight-search-projection", move |context| async move {
                search
                    .run(context.shutdown)
                    .await
                    .map_err(anyhow::Error::new)
            })
            .worker("hold-sweeper", move |context| {
                sweeper::run(
                    sweeper_store,
                    sweeper_pool,
                    sweep_interval,
                    context.shutdown,
                )
            });
        messaging::Backbone::new(Self::NAME, &pool, &settings.kafka)
            .topics(&TOPICS)
            .consume(
                commands::CONSUMER,
                &[topics::INVENTORY_COMMANDS],
                seat_commands.participant(),
            )
            .attach(app)
            .await
    }
}
