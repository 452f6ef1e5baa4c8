use std::time::Duration;

use chrono::{Duration as Days, Utc};
use contracts::notification::{
    BookingSummary, Contact, FlightSummary, NotificationKind, Passenger, SendNotification,
};
use contracts::saga::StepRef;
use contracts::{Currency, Money};
use notification::Notification;
use serde_json::Value;
use service_kit::Service;
use sqlx::PgPool;
use test_support::{TestApp, TestDatabase};
use uuid::Uuid;

pub const PATIENCE: Duration = Duration::from_secs(60);

pub type TestNotification = TestApp<Notification>;

/// notification's endpoints.
pub trait NotificationApi {
    /// `GET /notifications?booking_id=…`: the booking's messages.
    async fn notifications(&self, booking_id: Uuid) -> Vec<Value>;
    /// `GET /dead-letters?status=parked`.
    async fn parked_dead_letters(&self) -> Vec<Value>;
}

impl NotificationApi for TestNotification {
    async fn notifications(&self, booking_id: Uuid) -> Vec<Value> {
        self.get_items(&format!("/notifications?booking_id={booking_id}"))
            .await
    }

    async fn parked_dead_letters(&self) -> Vec<Value> {
        self.get_items("/dead-letters?status=parked").await
    }
}

/// A fresh database with the service's schema migrated, and no service running:
/// for tests that drive the dispatcher by hand.
pub async fn migrated_database() -> (TestDatabase, PgPool) {
    let database = TestDatabase::create().await.unwrap();
    let pool = database.pool_as("notification", 8).await.unwrap();
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
