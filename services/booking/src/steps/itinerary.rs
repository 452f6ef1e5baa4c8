//! The booking saga's steps and its itinerary, policies as data.

use chrono::{DateTime, TimeDelta, Utc};
use saga::{RetryPolicy, SagaStep, StepDefinition};
use serde::Deserialize;

/// The kind of saga booking runs, as its slips record it.
pub const SAGA_TYPE: &str = "booking";

/// Every step the booking saga can take, forward or compensating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookingStep {
    /// flight-inventory holds the seats at a locked fare.
    HoldSeats,
    /// flight-inventory gives them back (compensates `HoldSeats`).
    ReleaseSeats,
    /// payment captures miles and/or the card.
    TakePayment,
    /// payment refunds what was captured (compensates `TakePayment`).
    Refund,
    /// flight-inventory sells the held seats: the pivot.
    ConfirmBooking,
    /// notification tells the customer the booking is confirmed.
    SendConfirmation,
    /// notification tells the customer the booking is cancelled.
    SendCancellation,
    /// notification corrects a confirmation sent for a booking that was then undone.
    SendCorrection,
}

/// Which participant carries a step out; only its replies can answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Participant {
    Inventory,
    Payment,
    Notification,
}

impl BookingStep {
    pub fn participant(self) -> Participant {
        match self {
            BookingStep::HoldSeats | BookingStep::ReleaseSeats | BookingStep::ConfirmBooking => {
                Participant::Inventory
            }
            BookingStep::TakePayment | BookingStep::Refund => Participant::Payment,
            BookingStep::SendConfirmation
            | BookingStep::SendCancellation
            | BookingStep::SendCorrection => Participant::Notification,
        }
    }
}

impl SagaStep for BookingStep {
    const ALL: &'static [Self] = &[
        BookingStep::HoldSeats,
        BookingStep::ReleaseSeats,
        BookingStep::TakePayment,
        BookingStep::Refund,
        BookingStep::ConfirmBooking,
        BookingStep::SendConfirmation,
        BookingStep::SendCancellation,
        BookingStep::SendCorrection,
    ];

    fn name(self) -> &'static str {
        match self {
            BookingStep::HoldSeats => "HoldSeats",
            BookingStep::ReleaseSeats => "ReleaseSeats",
            BookingStep::TakePayment => "TakePayment",
            BookingStep::Refund => "Refund",
            BookingStep::ConfirmBooking => "ConfirmBooking",
            BookingStep::SendConfirmation => "SendConfirmation",
            BookingStep::SendCancellation => "SendCancellation",
            BookingStep::SendCorrection => "SendCorrection",
        }
    }
}

/// `[saga]`: the saga's deadline, its timers, and each step's policy.
#[derive(Debug, Clone, Deserialize)]
pub struct SagaSettings {
    /// The pivot must be reached within this; less than a seat hold's life,
    /// so a saga gives up before its seats lapse under it.
    pub deadline_secs: u64,
    pub timer_poll_interval_ms: u64,
    pub hold_seats: RetryPolicy,
    pub release_seats: RetryPolicy,
    pub take_payment: RetryPolicy,
    pub refund: RetryPolicy,
    pub confirm_booking: RetryPolicy,
    pub send_notification: RetryPolicy,
}

impl SagaSettings {
    /// The forward itinerary, hardest to undo last.
    pub fn itinerary(&self) -> Vec<StepDefinition> {
        vec![
            StepDefinition::compensatable(
                BookingStep::HoldSeats,
                self.hold_seats.clone(),
                BookingStep::ReleaseSeats,
                self.release_seats.clone(),
            ),
            StepDefinition::compensatable(
                BookingStep::TakePayment,
                self.take_payment.clone(),
                BookingStep::Refund,
                self.refund.clone(),
            ),
            StepDefinition::pivot(BookingStep::ConfirmBooking, self.confirm_booking.clone()),
            self.notification_step(BookingStep::SendConfirmation),
        ]
    }

    /// A message to the customer: retried, never compensated.
    pub fn notification_step(&self, step: BookingStep) -> StepDefinition {
        StepDefinition::retriable(step, self.send_notification.clone())
    }

    pub fn deadline(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + TimeDelta::seconds(i64::try_from(self.deadline_secs).unwrap_or(i64::MAX / 1000))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            timeout_ms: 5_000,
        }
    }

    pub fn settings() -> SagaSettings {
        SagaSettings {
            deadline_secs: 120,
            timer_poll_interval_ms: 100,
            hold_seats: policy(),
            release_seats: policy(),
            take_payment: policy(),
            refund: policy(),
            confirm_booking: policy(),
            send_notification: policy(),
        }
    }

    #[test]
    fn the_itinerary_holds_pays_confirms_then_notifies() {
        let names: Vec<String> = settings().itinerary().into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "HoldSeats",
                "TakePayment",
                "ConfirmBooking",
                "SendConfirmation"
            ]
        );
    }

    #[test]
    fn every_step_reads_back_from_its_name() {
        for step in BookingStep::ALL {
            assert_eq!(BookingStep::from_name(step.name()), Some(*step));
        }
        assert_eq!(BookingStep::from_name("BookHotel"), None);
    }

    #[test]
    fn compensations_belong_to_the_participant_of_their_step() {
        for definition in settings().itinerary() {
            let step = BookingStep::from_name(&definition.name).unwrap();
            if let Some(compensation) = definition.compensation {
                let undo = BookingStep::from_name(&compensation.name).unwrap();
                assert_eq!(undo.participant(), step.participant());
            }
        }
    }
}
