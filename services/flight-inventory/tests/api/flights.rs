use serde_json::json;
use test_support::strings_of;

use crate::helpers::{schedule_body, InventoryApi, TestInventory};

#[tokio::test]
async fn a_scheduled_flight_is_created_with_its_location_and_full_availability() {
    let inventory = TestInventory::spawn().await;
    let response = inventory
        .request(reqwest::Method::POST, "/flights")
        .json(&schedule_body(180, "199.00"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/flights/{}", body["flight_id"].as_str().unwrap())
    );
    assert_eq!(body["fare"], json!({"amount": "199.00", "currency": "USD"}));
    assert_eq!(body["status"], "scheduled");
    assert_eq!(body["version"], 1);

    let (status, availability) = inventory.get(&format!("{location}/availability")).await;
    assert_eq!(status, 200);
    assert_eq!(
        availability,
        json!({"capacity": 180, "available": 180, "held": 0, "sold": 0})
    );
}

#[tokio::test]
async fn invalid_schedules_are_refused_with_the_field_that_is_wrong() {
    let inventory = TestInventory::spawn().await;
    let cases = [
        ("origin", json!("Seoul"), 422),
        ("destination", json!("ICN"), 422),
        ("capacity", json!(0), 422),
        ("flight_number", json!("123"), 422),
        ("fare", json!({"amount": 199.0, "currency": "USD"}), 422),
        ("fare", json!({"amount": "199.001", "currency": "USD"}), 422),
        ("fare", json!({"amount": "199.00", "currency": "XYZ"}), 422),
        ("departure", json!("next tuesday"), 422),
    ];
    for (field, value, expected) in cases {
        let mut body = schedule_body(180, "199.00");
        body[field] = value.clone();
        let (status, problem) = inventory.post("/flights", body).await;
        assert_eq!(status, expected, "{field} = {value}: {problem}");
        assert!(problem["detail"].as_str().is_some(), "{problem}");
    }
    let (_, search) = inventory.get("/flights").await;
    assert_eq!(search["items"], json!([]), "nothing was scheduled");
}

#[tokio::test]
async fn a_quote_is_the_current_fare_times_the_seats_and_refuses_more_than_are_left() {
    let inventory = TestInventory::spawn().await;
    let flight = inventory.schedule(3, "199.00").await;
    let (status, quote) = inventory
        .get(&format!("/flights/{flight}/quote?seats=2"))
        .await;
    assert_eq!(status, 200, "{quote}");
    assert_eq!(
        quote["total"],
        json!({"amount": "398.00", "currency": "USD"})
    );
    assert_eq!(quote["seats"], 2);

    let (status, problem) = inventory
        .get(&format!("/flights/{flight}/quote?seats=4"))
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "/problems/sold-out");
    assert_eq!(problem["available"], 3);
    let (status, _) = inventory
        .get(&format!("/flights/{flight}/quote?seats=0"))
        .await;
    assert_eq!(status, 422);
    let (status, _) = inventory
        .get(&format!("/flights/{flight}/quote?seats=many"))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn time_travel_shows_the_fare_before_it_changed() {
    let inventory = TestInventory::spawn().await;
    let flight = inventory.schedule(180, "199.00").await;
    let before_change = chrono::Utc::now();
    let (status, changed) = inventory
        .post(
            &format!("/flights/{flight}/fare"),
            json!({"fare": {"amount": "249.00", "currency": "USD"}}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["fare"]["amount"], "249.00");
    assert_eq!(changed["version"], 2);

    let as_of = before_change.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let url = format!("/flights/{flight}?as_of={}", as_of.replace('+', "%2B"));
    let (status, then) = inventory.get(&url).await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(then["fare"]["amount"], "199.00");
    assert_eq!(then["version"], 1);

    let (_, first) = inventory.get(&format!("/flights/{flight}?version=1")).await;
    assert_eq!(first["fare"]["amount"], "199.00");
    let (_, now) = inventory.get(&format!("/flights/{flight}")).await;
    assert_eq!(now["fare"]["amount"], "249.00");
    let (status, problem) = inventory.get(&format!("/flights/{flight}?version=3")).await;
    assert_eq!(status, 404, "{problem}");
    let (status, _) = inventory
        .get(&format!(
            "/flights/{flight}?version=1&as_of={}",
            as_of.replace('+', "%2B")
        ))
        .await;
    assert_eq!(status, 400);

    let (_, history) = inventory.get(&format!("/flights/{flight}/history")).await;
    let types = strings_of(&history["items"], "type");
    assert_eq!(types, ["FlightScheduled", "FareIncreased"]);
    assert_eq!(history["items"][1]["data"]["from"]["amount"], "199.00");
}

#[tokio::test]
async fn a_flight_moves_through_its_statuses_and_reports_positions_only_in_the_air() {
    let inventory = TestInventory::spawn().await;
    let flight = inventory.schedule(180, "199.00").await;
    let position = json!({"latitude": 35.5, "longitude": 139.7, "altitude_ft": 34000});
    let (status, problem) = inventory
        .post(&format!("/flights/{flight}/position"), position.clone())
        .await;
    assert_eq!(status, 409, "{problem}");

    for next in ["delayed", "boarding", "departed"] {
        let (status, body) = inventory
            .post(
                &format!("/flights/{flight}/status"),
                json!({"status": next}),
            )
            .await;
        assert_eq!(status, 200, "{next}: {body}");
        assert_eq!(body["status"], next);
    }
    let (status, body) = inventory
        .post(&format!("/flights/{flight}/position"), position)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["last_position"]["altitude_ft"], 34000);

    let (status, problem) = inventory
        .post(
            &format!("/flights/{flight}/status"),
            json!({"status": "scheduled"}),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "/problems/invalid-transition");
    let (status, problem) = inventory
        .post(
            &format!("/flights/{flight}/cancel"),
            json!({"reason": "too late"}),
        )
        .await;
    assert_eq!(
        status, 409,
        "a departed flight cannot be cancelled: {problem}"
    );
    let (status, _) = inventory
        .post(
            &format!("/flights/{flight}/status"),
            json!({"status": "landed"}),
        )
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn a_cancelled_flight_quotes_nothing() {
    let inventory = TestInventory::spawn().await;
    let flight = inventory.schedule(180, "199.00").await;
    let (status, body) = inventory
        .post(
            &format!("/flights/{flight}/cancel"),
            json!({"reason": "weather"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["cancellation_reason"], "weather");
    let (status, problem) = inventory
        .get(&format!("/flights/{flight}/quote?seats=1"))
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "/problems/flight-closed");
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let inventory = TestInventory::spawn().await;
    let (status, document) = inventory.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/flights/{flight_id}/quote"].is_object());
}
