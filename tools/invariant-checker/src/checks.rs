//! The invariants, as pure functions from fetched rows to a [`CheckResult`].
//! Nothing here does I/O, so each check is tested by feeding it a state of
//! the system, including states that break it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::rows::{
    BookingRow, FlightSeats, MessagingCounts, NotificationRow, PaymentRow, SagaRow, Snapshot,
};

/// One invariant's verdict: how many things it looked at and what broke it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub name: &'static str,
    /// What "checked" counts (flights, bookings, sagas, schemas …).
    pub unit: &'static str,
    pub checked: usize,
    pub violations: Vec<String>,
    /// Figures worth seeing even when the check passes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CheckResult {
    fn new(name: &'static str, unit: &'static str) -> Self {
        Self {
            name,
            unit,
            checked: 0,
            violations: Vec::new(),
            note: None,
        }
    }

    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// A stretch of time during which something every saga needs was down on
/// purpose: a fault a harness injected, from the injection until each
/// watched consumer applied messages again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Outage {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// How late an unpivoted saga may finish: `grace` always, plus the part of
/// its lateness that fell inside an injected [`Outage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineAllowance {
    pub grace: TimeDelta,
    pub outages: Vec<Outage>,
}

impl DeadlineAllowance {
    pub fn grace(grace: TimeDelta) -> Self {
        Self {
            grace,
            outages: Vec::new(),
        }
    }

