use notification::Notification;
use test_support::conformance::check_service_conformance;

#[tokio::test]
async fn notification_meets_the_service_conformance_suite() {
    check_service_conformance::<Notification>(&[
        ("GET", "/notifications?booking_id=not-a-uuid", "", 400),
        ("GET", "/notifications", "", 400),
    ])
    .await
    .unwrap();
}
