//! The booking saga end to end: four services, the real broker, public APIs only.

use serde_json::{json, Value};
use test_support::broker::PrivateBroker;
use test_support::strings_of;
use uuid::Uuid;

use crate::helpers::{
    booking_body, eventually, kinds, ledger, System, APPROVED, DECLINED, FLAKY_TWICE, PATIENCE,
};

fn owned(pairs: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    pairs
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn attempts_of(booking: &Value, step: &str) -> Vec<u64> {
    booking["routing_slip"]["activity_log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["step"] == step)
        .map(|entry| entry["attempt"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_booking_paid_by_card_is_confirmed_charged_once_and_confirmed_once_per_channel() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "199.00").await;

    let booking_id = system
        .book(&booking_body("cust-happy", flight, 2, Some(APPROVED), 0))
        .await;
    let booking = system.settled(booking_id).await;

    assert_eq!(booking["status"], "confirmed", "{booking:#}");
    assert_eq!(
        booking["total"],
        json!({"amount": "398.00", "currency": "USD"})
    );
    assert_eq!(booking["payment"]["card"]["last4"], "4242");
    let slip = &booking["routing_slip"];
    assert_eq!(slip["status"], "completed");
    assert_eq!(slip["itinerary"], json!([]));
    let steps = strings_of(&slip["activity_log"], "step");
    assert_eq!(
        steps,
        [
            "HoldSeats",
            "TakePayment",
            "ConfirmBooking",
            "SendConfirmation"
        ],
        "{slip:#}"
    );
    assert!(slip["activity_log"][0]["started_at"].is_string());
    let registered = strings_of(&slip["compensation_log"], "name");
    assert_eq!(registered, ["ReleaseSeats", "Refund"]);

    assert_eq!(
        system.availability(flight).await,
        json!({"capacity": 10, "available": 8, "held": 0, "sold": 2})
    );
    assert_eq!(
        ledger(&system.payments(booking_id).await),
        owned(&[("capture", "card", "398.00")])
    );
    assert_eq!(
        kinds(&system.notifications(booking_id).await),
        pairs(&[("confirmation", "email"), ("confirmation", "sms")])
    );
}

#[tokio::test]
async fn a_declined_card_releases_the_seats_charges_nothing_and_confirms_nothing() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "150.00").await;

    let booking_id = system
        .book(&booking_body("cust-declined", flight, 1, Some(DECLINED), 0))
        .await;
    let booking = system.settled(booking_id).await;

    assert_eq!(booking["status"], "failed", "{booking:#}");
    let reason = booking["failure_reason"].as_str().unwrap();
    assert!(reason.contains("card_declined"), "{reason}");
    let compensations = strings_of(&booking["routing_slip"]["compensation_log"], "name");
    assert_eq!(
        compensations,
        ["ReleaseSeats"],
        "nothing was charged, so nothing is refunded"
    );
    assert_eq!(
        system.availability(flight).await,
        json!({"capacity": 10, "available": 10, "held": 0, "sold": 0})
    );
    assert!(ledger(&system.payments(booking_id).await)
        .iter()
        .all(|(kind, _, _)| kind != "capture"));
    assert!(system.notifications(booking_id).await.is_empty());
}

#[tokio::test]
async fn too_few_miles_fail_the_booking_and_release_the_seats() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "100.00").await;
    system.credit_miles("cust-poor", 5_000).await;

    let booking_id = system
        .book(&booking_body("cust-poor", flight, 1, None, 10_000))
        .await;
    let booking = system.settled(booking_id).await;

    assert_eq!(booking["status"], "failed", "{booking:#}");
    assert!(booking["failure_reason"]
        .as_str()
        .unwrap()
        .contains("insufficient_miles"));
    assert_eq!(system.miles_balance("cust-poor").await, 5_000);
    assert_eq!(system.availability(flight).await["available"], 10);
    assert!(system.notifications(booking_id).await.is_empty());
}

#[tokio::test]
async fn a_transient_gateway_failure_is_retried_before_anything_is_compensated() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "120.00").await;

    let booking_id = system
        .book(&booking_body("cust-flaky", flight, 1, Some(FLAKY_TWICE), 0))
        .await;
    let booking = system.settled(booking_id).await;

    assert_eq!(booking["status"], "confirmed", "{booking:#}");
    assert_eq!(attempts_of(&booking, "TakePayment"), [1, 2, 3]);
    assert_eq!(attempts_of(&booking, "ReleaseSeats"), Vec::<u64>::new());
    assert_eq!(
        ledger(&system.payments(booking_id).await),
        owned(&[("capture", "card", "120.00")])
    );
}

