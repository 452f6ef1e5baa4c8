//! The participants' replies as outcomes of the steps they answer, and the
//! consumer of `booking.saga-replies` that feeds them to the orchestrator in
//! its transaction (inbox row, slip, booking and next command together).

use chrono::Utc;
use contracts::inventory::{CommandRefused, SeatsConfirmed, SeatsHeld, SeatsReleased};
use contracts::notification::NotificationSent;
use contracts::payment::{PaymentFailed, PaymentRefunded, PaymentRefused, PaymentTaken};
use contracts::saga::StepRef;
use contracts::Message;
use messaging::{Delivery, HandlerError, Handles, Participant};
use saga::{Orchestrator, Reply, ReplyOutcome, SagaError, SagaStep, StepOutcome};

use super::itinerary::Participant as StepParticipant;
use super::variables::{HeldSeats, HoldSettled, MessagesRecorded, PaymentCaptured};
use super::{variables, BookingStep, BookingSteps};

/// The consumer's name: its consumer group and its inbox key.
pub const CONSUMER: &str = "booking.saga-replies";

/// A participant's reply to a step of the booking saga.
pub trait StepReply: Message {
    /// Who sends it; it can answer only that participant's steps.
    const FROM: StepParticipant;

    /// The step it answers, as the command carried it.
    fn step(&self) -> &StepRef;

    /// Whether it can answer `step`, one of its participant's steps.
    fn answers(step: BookingStep) -> bool;

    /// What the step came to.
    fn outcome(self) -> anyhow::Result<StepOutcome>;
}

/// A refusal: final for the step; the saga turns around.
fn refused(refusal: &str, detail: &str) -> StepOutcome {
    StepOutcome::Failed {
        reason: format!("{refusal}: {detail}"),
        transient: false,
    }
}

impl StepReply for SeatsHeld {
    const FROM: StepParticipant = StepParticipant::Inventory;
    fn step(&self) -> &StepRef {
        &self.step
    }
    fn answers(step: BookingStep) -> bool {
        step == BookingStep::HoldSeats
    }
    fn outcome(self) -> anyhow::Result<StepOutcome> {
        let held = HeldSeats {
            hold_id: self.hold_id,
            seats: self.seats,
            fare: self.fare,
            total: self.total,
            expires_at: self.expires_at,
        };
        Ok(StepOutcome::succeeded(&held)?)
    }
}

impl StepReply for SeatsReleased {
    const FROM: StepParticipant = StepParticipant::Inventory;
    fn step(&self) -> &StepRef {
        &self.step
    }
    fn answers(step: BookingStep) -> bool {
        step == BookingStep::ReleaseSeats
    }
    fn outcome(self) -> anyhow::Result<StepOutcome> {
        Ok(StepOutcome::succeeded(&HoldSettled {
            hold_id: self.hold_id,
        })?)
    }
}

impl StepReply for SeatsConfirmed {
    const FROM: StepParticipant = StepParticipant::Inventory;
    fn step(&self) -> &StepRef {
        &self.step
    }
    fn answers(step: BookingStep) -> bool {
        step == BookingStep::ConfirmBooking
    }
    fn outcome(self) -> anyhow::Result<StepOutcome> {
        Ok(StepOutcome::succeeded(&HoldSettled {
            hold_id: self.hold_id,
        })?)
    }
}

impl StepReply for CommandRefused {
    const FROM: StepParticipant = StepParticipant::Inventory;
    fn step(&self) -> &StepRef {
        &self.step
    }
    fn answers(_: BookingStep) -> bool {
        true
    }
    fn outcome(self) -> anyhow::Result<StepOutcome> {
        Ok(refused(self.refusal.as_str(), &self.detail))
    }
}

impl StepReply for PaymentTaken {
    const FROM: StepParticipant = StepParticipant::Payment;
    fn step(&self) -> &StepRef {
        &self.step
    }
    fn answers(step: BookingStep) -> bool {
        step == BookingStep::TakePayment
    }
    fn outcome(self) -> anyhow::Result<StepOutcome> {
        Ok(StepOutcome::succeeded(&PaymentCaptured {
            captures: self.captures,
        })?)
    }
}

impl StepReply for PaymentRefused {
    const FROM: StepParticipant = StepParticipant::Payment;
    fn step(&self) -> &StepRef {
        &self.step
    }
    fn answers(step: BookingStep) -> bool {
        step == BookingStep::TakePayment
    }
    fn outcome(self) -> anyhow::Result<StepOutcome> {
        Ok(refused(self.refusal.as_str(), &self.detail))
    }
}

impl StepReply for PaymentFailed {
    const FROM: StepParticipant = StepParticipant::Payment;
    fn step(&self) -> &StepRef {
        &self.step
    }
    fn answers(step: BookingStep) -> bool {
        step == BookingStep::TakePayment
    }
    /// The gateway failed this time: the step is tried again within its budget.
    fn outcome(self) -> anyhow::Result<StepOutcome> {
        Ok(StepOutcome::Failed {
            reason: format!("payment_failed: {}", self.detail),
            transient: true,
        })
    }
}

impl StepReply for PaymentRefunded {
    const FROM: StepParticipant = StepParticipant::Payment;
    fn step(&self) -> &StepRef {
        &self.step
    }
    fn answers(step: BookingStep) -> bool {
        step == BookingStep::Refund
    }
    fn outcome(self) -> anyhow::Result<StepOutcome> {
        Ok(StepOutcome::succeeded(&variables::PaymentRefunded {
            refunds: self.refunds,
        })?)
    }
}

