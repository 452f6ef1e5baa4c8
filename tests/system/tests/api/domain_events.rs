//! The public events each service publishes about a booking: written with
//! the change they announce, once per change, carrying what an analyst
//! needs (trip, price, methods, channels) and nothing personal.

use contracts::booking::{
    BookingCancelled, BookingConfirmed, BookingCreated, BookingFailed, CancelledBy,
};
use contracts::inventory::{FlightScheduled, HoldPlaced, HoldReleased, ReleaseReason, SeatsSold};
use contracts::notification::NotificationDelivered;
use contracts::payment::{PaymentCaptured, RefundIssued};
use contracts::topics::{BOOKING_EVENTS, INVENTORY_EVENTS, NOTIFICATION_EVENTS, PAYMENT_EVENTS};
use contracts::{Currency, Money};
use serde_json::json;
use test_support::poll_until;

use crate::helpers::{booking_body, System, APPROVED, DECLINED, PATIENCE};

fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::Usd).unwrap()
}

#[tokio::test]
async fn a_confirmed_booking_is_published_once_by_each_service_with_its_trip_and_price() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "199.00").await;
    let booking_id = system
        .book(&booking_body("cust-events", flight, 2, Some(APPROVED), 0))
        .await;
    assert_eq!(system.settled(booking_id).await["status"], "confirmed");
    let booking_key = booking_id.to_string();
    let flight_key = flight.to_string();

    let created = system
        .booking
        .outbox_events::<BookingCreated>(BOOKING_EVENTS, &booking_key)
        .await;
    let confirmed = system
        .booking
        .outbox_events::<BookingConfirmed>(BOOKING_EVENTS, &booking_key)
        .await;
    assert_eq!((created.len(), confirmed.len()), (1, 1));
    let created = &created[0].payload;
    assert_eq!(created.customer_id, "cust-events");
    assert_eq!(created.trip.flight_id, flight);
    assert_eq!(created.trip.seats, 2);
    assert_eq!(created.total, usd("398.00"));
    let confirmed = &confirmed[0].payload;
    assert_eq!(confirmed.trip, created.trip);
    assert_eq!(confirmed.total, usd("398.00"));
    assert_eq!(confirmed.created_at, created.created_at);
    assert!(confirmed.confirmed_at >= confirmed.created_at);
    let raw = serde_json::to_string(confirmed).unwrap();
    for private in ["Traveller", "traveller@example.com", "4242", "+8210"] {
        assert!(!raw.contains(private), "{private} leaked: {raw}");
    }

    let scheduled = system
        .inventory
        .outbox_events::<FlightScheduled>(INVENTORY_EVENTS, &flight_key)
        .await;
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0].payload.capacity, 10);
    assert_eq!(
        (
            &*scheduled[0].payload.origin,
            &*scheduled[0].payload.destination
        ),
        (&*created.trip.origin, &*created.trip.destination)
    );
    let holds = system
        .inventory
        .outbox_events::<HoldPlaced>(INVENTORY_EVENTS, &flight_key)
        .await;
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].payload.booking_id, booking_id);
    assert_eq!(holds[0].payload.total, usd("398.00"));
    let sold = system
        .inventory
        .outbox_events::<SeatsSold>(INVENTORY_EVENTS, &flight_key)
        .await;
    assert_eq!(sold.len(), 1);
    assert_eq!(
        (sold[0].payload.hold_id, sold[0].payload.seats),
        (holds[0].payload.hold_id, 2)
    );
    assert!(sold[0].payload.version > holds[0].payload.version);

    let captured = system
        .payment
        .outbox_events::<PaymentCaptured>(PAYMENT_EVENTS, &booking_key)
        .await;
    assert_eq!(captured.len(), 1);
    assert_eq!(captured[0].payload.amount, usd("398.00"));

    // Delivery follows the saga's end: wait for both channels.
    let delivered = poll_until(
        PATIENCE,
        "both confirmations are delivered",
        || {
            system
                .notification
                .outbox_events::<NotificationDelivered>(NOTIFICATION_EVENTS, &booking_key)
        },
        |delivered| delivered.len() >= 2,
    )
    .await;
    assert_eq!(delivered.len(), 2, "{delivered:?}");
}

#[tokio::test]
async fn a_declined_booking_is_published_as_failed_with_its_reason_and_its_seats_as_released() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "150.00").await;
    let booking_id = system
        .book(&booking_body("cust-declined", flight, 1, Some(DECLINED), 0))
        .await;
    assert_eq!(system.settled(booking_id).await["status"], "failed");
    let booking_key = booking_id.to_string();

    let failed = system
        .booking
        .outbox_events::<BookingFailed>(BOOKING_EVENTS, &booking_key)
        .await;
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].payload.reason.contains("card_declined"),
        "{:?}",
        failed[0].payload
    );
    assert!(system
        .booking
        .outbox_events::<BookingConfirmed>(BOOKING_EVENTS, &booking_key)
        .await
        .is_empty());
    let released = system
        .inventory
        .outbox_events::<HoldReleased>(INVENTORY_EVENTS, &flight.to_string())
        .await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].payload.reason, ReleaseReason::BookingFailed);
    assert!(system
        .payment
        .outbox_events::<PaymentCaptured>(PAYMENT_EVENTS, &booking_key)
        .await
        .is_empty());
}

#[tokio::test]
async fn a_cancelled_booking_is_published_once_as_cancelled_by_its_customer_after_confirmation() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "199.00").await;
    let booking_id = system
        .book(&booking_body("cust-cancel", flight, 1, Some(APPROVED), 0))
        .await;
    assert_eq!(system.settled(booking_id).await["status"], "confirmed");

    let (status, answer) = system
        .booking
        .post(
            &format!("/bookings/{booking_id}/cancel"),
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(system.settled(booking_id).await["status"], "cancelled");
    let booking_key = booking_id.to_string();

    let cancelled = system
        .booking
        .outbox_events::<BookingCancelled>(BOOKING_EVENTS, &booking_key)
        .await;
    assert_eq!(cancelled.len(), 1);
    let cancelled = &cancelled[0].payload;
    assert_eq!(cancelled.cancelled_by, CancelledBy::Customer);
    assert!(cancelled.was_confirmed);
    assert!(cancelled.reason.contains("plans changed"), "{cancelled:?}");
    let refunds = system
        .payment
        .outbox_events::<RefundIssued>(PAYMENT_EVENTS, &booking_key)
        .await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].payload.amount, usd("199.00"));
    let released = system
        .inventory
        .outbox_events::<HoldReleased>(INVENTORY_EVENTS, &flight.to_string())
        .await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].payload.reason, ReleaseReason::BookingCancelled);
}
