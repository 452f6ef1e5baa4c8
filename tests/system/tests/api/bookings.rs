//! The public booking API's contract: idempotency, refusals, waiting, listing.

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{booking_body, System, APPROVED};

#[tokio::test]
async fn the_same_request_with_the_same_key_is_the_same_booking() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "99.00").await;
    let body = booking_body("cust-retry", flight, 1, Some(APPROVED), 0);

    let (first_status, first) = system.book_with_key("retry-key-1", &body).await;
    let (second_status, second) = system.book_with_key("retry-key-1", &body).await;

    assert_eq!(first_status, 202, "{first}");
    assert_eq!(second_status, 202, "{second}");
    assert_eq!(first["booking_id"], second["booking_id"]);
    let booking_id: Uuid = first["booking_id"].as_str().unwrap().parse().unwrap();
    let booking = system.settled(booking_id).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(system.payments(booking_id).await.len(), 1, "charged once");
    let (_, list) = system.booking.get("/customers/cust-retry/bookings").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(system.availability(flight).await["sold"], 1);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "99.00").await;
    let (status, _) = system
        .book_with_key(
            "reused-key",
            &booking_body("cust-a", flight, 1, Some(APPROVED), 0),
        )
        .await;
    assert_eq!(status, 202);

    let (status, problem) = system
        .book_with_key(
            "reused-key",
            &booking_body("cust-a", flight, 2, Some(APPROVED), 0),
        )
        .await;

    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");
}

async fn post_raw(
    system: &System,
    key: Option<&str>,
    content_type: &str,
    body: &str,
) -> (u16, String, Value) {
    let mut request = system
        .booking
        .request(Method::POST, "/bookings")
        .header("content-type", content_type)
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    system.booking.send(request).await
}

#[tokio::test]
async fn malformed_requests_are_problems_and_create_nothing() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "99.00").await;
    let valid = booking_body("cust-bad", flight, 1, Some(APPROVED), 0);
    let with = |pointer: &str, value: Value| {
        let mut body = valid.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body.to_string()
    };
    let cases: Vec<(&str, Option<&str>, String, u16)> = vec![
        ("not json", Some("k1"), "{\"customer_id\": ".to_owned(), 400),
        ("no idempotency key", None, valid.to_string(), 400),
        (
            "missing field",
            Some("k2"),
            json!({"customer_id": "cust-bad"}).to_string(),
            422,
        ),
        (
            "flight id not a uuid",
            Some("k3"),
            with("/flight_id", json!("CT123")),
            422,
        ),
        (
            "no passengers",
            Some("k4"),
            with("/passengers", json!([])),
            422,
        ),
        (
            "ten passengers",
            Some("k5"),
            with(
                "/passengers",
                json!(vec![json!({"first_name": "A", "last_name": "B"}); 10]),
            ),
            422,
        ),
        (
            "bad email",
            Some("k6"),
            with("/contact/email", json!("nobody")),
            422,
        ),
        (
            "card failing luhn",
            Some("k7"),
            with("/payment/card/number", json!("4242424242424241")),
            422,
        ),
        (
            "unknown test card",
            Some("k8"),
            with("/payment/card/number", json!("4111111111111111")),
            422,
        ),
        (
            "bad expiry",
            Some("k9"),
            with("/payment/card/expiry", json!("2030-12")),
            422,
        ),
        (
            "negative miles",
            Some("k10"),
            with("/payment/miles", json!(-5)),
            422,
        ),
        (
            "unknown field",
            Some("k11"),
            with("/customer_id", json!("cust-bad"))
                .replace("\"customer_id\"", "\"customer\": 1, \"customer_id\""),
            422,
        ),
    ];
    for (case, key, body, expected) in cases {
        let (status, content_type, problem) =
            post_raw(&system, key, "application/json", &body).await;
        assert_eq!(status, expected, "{case}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{case}");
        assert_eq!(problem["status"], expected, "{case}");
        assert!(problem["detail"].is_string(), "{case}: {problem}");
    }
    let (status, _, _) = post_raw(&system, Some("k12"), "text/plain", &valid.to_string()).await;
    assert_eq!(status, 415);

    let (_, list) = system.booking.get("/customers/cust-bad/bookings").await;
    assert_eq!(list["items"], json!([]), "nothing was created");
    assert_eq!(system.availability(flight).await["available"], 10);
}

#[tokio::test]
async fn flights_that_cannot_be_sold_are_refused_at_once() {
    let system = System::start().await;
    let flight = system.schedule_flight(2, "99.00").await;

    let (status, problem) = system
        .book_with_key(
            "sold-out",
            &booking_body("cust-x", flight, 3, Some(APPROVED), 0),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "/problems/sold-out");

    let (status, problem) = system
        .book_with_key(
            "nowhere",
            &booking_body("cust-x", Uuid::now_v7(), 1, Some(APPROVED), 0),
        )
        .await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(problem["type"], "/problems/flight-not-found");

    let (status, _) = system
        .inventory
        .post(
            &format!("/flights/{flight}/cancel"),
            json!({"reason": "crew shortage"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, problem) = system
        .book_with_key(
            "closed",
            &booking_body("cust-x", flight, 1, Some(APPROVED), 0),
        )
        .await;
    assert_eq!(status, 409, "{problem}");

    let (status, problem) = system
        .book_with_key(
            "miles-short",
            &booking_body(
                "cust-x",
                system.schedule_flight(5, "99.00").await,
                1,
                None,
                100,
            ),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["type"], "/problems/insufficient-miles-offered");
}

#[tokio::test]
async fn prefer_wait_answers_with_the_settled_booking() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "99.00").await;

    let response = system
        .booking
        .request(Method::POST, "/bookings")
        .header("Idempotency-Key", "wait-1")
        .header("Prefer", "wait=30")
        .json(&booking_body("cust-wait", flight, 1, Some(APPROVED), 0))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status().as_u16(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "confirmed", "{body:#}");
    assert_eq!(
        location,
        format!("/bookings/{}", body["booking_id"].as_str().unwrap())
    );
}