impl StepReply for NotificationSent {
    const FROM: StepParticipant = StepParticipant::Notification;
    fn step(&self) -> &StepRef {
        &self.step
    }
    fn answers(_: BookingStep) -> bool {
        true
    }
    fn outcome(self) -> anyhow::Result<StepOutcome> {
        Ok(StepOutcome::succeeded(&MessagesRecorded {
            kind: self.kind,
            messages: self.messages,
        })?)
    }
}

/// `reply` as the slip's input. A reply that names a step this saga does
/// not have, or one its type cannot answer, breaks the protocol: an error.
pub fn reply_of<R: StepReply>(reply: R) -> anyhow::Result<(StepRef, Reply)> {
    let step_ref = reply.step().clone();
    let step = BookingStep::from_name(&step_ref.step).ok_or_else(|| {
        anyhow::anyhow!(
            "{} names a step the booking saga does not have: {}",
            R::MESSAGE_TYPE,
            step_ref.step
        )
    })?;
    if step.participant() != R::FROM || !R::answers(step) {
        anyhow::bail!("{} cannot answer step {}", R::MESSAGE_TYPE, step.name());
    }
    let reply = Reply {
        step: step.name().to_owned(),
        attempt: step_ref.attempt,
        outcome: reply.outcome()?,
    };
    Ok((step_ref, reply))
}

/// Applies the participants' replies to their sagas.
#[derive(Debug, Clone)]
pub struct SagaReplies {
    pub orchestrator: Orchestrator<BookingSteps>,
}

impl SagaReplies {
    /// Every reply the booking saga listens for.
    pub fn participant(self) -> Participant<Self> {
        Participant::new(self)
            .on::<SeatsHeld>()
            .on::<SeatsReleased>()
            .on::<SeatsConfirmed>()
            .on::<CommandRefused>()
            .on::<PaymentTaken>()
            .on::<PaymentRefused>()
            .on::<PaymentFailed>()
            .on::<PaymentRefunded>()
            .on::<NotificationSent>()
    }
}

impl<R: StepReply> Handles<R> for SagaReplies {
    async fn handle(&self, delivery: Delivery<'_>, reply: R) -> Result<(), HandlerError> {
        let (step, reply) = reply_of(reply).map_err(HandlerError::Permanent)?;
        match self
            .orchestrator
            .reply(delivery.conn, step.saga_id, reply, Utc::now())
            .await
        {
            Ok(ReplyOutcome::Applied | ReplyOutcome::Stale) => Ok(()),
            Ok(ReplyOutcome::UnknownSaga) => {
                tracing::warn!(saga_id = %step.saga_id, "reply for an unknown saga ignored");
                Ok(())
            }
            Err(SagaError::Refused(error)) => Err(HandlerError::Permanent(error.into())),
            Err(SagaError::NotFound(_)) => Ok(()),
            Err(SagaError::Unexpected(error)) => Err(HandlerError::Transient(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::payment::PaymentRefusal;
    use uuid::Uuid;

    fn step(step: BookingStep) -> StepRef {
        StepRef {
            saga_id: Uuid::now_v7(),
            step: step.name().to_owned(),
            attempt: 1,
        }
    }

    #[test]
    fn a_refusal_is_final_and_says_why() {
        let refused = PaymentRefused {
            step: step(BookingStep::TakePayment),
            booking_id: Uuid::now_v7(),
            refusal: PaymentRefusal::CardDeclined,
            detail: "do not honor".to_owned(),
        };
        let (_, reply) = reply_of(refused).unwrap();
        assert_eq!(reply.step, "TakePayment");
        assert_eq!(
            reply.outcome,
            StepOutcome::Failed {
                reason: "card_declined: do not honor".to_owned(),
                transient: false
            }
        );
    }

    #[test]
    fn a_gateway_failure_is_worth_another_attempt() {
        let flaky = PaymentFailed {
            step: step(BookingStep::TakePayment),
            booking_id: Uuid::now_v7(),
            detail: "gateway timeout".to_owned(),
        };
        assert!(matches!(
            reply_of(flaky).unwrap().1.outcome,
            StepOutcome::Failed {
                transient: true,
                ..
            }
        ));
    }

    #[test]
    fn a_reply_to_another_participants_step_breaks_the_protocol() {
        let taken = PaymentTaken {
            step: step(BookingStep::HoldSeats),
            booking_id: Uuid::now_v7(),
            captures: vec![],
        };
        assert!(reply_of(taken).is_err());
        let released = SeatsReleased {
            step: step(BookingStep::HoldSeats),
            flight_id: Uuid::now_v7(),
            hold_id: Uuid::now_v7(),
        };
        assert!(reply_of(released).is_err());
    }

    #[test]
    fn a_reply_to_a_step_the_saga_does_not_have_breaks_the_protocol() {
        let mut held = step(BookingStep::HoldSeats);
        held.step = "BookHotel".to_owned();
        let refused = CommandRefused {
            step: held,
            flight_id: Uuid::now_v7(),
            refusal: contracts::inventory::Refusal::SoldOut,
            detail: "sold out".to_owned(),
        };
        assert!(reply_of(refused).is_err());
    }
}
