use payment::Payment;
use serde_json::{json, Value};
use test_support::TestApp;

use crate::helpers::PaymentApi;

/// `POST /accounts/{customer}/miles/credits`, with an `Idempotency-Key` if given.
async fn credit(
    service: &TestApp<Payment>,
    customer: &str,
    key: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = key
        .map(|key| ("Idempotency-Key", key))
        .into_iter()
        .collect();
    service
        .post_with_headers(
            &format!("/accounts/{customer}/miles/credits"),
            &headers,
            body,
        )
        .await
}

#[tokio::test]
async fn a_new_customer_has_no_miles() {
    let service = TestApp::<Payment>::spawn().await;
    assert_eq!(service.miles_balance("nobody").await, 0);
}

#[tokio::test]
async fn credits_add_up_to_the_balance() {
    let service = TestApp::<Payment>::spawn().await;
    let (status, receipt) = credit(
        &service,
        "c1",
        None,
        json!({"miles": 1500, "reason": "signup"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(receipt["balance"], 1500);
    credit(
        &service,
        "c1",
        None,
        json!({"miles": 500, "reason": "survey"}),
    )
    .await;
    assert_eq!(service.miles_balance("c1").await, 2000);
    assert_eq!(service.miles_balance("c2").await, 0);
}

#[tokio::test]
async fn a_retried_credit_with_the_same_key_is_applied_once() {
    let service = TestApp::<Payment>::spawn().await;
    let body = json!({"miles": 700, "reason": "promo"});
    let (first_status, first) = credit(&service, "c1", Some("k-1"), body.clone()).await;
    let (second_status, second) = credit(&service, "c1", Some("k-1"), body).await;
    assert_eq!((first_status, second_status), (201, 200));
    assert_eq!(first["entry_id"], second["entry_id"]);
    assert_eq!(service.miles_balance("c1").await, 700);
}

#[tokio::test]
async fn a_reused_key_with_a_different_credit_is_refused() {
    let service = TestApp::<Payment>::spawn().await;
    credit(
        &service,
        "c1",
        Some("k-1"),
        json!({"miles": 700, "reason": "promo"}),
    )
    .await;
    let (status, problem) = credit(
        &service,
        "c1",
        Some("k-1"),
        json!({"miles": 900, "reason": "promo"}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");
    assert_eq!(service.miles_balance("c1").await, 700);
}
