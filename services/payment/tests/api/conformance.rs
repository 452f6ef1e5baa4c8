use payment::Payment;
use test_support::conformance::{check_openapi_document, check_service_conformance};

#[tokio::test]
async fn payment_meets_the_service_conformance_suite() {
    check_service_conformance::<Payment>(&[
        (
            "POST",
            "/accounts/cust-1/miles/credits",
            "{\"miles\": ",
            400,
        ),
        (
            "POST",
            "/accounts/cust-1/miles/credits",
            "{\"miles\": \"many\", \"reason\": \"x\"}",
            422,
        ),
        (
            "POST",
            "/accounts/cust-1/miles/credits",
            "{\"miles\": -5, \"reason\": \"x\"}",
            422,
        ),
        (
            "POST",
            "/accounts/has%20space/miles/credits",
            "{\"miles\": 5, \"reason\": \"x\"}",
            400,
        ),
        ("GET", "/accounts/has%20space/miles", "", 400),
        ("POST", "/cards", "{\"number\": ", 400),
        (
            "POST",
            "/cards",
            "{\"number\": \"4242424242424241\", \"expiry\": \"12/39\", \"cvc\": \"123\"}",
            422,
        ),
        ("GET", "/payments", "", 400),
        ("GET", "/payments?booking_id=nope", "", 400),
    ])
    .await
    .unwrap();
}

/// The document lists exactly the routes the running service registered.
#[tokio::test]
async fn payment_documents_exactly_the_routes_it_serves() {
    check_openapi_document::<Payment>().await.unwrap();
}
