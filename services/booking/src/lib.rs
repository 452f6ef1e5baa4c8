//! booking: the public booking API and the orchestrator of the booking saga, a
//! routing slip run over Kafka across flight-inventory, payment and notification.

use std::sync::LazyLock;

use axum::Router;
use contracts::topics;
use service_kit::db::compose_migrators;
use service_kit::settings::{NoDomainSettings, ServiceSettings};
use service_kit::{Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

static OWN_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/booking");
static MIGRATOR: LazyLock<Migrator> =
    LazyLock::new(|| compose_migrators(&[&messaging::MIGRATOR, &OWN_MIGRATIONS]));

/// The topics this service writes or reads, created at start if missing.
const TOPICS: [&str; 6] = [
    topics::INVENTORY_COMMANDS,
    topics::PAYMENT_COMMANDS,
    topics::NOTIFICATION_COMMANDS,
    topics::SAGA_REPLIES,
    topics::BOOKING_EVENTS,
    topics::INVENTORY_EVENTS,
];

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
        pool: PgPool,
    ) -> anyhow::Result<ServiceApp> {
        let app = ServiceApp::new(Router::new());
        messaging::attach(app, Self::NAME, &pool, &settings.kafka, &TOPICS, Vec::new()).await
    }
}
