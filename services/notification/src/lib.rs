//! notification: confirmation, cancellation and correction messages by email
//! and SMS. A sent message cannot be unsent: its compensation is a correction.

mod messages;

use std::sync::LazyLock;

use axum::routing::get;
use axum::Router;
use messaging::BrokerReadiness;
use service_kit::db::compose_migrators;
use service_kit::settings::{NoDomainSettings, ServiceSettings};
use service_kit::{Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

static OWN_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/notification");
static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| compose_migrators(&[&OWN_MIGRATIONS]));

#[derive(Debug)]
pub struct Notification;

impl Service for Notification {
    const NAME: &'static str = "notification";
    const DEFAULT_SETTINGS: &'static str = include_str!("../config/default.toml");
    type Domain = NoDomainSettings;

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    async fn build(
        settings: ServiceSettings<Self::Domain>,
        pool: PgPool,
    ) -> anyhow::Result<ServiceApp> {
        let broker = BrokerReadiness::new(&settings.kafka, Self::NAME)?;
        let router = Router::new()
            .route("/notifications", get(messages::list))
            .with_state(pool);
        Ok(ServiceApp::new(router).readiness(broker))
    }
}
