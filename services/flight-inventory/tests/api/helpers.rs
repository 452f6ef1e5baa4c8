use chrono::{Duration as Days, Utc};
use flight_inventory::FlightInventory;
use reqwest::Client;
use serde_json::{json, Value};
use sqlx::PgPool;
pub use test_support::eventually;
use test_support::{get_json, kafka_settings, post_json, spawn, unique_topic_prefix};
use test_support::{TestDatabase, TestService};
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
        get_json(&self.client, &self.service.url(path))
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        post_json(&self.client, &self.service.url(path), &body)
            .await
            .unwrap()
    }

    /// Schedules a flight departing tomorrow; returns its id.
    pub async fn schedule(&self, capacity: u32, fare: &str) -> Uuid {
        let (status, body) = self.post("/flights", schedule_body(capacity, fare)).await;
        assert_eq!(status, 201, "{body}");
        body["flight_id"].as_str().unwrap().parse().unwrap()
    }

    /// A pool connected as the service's own role, for tests that look behind the API.
    /// 16 connections: the concurrency tests race that many writers.
    pub async fn pool(&self) -> PgPool {
        self.database.pool_as("flight_inventory", 16).await.unwrap()
    }

    pub fn kafka(&self) -> messaging::KafkaSettings {
        kafka_settings(&self.topic_prefix).unwrap()
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
