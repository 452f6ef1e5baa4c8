use std::time::Duration;

use chrono::{Duration as Days, Utc};
use contracts::notification::{
    BookingSummary, Contact, FlightSummary, NotificationKind, Passenger, SendNotification,
};
use contracts::saga::StepRef;
use contracts::{Currency, Money};
use notification::Notification;
use reqwest::Client;
use serde_json::Value;
use service_kit::Service;
use sqlx::PgPool;
use test_support::{kafka_settings, read_json, spawn, unique_topic_prefix};
use test_support::{TestDatabase, TestService};
use uuid::Uuid;

pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct TestNotification {
    pub service: TestService,
    pub database: TestDatabase,
    pub topic_prefix: String,
    pub client: Client,
}

impl TestNotification {
    pub async fn spawn() -> Self {
        let database = TestDatabase::create().await.unwrap();
        let topic_prefix = unique_topic_prefix();
        let service = spawn::<Notification>(&database, &topic_prefix, &[])
            .await
            .unwrap();
        Self {
            service,
            database,
            topic_prefix,
            client: Client::new(),
        }
    }

    /// Status, content type and body (JSON, or null).
    pub async fn get(&self, path: &str) -> (u16, String, Value) {
        let response = self
            .client
            .get(self.service.url(path))
            .send()
            .await
            .unwrap();
        read_json(response).await
    }

    pub async fn notifications(&self, booking_id: Uuid) -> Vec<Value> {
        let (status, _, body) = self
            .get(&format!("/notifications?booking_id={booking_id}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    pub async fn parked_dead_letters(&self) -> Vec<Value> {
        let (status, _, body) = self.get("/dead-letters?status=parked").await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    pub async fn pool(&self) -> PgPool {
        pool_for(&self.database).await
    }

    pub fn kafka(&self) -> messaging::KafkaSettings {
        kafka_settings(&self.topic_prefix).unwrap()
    }
}

/// A pool connected as the service's own role, for tests that look behind the API.
pub async fn pool_for(database: &TestDatabase) -> PgPool {
    database.pool_as("notification", 8).await.unwrap()
}

/// A fresh database with the service's schema migrated, and no service running:
/// for tests that drive the dispatcher by hand.
pub async fn migrated_database() -> (TestDatabase, PgPool) {
    let database = TestDatabase::create().await.unwrap();
    let pool = pool_for(&database).await;
    Notification::migrator().run(&pool).await.unwrap();
    (database, pool)
}

pub fn step(saga_id: Uuid, attempt: u32) -> StepRef {
    StepRef {
        saga_id,
        step: "SendConfirmation".to_owned(),
        attempt,
    }
}

pub fn contact(email: Option<&str>, phone: Option<&str>) -> Contact {
    Contact {
        email: email.map(str::to_owned),
        phone: phone.map(str::to_owned),
    }
}

pub fn send_notification(
    booking_id: Uuid,
    kind: NotificationKind,
    contact: Contact,
    attempt: u32,
) -> SendNotification {
    let departure = Utc::now() + Days::days(1);
    SendNotification {
        step: step(booking_id, attempt),
        booking_id,
        kind,
        contact,
        booking: BookingSummary {
            customer_id: "customer-1".to_owned(),
            flight: FlightSummary {
                flight_id: Uuid::now_v7(),
                flight_number: "CT123".to_owned(),
                origin: "ICN".to_owned(),
                destination: "NRT".to_owned(),
                departure,
            },
            passengers: vec![Passenger {
                first_name: "Jane".to_owned(),
                last_name: "Doe".to_owned(),
            }],
            total: Money::parse("240.00", Currency::Usd).unwrap(),
        },
        reason: match kind {
            NotificationKind::Confirmation => None,
            _ => Some("requested by the customer".to_owned()),
        },
    }
}