    /// How much of `from..until` the outages cover, each instant counted
    /// once even where outages overlap.
    fn outage_time_within(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> TimeDelta {
        let mut clipped: Vec<(DateTime<Utc>, DateTime<Utc>)> = self
            .outages
            .iter()
            .map(|outage| (outage.from.max(from), outage.until.min(until)))
            .filter(|(start, end)| start < end)
            .collect();
        clipped.sort();
        // Walked in order of start; `reached` is how far is counted so far.
        let mut covered = TimeDelta::zero();
        let mut reached = from;
        for (start, end) in clipped {
            let start = start.max(reached);
            if end > start {
                covered += end - start;
                reached = end;
            }
        }
        covered
    }
}

/// Every check, in the order they are printed.
pub fn check_all(snapshot: &Snapshot, deadline: &DeadlineAllowance) -> Vec<CheckResult> {
    vec![
        seats_add_up(&snapshot.flights, &snapshot.unreadable_flights),
        seats_sold_match_bookings(&snapshot.bookings, &snapshot.flights),
        money_balances(&snapshot.bookings, &snapshot.payments),
        payments_at_most_once(&snapshot.payments),
        sagas_terminal(&snapshot.sagas),
        sagas_within_deadline(&snapshot.sagas, deadline),
        bookings_match_sagas(&snapshot.bookings, &snapshot.sagas),
        confirmations_exactly_once(&snapshot.bookings, &snapshot.notifications),
        outboxes_published(&snapshot.messaging),
        no_parked_dead_letters(&snapshot.messaging),
    ]
}

/// Per flight: available + held + sold = capacity. A seat is in exactly one
/// of the three states; anything else means one was created or lost.
pub fn seats_add_up(flights: &[FlightSeats], unreadable: &[(Uuid, String)]) -> CheckResult {
    let mut result = CheckResult::new("seats: available + held + sold = capacity", "flights");
    for flight in flights {
        result.checked += 1;
        let accounted = flight.available + flight.held + flight.sold;
        if accounted != flight.capacity || flight.available < 0 || flight.held < 0 {
            result.violations.push(format!(
                "flight {}: available {} + held {} + sold {} = {accounted}, capacity {}",
                flight.flight_id, flight.available, flight.held, flight.sold, flight.capacity
            ));
        }
    }
    for (flight_id, why) in unreadable {
        result.checked += 1;
        result.violations.push(format!(
            "flight {flight_id}: availability unreadable: {why}"
        ));
    }
    result
}

/// Per flight: sold = the seats of its confirmed bookings (no seat sold
/// twice, none sold without a booking), and held = the seats of its pending
/// bookings (a settled saga leaves no hold behind).
pub fn seats_sold_match_bookings(bookings: &[BookingRow], flights: &[FlightSeats]) -> CheckResult {
    let mut result = CheckResult::new(
        "seats: sold = confirmed bookings' seats, held = pending bookings' seats",
        "flights",
    );
    let mut confirmed: HashMap<Uuid, i64> = HashMap::new();
    let mut pending: HashMap<Uuid, i64> = HashMap::new();
    for booking in bookings {
        match booking.status.as_str() {
            "confirmed" => *confirmed.entry(booking.flight_id).or_default() += booking.seats,
            "pending" => *pending.entry(booking.flight_id).or_default() += booking.seats,
            _ => {}
        }
    }
    for flight in flights {
        result.checked += 1;
        let booked = confirmed.get(&flight.flight_id).copied().unwrap_or(0);
        if flight.sold != booked {
            result.violations.push(format!(
                "flight {}: sold {} but confirmed bookings hold {booked} seats",
                flight.flight_id, flight.sold
            ));
        }
        let waiting = pending.get(&flight.flight_id).copied().unwrap_or(0);
        if flight.held != waiting {
            result.violations.push(format!(
                "flight {}: held {} but pending bookings need {waiting} seats",
                flight.flight_id, flight.held
            ));
        }
    }
    result
}

/// Per settled booking: captured − refunded = total if confirmed, else 0,
/// in the booking's currency. Pending bookings are left to the saga checks.
pub fn money_balances(bookings: &[BookingRow], payments: &[PaymentRow]) -> CheckResult {
    let mut result = CheckResult::new(
        "money: captured - refunded = total if confirmed, else 0",
        "bookings",
    );
    let mut by_booking: HashMap<Uuid, Vec<&PaymentRow>> = HashMap::new();
    for payment in payments {
        by_booking
            .entry(payment.booking_id)
            .or_default()
            .push(payment);
    }
    let mut pending = 0;
    for booking in bookings {
        let rows = by_booking.remove(&booking.booking_id).unwrap_or_default();
        if booking.status == "pending" {
            pending += 1;
            continue;
        }
        result.checked += 1;
        let mut net = Decimal::ZERO;
        for row in &rows {
            if row.currency != booking.currency {
                result.violations.push(format!(
                    "booking {}: {} {} of {} {} in {}, booked in {}",
                    booking.booking_id,
                    row.method,
                    row.kind,
                    row.amount,
                    row.currency,
                    row.payment_id,
                    booking.currency
                ));
            }
            match row.kind.as_str() {
                "capture" => net += row.amount,
                "refund" => net -= row.amount,
                other => result.violations.push(format!(
                    "booking {}: payment {} of unknown kind {other:?}",
                    booking.booking_id, row.payment_id
                )),
            }
        }
        let expected = if booking.status == "confirmed" {
            booking.total_amount
        } else {
            Decimal::ZERO
        };
        if net != expected {
            result.violations.push(format!(
                "booking {} ({}): captured - refunded = {net} {}, expected {expected}",
                booking.booking_id, booking.status, booking.currency
            ));
        }
    }
    // Money taken for a booking that does not exist can never be balanced.
    let mut orphans: Vec<_> = by_booking.into_iter().collect();
    orphans.sort_by_key(|(booking_id, _)| *booking_id);
    for (booking_id, rows) in orphans {
        result.violations.push(format!(
            "booking {booking_id}: {} payment rows but no such booking",
            rows.len()
        ));
    }
    if pending > 0 {
        result.note = Some(format!("{pending} pending bookings not judged"));
    }
    result
}

/// At most one capture and one refund per booking and payment method: a
/// redelivered or raced command must never charge (or refund) twice.
pub fn payments_at_most_once(payments: &[PaymentRow]) -> CheckResult {
    let mut result = CheckResult::new(
        "payments: at most one capture and one refund per booking and method",
        "bookings",
    );
    let mut counts: BTreeMap<(Uuid, &str, &str), usize> = BTreeMap::new();
    for payment in payments {
        *counts
            .entry((
                payment.booking_id,
                payment.method.as_str(),
                payment.kind.as_str(),
            ))
            .or_default() += 1;
    }
    let mut bookings: Vec<Uuid> = counts.keys().map(|(booking_id, ..)| *booking_id).collect();
    bookings.dedup();
    result.checked = bookings.len();
    for ((booking_id, method, kind), count) in counts {
        if count > 1 {
            result
                .violations
                .push(format!("booking {booking_id}: {count} {method} {kind}s"));
        }
    }
    result
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "compensated")
}

