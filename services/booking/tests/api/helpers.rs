//! The whole system in one test process: flight-inventory, payment,
//! notification and booking, each against its own schema of one fresh
//! database, sharing one topic prefix on the real broker. Tests talk to
//! them only through their public HTTP APIs.

use std::time::Duration;

use booking::Booking;
use chrono::{Duration as Days, Utc};
use flight_inventory::FlightInventory;
use notification::Notification;
use payment::Payment;
use reqwest::Client;
use serde_json::{json, Value};
pub use test_support::eventually;
use test_support::{get_json, poll_until, post_json, read_json, spawn, unique_topic_prefix};
use test_support::{TestDatabase, TestService};
use uuid::Uuid;

/// How long a saga may take in a test before it counts as stuck: generous,
/// because tests never fail for a slow machine.
pub const PATIENCE: Duration = Duration::from_secs(90);

pub const APPROVED: &str = "4242424242424242";
pub const DECLINED: &str = "4000000000000002";
pub const FLAKY_TWICE: &str = "4000000000000119";

pub struct System {
    pub database: TestDatabase,
    pub topic_prefix: String,
    pub inventory: TestService,
    payment: Option<TestService>,
    pub notification: TestService,
    pub booking: Option<TestService>,
    /// Settings booking is (re)started with, beside where the other services are.
    booking_settings: Vec<(&'static str, String)>,
    /// Settings every service is (re)started with (a private broker's address).
    shared_settings: Vec<(&'static str, String)>,
    pub client: Client,
}

impl System {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// The whole system, with booking's settings overridden by `booking_settings`.
    pub async fn start_with(booking_settings: &[(&'static str, String)]) -> Self {
        Self::start_on_broker(None, booking_settings).await
    }

    /// The whole system on `brokers` (a private broker the test stops and
    /// restarts) instead of the shared test broker.
    pub async fn start_on_broker(
        brokers: Option<&str>,
        booking_settings: &[(&'static str, String)],
    ) -> Self {
        let shared_settings: Vec<(&'static str, String)> = brokers
            .map(|brokers| ("kafka.brokers", brokers.to_owned()))
            .into_iter()
            .collect();
        let database = TestDatabase::create().await.unwrap();
        let topic_prefix = unique_topic_prefix();
        let inventory = spawn::<FlightInventory>(&database, &topic_prefix, &shared_settings)
            .await
            .unwrap();
        let payment = spawn::<Payment>(&database, &topic_prefix, &shared_settings)
            .await
            .unwrap();
        let notification = spawn::<Notification>(&database, &topic_prefix, &shared_settings)
            .await
            .unwrap();
        let mut system = Self {
            database,
            topic_prefix,
            inventory,
            payment: Some(payment),
            notification,
            booking: None,
            booking_settings: booking_settings.to_vec(),
            shared_settings,
            client: Client::new(),
        };
        system.start_booking().await;
        system
    }

    /// Starts (or starts again) the booking service against the same database and topics.
    pub async fn start_booking(&mut self) {
        let mut overrides = vec![
            ("delegates.inventory_url", self.inventory.url("")),
            ("delegates.payment_url", self.payment_url("")),
        ];
        overrides.extend(self.shared_settings.iter().cloned());
        overrides.extend(self.booking_settings.iter().cloned());
        let booking = spawn::<Booking>(&self.database, &self.topic_prefix, &overrides)
            .await
            .unwrap();
        self.booking = Some(booking);
    }

    /// Stops every service gracefully: their consumers leave their groups
    /// while the broker is still there (a test on a private broker calls this
    /// before the broker goes, or each consumer waits out its session).
    pub async fn stop(mut self) {
        if let Some(booking) = self.booking.take() {
            booking.stop().await.unwrap();
        }
        if let Some(payment) = self.payment.take() {
            payment.stop().await.unwrap();
        }
        self.notification.stop().await.unwrap();
        self.inventory.stop().await.unwrap();
    }

    /// `http://…` of payment followed by `path`.
    pub fn payment_url(&self, path: &str) -> String {
        self.payment.as_ref().expect("payment is running").url(path)
    }

    /// Stops payment gracefully; its commands wait in the broker meanwhile.
    pub async fn stop_payment(&mut self) {
        if let Some(payment) = self.payment.take() {
            payment.stop().await.unwrap();
        }
    }

    /// Starts payment again against the same database and topics.
    pub async fn start_payment(&mut self) {
        let payment = spawn::<Payment>(&self.database, &self.topic_prefix, &self.shared_settings)
            .await
            .unwrap();
        self.payment = Some(payment);
    }

    /// Kills booking wherever it is, as `kill -9` would.
    pub fn crash_booking(&mut self) {
        if let Some(booking) = self.booking.take() {
            booking.crash();
        }
    }

    pub fn booking_url(&self, path: &str) -> String {
        self.booking.as_ref().expect("booking is running").url(path)
    }

    pub async fn get(&self, url: String) -> (u16, Value) {
        get_json(&self.client, &url).await.unwrap()
    }

    pub async fn post(&self, url: String, body: Value) -> (u16, Value) {
        post_json(&self.client, &url, &body).await.unwrap()
    }

    /// Schedules a flight departing tomorrow through flight-inventory's admin API.
    pub async fn schedule_flight(&self, capacity: u32, fare: &str) -> Uuid {
        let departure = Utc::now() + Days::days(1);
        let body = json!({
            "flight_number": "CT501",
            "origin": "ICN",
            "destination": "NRT",
            "departure": departure.to_rfc3339(),
            "arrival": (departure + Days::minutes(150)).to_rfc3339(),
            "capacity": capacity,
            "fare": { "amount": fare, "currency": "USD" },
        });
        let (status, body) = self.post(self.inventory.url("/flights"), body).await;
        assert_eq!(status, 201, "{body}");
        body["flight_id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn credit_miles(&self, customer_id: &str, miles: i64) {
        let (status, body) = self
            .post(
                self.payment_url(&format!("/accounts/{customer_id}/miles/credits")),
                json!({"miles": miles, "reason": "test credit"}),
            )
            .await;
        assert!(status == 201 || status == 200, "{status} {body}");
    }

    pub async fn miles_balance(&self, customer_id: &str) -> i64 {
        let (_, body) = self
            .get(self.payment_url(&format!("/accounts/{customer_id}/miles")))
            .await;
        body["balance"].as_i64().unwrap()
    }

    /// `POST /bookings` with an Idempotency-Key; the status and body.
    pub async fn book_with_key(&self, key: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.booking_url("/bookings"))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        let (status, _, body) = read_json(response).await;
        (status, body)
    }

    /// Books and returns the booking id, asserting it was accepted.
    pub async fn book(&self, body: &Value) -> Uuid {
        let (status, answer) = self.book_with_key(&Uuid::now_v7().to_string(), body).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["status"], "pending");
        answer["booking_id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn booking(&self, booking_id: Uuid) -> Value {
        let (status, body) = self
            .get(self.booking_url(&format!("/bookings/{booking_id}")))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The booking once its saga has nothing left to do.
    pub async fn settled(&self, booking_id: Uuid) -> Value {
        let what = format!("booking {booking_id} settles");
        poll_until(
            PATIENCE,
            &what,
            || self.booking(booking_id),
            |booking| {
                matches!(
                    booking["routing_slip"]["status"].as_str(),
                    Some("completed" | "compensated")
                )
            },
        )
        .await
    }

    pub async fn availability(&self, flight_id: Uuid) -> Value {
        let (status, body) = self
            .get(
                self.inventory
                    .url(&format!("/flights/{flight_id}/availability")),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn payments(&self, booking_id: Uuid) -> Vec<Value> {
        let (status, body) = self
            .get(self.payment_url(&format!("/payments?booking_id={booking_id}")))
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    pub async fn notifications(&self, booking_id: Uuid) -> Vec<Value> {
        let (status, body) = self
            .get(
                self.notification
                    .url(&format!("/notifications?booking_id={booking_id}")),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }
}

/// A booking request: `passengers` travellers, paid by `card` and/or `miles`.
pub fn booking_body(
    customer_id: &str,
    flight_id: Uuid,
    passengers: usize,
    card: Option<&str>,
    miles: u64,
) -> Value {
    let passengers: Vec<Value> = (0..passengers)
        .map(|i| json!({"first_name": format!("Traveller{i}"), "last_name": "Kim"}))
        .collect();
    let mut payment = json!({"miles": miles});
    if let Some(number) = card {
        payment["card"] = json!({"number": number, "expiry": "12/35", "cvc": "123"});
    }
    json!({
        "customer_id": customer_id,
        "flight_id": flight_id,
        "passengers": passengers,
        "payment": payment,
        "contact": {"email": "traveller@example.com", "phone": "+821012345678"},
    })
}

/// `(kind, method)` pairs of a booking's payments, and the sum per kind.
pub fn ledger(payments: &[Value]) -> Vec<(String, String, String)> {
    let mut entries: Vec<(String, String, String)> = payments
        .iter()
        .map(|entry| {
            (
                entry["kind"].as_str().unwrap().to_owned(),
                entry["method"].as_str().unwrap().to_owned(),
                entry["amount"]["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    entries.sort();
    entries
}

pub fn kinds(notifications: &[Value]) -> Vec<(String, String)> {
    let mut kinds: Vec<(String, String)> = notifications
        .iter()
        .map(|message| {
            (
                message["kind"].as_str().unwrap().to_owned(),
                message["channel"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kinds.sort();
    kinds
}
