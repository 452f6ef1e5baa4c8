//! One booking, one trace: from `POST /bookings` through every command, reply,
//! timer-sent retry and compensation, across all four services.

use std::collections::HashSet;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::SpanData;
use serde_json::json;
use test_support::poll_until;
use uuid::Uuid;

use crate::helpers::{booking_body, System, FLAKY_TWICE, PATIENCE};
use crate::telemetry::{attribute, captured};

/// The consumers of the four services: a message handled by each is a hop
/// into that service.
const CONSUMERS: [&str; 4] = [
    "flight-inventory.seat-commands",
    "payment.commands",
    "notification.commands",
    "booking.saga-replies",
];

/// The booking's spans: every span that names it as its correlation id.
fn spans_of(booking_id: Uuid) -> Vec<SpanData> {
    let booking_id = booking_id.to_string();
    captured()
        .spans()
        .into_iter()
        .filter(|span| attribute(span, "correlation_id").as_deref() == Some(booking_id.as_str()))
        .collect()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> impl Iterator<Item = &'a SpanData> {
    let name = name.to_owned();
    spans.iter().filter(move |span| span.name == name)
}

fn has(span: &SpanData, key: &str, value: &str) -> bool {
    attribute(span, key).as_deref() == Some(value)
}

/// What the saga's trace still lacks, in words; empty once every hop is there.
fn missing_hops(spans: &[SpanData]) -> Vec<String> {
    let mut missing = Vec::new();
    for consumer in CONSUMERS {
        if !named(spans, "consume").any(|span| has(span, "consumer", consumer)) {
            missing.push(format!("a message handled by {consumer}"));
        }
    }
    let steps = [
        ("HoldSeats", "1", "Forward"),
        ("TakePayment", "1", "Forward"),
        ("TakePayment", "2", "Forward"),
        ("TakePayment", "3", "Forward"),
        ("ConfirmBooking", "1", "Forward"),
        ("SendConfirmation", "1", "Forward"),
        ("Refund", "1", "Compensation"),
        ("ReleaseSeats", "1", "Compensation"),
        ("SendCancellation", "1", "AfterCompensation"),
    ];
    for (step, attempt, phase) in steps {
        let sent = named(spans, "saga.step").any(|span| {
            has(span, "step", step) && has(span, "attempt", attempt) && has(span, "phase", phase)
        });
        if !sent {
            missing.push(format!("{phase} step {step} attempt {attempt} sent"));
        }
    }
    let cancellation_answered = named(spans, "saga.reply").any(|span| {
        has(span, "step", "SendCancellation")
            && has(span, "outcome", "succeeded")
            && has(span, "disposition", "applied")
    });
    if !cancellation_answered {
        missing.push("the cancellation notice's reply applied".to_owned());
    }
    missing
}

#[tokio::test]
async fn a_booking_with_a_retried_payment_and_a_compensation_is_one_trace_across_all_four_services()
{
    let captured = captured();
    let system = System::start().await;
    let flight = system.schedule_flight(10, "120.00").await;

    // A card that fails twice: the timer worker sends attempts 2 and 3.
    let booking_id = system
        .book(&booking_body(
            "cust-traced",
            flight,
            1,
            Some(FLAKY_TWICE),
            0,
        ))
        .await;
    assert_eq!(system.settled(booking_id).await["status"], "confirmed");
    // For `scripts/check-observe.py trace --service contrail-system-test`
    // when the spans also go to a real trace store.
    eprintln!("traced booking {booking_id}");
    // The customer cancels: refund, release, a cancellation notice.
    let (status, answer) = system
        .booking
        .post(
            &format!("/bookings/{booking_id}/cancel"),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(system.settled(booking_id).await["status"], "cancelled");

    let spans = poll_until(
        PATIENCE,
        "every hop of the booking's saga is traced",
        || async { spans_of(booking_id) },
        |spans| missing_hops(spans).is_empty(),
    )
    .await;
    captured.flush();

    // The trace is the one `POST /bookings` started.
    let create = named(&spans, "http_request")
        .find(|span| has(span, "method", "POST") && has(span, "path", "/bookings"))
        .expect("the POST /bookings request span names the booking");
    let saga_trace: TraceId = create.span_context.trace_id();
    // The cancellation request is a trace of its own, linked from the saga's.
    let cancel_path = format!("/bookings/{booking_id}/cancel");
    let cancel_request = named(&spans, "http_request")
        .find(|span| has(span, "path", &cancel_path))
        .expect("the cancellation request span names the booking");
    let outside: Vec<_> = spans
        .iter()
        .filter(|span| span.span_context.trace_id() != saga_trace)
        .map(|span| span.span_context.span_id())
        .collect();
    assert_eq!(
        outside,
        [cancel_request.span_context.span_id()],
        "every span of the booking but the cancellation request is in the saga's trace"
    );

    // Retries come from the timer worker, inside the saga's trace.
    let timer_spans: HashSet<SpanId> = named(&spans, "saga.resume")
        .filter(|span| has(span, "trigger", "timer"))
        .map(|span| span.span_context.span_id())
        .collect();
    for attempt in ["2", "3"] {
        let retry = named(&spans, "saga.step")
            .find(|span| has(span, "step", "TakePayment") && has(span, "attempt", attempt))
            .unwrap();
        assert!(
            timer_spans.contains(&retry.parent_span_id),
            "TakePayment attempt {attempt} is sent by the timer worker"
        );
    }
    let failures: Vec<_> = named(&spans, "saga.reply")
        .filter(|span| has(span, "step", "TakePayment"))
        .map(|span| {
            (
                attribute(span, "attempt").unwrap(),
                attribute(span, "outcome").unwrap(),
            )
        })
        .collect();
    for expected in [
        ("1", "failed_transiently"),
        ("2", "failed_transiently"),
        ("3", "succeeded"),
    ] {
        assert!(
            failures.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "TakePayment reply {expected:?} traced; saw {failures:?}"
        );
    }

    // The customer's cancellation continues the saga's trace and links the request.
    let cancellation = named(&spans, "saga.resume")
        .find(|span| has(span, "trigger", "cancellation"))
        .expect("the cancellation acts on the saga in its trace");
    assert!(cancellation
        .links
        .iter()
        .any(|link| link.span_context.trace_id() == cancel_request.span_context.trace_id()));

    // Each participant handled its command as a child of the step that sent it.
    for consumer in CONSUMERS {
        assert!(named(&spans, "consume")
            .filter(|span| has(span, "consumer", consumer))
            .all(|span| span.parent_span_is_remote));
    }
}
