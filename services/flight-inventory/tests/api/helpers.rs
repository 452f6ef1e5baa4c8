use std::str::FromStr;
use std::time::Duration;

use chrono::{Duration as Days, Utc};
use flight_inventory::FlightInventory;
use reqwest::Client;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use test_support::{spawn, unique_topic_prefix, TestDatabase, TestService};
use uuid::Uuid;

pub struct TestInventory {
    pub service: TestService,
    pub database: TestDatabase,
    pub topic_prefix: String,
    pub client: Client,
}

impl TestInventory {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(extra: &[(&'static str, String)]) -> Self {
        let database = TestDatabase::create().await.unwrap();
        let topic_prefix = unique_topic_prefix();
        let service = spawn::<FlightInventory>(&database, &topic_prefix, extra)
            .await
            .unwrap();
        Self {
            service,
            database,
            topic_prefix,
            client: Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.service.url(path))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.service.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Schedules a flight departing tomorrow; returns its id.
    pub async fn schedule(&self, capacity: u32, fare: &str) -> Uuid {
        let (status, body) = self.post("/flights", schedule_body(capacity, fare)).await;
        assert_eq!(status, 201, "{body}");
        body["flight_id"].as_str().unwrap().parse().unwrap()
    }

    /// A pool connected as the service's own role, for tests that look behind the API.
    pub async fn pool(&self) -> PgPool {
        let options = PgConnectOptions::from_str(&self.database.url_for("flight_inventory"))
            .unwrap()
            .options([("search_path", "flight_inventory")]);
        PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await
            .unwrap()
    }

    pub fn kafka(&self) -> messaging::KafkaSettings {
        serde_json::from_value(
            json!({ "brokers": test_support::brokers(), "topic_prefix": self.topic_prefix }),
        )
        .unwrap()
    }
}

pub fn schedule_body(capacity: u32, fare: &str) -> Value {
    let departure = Utc::now() + Days::days(1);
    json!({
        "flight_number": "CT123",
        "origin": "ICN",
        "destination": "NRT",
        "departure": departure.to_rfc3339(),
        "arrival": (departure + Days::minutes(150)).to_rfc3339(),
        "capacity": capacity,
        "fare": { "amount": fare, "currency": "USD" },
    })
}

/// Polls `condition` until it holds; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
