use booking::Booking;
use test_support::conformance::{check_openapi_document, check_service_conformance};

#[tokio::test]
async fn booking_meets_the_service_conformance_suite() {
    check_service_conformance::<Booking>(&[]).await.unwrap();
}

/// The routes `Booking::build` registers, in its order: the document must list
/// exactly these (and the shared ones), and the service must route each.
#[tokio::test]
async fn booking_documents_exactly_the_routes_it_serves() {
    check_openapi_document::<Booking>(&[
        ("POST", "/bookings"),
        ("GET", "/bookings/{booking_id}"),
        ("POST", "/bookings/{booking_id}/cancel"),
        ("GET", "/customers/{customer_id}/bookings"),
        ("GET", "/sagas"),
        ("GET", "/sagas/{saga_id}"),
        ("POST", "/sagas/{saga_id}/retry"),
        ("POST", "/sagas/{saga_id}/compensate"),
        ("GET", "/openapi.json"),
    ])
    .await
    .unwrap();
}
