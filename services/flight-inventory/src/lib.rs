//! flight-inventory: the delegate service, sole owner of flights, seats, fares
//! and flight status. Other services ask it over HTTP or send it commands over
//! Kafka; nothing else reads or writes its schema.

use std::sync::LazyLock;

use axum::Router;
use contracts::topics;
use service_kit::db::compose_migrators;
use service_kit::settings::{NoDomainSettings, ServiceSettings};
use service_kit::{Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

static OWN_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/flight-inventory");
static MIGRATOR: LazyLock<Migrator> =
    LazyLock::new(|| compose_migrators(&[&messaging::MIGRATOR, &OWN_MIGRATIONS]));

/// The topics this service writes or reads, created at start if missing.
const TOPICS: [&str; 3] = [
    topics::INVENTORY_COMMANDS,
    topics::INVENTORY_EVENTS,
    topics::SAGA_REPLIES,
];

#[derive(Debug)]
pub struct FlightInventory;

impl Service for FlightInventory {
    const NAME: &'static str = "flight-inventory";
    const DEFAULT_SETTINGS: &'static str = include_str!("../config/default.toml");
    type Domain = NoDomainSettings;

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    async fn build(
        settings: ServiceSettings<Self::Domain>,
        pool: PgPool,
    ) -> anyhow::Result<ServiceApp> {
        let app = ServiceApp::new(Router::new());
        messaging::attach(app, Self::NAME, &pool, &settings.kafka, &TOPICS, Vec::new()).await
    }
}
