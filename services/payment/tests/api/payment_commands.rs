use contracts::payment::{
    PaymentFailed, PaymentMethod, PaymentRefunded, PaymentRefusal, PaymentRefused, PaymentTaken,
    Refund,
};
use uuid::Uuid;

use crate::helpers::{
    step, take_payment, usd, PaymentApi, TestPayment, APPROVES, DECLINES, FAILS_TWICE,
    INSUFFICIENT_FUNDS,
};

fn refund(booking_id: Uuid, attempt: u32) -> Refund {
    Refund {
        step: step(booking_id, "RefundPayment", attempt),
        booking_id,
        reason: "booking_failed".to_owned(),
    }
}

#[tokio::test]
async fn a_payment_with_the_approving_card_is_captured_and_answered() {
    let payment = TestPayment::spawn().await;
    let token = payment.tokenize(APPROVES).await;
    let command = take_payment("c1", "398.00", Some((token, "398.00")), None);
    let booking = command.booking_id;

    let sent = payment.send(booking, command.clone()).await;

    let reply = payment.replies_for(booking, 1).await.remove(0);
    assert_eq!(reply.causation_id, Some(sent.message_id));
    let taken = reply.decode::<PaymentTaken>().unwrap().payload;
    assert_eq!(taken.step, command.step, "the step is echoed unchanged");
    assert_eq!(taken.captures.len(), 1);
    assert_eq!(taken.captures[0].method, PaymentMethod::Card);
    assert_eq!(taken.captures[0].amount, usd("398.00"));
    let ledger = payment.payments(booking).await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0]["kind"], "capture");
    assert_eq!(ledger[0]["method"], "card");
    assert_eq!(ledger[0]["amount"]["amount"], "398.00");
    assert_eq!(ledger[0]["amount"]["currency"], "USD");
    assert_eq!(
        ledger[0]["payment_id"],
        taken.captures[0].payment_id.to_string()
    );
}

#[tokio::test]
async fn a_declined_card_is_refused_and_nothing_is_captured() {
    let payment = TestPayment::spawn().await;
    let token = payment.tokenize(DECLINES).await;
    let command = take_payment("c1", "120.00", Some((token, "120.00")), None);
    let booking = command.booking_id;

    payment.send(booking, command).await;

    let refused: PaymentRefused = payment.reply(booking).await;
    assert_eq!(refused.refusal, PaymentRefusal::CardDeclined);
    assert!(payment.payments(booking).await.is_empty());
}

#[tokio::test]
async fn a_card_without_funds_is_refused_for_insufficient_funds() {
    let payment = TestPayment::spawn().await;
    let token = payment.tokenize(INSUFFICIENT_FUNDS).await;
    let command = take_payment("c1", "120.00", Some((token, "120.00")), None);
    let booking = command.booking_id;

    payment.send(booking, command).await;

    let refused: PaymentRefused = payment.reply(booking).await;
    assert_eq!(refused.refusal, PaymentRefusal::InsufficientFunds);
    assert!(payment.payments(booking).await.is_empty());
}

#[tokio::test]
async fn a_customer_without_enough_miles_is_refused_and_the_card_is_not_charged() {
    let payment = TestPayment::spawn().await;
    payment.credit_miles("c1", 5_000).await;
    let token = payment.tokenize(APPROVES).await;
    let command = take_payment(
        "c1",
        "398.00",
        Some((token, "298.00")),
        Some((10_000, "100.00")),
    );
    let booking = command.booking_id;

    payment.send(booking, command).await;

    let refused: PaymentRefused = payment.reply(booking).await;
    assert_eq!(refused.refusal, PaymentRefusal::InsufficientMiles);
    assert_eq!(refused.detail, "10000 miles needed, 5000 available");
    assert!(payment.payments(booking).await.is_empty());
    assert_eq!(payment.miles_balance("c1").await, 5_000);
    let charged: i64 = sqlx::query_scalar("SELECT count(*) FROM gateway_attempts")
        .fetch_one(&payment.pool().await)
        .await
        .unwrap();
    assert_eq!(charged, 0, "the gateway was never asked");
}