/// Once load stops, every saga is completed or compensated. A parked saga or
/// one whose compensation failed needs an operator: it is listed with why.
pub fn sagas_terminal(sagas: &[SagaRow]) -> CheckResult {
    let mut result = CheckResult::new("sagas: every saga completed or compensated", "sagas");
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for saga in sagas {
        result.checked += 1;
        *by_status.entry(saga.status.as_str()).or_default() += 1;
        if !is_terminal(&saga.status) {
            let why = saga
                .failure_reason
                .as_deref()
                .unwrap_or("no failure reason");
            result.violations.push(format!(
                "saga {} is {} (started {}): {why}",
                saga.saga_id,
                saga.status,
                saga.created_at.to_rfc3339()
            ));
        }
    }
    result.note = Some(
        by_status
            .iter()
            .map(|(status, count)| format!("{status} {count}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    result
}

/// A saga that never reached its pivot must be over by its deadline: the
/// deadline is what bounds how long seats stay held and a customer waits.
/// The allowance's grace covers the timer's poll interval and the
/// compensation round trips that start when the deadline fires. Time after
/// the deadline during which a harness held the broker, the database or a
/// service down is not counted against the saga: nothing can compensate
/// while the parts it needs are gone, and the promise is about the system
/// while it runs. What the outage does not explain still counts.
pub fn sagas_within_deadline(sagas: &[SagaRow], allowance: &DeadlineAllowance) -> CheckResult {
    let mut result = CheckResult::new(
        "sagas: unpivoted sagas finished by their deadline (+ grace)",
        "unpivoted sagas",
    );
    let mut excused = 0_usize;
    let mut latest_excused = TimeDelta::zero();
    for saga in sagas.iter().filter(|saga| !saga.pivoted) {
        result.checked += 1;
        let Some(deadline) = saga.deadline else {
            result
                .violations
                .push(format!("saga {}: its slip has no deadline", saga.saga_id));
            continue;
        };
        // Still open: the terminal check reports it.
        let Some(finished_at) = saga.finished_at else {
            continue;
        };
        let late = finished_at - deadline;
        if late <= allowance.grace {
            continue;
        }
        let during_outages = allowance.outage_time_within(deadline, finished_at);
        if late - during_outages <= allowance.grace {
            excused += 1;
            latest_excused = latest_excused.max(late);
            continue;
        }
        result.violations.push(format!(
            "saga {} finished {} s after its deadline ({} s of it while an injected fault held something down)",
            saga.saga_id,
            seconds(late),
            seconds(during_outages)
        ));
    }
    let mut note = format!("grace {} s", seconds(allowance.grace));
    if !allowance.outages.is_empty() {
        note.push_str(&format!(
            "; {} injected outage(s) not counted, {excused} saga(s) late only by them (at most {} s)",
            allowance.outages.len(),
            seconds(latest_excused)
        ));
    }
    result.note = Some(note);
    result
}

fn seconds(delta: TimeDelta) -> f64 {
    delta.num_milliseconds() as f64 / 1000.0
}

/// A booking's status mirrors its saga's outcome (they are written in one
/// transaction): confirmed ⇔ completed, failed/cancelled ⇔ compensated.
pub fn bookings_match_sagas(bookings: &[BookingRow], sagas: &[SagaRow]) -> CheckResult {
    let mut result = CheckResult::new("bookings: status matches the saga's outcome", "bookings");
    let sagas: HashMap<Uuid, &SagaRow> = sagas.iter().map(|saga| (saga.saga_id, saga)).collect();
    for booking in bookings {
        result.checked += 1;
        let Some(saga) = sagas.get(&booking.booking_id) else {
            result
                .violations
                .push(format!("booking {} has no saga", booking.booking_id));
            continue;
        };
        if !is_terminal(&saga.status) {
            // An open saga may legitimately have confirmed its booking
            // already (the steps after the pivot); open and stuck sagas are
            // the terminal check's to report.
            continue;
        }
        let consistent = match booking.status.as_str() {
            "confirmed" => saga.status == "completed",
            "failed" | "cancelled" => saga.status == "compensated",
            _ => false,
        };
        if !consistent {
            result.violations.push(format!(
                "booking {} is {} but its saga is {}",
                booking.booking_id, booking.status, saga.status
            ));
        }
    }
    result
}

/// Exactly one confirmation per confirmed booking on each channel its
/// contact has (none on a channel it lacks), and none for a failed booking.
pub fn confirmations_exactly_once(
    bookings: &[BookingRow],
    notifications: &[NotificationRow],
) -> CheckResult {
    let mut result = CheckResult::new(
        "notifications: one confirmation per confirmed booking and channel, none if failed",
        "bookings",
    );
    let mut confirmations: HashMap<(Uuid, &str), usize> = HashMap::new();
    for notification in notifications.iter().filter(|n| n.kind == "confirmation") {
        *confirmations
            .entry((notification.booking_id, notification.channel.as_str()))
            .or_default() += 1;
    }
    for booking in bookings {
        // How many confirmations a channel may carry, by the booking's outcome:
        // exactly one where the contact is reachable once confirmed, none once
        // failed, at most one once cancelled (it may have been confirmed
        // first). Pending bookings are not judged yet.
        let allowed = |reachable: bool| match booking.status.as_str() {
            "confirmed" => Some((usize::from(reachable), usize::from(reachable))),
            "failed" => Some((0, 0)),
            "cancelled" => Some((0, 1)),
            _ => None,
        };
        if allowed(true).is_none() {
            continue;
        }
        result.checked += 1;
        for (channel, reachable) in [("email", booking.has_email), ("sms", booking.has_phone)] {
            let Some((least, most)) = allowed(reachable) else {
                continue;
            };
            let sent = confirmations
                .get(&(booking.booking_id, channel))
                .copied()
                .unwrap_or(0);
            if !(least..=most).contains(&sent) {
                let expected = if least == most {
                    format!("expected {least}")
                } else {
                    format!("expected {least} to {most}")
                };
                result.violations.push(format!(
                    "booking {} ({}): {sent} {channel} confirmations, {expected}",
                    booking.booking_id, booking.status
                ));
            }
        }
    }
    result
}

/// Every outbox row published, in every schema: a row left behind is a
/// message the rest of the system never heard.
pub fn outboxes_published(messaging: &[MessagingCounts]) -> CheckResult {
    let mut result = CheckResult::new("outbox: every row published, in every schema", "schemas");
    let mut rows = 0;
    for schema in messaging {
        result.checked += 1;
        rows += schema.outbox_rows;
        if schema.outbox_unpublished > 0 {
            let oldest = schema
                .oldest_unpublished
                .map_or_else(|| "?".to_owned(), |at| at.to_rfc3339());
            result.violations.push(format!(
                "{}.outbox: {} unpublished rows (oldest {oldest})",
                schema.schema, schema.outbox_unpublished
            ));
        }
    }
    result.note = Some(format!("{rows} outbox rows"));
    result
}

/// No message parked as a dead letter: each one is an effect some service
/// never applied. Counted per schema so the operator knows where to look.
pub fn no_parked_dead_letters(messaging: &[MessagingCounts]) -> CheckResult {
    let mut result = CheckResult::new("dead letters: none parked", "schemas");
    let mut parked = 0;
    for schema in messaging {
        result.checked += 1;
        parked += schema.dead_letters_parked;
        if schema.dead_letters_parked > 0 || schema.dead_letters_replay_requested > 0 {
            result.violations.push(format!(
                "{}.dead_letters: {} parked, {} awaiting replay",
                schema.schema, schema.dead_letters_parked, schema.dead_letters_replay_requested
            ));
        }
    }
    result.note = Some(format!("{parked} parked"));
    result
}

#[cfg(test)]
mod tests;
