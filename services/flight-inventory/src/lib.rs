//! flight-inventory: the delegate service, sole owner of flights, seats, fares
//! and flight status. Other services ask it over HTTP or send it commands over
//! Kafka; nothing else reads or writes its schema.

use std::sync::LazyLock;

use axum::Router;
use messaging::BrokerReadiness;
use service_kit::db::compose_migrators;
use service_kit::settings::{NoDomainSettings, ServiceSettings};
use service_kit::{Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

static OWN_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/flight-inventory");
static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| compose_migrators(&[&OWN_MIGRATIONS]));

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
        _pool: PgPool,
    ) -> anyhow::Result<ServiceApp> {
        let broker = BrokerReadiness::new(&settings.kafka, Self::NAME)?;
        Ok(ServiceApp::new(Router::new()).readiness(broker))
    }
}