#[tokio::test]
async fn the_flaky_card_fails_twice_then_is_captured_on_the_third_attempt() {
    let payment = TestPayment::spawn().await;
    let token = payment.tokenize(FAILS_TWICE).await;
    let first = take_payment("c1", "50.00", Some((token, "50.00")), None);
    let booking = first.booking_id;

    // As the saga retries: a new command (and message) per attempt, in order.
    for attempt in 1..=3 {
        let mut command = first.clone();
        command.step.attempt = attempt;
        payment.send(booking, command).await;
    }

    let replies = payment.replies_for(booking, 3).await;
    let types: Vec<&str> = replies.iter().map(|r| r.message_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "payment.PaymentFailed.v1",
            "payment.PaymentFailed.v1",
            "payment.PaymentTaken.v1"
        ]
    );
    let failed = replies[0].decode::<PaymentFailed>().unwrap().payload;
    assert_eq!(failed.step.attempt, 1);
    let taken = replies[2].decode::<PaymentTaken>().unwrap().payload;
    assert_eq!(taken.step.attempt, 3);
    assert_eq!(taken.captures.len(), 1);
    assert_eq!(payment.payments(booking).await.len(), 1);
}

#[tokio::test]
async fn a_mixed_payment_captures_card_and_miles_separately_and_redeems_the_miles() {
    let payment = TestPayment::spawn().await;
    payment.credit_miles("c1", 25_000).await;
    let token = payment.tokenize(APPROVES).await;
    let command = take_payment(
        "c1",
        "398.00",
        Some((token, "298.00")),
        Some((10_000, "100.00")),
    );
    let booking = command.booking_id;

    payment.send(booking, command).await;

    let taken: PaymentTaken = payment.reply(booking).await;
    let methods: Vec<PaymentMethod> = taken.captures.iter().map(|c| c.method).collect();
    assert_eq!(methods, [PaymentMethod::Card, PaymentMethod::Miles]);
    assert_eq!(taken.captures[1].miles, Some(10_000));
    assert_eq!(taken.captures[1].amount, usd("100.00"));
    assert_eq!(payment.miles_balance("c1").await, 15_000);
    let ledger = payment.payments(booking).await;
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[1]["method"], "miles");
    assert_eq!(ledger[1]["miles"], 10_000);
    assert!(ledger[0].get("miles").is_none(), "{}", ledger[0]);
    let (status, by_customer) = payment.get("/payments?customer_id=c1").await;
    assert_eq!(status, 200);
    assert_eq!(by_customer["items"].as_array().unwrap(), &ledger);
}

#[tokio::test]
async fn a_repeated_take_payment_captures_each_method_once_and_answers_the_same() {
    let payment = TestPayment::spawn().await;
    payment.credit_miles("c1", 50_000).await;
    let token = payment.tokenize(APPROVES).await;
    let command = take_payment(
        "c1",
        "398.00",
        Some((token, "298.00")),
        Some((10_000, "100.00")),
    );
    let booking = command.booking_id;

    // A redelivery of one message (same message id) and a retried command (a new one).
    let first = payment.send(booking, command.clone()).await;
    payment.send_envelope(booking, &first).await;
    let mut retried = command.clone();
    retried.step.attempt = 2;
    payment.send(booking, retried).await;

    let replies = payment.replies_for(booking, 2).await;
    let answers: Vec<PaymentTaken> = replies
        .iter()
        .map(|r| r.decode::<PaymentTaken>().unwrap().payload)
        .collect();
    assert_eq!(
        answers[0].captures, answers[1].captures,
        "the same captures, twice"
    );
    assert_eq!(answers[1].step.attempt, 2);
    assert_eq!(payment.payments(booking).await.len(), 2);
    assert_eq!(payment.miles_balance("c1").await, 40_000);
}

