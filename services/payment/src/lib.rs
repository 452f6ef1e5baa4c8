//! payment: card and miles payments and refunds, recorded in append-only
//! ledgers. A refund is a new entry, never an edit of the capture it answers.

mod miles;

use std::sync::LazyLock;

use axum::routing::{get, post};
use axum::Router;
use contracts::topics;
use service_kit::db::compose_migrators;
use service_kit::settings::{NoDomainSettings, ServiceSettings};
use service_kit::{Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

static OWN_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/payment");
static MIGRATOR: LazyLock<Migrator> =
    LazyLock::new(|| compose_migrators(&[&messaging::MIGRATOR, &OWN_MIGRATIONS]));

/// The topics this service writes or reads, created at start if missing.
const TOPICS: [&str; 3] = [
    topics::PAYMENT_COMMANDS,
    topics::PAYMENT_EVENTS,
    topics::SAGA_REPLIES,
];

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
        let router = Router::new()
            .route("/accounts/{customer_id}/miles", get(miles::balance))
            .route("/accounts/{customer_id}/miles/credits", post(miles::credit))
            .with_state(pool.clone());
        let app = ServiceApp::new(router);
        messaging::attach(app, Self::NAME, &pool, &settings.kafka, &TOPICS, Vec::new()).await
    }
}
