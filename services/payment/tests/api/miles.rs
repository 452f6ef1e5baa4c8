use payment::Payment;
use serde_json::{json, Value};
use test_support::{spawn, unique_topic_prefix, TestDatabase, TestService};

async fn spawn_payment() -> TestService {
    let database = TestDatabase::create().await.unwrap();
    spawn::<Payment>(&database, &unique_topic_prefix(), &[])
        .await
        .unwrap()
}

async fn credit(
    service: &TestService,
    customer: &str,
    key: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(service.url(&format!("/accounts/{customer}/miles/credits")))
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn balance(service: &TestService, customer: &str) -> i64 {
    let body: Value = reqwest::get(service.url(&format!("/accounts/{customer}/miles")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["balance"].as_i64().unwrap()
}

#[tokio::test]
async fn a_new_customer_has_no_miles() {
    let service = spawn_payment().await;
    assert_eq!(balance(&service, "nobody").await, 0);
}

#[tokio::test]
async fn credits_add_up_to_the_balance() {
    let service = spawn_payment().await;
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
    assert_eq!(balance(&service, "c1").await, 2000);
    assert_eq!(balance(&service, "c2").await, 0);
}

#[tokio::test]
async fn a_retried_credit_with_the_same_key_is_applied_once() {
    let service = spawn_payment().await;
    let body = json!({"miles": 700, "reason": "promo"});
    let (first_status, first) = credit(&service, "c1", Some("k-1"), body.clone()).await;
    let (second_status, second) = credit(&service, "c1", Some("k-1"), body).await;
    assert_eq!((first_status, second_status), (201, 200));
    assert_eq!(first["entry_id"], second["entry_id"]);
    assert_eq!(balance(&service, "c1").await, 700);
}

#[tokio::test]
async fn a_reused_key_with_a_different_credit_is_refused() {
    let service = spawn_payment().await;
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
    assert_eq!(balance(&service, "c1").await, 700);
}
