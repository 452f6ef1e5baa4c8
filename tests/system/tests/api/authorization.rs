//! Who may do what, end to end: a customer acts for itself only, another
//! customer's booking does not exist for it, admin routes need an admin —
//! and after a booking with a card, no table of any service holds the card
//! number or the CVC.

use reqwest::Method;
use serde_json::{json, Value};
use test_support::tokens;
use uuid::Uuid;

use crate::helpers::{booking_body, System, APPROVED};

const ALICE: &str = "cust-alice";
const BOB: &str = "cust-bob";
/// A CVC no other field of the request could contain by accident.
const CVC: &str = "731";

#[tokio::test]
async fn a_customer_reaches_only_its_own_bookings_payments_and_messages() {
    let system = System::start().await;
    let flight = system.schedule_flight(20, "150.00").await;
    let alice = tokens::customer(ALICE);
    let bob = tokens::customer(BOB);

    // Bob cannot book in Alice's name.
    let mut body = booking_body(ALICE, flight, 1, Some(APPROVED), 0);
    body["payment"]["card"]["cvc"] = json!(CVC);
    let (status, problem) = book_as(&system, &bob, &body).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "/problems/forbidden");

    // Alice can.
    let (status, answer) = book_as(&system, &alice, &body).await;
    assert_eq!(status, 202, "{answer}");
    let booking_id: Uuid = answer["booking_id"].as_str().unwrap().parse().unwrap();
    let settled = system.settled(booking_id).await;
    assert_eq!(settled["status"], "confirmed", "{settled}");

    let path = format!("/bookings/{booking_id}");
    let (status, own) = system.booking.get_as(&path, Some(&alice)).await;
    assert_eq!(
        (status, own["booking_id"].as_str()),
        (200, Some(booking_id.to_string().as_str()))
    );

    // To Bob, Alice's booking does not exist: not 403, which would say it does.
    let (status, problem) = system.booking.get_as(&path, Some(&bob)).await;
    assert_eq!(
        (status, problem["type"].as_str()),
        (404, Some("/problems/booking-not-found"))
    );
    let (status, _) = system
        .booking
        .post_as(&format!("{path}/cancel"), Some(&bob), json!({}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(system.booking(booking_id).await["status"], "confirmed");
    let (status, _) = system
        .booking
        .get_as(&format!("/customers/{ALICE}/bookings"), Some(&bob))
        .await;
    assert_eq!(status, 404);
    let (status, _) = system
        .payment
        .get_as(&format!("/accounts/{ALICE}/miles"), Some(&bob))
        .await;
    assert_eq!(status, 404);

    // Payments and messages about Alice's booking: hers to read, not Bob's.
    let payments = format!("/payments?booking_id={booking_id}");
    assert_eq!(
        items(system.payment.get_as(&payments, Some(&alice)).await).len(),
        1
    );
    assert!(items(system.payment.get_as(&payments, Some(&bob)).await).is_empty());
    let messages = format!("/notifications?booking_id={booking_id}");
    assert!(!items(system.notification.get_as(&messages, Some(&alice)).await).is_empty());
    assert!(items(system.notification.get_as(&messages, Some(&bob)).await).is_empty());

    // Operator routes are for admins.
    let admin_routes: [(&str, Method, String); 5] = [
        ("booking", Method::GET, "/sagas".to_owned()),
        (
            "booking",
            Method::POST,
            format!("/sagas/{booking_id}/compensate"),
        ),
        (
            "inventory",
            Method::POST,
            format!("/flights/{flight}/cancel"),
        ),
        (
            "payment",
            Method::POST,
            format!("/accounts/{BOB}/miles/credits"),
        ),
        ("payment", Method::GET, "/dead-letters".to_owned()),
    ];
    for (service, method, path) in admin_routes {
        let request = match service {
            "booking" => system.booking.request_as(method, &path, Some(&alice)),
            "inventory" => system.inventory.request_as(method, &path, Some(&alice)),
            _ => system.payment.request_as(method, &path, Some(&alice)),
        };
        let (status, content_type, problem) = system
            .booking
            .send(request.json(&json!({"reason": "x", "miles": 5})))
            .await;
        assert_eq!(status, 403, "{service} {path}: {problem}");
        assert_eq!(content_type, "application/problem+json");
    }
    assert_eq!(system.booking(booking_id).await["status"], "confirmed");

    assert_no_card_data_anywhere(&system).await;
}

async fn book_as(system: &System, token: &str, body: &Value) -> (u16, Value) {
    let request = system
        .booking
        .request_as(Method::POST, "/bookings", Some(token))
        .header("Idempotency-Key", Uuid::now_v7().to_string())
        .json(body);
    let (status, _, answer) = system.booking.send(request).await;
    (status, answer)
}

fn items((status, body): (u16, Value)) -> Vec<Value> {
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

/// Reads every column of every row of every service's schema, as text, and
/// looks for the card number and the CVC the booking was made with.
async fn assert_no_card_data_anywhere(system: &System) {
    let mut admin = system
        .booking
        .database
        .connect_as("postgres")
        .await
        .unwrap();
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema, table_name FROM information_schema.tables
         WHERE table_type = 'BASE TABLE'
           AND table_schema IN ('booking', 'flight_inventory', 'payment', 'notification')",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(tables.len() > 10, "{tables:?}");
    for (schema, table) in tables {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT t::text FROM \"{schema}\".\"{table}\" AS t"
        ))
        .fetch_all(&mut admin)
        .await
        .unwrap();
        for (row,) in rows {
            assert!(
                !row.contains(APPROVED) && !row.contains(&format!("\"{CVC}\"")),
                "{schema}.{table} holds card data: {row}"
            );
        }
    }
}
