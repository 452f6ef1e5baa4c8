//! booking: the public booking API and the orchestrator of the booking saga, a
//! routing slip run over Kafka across flight-inventory, payment and notification.

use std::sync::LazyLock;

use axum::Router;
use messaging::BrokerReadiness;
use service_kit::db::compose_migrators;
use service_kit::settings::{NoDomainSettings, ServiceSettings};
use service_kit::{Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

static OWN_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/booking");
static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| compose_migrators(&[&OWN_MIGRATIONS]));

#[derive(Debug)]
pub struct Booking;

impl Service for Booking {
    const NAME: &'static str = "booking";
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
