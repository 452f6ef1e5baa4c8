use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn usd(text: &str) -> Decimal {
    text.parse().unwrap_or_else(|_| panic!("bad amount {text}"))
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
}

fn booking(n: u128, flight: u128, status: &str, seats: i64, total: &str) -> BookingRow {
    BookingRow {
        booking_id: id(n),
        flight_id: id(flight),
        status: status.to_owned(),
        seats,
        total_amount: usd(total),
        currency: "USD".to_owned(),
        has_email: true,
        has_phone: false,
    }
}

fn payment(booking: u128, kind: &str, method: &str, amount: &str) -> PaymentRow {
    PaymentRow {
        payment_id: Uuid::now_v7(),
        booking_id: id(booking),
        kind: kind.to_owned(),
        method: method.to_owned(),
        amount: usd(amount),
        currency: "USD".to_owned(),
    }
}

fn flight(n: u128, capacity: i64, available: i64, held: i64, sold: i64) -> FlightSeats {
    FlightSeats {
        flight_id: id(n),
        capacity,
        available,
        held,
        sold,
    }
}

fn saga(n: u128, status: &str, pivoted: bool, finished: Option<i64>) -> SagaRow {
    SagaRow {
        saga_id: id(n),
        status: status.to_owned(),
        pivoted,
        deadline: Some(at(120)),
        failure_reason: None,
        created_at: at(0),
        finished_at: finished.map(at),
    }
}

fn confirmation(booking: u128, channel: &str) -> NotificationRow {
    NotificationRow {
        booking_id: id(booking),
        kind: "confirmation".to_owned(),
        channel: channel.to_owned(),
    }
}

fn schema(name: &str, unpublished: i64, parked: i64) -> MessagingCounts {
    MessagingCounts {
        schema: name.to_owned(),
        outbox_rows: 10,
        outbox_unpublished: unpublished,
        oldest_unpublished: (unpublished > 0).then(|| at(0)),
        dead_letters_parked: parked,
        dead_letters_replay_requested: 0,
    }
}

/// A small settled system where everything holds: one confirmed booking
/// paid by card and miles, one failed booking refunded, one cancelled.
fn healthy() -> Snapshot {
    Snapshot {
        bookings: vec![
            booking(1, 100, "confirmed", 2, "398.00"),
            booking(2, 100, "failed", 1, "199.00"),
            booking(3, 100, "cancelled", 1, "199.00"),
        ],
        sagas: vec![
            saga(1, "completed", true, Some(5)),
            saga(2, "compensated", false, Some(6)),
            saga(3, "compensated", true, Some(30)),
        ],
        payments: vec![
            payment(1, "capture", "card", "298.00"),
            payment(1, "capture", "miles", "100.00"),
            payment(3, "capture", "card", "199.00"),
            payment(3, "refund", "card", "199.00"),
        ],
        notifications: vec![confirmation(1, "email"), confirmation(3, "email")],
        flights: vec![flight(100, 10, 8, 0, 2)],
        unreadable_flights: vec![],
        messaging: vec![schema("booking", 0, 0), schema("payment", 0, 0)],
    }
}

