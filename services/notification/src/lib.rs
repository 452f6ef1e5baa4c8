//! notification: confirmation, cancellation and correction messages by email
//! and SMS. A sent message cannot be unsent: its compensation is a correction.

mod messages;

use std::sync::LazyLock;

use axum::routing::get;
use axum::Router;
use contracts::topics;
use service_kit::db::compose_migrators;
use service_kit::settings::{NoDomainSettings, ServiceSettings};
use service_kit::{Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

static OWN_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/notification");
static MIGRATOR: LazyLock<Migrator> =
    LazyLock::new(|| compose_migrators(&[&messaging::MIGRATOR, &OWN_MIGRATIONS]));

/// The topics this service writes or reads, created at start if missing.
const TOPICS: [&str; 3] = [
    topics::NOTIFICATION_COMMANDS,
    topics::NOTIFICATION_EVENTS,
    topics::SAGA_REPLIES,
];

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
        let router = Router::new()
            .route("/notifications", get(messages::list))
            .with_state(pool.clone());
        let app = ServiceApp::new(router);
        messaging::attach(app, Self::NAME, &pool, &settings.kafka, &TOPICS, Vec::new()).await
    }
}
