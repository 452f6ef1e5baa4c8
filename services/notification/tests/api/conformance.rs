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

/// The routes `Notification::build` registers, in its order: the document must list
/// exactly these (and the shared ones), and the service must route each.
#[tokio::test]
async fn notification_documents_exactly_the_routes_it_serves() {
    check_openapi_document::<Notification>(&[("GET", "/notifications"), ("GET", "/openapi.json")])
        .await
        .unwrap();
}
