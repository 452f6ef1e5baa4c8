use notification::Notification;
use test_support::conformance::{check_openapi_document, check_service_conformance};

#[tokio::test]
async fn notification_meets_the_service_conformance_suite() {
    check_service_conformance::<Notification>(&[
        ("GET", "/notifications?booking_id=not-a-uuid", "", 400),
        ("GET", "/notifications", "", 400),
    ])
    .await
    .unwrap();
}

/// The document lists exactly the routes the running service registered.
#[tokio::test]
async fn notification_documents_exactly_the_routes_it_serves() {
    check_openapi_document::<Notification>().await.unwrap();
}
