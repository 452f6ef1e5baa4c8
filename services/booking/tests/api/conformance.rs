use booking::Booking;
use test_support::conformance::{check_openapi_document, check_service_conformance};

#[tokio::test]
async fn booking_meets_the_service_conformance_suite() {
    check_service_conformance::<Booking>(&[]).await.unwrap();
}

/// The document lists exactly the routes the running service registered.
#[tokio::test]
async fn booking_documents_exactly_the_routes_it_serves() {
    check_openapi_document::<Booking>().await.unwrap();
}
