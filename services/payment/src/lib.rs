//! payment: card and miles payments and refunds, recorded in append-only
//! ledgers. A refund is a new entry, never an edit of the capture it answers.

mod miles;

use std::sync::LazyLock;

use axum::routing::{get, post};
use axum::Router;
use messaging::BrokerReadiness;
use service_kit::db::compose_migrators;
use service_kit::settings::{NoDomainSettings, ServiceSettings};
use service_kit::{Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

static OWN_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/payment");
static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| compose_migrators(&[&OWN_MIGRATIONS]));

#[derive(Debug)]
pub struct Payment;

impl Service for Payment {
    const NAME: &'static str = "payment";
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
            .route("/accounts/{customer_id}/miles", get(miles::balance))
            .route("/accounts/{customer_id}/miles/credits", post(miles::credit))
            .with_state(pool);
        Ok(ServiceApp::new(router).readiness(broker))
    }
}
