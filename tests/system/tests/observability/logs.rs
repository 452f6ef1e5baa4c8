//! Logs that join up: every line about a booking carries its ids.

use serde_json::Value;
use test_support::poll_until;
use uuid::Uuid;

use crate::helpers::{booking_body, System, DECLINED, PATIENCE};
use crate::telemetry::captured;

fn text<'a>(line: &'a Value, field: &str) -> Option<&'a str> {
    line.get(field).and_then(Value::as_str)
}

#[tokio::test]
async fn every_log_line_about_a_booking_carries_its_trace_request_or_message_and_correlation_ids() {
    let captured = captured();
    let system = System::start().await;
    let flight = system.schedule_flight(10, "80.00").await;

    // A declined card: a business refusal, then a compensation.
    let booking_id: Uuid = system
        .book(&booking_body("cust-logged", flight, 1, Some(DECLINED), 0))
        .await;
    assert_eq!(system.settled(booking_id).await["status"], "failed");
    let booking_id = booking_id.to_string();

    // The lines naming the booking, once its last reply has been logged about.
    let about_booking = poll_until(
        PATIENCE,
        "the booking's saga has logged its end",
        || async {
            captured
                .log_lines()
                .into_iter()
                .filter(|line| text(line, "correlation_id") == Some(booking_id.as_str()))
                .collect::<Vec<_>>()
        },
        |lines| {
            lines
                .iter()
                .any(|line| text(line, "message").is_some_and(|m| m.starts_with("saga reached")))
        },
    )
    .await;
    let trace_id = text(&about_booking[0], "trace_id")
        .expect("a line about the booking carries its trace id")
        .to_owned();

    // Every line of the booking's trace names the booking, and every line
    // naming the booking is in its trace: the two ways of following it agree.
    let in_trace: Vec<Value> = captured
        .log_lines()
        .into_iter()
        .filter(|line| text(line, "trace_id") == Some(trace_id.as_str()))
        .collect();
    for line in &about_booking {
        assert_eq!(text(line, "trace_id"), Some(trace_id.as_str()), "{line}");
    }
    for line in &in_trace {
        assert!(
            text(line, "span_id").is_some_and(|id| id.len() == 16),
            "{line}"
        );
        let in_request = text(line, "request_id").is_some();
        let in_message = text(line, "message_id").is_some();
        let in_timer = text(line, "trigger").is_some();
        assert!(
            in_request || in_message || in_timer,
            "a line names its request, its message or the saga timer: {line}"
        );
        // The booking's own service names it from the start; the flight and
        // card lookups it asks of other services before the saga starts
        // are about a flight and a card, and are joined by the trace id.
        let lookup = matches!(
            text(line, "path"),
            Some(path) if path == "/cards" || path.ends_with("/quote")
        );
        if !lookup {
            assert_eq!(
                text(line, "correlation_id"),
                Some(booking_id.as_str()),
                "{line}"
            );
        }
    }

    // Lines from all four services, by their consumers and the request.
    let consumers: Vec<&str> = about_booking
        .iter()
        .filter_map(|line| text(line, "consumer"))
        .collect();
    for consumer in [
        "flight-inventory.seat-commands",
        "payment.commands",
        "booking.saga-replies",
    ] {
        assert!(consumers.contains(&consumer), "{consumer} in {consumers:?}");
    }
    assert!(about_booking
        .iter()
        .any(|line| text(line, "path") == Some("/bookings") && text(line, "request_id").is_some()));

    // The refusal is a business outcome: logged once, at INFO, never ERROR.
    let refusals: Vec<&Value> = about_booking
        .iter()
        .filter(|line| text(line, "message") == Some("payment refused"))
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert_eq!(text(refusals[0], "level"), Some("INFO"));
    assert!(
        about_booking
            .iter()
            .all(|line| text(line, "level") != Some("ERROR")),
        "nothing an operator must act on: {about_booking:#?}"
    );
}

#[tokio::test]
async fn a_sold_out_booking_is_logged_once_at_info_as_a_refusal() {
    let captured = captured();
    let system = System::start().await;
    let flight = system.schedule_flight(1, "80.00").await;

    // Two seats on a one-seat flight: the quote is refused with 409.
    let (status, answer) = system
        .book_with_key(
            &Uuid::now_v7().to_string(),
            &booking_body("cust-late", flight, 2, Some(crate::helpers::APPROVED), 0),
        )
        .await;
    assert!(status == 409 || status == 422, "{status} {answer}");

    let refusals: Vec<Value> = captured
        .log_lines()
        .into_iter()
        .filter(|line| text(line, "message") == Some("request refused"))
        .filter(|line| text(line, "path") == Some("/bookings"))
        .filter(|line| line.get("status").and_then(Value::as_u64) == Some(u64::from(status)))
        .filter(|line| {
            text(line, "detail").is_some_and(|detail| answer.to_string().contains(detail))
        })
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert_eq!(text(&refusals[0], "level"), Some("INFO"));
    assert!(text(&refusals[0], "error").is_none(), "no debug dump");
}
