//! The invariant checker's settle phase waits for work that outlives its
//! saga: notification delivers after the notify step has replied, and each
//! delivery writes an event to the outbox. A check that ran before those
//! writes reported an unpublished row (chaos seed 31301).

use std::time::Duration;

use uuid::Uuid;

use crate::helpers::{booking_body, System, APPROVED, PATIENCE};

/// Long enough that the short settle below sees the delivery still pending.
const DELIVERY_DUE_IN_SECS: f64 = 5.0;

#[tokio::test]
async fn the_checker_settles_only_once_every_delivery_is_settled_and_published() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "99.00").await;
    let booking_id = system
        .book(&booking_body("cust-settle", flight, 1, Some(APPROVED), 0))
        .await;
    assert_eq!(system.settled(booking_id).await["status"], "confirmed");
    let checker = system.checker().await;
    let settled = checker.wait_until_settled(PATIENCE).await.unwrap();
    assert!(settled.settled, "{settled:?}");

    // A delivery the dispatcher has not reached yet: the booking's email,
    // delivered, is put back to pending and due a few seconds from now.
    let notifications = system.notification.pool().await;
    let notification_id: Uuid = sqlx::query_scalar(
        "UPDATE notifications
            SET status = 'pending', delivered_at = NULL,
                next_attempt_at = clock_timestamp() + make_interval(secs => $2)
          WHERE booking_id = $1 AND channel = 'email'
      RETURNING notification_id",
    )
    .bind(booking_id)
    .bind(DELIVERY_DUE_IN_SECS)
    .fetch_one(&notifications)
    .await
    .unwrap();

    let waiting = checker
        .wait_until_settled(Duration::from_secs(1))
        .await
        .unwrap();
    assert!(!waiting.settled, "{waiting:?}");
    assert_eq!(waiting.open_sagas, 0, "{waiting:?}");
    assert_eq!(waiting.pending_deliveries, 1, "{waiting:?}");

    let settled = checker.wait_until_settled(PATIENCE).await.unwrap();
    assert!(settled.settled, "{settled:?}");
    assert_eq!(settled.pending_deliveries, 0);
    assert_eq!(settled.unpublished_outbox_rows, 0);
    let status: String =
        sqlx::query_scalar("SELECT status FROM notifications WHERE notification_id = $1")
            .bind(notification_id)
            .fetch_one(&notifications)
            .await
            .unwrap();
    assert_eq!(status, "delivered");
}
