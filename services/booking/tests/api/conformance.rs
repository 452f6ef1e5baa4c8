use booking::Booking;
use test_support::conformance::check_service_conformance;

#[tokio::test]
async fn booking_meets_the_service_conformance_suite() {
    check_service_conformance::<Booking>(&[]).await.unwrap();
}
