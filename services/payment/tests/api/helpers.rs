use std::time::Duration;

use contracts::payment::{CardCharge, MilesRedemption, TakePayment};
use contracts::saga::StepRef;
use contracts::{topics, Currency, Envelope, Message, Money};
use messaging::testing::{publish, TopicReader};
use payment::Payment;
use reqwest::Client;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_support::{get_json, kafka_settings, post_json, spawn, unique_topic_prefix};
use test_support::{TestDatabase, TestService};
use uuid::Uuid;

/// How long a test waits for a reply before failing.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub const APPROVES: &str = "4242424242424242";
pub const DECLINES: &str = "4000000000000002";
pub const INSUFFICIENT_FUNDS: &str = "4000000000009995";
pub const FAILS_TWICE: &str = "4000000000000119";

pub struct TestPayment {
    pub service: TestService,
    pub database: TestDatabase,
    pub topic_prefix: String,
    pub client: Client,
    /// The saga replies topic, read from its beginning.
    pub replies: TopicReader,
}

impl TestPayment {
    pub async fn spawn() -> Self {
        let database = TestDatabase::create().await.unwrap();
        let topic_prefix = unique_topic_prefix();
        let service = spawn::<Payment>(&database, &topic_prefix, &[])
            .await
            .unwrap();
        let replies = TopicReader::new(
            &kafka_settings(&topic_prefix).unwrap(),
            topics::SAGA_REPLIES,
        )
        .unwrap();
        Self {
            service,
            database,
            topic_prefix,
            client: Client::new(),
            replies,
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

    /// `POST /cards` with a far-off expiry and a good CVC.
    pub async fn tokenize(&self, number: &str) -> Uuid {
        let (status, body) = self
            .post(
                "/cards",
                json!({"number": number, "expiry": "12/39", "cvc": "123"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["card_token"].as_str().unwrap().parse().unwrap()
    }

    pub async fn credit_miles(&self, customer: &str, miles: i64) {
        let (status, body) = self
            .post(
                &format!("/accounts/{customer}/miles/credits"),
                json!({"miles": miles, "reason": "test credit"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    pub async fn miles_balance(&self, customer: &str) -> i64 {
        let (status, body) = self.get(&format!("/accounts/{customer}/miles")).await;
        assert_eq!(status, 200, "{body}");
        body["balance"].as_i64().unwrap()
    }

    /// `GET /payments?booking_id=…`: the booking's ledger entries.
    pub async fn payments(&self, booking_id: Uuid) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/payments?booking_id={booking_id}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    pub fn kafka(&self) -> messaging::KafkaSettings {
        kafka_settings(&self.topic_prefix).unwrap()
    }

    /// Sends a command to `payment.commands` as booking's relay would; returns its envelope.
    pub async fn send<P: Message>(&self, booking_id: Uuid, command: P) -> Envelope<P> {
        let envelope = Envelope::new(command, booking_id);
        self.send_envelope(booking_id, &envelope).await;
        envelope
    }

    pub async fn send_envelope<P: Message>(&self, booking_id: Uuid, envelope: &Envelope<P>) {
        publish(
            &self.kafka(),
            topics::PAYMENT_COMMANDS,
            &booking_id.to_string(),
            envelope,
        )
        .await
        .unwrap();
    }

    /// The next `count` replies for `booking_id`, in arrival order.
    pub async fn replies_for(&self, booking_id: Uuid, count: usize) -> Vec<Envelope> {
        let replies = self
            .replies
            .collect(count, PATIENCE, |e| e.correlation_id == booking_id)
            .await
            .unwrap();
        assert_eq!(replies.len(), count, "replies for booking {booking_id}");
        replies
    }

    /// The next reply for `booking_id`, decoded as `P`.
    pub async fn reply<P: Message>(&self, booking_id: Uuid) -> P {
        let reply = self.replies_for(booking_id, 1).await.remove(0);
        assert_eq!(reply.message_type, P::MESSAGE_TYPE, "{reply:?}");
        reply.decode::<P>().unwrap().payload
    }

    /// A pool connected as the service's own role, for tests that look behind the API.
    pub async fn pool(&self) -> PgPool {
        self.database.pool_as("payment", 2).await.unwrap()
    }
}

pub fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::Usd).unwrap()
}

pub fn step(booking_id: Uuid, name: &str, attempt: u32) -> StepRef {
    StepRef {
        saga_id: booking_id,
        step: name.to_owned(),
        attempt,
    }
}

/// A `TakePayment` for a new booking: `card` pays that much with the token,
/// `miles` redeems that many miles for their value.
pub fn take_payment(
    customer: &str,
    total: &str,
    card: Option<(Uuid, &str)>,
    miles: Option<(u64, &str)>,
) -> TakePayment {
    let booking_id = Uuid::now_v7();
    TakePayment {
        step: step(booking_id, "AuthorizeAndCapturePayment", 1),
        booking_id,
        customer_id: customer.to_owned(),
        total: usd(total),
        card: card.map(|(card_token, amount)| CardCharge {
            card_token,
            amount: usd(amount),
        }),
        miles: miles.map(|(miles, amount)| MilesRedemption {
            miles,
            amount: usd(amount),
        }),
    }
}
