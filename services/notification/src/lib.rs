//! notification: confirmation, cancellation and correction messages by email
//! and SMS. A sent message cannot be unsent: its compensation is a correction.
//!
//! - [`commands`]: `SendNotification` from the saga, recorded once per
//!   (booking, kind, channel) and answered with `NotificationSent`;
//! - [`dispatcher`]: delivers recorded messages after commit through their
//!   [`channel::DeliveryChannel`]; [`channel::DeliverySink`] is the one shipped;
//! - [`render`]: what a message says; [`contact`]: recipient checks and masking;
//! - `GET /notifications?booking_id=…` and `GET /openapi.json`.

pub mod channel;
pub mod commands;
pub mod contact;
pub mod dispatcher;
pub mod events;
mod messages;
pub mod render;

use std::sync::Arc;

use contracts::notification::Channel;
use contracts::topics;
use serde::Deserialize;
use service_kit::settings::ServiceSettings;
use service_kit::{Routes, Service, ServiceApp};
use sqlx::migrate::Migrator;
use sqlx::PgPool;

use crate::channel::{DeliveryChannel, DeliverySink};
use crate::commands::NotificationCommands;
use crate::dispatcher::{Dispatcher, DispatcherSettings};

/// The topics this service writes or reads, created at start if missing.
const TOPICS: [&str; 3] = [
    topics::NOTIFICATION_COMMANDS,
    topics::NOTIFICATION_EVENTS,
    topics::SAGA_REPLIES,
];

/// notification's own settings: `[kafka]` and `[dispatcher]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub kafka: messaging::KafkaSettings,
    pub dispatcher: DispatcherSettings,
}

#[derive(Debug)]
pub struct Notification;

impl Service for Notification {
    const NAME: &'static str = "notification";
    const DEFAULT_SETTINGS: &'static str = include_str!("../config/default.toml");
    const OPENAPI: &'static str = include_str!("../openapi.json");
    const MIGRATIONS: &'static [&'static Migrator] = &[
        &messaging::MIGRATOR,
        &sqlx::migrate!("../../migrations/notification"),
    ];
    type Domain = Settings;

    async fn build(
        settings: ServiceSettings<Self::Domain>,
        pool: PgPool,
    ) -> anyhow::Result<ServiceApp> {
        describe_metrics();
        let router = Routes::new()
            .get("/notifications", messages::list)
            .with_state(pool.clone());

        // A real provider replaces a sink here; nothing else changes.
        let channels: Vec<Arc<dyn DeliveryChannel>> = vec![
            Arc::new(DeliverySink::new(Channel::Email, pool.clone())),
            Arc::new(DeliverySink::new(Channel::Sms, pool.clone())),
        ];
        let dispatcher = Dispatcher::new(pool.clone(), channels, settings.dispatcher.clone());
        let app = ServiceApp::new(router).worker("notification-dispatcher", move |context| {
            dispatcher.run(context.shutdown)
        });
        messaging::Backbone::new(Self::NAME, &pool, &settings.kafka)
            .topics(&TOPICS)
            .consume(
                commands::CONSUMER,
                &[topics::NOTIFICATION_COMMANDS],
                NotificationCommands.participant(),
            )
            .attach(app)
            .await
    }
}

fn describe_metrics() {
    metrics::describe_counter!(
        "notifications_sent_total",
        "messages accepted by their delivery channel, by kind and channel"
    );
    metrics::describe_counter!(
        "notification_delivery_failures_total",
        "failed deliveries, by channel and outcome (retry or failed)"
    );
}