#[test]
fn every_check_passes_on_a_healthy_settled_system() {
    let results = check_all(
        &healthy(),
        &DeadlineAllowance::grace(TimeDelta::seconds(10)),
    );
    let failed: Vec<_> = results.iter().filter(|result| !result.passed()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(results.len(), 10);
}

#[test]
fn seats_that_do_not_add_up_to_the_capacity_are_a_violation() {
    let result = seats_add_up(&[flight(100, 10, 8, 1, 2)], &[]);
    assert_eq!(result.violations.len(), 1);
}

#[test]
fn an_unreadable_flight_is_a_violation_not_a_pass() {
    let result = seats_add_up(&[], &[(id(100), "503".to_owned())]);
    assert!(!result.passed());
}

#[test]
fn a_seat_sold_twice_is_a_violation() {
    // Two confirmed bookings of 2 seats each, but inventory sold 5.
    let bookings = [
        booking(1, 100, "confirmed", 2, "398.00"),
        booking(2, 100, "confirmed", 2, "398.00"),
    ];
    let result = seats_sold_match_bookings(&bookings, &[flight(100, 10, 5, 0, 5)]);
    assert_eq!(result.violations.len(), 1, "{result:#?}");
}

#[test]
fn a_seat_lost_to_a_leaked_hold_is_a_violation() {
    let bookings = [booking(1, 100, "failed", 2, "398.00")];
    let result = seats_sold_match_bookings(&bookings, &[flight(100, 10, 8, 2, 0)]);
    assert_eq!(result.violations.len(), 1, "{result:#?}");
}

#[test]
fn a_confirmed_booking_paid_short_is_a_violation() {
    let bookings = [booking(1, 100, "confirmed", 2, "398.00")];
    let payments = [payment(1, "capture", "card", "397.99")];
    assert!(!money_balances(&bookings, &payments).passed());
}

#[test]
fn a_failed_booking_not_refunded_is_a_violation() {
    let bookings = [booking(2, 100, "failed", 1, "199.00")];
    let payments = [payment(2, "capture", "card", "199.00")];
    assert!(!money_balances(&bookings, &payments).passed());
}

#[test]
fn a_payment_in_another_currency_is_a_violation_even_if_the_sum_matches() {
    let bookings = [booking(1, 100, "confirmed", 1, "199.00")];
    let mut capture = payment(1, "capture", "card", "199.00");
    capture.currency = "EUR".to_owned();
    assert!(!money_balances(&bookings, &[capture]).passed());
}

#[test]
fn money_for_a_booking_that_does_not_exist_is_a_violation() {
    let payments = [payment(9, "capture", "card", "10.00")];
    assert!(!money_balances(&[], &payments).passed());
}

#[test]
fn money_is_compared_exactly_not_as_floating_point() {
    // 0.1 + 0.2 captured in two methods must equal 0.3 exactly.
    let bookings = [booking(1, 100, "confirmed", 1, "0.3")];
    let payments = [
        payment(1, "capture", "card", "0.1"),
        payment(1, "capture", "miles", "0.2"),
    ];
    assert!(money_balances(&bookings, &payments).passed());
}

#[test]
fn two_captures_by_the_same_method_are_a_violation() {
    let payments = [
        payment(1, "capture", "card", "199.00"),
        payment(1, "capture", "card", "199.00"),
        payment(1, "capture", "miles", "50.00"),
    ];
    let result = payments_at_most_once(&payments);
    assert_eq!(result.violations.len(), 1, "{result:#?}");
    assert_eq!(result.checked, 1);
}

#[test]
fn parked_and_failed_compensation_sagas_are_violations_with_their_reasons() {
    let mut parked = saga(1, "parked", false, None);
    parked.failure_reason = Some("payment step timed out".to_owned());
    let sagas = [
        parked,
        saga(2, "failed_compensation", false, None),
        saga(3, "running", false, None),
        saga(4, "completed", true, Some(3)),
    ];
    let result = sagas_terminal(&sagas);
    assert_eq!(result.violations.len(), 3, "{result:#?}");
    assert!(result.violations[0].contains("payment step timed out"));
}

#[test]
fn an_unpivoted_saga_finishing_after_its_deadline_and_grace_is_a_violation() {
    let late = saga(1, "compensated", false, Some(120 + 11));
    let in_grace = saga(2, "compensated", false, Some(120 + 9));
    let pivoted_late = saga(3, "completed", true, Some(500));
    let result = sagas_within_deadline(
        &[late, in_grace, pivoted_late],
        &DeadlineAllowance::grace(TimeDelta::seconds(10)),
    );
    assert_eq!(result.violations.len(), 1, "{result:#?}");
    assert_eq!(result.checked, 2);
}

/// The checker's usual 10 s grace, with outages given as `(from, until)`
/// seconds on the same clock as [`at`].
fn grace_with_outages(windows: &[(i64, i64)]) -> DeadlineAllowance {
    DeadlineAllowance {
        grace: TimeDelta::seconds(10),
        outages: windows
            .iter()
            .map(|&(from, until)| Outage {
                from: at(from),
                until: at(until),
            })
            .collect(),
    }
}

#[test]
fn lateness_spent_inside_an_injected_outage_is_not_counted_but_the_rest_is() {
    // Deadline at 120 s, grace 10 s; the broker was down from 100 s to 150 s.
    let allowance = grace_with_outages(&[(100, 150)]);
    // 35 s late, 30 s of it inside the outage: 5 s of its own.
    let excused = saga(1, "compensated", false, Some(120 + 35));
    // 45 s late, 30 s inside the outage: 15 s of its own is past the grace.
    let too_late = saga(2, "compensated", false, Some(120 + 45));
    let result = sagas_within_deadline(&[excused, too_late], &allowance);
    assert_eq!(result.violations.len(), 1, "{result:#?}");
    assert!(result.violations[0].starts_with(&format!("saga {}", id(2))));
    assert!(result.violations[0].contains("30 s of it while an injected fault"));
    let note = result.note.unwrap_or_default();
    assert!(note.contains("1 saga(s) late only by them"), "{note}");
}

#[test]
fn an_outage_that_ended_before_the_deadline_excuses_nothing() {
    let allowance = grace_with_outages(&[(60, 119)]);
    let late = saga(1, "compensated", false, Some(120 + 11));
    let result = sagas_within_deadline(&[late], &allowance);
    assert_eq!(result.violations.len(), 1, "{result:#?}");
}

#[test]
fn overlapping_outages_count_each_instant_once() {
    // Two faults whose windows overlap from 130 s to 140 s: 120..150 is
    // 30 s of outage, not 40.
    let allowance = grace_with_outages(&[(130, 150), (110, 140)]);
    let within = saga(1, "compensated", false, Some(120 + 40));
    let beyond = saga(2, "compensated", false, Some(120 + 41));
    let result = sagas_within_deadline(&[within, beyond], &allowance);
    assert_eq!(result.violations.len(), 1, "{result:#?}");
    assert!(result.violations[0].starts_with(&format!("saga {}", id(2))));
}

#[test]
fn a_booking_whose_status_contradicts_its_saga_is_a_violation() {
    let bookings = [
        booking(1, 100, "confirmed", 1, "199.00"),
        booking(2, 100, "failed", 1, "199.00"),
    ];
    let sagas = [saga(1, "compensated", false, Some(5))];
    let result = bookings_match_sagas(&bookings, &sagas);
    // One contradicts its saga, the other has none.
    assert_eq!(result.violations.len(), 2, "{result:#?}");
}

#[test]
fn a_confirmed_booking_whose_saga_still_sends_its_notifications_is_not_a_mismatch() {
    let bookings = [booking(1, 100, "confirmed", 1, "199.00")];
    let sagas = [saga(1, "running", true, None)];
    assert!(bookings_match_sagas(&bookings, &sagas).passed());
}

#[test]
fn a_missing_duplicated_or_misdirected_confirmation_is_a_violation() {
    let mut both = booking(1, 100, "confirmed", 1, "199.00");
    both.has_phone = true;
    let email_only = booking(2, 100, "confirmed", 1, "199.00");
    let failed = booking(3, 100, "failed", 1, "199.00");
    let notifications = [
        // booking 1: email twice, sms missing
        confirmation(1, "email"),
        confirmation(1, "email"),
        // booking 2: an sms it has no phone for
        confirmation(2, "email"),
        confirmation(2, "sms"),
        // booking 3 failed, yet was confirmed
        confirmation(3, "email"),
    ];
    let result = confirmations_exactly_once(&[both, email_only, failed], &notifications);
    assert_eq!(result.violations.len(), 4, "{result:#?}");
}

#[test]
fn a_cancelled_booking_may_have_been_confirmed_once_and_a_pending_one_is_not_judged() {
    let confirmed_then_cancelled = booking(1, 100, "cancelled", 1, "199.00");
    let cancelled_unconfirmed = booking(2, 100, "cancelled", 1, "199.00");
    let confirmed_twice_then_cancelled = booking(3, 100, "cancelled", 1, "199.00");
    let pending = booking(4, 100, "pending", 1, "199.00");
    let notifications = [
        confirmation(1, "email"),
        confirmation(3, "email"),
        confirmation(3, "email"),
    ];
    let bookings = [
        confirmed_then_cancelled,
        cancelled_unconfirmed,
        confirmed_twice_then_cancelled,
        pending,
    ];
    let result = confirmations_exactly_once(&bookings, &notifications);
    assert_eq!(result.checked, 3, "the pending booking is not judged");
    assert_eq!(result.violations.len(), 1, "{result:#?}");
    assert!(result.violations[0].contains("2 email confirmations, expected 0 to 1"));
}

#[test]
fn an_unpublished_outbox_row_is_a_violation() {
    let result = outboxes_published(&[schema("booking", 0, 0), schema("payment", 3, 0)]);
    assert_eq!(result.violations.len(), 1);
    assert!(result.violations[0].contains("payment.outbox"));
}

#[test]
fn a_parked_dead_letter_is_a_violation_and_counted() {
    let result = no_parked_dead_letters(&[schema("notification", 0, 2)]);
    assert!(!result.passed());
    assert_eq!(result.note.as_deref(), Some("2 parked"));
}
