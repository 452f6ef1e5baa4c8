//! payment: card and miles payments and refunds, recorded in append-only
//! ledgers. A refund is a new entry, never an edit of the capture it answers.
//!
//! - [`cards`]: `POST /cards`, card validation (Luhn, expiry, CVC) and tokenization;
//! - [`gateway`]: the [`gateway::CardGateway`] seam and the simulated processor;
//! - [`commands`]: `TakePayment` and `Refund` from the saga, answered on `booking.saga-replies`;
//! - [`ledger`]: the booking payment ledger, its closure, and `GET /payments`;
//! - [`miles`]: miles accounts (balance and credits).

pub mod cards;
pub mod commands;
pub mod events;
pub mod gateway;
pub mod ledger;
mod miles;

use std::sync::Arc;

use axum::extract::FromRef;
use contracts::topics;
use serde::Deserialize;
use service_kit::settings::ServiceSettings;
use service_kit::{Routes, Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

use crate::commands::PaymentCommands;
use crate::gateway::{CardGateway, SimulatedGateway};

/// The topics this service writes or reads, created at start if missing.
const TOPICS: [&str; 3] = [
    topics::PAYMENT_COMMANDS,
    topics::PAYMENT_EVENTS,
    topics::SAGA_REPLIES,
];

/// payment's own settings: `[kafka]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub kafka: messaging::KafkaSettings,
}

/// What the HTTP handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub gateway: Arc<dyn CardGateway>,
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.pool.clone()
    }
}

#[derive(Debug)]
pub struct Payment;

impl Service for Payment {
    const NAME: &'static str = "payment";
    const DEFAULT_SETTINGS: &'static str = include_str!("../config/default.toml");
    const OPENAPI: &'static str = include_str!("../openapi.json");
    const MIGRATIONS: &'static [&'static Migrator] = &[
        &messaging::MIGRATOR,
        &sqlx::migrate!("../../migrations/payment"),
    ];
    type Domain = Settings;

    async fn build(
        settings: ServiceSettings<Self::Domain>,
        pool: PgPool,
    ) -> anyhow::Result<ServiceApp> {
        // The one place a real processor's adapter would be chosen instead.
        let gateway: Arc<dyn CardGateway> = Arc::new(SimulatedGateway);
        let state = AppState {
            pool: pool.clone(),
            gateway: gateway.clone(),
        };
        let router = Routes::new()
            .post("/cards", cards::tokenize)
            .get("/payments", ledger::list)
            .get("/accounts/{customer_id}/miles", miles::balance)
            .post("/accounts/{customer_id}/miles/credits", miles::credit)
            .with_state(state);
        let commands = PaymentCommands { gateway }.participant();
        messaging::Backbone::new(Self::NAME, &pool, &settings.kafka)
            .topics(&TOPICS)
            .consume(commands::CONSUMER, &[topics::PAYMENT_COMMANDS], commands)
            .attach(ServiceApp::new(router))
            .await
    }
}
