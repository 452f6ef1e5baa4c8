//! The public booking API on its own: what booking answers without asking
//! another service. What needs the others running is in `tests/system`.

use booking::Booking;
use serde_json::json;
use test_support::TestApp;
use uuid::Uuid;

#[tokio::test]
async fn unknown_bookings_and_bad_paths_are_problems() {
    let booking = TestApp::<Booking>::spawn().await;
    let (status, problem) = booking.get(&format!("/bookings/{}", Uuid::now_v7())).await;
    assert_eq!(status, 404, "{problem}");
    let (status, _) = booking.get("/bookings/not-a-uuid").await;
    assert_eq!(status, 400);
    let (status, _) = booking
        .post(&format!("/bookings/{}/cancel", Uuid::now_v7()), json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = booking.get("/customers/bad%20id/bookings").await;
    assert_eq!(status, 400);
    let (status, _) = booking.get("/customers/cust-1/bookings?limit=1000").await;
    assert_eq!(status, 400);
}
