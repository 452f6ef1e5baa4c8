//! The whole system in one test process: flight-inventory, payment,
//! notification and booking, each against its own schema of one fresh
//! database, sharing one topic prefix on the real broker. Tests talk to
//! them only through their public HTTP APIs.

use std::time::Duration;

use booking::Booking;
use flight_inventory::FlightInventory;
use invariant_checker::{Checker, CheckerSettings};
use notification::Notification;
use payment::Payment;
use serde_json::{json, Value};
pub use test_support::eventually;
use test_support::fixtures::schedule_body;
use test_support::{poll_until, unique_topic_prefix, Isolation, TestApp, TestDatabase};
use uuid::Uuid;

/// How long a saga may take in a test before it counts as stuck: generous,
/// because tests never fail for a slow machine.
pub const PATIENCE: Duration = Duration::from_secs(90);

pub const APPROVED: &str = "4242424242424242";
pub const DECLINED: &str = "4000000000000002";
pub const FLAKY_TWICE: &str = "4000000000000119";

/// The four services, each a [`TestApp`] on the same database and topic
/// prefix. A test may stop and start any of them again
/// ([`TestApp::shut_down`], [`TestApp::start`]), and kill one with `kill -9`
/// ([`TestApp::kill`]) when the system was started in processes
/// ([`System::start_in_processes`]): it comes back on the same database,
/// topics and settings.
pub struct System {
    pub inventory: TestApp<FlightInventory>,
    pub payment: TestApp<Payment>,
    pub notification: TestApp<Notification>,
    pub booking: TestApp<Booking>,
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
        Self::assemble(Isolation::InProcess, brokers, booking_settings).await
    }

    /// The whole system with every service in a process of its own, so that
    /// a test can kill any of them with `kill -9`.
    pub async fn start_in_processes() -> Self {
        Self::assemble(Isolation::Process, None, &[]).await
    }

    async fn assemble(
        isolation: Isolation,
        brokers: Option<&str>,
        booking_settings: &[(&'static str, String)],
    ) -> Self {
        let shared_settings: Vec<(&'static str, String)> = brokers
            .map(|brokers| ("kafka.brokers", brokers.to_owned()))
            .into_iter()
            .collect();
        let database = TestDatabase::create().await.unwrap();
        let topic_prefix = unique_topic_prefix();
        let (inventory, payment, notification) = tokio::join!(
            TestApp::spawn_isolated(
                isolation,
                database.clone(),
                topic_prefix.clone(),
                &shared_settings
            ),
            TestApp::spawn_isolated(
                isolation,
                database.clone(),
                topic_prefix.clone(),
                &shared_settings
            ),
            TestApp::spawn_isolated(
                isolation,
                database.clone(),
                topic_prefix.clone(),
                &shared_settings
            ),
        );
        let mut settings = vec![
            ("delegates.inventory_url", inventory.url("")),
            ("delegates.payment_url", payment.url("")),
            ("delegates.notification_url", notification.url("")),
        ];
        settings.extend(shared_settings);
        settings.extend_from_slice(booking_settings);
        let booking = TestApp::spawn_isolated(isolation, database, topic_prefix, &settings).await;
        Self {
            inventory,
            payment,
            notification,
            booking,
        }
    }

    /// Stops every service gracefully: their consumers leave their groups
    /// while the broker is still there (a test on a private broker calls this
    /// before the broker goes, or each consumer waits out its session).
    pub async fn stop(self) {
        self.booking.stop().await;
        self.payment.stop().await;
        self.notification.stop().await;
        self.inventory.stop().await;
    }

    /// Schedules a flight departing tomorrow through flight-inventory's admin API.
    pub async fn schedule_flight(&self, capacity: u32, fare: &str) -> Uuid {
        let (status, body) = self
            .inventory
            .post("/flights", schedule_body(capacity, fare))
            .await;
        assert_eq!(status, 201, "{body}");
        body["flight_id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn credit_miles(&self, customer_id: &str, miles: i64) {
        let (status, body) = self
            .payment
            .post(
                &format!("/accounts/{customer_id}/miles/credits"),
                json!({"miles": miles, "reason": "test credit"}),
            )
            .await;
        assert!(status == 201 || status == 200, "{status} {body}");
    }

    pub async fn miles_balance(&self, customer_id: &str) -> i64 {
        let body = self
            .payment
            .get_ok(&format!("/accounts/{customer_id}/miles"))
            .await;
        body["balance"].as_i64().unwrap()
    }

    /// `POST /bookings` with an Idempotency-Key; the status and body.
    pub async fn book_with_key(&self, key: &str, body: &Value) -> (u16, Value) {
        self.booking
            .post_with_headers("/bookings", &[("Idempotency-Key", key)], body.clone())
            .await
    }

    /// Books and returns the booking id, asserting it was accepted.
    pub async fn book(&self, body: &Value) -> Uuid {
        let (status, answer) = self.book_with_key(&Uuid::now_v7().to_string(), body).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["status"], "pending");
        answer["booking_id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn booking(&self, booking_id: Uuid) -> Value {
        self.booking
            .get_ok(&format!("/bookings/{booking_id}"))
            .await
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

    /// The invariant checker, auditing this system's database.
    pub async fn checker(&self) -> Checker {
        Checker::connect(CheckerSettings {
            database_url: self.booking.database.admin_url(),
            inventory_url: self.inventory.url(""),
            settle_timeout: PATIENCE,
            token: Some(test_support::tokens::admin()),
            ..CheckerSettings::default()
        })
        .await
        .unwrap()
    }

    pub async fn availability(&self, flight_id: Uuid) -> Value {
        self.inventory
            .get_ok(&format!("/flights/{flight_id}/availability"))
            .await
    }

    pub async fn payments(&self, booking_id: Uuid) -> Vec<Value> {
        self.payment
            .get_items(&format!("/payments?booking_id={booking_id}"))
            .await
    }

    pub async fn notifications(&self, booking_id: Uuid) -> Vec<Value> {
        self.notification
            .get_items(&format!("/notifications?booking_id={booking_id}"))
            .await
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
