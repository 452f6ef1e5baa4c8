use serde_json::{json, Value};
use test_support::strings_of;

use crate::helpers::{PaymentApi, TestPayment, APPROVES};

#[tokio::test]
async fn a_test_card_is_tokenized_with_its_brand_last_four_and_expiry() {
    let payment = TestPayment::spawn().await;

    let (status, card) = payment
        .post(
            "/cards",
            json!({"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}),
        )
        .await;

    assert_eq!(status, 201, "{card}");
    assert_eq!(card["brand"], "visa");
    assert_eq!(card["last4"], "4242");
    assert_eq!(card["expiry"], "12/39");
    assert!(card["card_token"]
        .as_str()
        .unwrap()
        .parse::<uuid::Uuid>()
        .is_ok());
    assert!(
        !card.to_string().contains(APPROVES),
        "the answer never repeats the number"
    );
    let second = payment.tokenize(APPROVES).await;
    assert_ne!(
        card["card_token"],
        second.to_string(),
        "every tokenization is a new token"
    );
}

#[tokio::test]
async fn invalid_card_bodies_are_refused_with_problem_details() {
    let payment = TestPayment::spawn().await;
    let card = |number: &str, expiry: &str, cvc: &str| {
        json!({"number": number, "expiry": expiry, "cvc": cvc}).to_string()
    };
    let cases: Vec<(String, u16, &str, Option<&str>)> = vec![
        (
            card("4242424242424241", "12/39", "123"),
            422,
            "invalid-card-number",
            Some("number"),
        ),
        (
            card("4242-abcd-4242-4242", "12/39", "123"),
            422,
            "invalid-card-number",
            Some("number"),
        ),
        (
            card("42424242", "12/39", "123"),
            422,
            "invalid-card-number",
            Some("number"),
        ),
        (
            card(APPROVES, "13/39", "123"),
            422,
            "invalid-expiry",
            Some("expiry"),
        ),
        (
            card(APPROVES, "12/2039", "123"),
            422,
            "invalid-expiry",
            Some("expiry"),
        ),
        (
            card(APPROVES, "01/20", "123"),
            422,
            "card-expired",
            Some("expiry"),
        ),
        (
            card(APPROVES, "12/39", "12"),
            422,
            "invalid-cvc",
            Some("cvc"),
        ),
        (
            card(APPROVES, "12/39", "1234"),
            422,
            "invalid-cvc",
            Some("cvc"),
        ),
        (
            card("5555555555554444", "12/39", "123"),
            422,
            "unknown-card",
            Some("number"),
        ),
        ("{\"number\": ".to_owned(), 400, "bad-request", None),
        (
            json!({"number": APPROVES, "expiry": "12/39"}).to_string(),
            422,
            "unprocessable",
            None,
        ),
        (
            json!({"number": APPROVES, "expiry": "12/39", "cvc": "123", "name": "x"}).to_string(),
            422,
            "unprocessable",
            None,
        ),
        (
            json!({"number": 4242424242424242_u64, "expiry": "12/39", "cvc": "123"}).to_string(),
            422,
            "unprocessable",
            None,
        ),
    ];

    for (body, status, problem_type, field) in cases {
        let response = payment
            .request(reqwest::Method::POST, "/cards")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let problem: Value = response.json().await.unwrap();
        if problem_type == "unprocessable" {
            // A body serde could not read is described without the values in it.
            let detail = problem["detail"].as_str().unwrap_or_default();
            assert!(
                !detail.contains("4242424242424242") && !detail.contains("123"),
                "{detail}"
            );
        }
        assert_eq!(
            problem["type"],
            format!("/problems/{problem_type}"),
            "{body}: {problem}"
        );
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{body}: {problem}");
        }
        assert!(
            !problem.to_string().contains("4242424242424241"),
            "{problem}"
        );
    }
}

#[tokio::test]
async fn an_unknown_card_is_refused_with_the_list_of_test_cards() {
    let payment = TestPayment::spawn().await;

    let (status, problem) = payment
        .post(
            "/cards",
            json!({"number": "5555555555554444", "expiry": "12/39", "cvc": "123"}),
        )
        .await;

    assert_eq!(status, 422);
    assert_eq!(problem["type"], "/problems/unknown-card");
    let listed = strings_of(&problem["test_cards"], "number");
    assert_eq!(
        listed,
        [
            "4242424242424242",
            "4000000000000002",
            "4000000000009995",
            "4000000000000119"
        ]
    );
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("4242424242424242"));
}

#[tokio::test]
async fn the_payments_query_is_validated_and_never_fails_with_a_500() {
    let payment = TestPayment::spawn().await;
    let booking = uuid::Uuid::now_v7();

    for path in [
        "/payments".to_owned(),
        "/payments?booking_id=not-a-uuid".to_owned(),
        format!("/payments?booking_id={booking}&customer_id=c1"),
        "/payments?customer_id=has%20space".to_owned(),
        "/payments?customer_id=c1&limit=0".to_owned(),
        "/payments?booking=typo".to_owned(),
    ] {
        let (status, problem) = payment.get(&path).await;
        assert_eq!(status, 400, "{path}: {problem}");
        assert_eq!(
            problem["type"], "/problems/invalid-query",
            "{path}: {problem}"
        );
    }

    assert_eq!(payment.payments(booking).await, Vec::<Value>::new());
    let (status, body) = payment.get("/payments?customer_id=nobody").await;
    assert_eq!((status, body), (200, json!({"items": []})));
}

#[tokio::test]
async fn the_openapi_document_describes_every_payment_endpoint() {
    let payment = TestPayment::spawn().await;

    let (status, document) = payment.get("/openapi.json").await;

    assert_eq!(status, 200);
    for path in [
        "/cards",
        "/payments",
        "/accounts/{customer_id}/miles",
        "/accounts/{customer_id}/miles/credits",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is missing");
    }
}
