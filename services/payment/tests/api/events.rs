//! payment's public events on `payment.events`: one per ledger movement,
//! committed with it, never twice for a repeated command.

use contracts::payment::{
    MilesCreditKind, MilesCredited, MilesRedeemed, PaymentCaptured, PaymentMethod, PaymentRefunded,
    PaymentTaken, Refund, RefundIssued,
};
use contracts::topics::PAYMENT_EVENTS;
use serde_json::json;

use crate::helpers::{step, take_payment, usd, PaymentApi, TestPayment, APPROVES};

#[tokio::test]
async fn a_mixed_payment_publishes_one_capture_per_method_and_the_redemption_once_however_often_it_is_sent(
) {
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
    let key = booking.to_string();

    // The same message redelivered, and the command retried as a new message.
    let first = payment.send(booking, command.clone()).await;
    payment.send_envelope(booking, &first).await;
    let mut retried = command.clone();
    retried.step.attempt = 2;
    payment.send(booking, retried).await;
    let replies = payment.replies_for(booking, 2).await;
    let taken = replies[0].decode::<PaymentTaken>().unwrap().payload;

    let captured = payment
        .outbox_events::<PaymentCaptured>(PAYMENT_EVENTS, &key)
        .await;
    assert_eq!(captured.len(), 2, "one capture per method: {captured:?}");
    for (event, capture) in captured.iter().zip(&taken.captures) {
        assert_eq!(event.correlation_id, booking);
        assert_eq!(event.payload.payment_id, capture.payment_id);
        assert_eq!(event.payload.booking_id, booking);
        assert_eq!(event.payload.customer_id, "c1");
        assert_eq!(event.payload.method, capture.method);
        assert_eq!(event.payload.amount, capture.amount);
        assert_eq!(event.payload.miles, capture.miles);
    }
    let redeemed = payment
        .outbox_events::<MilesRedeemed>(PAYMENT_EVENTS, &key)
        .await;
    assert_eq!(redeemed.len(), 1, "{redeemed:?}");
    assert_eq!(redeemed[0].payload.miles, 10_000);
    assert_eq!(redeemed[0].payload.customer_id, "c1");
}

#[tokio::test]
async fn a_refund_publishes_a_refund_per_method_and_the_miles_coming_back_once() {
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
    let key = booking.to_string();
    payment.send(booking, command).await;
    let taken: PaymentTaken = payment.reply(booking).await;

    for attempt in [1, 2] {
        let refund = Refund {
            step: step(booking, "RefundPayment", attempt),
            booking_id: booking,
            reason: "booking_cancelled".to_owned(),
        };
        payment.send(booking, refund).await;
        let _: PaymentRefunded = payment.reply(booking).await;
    }

    let refunds = payment
        .outbox_events::<RefundIssued>(PAYMENT_EVENTS, &key)
        .await;
    assert_eq!(refunds.len(), 2, "one refund per method: {refunds:?}");
    let by_method: Vec<_> = refunds
        .iter()
        .map(|e| (e.payload.method, e.payload.amount, e.payload.miles))
        .collect();
    assert_eq!(
        by_method,
        [
            (PaymentMethod::Card, usd("298.00"), None),
            (PaymentMethod::Miles, usd("100.00"), Some(10_000)),
        ]
    );
    for (refund, capture) in refunds.iter().zip(&taken.captures) {
        assert_eq!(refund.payload.refund_of, capture.payment_id);
    }
    let credited = payment
        .outbox_events::<MilesCredited>(PAYMENT_EVENTS, &key)
        .await;
    assert_eq!(credited.len(), 1, "{credited:?}");
    assert_eq!(credited[0].payload.kind, MilesCreditKind::Refund);
    assert_eq!(credited[0].payload.miles, 10_000);
    assert_eq!(credited[0].payload.booking_id, Some(booking));
}

#[tokio::test]
async fn a_miles_grant_is_published_once_keyed_by_its_customer_even_when_the_request_is_retried() {
    let payment = TestPayment::spawn().await;
    let request = json!({"miles": 25_000, "reason": "welcome bonus"});
    for expected_status in [201, 200] {
        let (status, body) = payment
            .post_with_headers(
                "/accounts/c7/miles/credits",
                &[("Idempotency-Key", "welcome-c7")],
                request.clone(),
            )
            .await;
        assert_eq!(status, expected_status, "{body}");
    }

    let credited = payment
        .outbox_events::<MilesCredited>(PAYMENT_EVENTS, "c7")
        .await;
    assert_eq!(credited.len(), 1, "{credited:?}");
    let grant = &credited[0].payload;
    assert_eq!(grant.kind, MilesCreditKind::Grant);
    assert_eq!(grant.customer_id, "c7");
    assert_eq!(grant.miles, 25_000);
    assert_eq!(grant.booking_id, None);
}