#[tokio::test]
async fn card_and_miles_are_captured_separately_and_the_booking_confirmed() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "199.00").await;
    system.credit_miles("cust-mixed", 10_000).await;

    let booking_id = system
        .book(&booking_body(
            "cust-mixed",
            flight,
            2,
            Some(APPROVED),
            10_000,
        ))
        .await;
    let booking = system.settled(booking_id).await;

    assert_eq!(booking["status"], "confirmed", "{booking:#}");
    assert_eq!(
        ledger(&system.payments(booking_id).await),
        owned(&[
            ("capture", "card", "298.00"),
            ("capture", "miles", "100.00")
        ])
    );
    assert_eq!(system.miles_balance("cust-mixed").await, 0);
}

#[tokio::test]
async fn a_customer_cancellation_refunds_card_and_miles_releases_the_seats_and_says_so() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "199.00").await;
    system.credit_miles("cust-cancel", 10_000).await;
    let booking_id = system
        .book(&booking_body(
            "cust-cancel",
            flight,
            2,
            Some(APPROVED),
            10_000,
        ))
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
    let booking = system.settled(booking_id).await;

    assert_eq!(booking["status"], "cancelled", "{booking:#}");
    assert_eq!(
        ledger(&system.payments(booking_id).await),
        owned(&[
            ("capture", "card", "298.00"),
            ("capture", "miles", "100.00"),
            ("refund", "card", "298.00"),
            ("refund", "miles", "100.00"),
        ])
    );
    assert_eq!(system.miles_balance("cust-cancel").await, 10_000);
    assert_eq!(
        system.availability(flight).await,
        json!({"capacity": 10, "available": 10, "held": 0, "sold": 0})
    );
    assert_eq!(
        kinds(&system.notifications(booking_id).await),
        pairs(&[
            ("cancellation", "email"),
            ("cancellation", "sms"),
            ("confirmation", "email"),
            ("confirmation", "sms"),
        ])
    );

    let (status, again) = system
        .booking
        .post(&format!("/bookings/{booking_id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["type"], "/problems/booking-not-cancellable");
}

#[tokio::test]
async fn an_airline_cancellation_cancels_every_booking_on_the_flight() {
    let system = System::start().await;
    let flight = system.schedule_flight(20, "80.00").await;
    let mut bookings = Vec::new();
    for i in 0..8 {
        let customer = format!("cust-airline-{i}");
        bookings.push(
            system
                .book(&booking_body(&customer, flight, 1, Some(APPROVED), 0))
                .await,
        );
    }
    for booking_id in &bookings {
        assert_eq!(system.settled(*booking_id).await["status"], "confirmed");
    }

    let (status, body) = system
        .inventory
        .post(
            &format!("/flights/{flight}/cancel"),
            json!({"reason": "typhoon"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    for booking_id in &bookings {
        let booking_id = *booking_id;
        eventually(
            PATIENCE,
            "the airline's cancellation reaches the booking",
            || async { system.booking(booking_id).await["status"] == "cancelled" },
        )
        .await;
        let booking = system.settled(booking_id).await;
        assert!(booking["cancellation_reason"]
            .as_str()
            .unwrap()
            .contains("typhoon"));
        assert_eq!(
            ledger(&system.payments(booking_id).await),
            owned(&[("capture", "card", "80.00"), ("refund", "card", "80.00")])
        );
        let notices = kinds(&system.notifications(booking_id).await);
        assert!(notices.contains(&("cancellation".to_owned(), "email".to_owned())));
    }
    let availability = system.availability(flight).await;
    assert_eq!(availability["sold"], 0, "{availability}");
    assert_eq!(availability["held"], 0, "{availability}");
}

#[tokio::test]
async fn the_last_seats_are_sold_once_however_many_ask_for_them() {
    let system = System::start().await;
    let flight = system.schedule_flight(3, "50.00").await;
    // Five customers race for three seats. Whoever comes after the third hold
    // may already be refused at the quote (409 sold out); the others race in
    // their sagas, where flight-inventory decides.
    let requests: Vec<(String, Value)> = (0..5)
        .map(|i| {
            let body = booking_body(&format!("cust-race-{i}"), flight, 1, Some(APPROVED), 0);
            (Uuid::now_v7().to_string(), body)
        })
        .collect();
    let answers = futures::future::join_all(
        requests
            .iter()
            .map(|(key, body)| system.book_with_key(key, body)),
    )
    .await;

    let mut confirmed = 0;
    for (status, answer) in answers {
        if status == 409 {
            assert_eq!(answer["type"], "/problems/sold-out", "{answer}");
            continue;
        }
        assert_eq!(status, 202, "{answer}");
        let booking_id = answer["booking_id"].as_str().unwrap().parse().unwrap();
        let booking = system.settled(booking_id).await;
        match booking["status"].as_str().unwrap() {
            "confirmed" => confirmed += 1,
            "failed" => {
                let reason = booking["failure_reason"].as_str().unwrap();
                assert!(reason.contains("sold_out"), "{reason}");
                assert!(ledger(&system.payments(booking_id).await)
                    .iter()
                    .all(|(kind, _, _)| kind != "capture"));
            }
            other => panic!("booking ended {other}"),
        }
    }
    assert_eq!(confirmed, 3);
    assert_eq!(
        system.availability(flight).await,
        json!({"capacity": 3, "available": 0, "held": 0, "sold": 3})
    );
}

/// Books `count` seats on `flight`, one booking each, and returns their ids.
async fn book_burst(system: &System, flight: Uuid, count: usize, tag: &str) -> Vec<Uuid> {
    let mut bookings = Vec::new();
    for i in 0..count {
        let customer = format!("cust-{tag}-{i}");
        bookings.push(
            system
                .book(&booking_body(&customer, flight, 1, Some(APPROVED), 0))
                .await,
        );
    }
    bookings
}

/// Every booking in `bookings` confirmed, charged once and told once.
async fn assert_all_confirmed_once(system: &System, bookings: &[Uuid]) {
    for booking_id in bookings {
        let booking = system.settled(*booking_id).await;
        assert_eq!(booking["status"], "confirmed", "{booking:#}");
        assert_eq!(
            ledger(&system.payments(*booking_id).await),
            owned(&[("capture", "card", "60.00")])
        );
        assert_eq!(
            kinds(&system.notifications(*booking_id).await),
            pairs(&[("confirmation", "email"), ("confirmation", "sms")])
        );
    }
}

#[tokio::test]
async fn sagas_in_flight_complete_after_booking_is_killed_and_restarted() {
    let mut system = System::start_in_processes().await;
    let flight = system.schedule_flight(20, "60.00").await;
    let bookings = book_burst(&system, flight, 5, "kill-booking").await;

    system.booking.kill().await;
    system.booking.start().await;

    assert_all_confirmed_once(&system, &bookings).await;
    assert_eq!(system.availability(flight).await["sold"], 5);
}

#[tokio::test]
async fn sagas_in_flight_complete_after_flight_inventory_is_killed_and_restarted() {
    // The restarted consumer must get its partitions back once the killed
    // member's session times out, well inside the hold step's budget: a
    // hold that times out instead would compensate these bookings.
    let mut system = System::start_in_processes().await;
    let flight = system.schedule_flight(20, "60.00").await;
    let bookings = book_burst(&system, flight, 5, "kill-inventory").await;

    system.inventory.kill().await;
    system.inventory.start().await;

    assert_all_confirmed_once(&system, &bookings).await;
    assert_eq!(system.availability(flight).await["sold"], 5);
}

#[tokio::test]
async fn sagas_waiting_on_killed_payment_and_notification_complete_after_their_restart() {
    let mut system = System::start_in_processes().await;
    let flight = system.schedule_flight(20, "60.00").await;

    // Notification is killed first, so every saga is certainly in flight
    // while it is gone; payment (which booking asks to tokenize the card as
    // it accepts a booking) right after the bookings are accepted, while
    // their seats are being held.
    system.notification.kill().await;
    let bookings = book_burst(&system, flight, 5, "kill-payment").await;
    system.payment.kill().await;
    system.payment.start().await;
    system.notification.start().await;

    assert_all_confirmed_once(&system, &bookings).await;
    assert_eq!(system.availability(flight).await["sold"], 5);
}

#[tokio::test]
async fn an_operator_sees_and_retries_nothing_when_nothing_is_parked() {
    let system = System::start().await;
    let (status, body) = system
        .booking
        .get("/sagas?status=failed_compensation")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], json!([]));
    let (status, body) = system.booking.get("/sagas?status=stuck").await;
    assert_eq!(status, 400, "{body}");

    let flight = system.schedule_flight(5, "70.00").await;
    let booking_id = system
        .book(&booking_body("cust-operator", flight, 1, Some(APPROVED), 0))
        .await;
    system.settled(booking_id).await;
    let (status, body) = system
        .booking
        .post(&format!("/sagas/{booking_id}/retry"), json!({}))
        .await;
    assert_eq!(status, 409, "a completed saga is not parked: {body}");
    let (status, body) = system.booking.get("/sagas?status=completed").await;
    assert_eq!(status, 200);
    assert_eq!(body["items"][0]["saga_id"], booking_id.to_string());
}

#[tokio::test]
async fn an_operator_compensation_of_a_confirmed_booking_refunds_it_and_sends_a_correction() {
    let system = System::start().await;
    let flight = system.schedule_flight(5, "70.00").await;
    let booking_id = system
        .book(&booking_body("cust-correct", flight, 1, Some(APPROVED), 0))
        .await;
    assert_eq!(system.settled(booking_id).await["status"], "confirmed");

    let (status, body) = system
        .booking
        .post(&format!("/sagas/{booking_id}/compensate"), json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    let booking = system.settled(booking_id).await;

    assert_eq!(booking["status"], "cancelled");
    assert_eq!(
        ledger(&system.payments(booking_id).await),
        owned(&[("capture", "card", "70.00"), ("refund", "card", "70.00")])
    );
    let notices = kinds(&system.notifications(booking_id).await);
    assert!(
        notices.contains(&("correction".to_owned(), "email".to_owned())),
        "{notices:?}"
    );
}

#[tokio::test]
async fn a_payment_that_goes_unanswered_is_compensated_and_its_expired_attempts_never_charge() {
    // Payment answers nothing while it is down: two short attempts, then the saga gives up.
    let mut system = System::start_with(&[
        ("saga.take_payment.max_attempts", "2".to_owned()),
        ("saga.take_payment.initial_backoff_ms", "100".to_owned()),
        ("saga.take_payment.timeout_ms", "1500".to_owned()),
    ])
    .await;
    let flight = system.schedule_flight(10, "100.00").await;
    system.credit_miles("cust-silent", 20_000).await;
    system.payment.shut_down().await;

    // Miles only: no card to tokenize, so booking accepts it with payment down.
    let booking_id = system
        .book(&booking_body("cust-silent", flight, 1, None, 20_000))
        .await;
    eventually(PATIENCE, "the saga gives up on the payment", || async {
        system.booking(booking_id).await["routing_slip"]["status"] == "compensating"
    })
    .await;

    // Payment comes back to what waited for it: the two TakePayment
    // attempts, both past the moment the saga stopped waiting for them, then
    // the Refund, which never expires. The attempts are dropped unapplied
    // (before expiring attempts, the first one captured and the Refund gave
    // the miles back), so the Refund has nothing to undo.
    system.payment.start().await;
    let booking = system.settled(booking_id).await;

    assert_eq!(booking["status"], "failed", "{booking:#}");
    let reason = booking["failure_reason"].as_str().unwrap();
    assert!(reason.contains("no answer to TakePayment"), "{reason}");
    let refund = booking["routing_slip"]["compensation_log"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == "Refund")
        .expect("the unanswered payment is compensated")
        .clone();
    assert_eq!(refund["uncertain"], true, "{refund}");
    assert_eq!(
        system
            .payment
            .counter("consumer_messages_total", "outcome=\"expired\"")
            .await,
        2.0
    );
    assert_eq!(ledger(&system.payments(booking_id).await), owned(&[]));
    assert_eq!(system.miles_balance("cust-silent").await, 20_000);
    assert_eq!(system.availability(flight).await["available"], 10);
}

#[tokio::test]
async fn bookings_taken_while_the_broker_is_down_settle_once_it_is_back() {
    let mut broker = PrivateBroker::start().await.unwrap();
    // Step timeouts long enough that a broker restart on a slow machine stays
    // inside the retry budget: what is under test is that nothing is lost.
    let patient_steps = [
        ("saga.hold_seats.timeout_ms", "60000".to_owned()),
        ("saga.take_payment.timeout_ms", "60000".to_owned()),
        ("saga.send_notification.timeout_ms", "60000".to_owned()),
    ];
    let system = System::start_on_broker(Some(&broker.address()), &patient_steps).await;
    let flight = system.schedule_flight(20, "80.00").await;
    let before = system
        .book(&booking_body("cust-outage-0", flight, 1, Some(APPROVED), 0))
        .await;
    assert_eq!(system.settled(before).await["status"], "confirmed");

    // The broker crashes (kill -9): bookings are still accepted, their
    // commands wait in booking's outbox.
    broker.kill().await.unwrap();
    let mut during = Vec::new();
    for i in 1..=5 {
        let customer = format!("cust-outage-{i}");
        during.push(
            system
                .book(&booking_body(&customer, flight, 1, Some(APPROVED), 0))
                .await,
        );
    }
    for booking_id in &during {
        assert_eq!(system.booking(*booking_id).await["status"], "pending");
    }

    broker.restart().await.unwrap();
    for booking_id in &during {
        let booking = system.settled(*booking_id).await;
        assert_eq!(booking["status"], "confirmed", "{booking:#}");
        assert_eq!(
            ledger(&system.payments(*booking_id).await),
            owned(&[("capture", "card", "80.00")]),
            "charged exactly once"
        );
    }
    assert_eq!(
        system.availability(flight).await,
        json!({"capacity": 20, "available": 14, "held": 0, "sold": 6})
    );
    system.stop().await;
}
