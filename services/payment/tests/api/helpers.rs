use std::ops::Deref;
use std::time::Duration;

use contracts::payment::{CardCharge, MilesRedemption, TakePayment};
use contracts::saga::StepRef;
use contracts::{topics, Currency, Envelope, Message, Money};
use messaging::testing::{publish, TopicReader};
use payment::Payment;
use serde_json::{json, Value};
use test_support::TestApp;
use uuid::Uuid;

/// How long a test waits for a reply before failing.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub const APPROVES: &str = "4242424242424242";
pub const DECLINES: &str = "4000000000000002";
pub const INSUFFICIENT_FUNDS: &str = "4000000000009995";
pub const FAILS_TWICE: &str = "4000000000000119";

/// payment, with its saga replies topic read from its beginning: the
/// commands a test sends are answered there.
pub struct TestPayment {
    pub app: TestApp<Payment>,
    pub replies: TopicReader,
}

impl Deref for TestPayment {
    type Target = TestApp<Payment>;

    fn deref(&self) -> &Self::Target {
        &self.app
    }
}

impl TestPayment {
    pub async fn spawn() -> Self {
        let app = TestApp::<Payment>::spawn().await;
        let replies = TopicReader::new(&app.kafka(), topics::SAGA_REPLIES).unwrap();
        Self { app, replies }
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
}

/// payment's endpoints.
pub trait PaymentApi {
    /// `POST /cards` with a far-off expiry and a good CVC; returns the token.
    async fn tokenize(&self, number: &str) -> Uuid;
    /// `POST /accounts/{customer}/miles/credits`.
    async fn credit_miles(&self, customer: &str, miles: i64);
    /// `GET /accounts/{customer}/miles`: the balance.
    async fn miles_balance(&self, customer: &str) -> i64;
    /// `GET /payments?booking_id=…`: the booking's ledger entries.
    async fn payments(&self, booking_id: Uuid) -> Vec<Value>;
}

impl PaymentApi for TestApp<Payment> {
    async fn tokenize(&self, number: &str) -> Uuid {
        let (status, body) = self
            .post(
                "/cards",
                json!({"number": number, "expiry": "12/39", "cvc": "123"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["card_token"].as_str().unwrap().parse().unwrap()
    }

    async fn credit_miles(&self, customer: &str, miles: i64) {
        let (status, body) = self
            .post(
                &format!("/accounts/{customer}/miles/credits"),
                json!({"miles": miles, "reason": "test credit"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn miles_balance(&self, customer: &str) -> i64 {
        let body = self.get_ok(&format!("/accounts/{customer}/miles")).await;
        body["balance"].as_i64().unwrap()
    }

    async fn payments(&self, booking_id: Uuid) -> Vec<Value> {
        self.get_items(&format!("/payments?booking_id={booking_id}"))
            .await
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