#[tokio::test]
async fn a_refund_gives_back_card_and_miles_and_a_second_refund_changes_nothing() {
    let payment = TestPayment::spawn().await;
    payment.credit_miles("c1", 25_000).await;
    let token = payment.tokenize(APPROVES).await;
    let command = take_payment(
        "c1",
        "398.00",
        Some((token, "298.00")),
        Some((10_000, "100.00")),
    );
    let booking = command.booking_id;
    payment.send(booking, command).await;
    let taken: PaymentTaken = payment.reply(booking).await;
    assert_eq!(payment.miles_balance("c1").await, 15_000);

    payment.send(booking, refund(booking, 1)).await;
    let refunded: PaymentRefunded = payment.reply(booking).await;
    payment.send(booking, refund(booking, 2)).await;
    let again: PaymentRefunded = payment.reply(booking).await;

    assert_eq!(refunded.refunds.len(), 2);
    for (refund, capture) in refunded.refunds.iter().zip(&taken.captures) {
        assert_eq!(
            (refund.method, refund.amount, refund.miles),
            (capture.method, capture.amount, capture.miles)
        );
        assert_ne!(refund.payment_id, capture.payment_id);
    }
    assert_eq!(
        again.refunds, refunded.refunds,
        "the second refund answers with the first"
    );
    assert_eq!(again.step.attempt, 2);
    assert_eq!(payment.miles_balance("c1").await, 25_000);
    let kinds: Vec<(String, String)> = payment
        .payments(booking)
        .await
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["method"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("capture", "card"),
        ("capture", "miles"),
        ("refund", "card"),
        ("refund", "miles"),
    ];
    assert_eq!(kinds, expected.map(|(k, m)| (k.to_owned(), m.to_owned())));
}

#[tokio::test]
async fn a_refund_before_any_payment_closes_the_booking_and_a_later_payment_is_refused() {
    let payment = TestPayment::spawn().await;
    let token = payment.tokenize(APPROVES).await;
    let command = take_payment("c1", "120.00", Some((token, "120.00")), None);
    let booking = command.booking_id;

    payment.send(booking, refund(booking, 1)).await;
    let refunded: PaymentRefunded = payment.reply(booking).await;
    payment.send(booking, command).await;
    let refused: PaymentRefused = payment.reply(booking).await;

    assert!(refunded.refunds.is_empty());
    assert_eq!(refused.refusal, PaymentRefusal::PaymentClosed);
    assert!(payment.payments(booking).await.is_empty());
}

#[tokio::test]
async fn a_payment_whose_parts_do_not_add_up_is_refused_as_invalid() {
    let payment = TestPayment::spawn().await;
    let token = payment.tokenize(APPROVES).await;
    let command = take_payment("c1", "398.00", Some((token, "300.00")), None);
    let booking = command.booking_id;

    payment.send(booking, command).await;

    let refused: PaymentRefused = payment.reply(booking).await;
    assert_eq!(refused.refusal, PaymentRefusal::Invalid);
    assert!(
        refused.detail.contains("not the total"),
        "{}",
        refused.detail
    );
}

#[tokio::test]
async fn an_unknown_card_token_is_refused() {
    let payment = TestPayment::spawn().await;
    let command = take_payment("c1", "10.00", Some((Uuid::now_v7(), "10.00")), None);
    let booking = command.booking_id;

    payment.send(booking, command).await;

    let refused: PaymentRefused = payment.reply(booking).await;
    assert_eq!(refused.refusal, PaymentRefusal::UnknownCard);
}

#[tokio::test]
async fn the_database_refuses_a_second_capture_of_a_method_and_any_rewrite_of_the_ledger() {
    let payment = TestPayment::spawn().await;
    let token = payment.tokenize(APPROVES).await;
    let command = take_payment("c1", "10.00", Some((token, "10.00")), None);
    let booking = command.booking_id;
    payment.send(booking, command).await;
    let _: PaymentTaken = payment.reply(booking).await;
    let pool = payment.pool().await;

    let second = sqlx::query(
        "INSERT INTO payment_ledger (payment_id, booking_id, customer_id, kind, method, amount, currency, card_token)
         VALUES ($1, $2, 'c1', 'capture', 'card', 10.00, 'USD', $3)",
    )
    .bind(Uuid::now_v7())
    .bind(booking)
    .bind(token)
    .execute(&pool)
    .await
    .unwrap_err();
    let rewrite = sqlx::query("UPDATE payment_ledger SET amount = 1")
        .execute(&pool)
        .await
        .unwrap_err();

    let code = |error: &sqlx::Error| {
        error
            .as_database_error()
            .unwrap()
            .code()
            .unwrap()
            .into_owned()
    };
    assert_eq!(code(&second), "23505", "unique violation");
    assert_eq!(code(&rewrite), "42501", "append-only");
}
