//! The operator API the console calls, over HTTP: saga searches and their
//! keyset pages, a saga's timeline, and other services' dead letters
//! through booking.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use test_support::tokens;
use uuid::Uuid;

use crate::helpers::{booking_body, System, APPROVED, FLAKY_TWICE};

fn ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|saga| saga["saga_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn sagas(system: &System, query: &str) -> Vec<Value> {
    system.booking.get_items(&format!("/sagas?{query}")).await
}

#[tokio::test]
async fn sagas_are_found_by_flight_customer_and_age_and_paged_without_gaps_or_repeats() {
    let system = System::start().await;
    let before_any = chrono::Utc::now();
    let (first, second) = tokio::join!(
        system.schedule_flight(10, "50.00"),
        system.schedule_flight(10, "60.00")
    );
    let mut bookings = Vec::new();
    for (customer, flight) in [("cust-a", first), ("cust-a", first), ("cust-b", second)] {
        let booking_id = system
            .book(&booking_body(customer, flight, 1, Some(APPROVED), 0))
            .await;
        system.settled(booking_id).await;
        bookings.push(booking_id.to_string());
    }
    let all: BTreeSet<String> = bookings.iter().cloned().collect();

    let on_first = sagas(&system, &format!("flight_id={first}")).await;
    assert_eq!(ids(&on_first), bookings[..2].iter().cloned().collect());
    assert!(on_first.iter().all(|saga| saga["customer_id"] == "cust-a"));
    let of_b = sagas(&system, "customer_id=cust-b&status=completed").await;
    assert_eq!(ids(&of_b), BTreeSet::from([bookings[2].clone()]));
    assert_eq!(of_b[0]["flight"]["flight_id"], second.to_string());
    assert_eq!(of_b[0]["booking_status"], "confirmed");

    let since = before_any.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert!(sagas(&system, &format!("created_before={since}"))
        .await
        .is_empty());
    assert_eq!(
        ids(&sagas(&system, &format!("created_after={since}")).await),
        all
    );

    // One saga a page: every saga once, newest change first.
    let mut seen = Vec::new();
    let mut query = "limit=1".to_owned();
    loop {
        let page = system.booking.get_ok(&format!("/sagas?{query}")).await;
        let items = page["items"].as_array().unwrap();
        seen.extend(items.iter().cloned());
        let Some(before) = page["next_before"].as_str() else {
            break;
        };
        query = format!(
            "limit=1&before={before}&before_id={}",
            page["next_before_id"].as_str().unwrap()
        );
        assert!(seen.len() <= all.len(), "paging does not end: {seen:?}");
    }
    assert_eq!(seen.len(), all.len(), "{seen:?}");
    assert_eq!(ids(&seen), all);
    let changes: Vec<chrono::DateTime<chrono::FixedOffset>> = seen
        .iter()
        .map(|saga| {
            chrono::DateTime::parse_from_rfc3339(saga["updated_at"].as_str().unwrap()).unwrap()
        })
        .collect();
    let mut newest_first = changes.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(changes, newest_first);
}

#[tokio::test]
async fn malformed_or_contradictory_saga_filters_are_problems() {
    let system = System::start().await;
    for query in [
        "status=stuck",
        "flight_id=not-a-uuid",
        "customer_id=two%20words",
        "created_after=2026-12-02T00:00:00Z&created_before=2026-12-01T00:00:00Z",
        "created_before=yesterday",
        "before_id=0193a0c2-7d1e-7c3b-9a1f-2f0e6c1d4b5a",
        "limit=0",
        "colour=red",
    ] {
        let (status, content_type, body) = system
            .booking
            .send(
                system
                    .booking
                    .request(reqwest::Method::GET, &format!("/sagas?{query}")),
            )
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(content_type, "application/problem+json", "{query}");
        assert_eq!(body["type"], "/problems/invalid-query", "{query}: {body}");
    }
}

#[tokio::test]
async fn a_timeline_shows_every_attempt_of_a_retried_step_and_links_the_saga_trace() {
    let system = System::start_with(&[(
        "console.trace_url",
        "http://127.0.0.1:16686/trace/{trace_id}".to_owned(),
    )])
    .await;
    let flight = system.schedule_flight(5, "80.00").await;
    let booking_id = system
        .book(&booking_body(
            "cust-timeline",
            flight,
            1,
            Some(FLAKY_TWICE),
            0,
        ))
        .await;
    system.settled(booking_id).await;

    let timeline = system
        .booking
        .get_ok(&format!("/sagas/{booking_id}/timeline"))
        .await;
    assert_eq!(timeline["status"], "completed");
    assert_eq!(timeline["booking"]["customer_id"], "cust-timeline");
    assert_eq!(
        timeline["actions"],
        json!({"retry": false, "compensate": true})
    );
    let steps: Vec<(&str, usize)> = timeline["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            (
                run["step"].as_str().unwrap(),
                run["attempts"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("HoldSeats", 1),
            ("TakePayment", 3),
            ("ConfirmBooking", 1),
            ("SendConfirmation", 1)
        ]
    );
    let payment = &timeline["steps"][1]["attempts"];
    assert_eq!(payment[0]["result"]["outcome"], "failed");
    assert_eq!(payment[0]["result"]["transient"], true);
    assert_eq!(payment[2]["result"]["outcome"], "succeeded");
    assert!(
        timeline.get("trace").is_none(),
        "no trace was kept: {timeline}"
    );

    // A saga row that keeps the W3C trace context it was started in (the
    // `trace_context` column the tracing work adds) is linked to the trace UI.
    let pool = system.booking.pool().await;
    sqlx::query("ALTER TABLE sagas ADD COLUMN IF NOT EXISTS trace_context jsonb")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE sagas SET trace_context = $2 WHERE saga_id = $1")
        .bind(booking_id)
        .bind(json!({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}))
        .execute(&pool)
        .await
        .unwrap();
    let timeline = system
        .booking
        .get_ok(&format!("/sagas/{booking_id}/timeline"))
        .await;
    assert_eq!(
        timeline["trace"],
        json!({
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "url": "http://127.0.0.1:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736"
        })
    );

    let (status, body) = system
        .booking
        .get(&format!("/sagas/{}/timeline", Uuid::now_v7()))
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn dead_letters_of_other_services_are_refused_as_the_services_refuse_them() {
    let mut system = System::start().await;
    for service in ["booking", "flight-inventory", "payment", "notification"] {
        let body = system
            .booking
            .get_ok(&format!("/services/{service}/dead-letters?status=parked"))
            .await;
        assert_eq!(body, json!({"service": service, "items": []}));
    }
    let (status, body) = system.booking.get("/services/nowhere/dead-letters").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = system
        .booking
        .post(
            &format!("/services/payment/dead-letters/{}/replay", Uuid::now_v7()),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "payment's own answer: {body}");
    let (status, body) = system
        .booking
        .get_as(
            "/services/payment/dead-letters",
            Some(&tokens::customer("cust-nosy")),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    system.payment.shut_down().await;
    let (status, body) = system.booking.get("/services/payment/dead-letters").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["type"], "/problems/dependency-unavailable");
}
