//! Each step of the booking saga as the command its participant receives,
//! written to the outbox in the orchestrator's transaction.

use chrono::{DateTime, Utc};
use contracts::inventory::{ConfirmSeats, HoldSeats, ReleaseSeats};
use contracts::notification::{BookingSummary, NotificationKind, SendNotification};
use contracts::payment::{redeem_miles, CardCharge, Refund, TakePayment};
use contracts::saga::StepRef;
use contracts::{topics, Envelope, Message, Money};
use saga::{Action, RoutingSlip, SagaStep};
use sqlx::PgConnection;
use uuid::Uuid;

use super::cancellation::release_reason;
use super::variables::{price, BookingVariables};
use super::BookingStep;

/// Writes `step`'s command for `action`'s attempt.
pub async fn send(
    conn: &mut PgConnection,
    slip: &RoutingSlip,
    step: BookingStep,
    action: &Action,
) -> anyhow::Result<()> {
    let variables = BookingVariables::of(slip)?;
    let step_ref = StepRef {
        saga_id: slip.saga_id,
        step: step.name().to_owned(),
        attempt: action.attempt,
    };
    let booking_id = variables.booking_id;
    let flight_id = variables.flight.flight_id;
    // Set for the attempts of steps before the pivot only; see `expiry_of`.
    let expires_at = slip.expiry_of(action);
    let out = Outgoing {
        variables: &variables,
        expires_at,
    };
    match step {
        BookingStep::HoldSeats => {
            let command = HoldSeats {
                step: step_ref,
                flight_id,
                booking_id,
                hold_id: variables.hold_id,
                seats: variables.seats,
            };
            out.enqueue(conn, topics::INVENTORY_COMMANDS, flight_id, command)
                .await
        }
        BookingStep::ReleaseSeats => {
            let command = ReleaseSeats {
                step: step_ref,
                flight_id,
                hold_id: variables.hold_id,
                reason: release_reason(slip)?,
            };
            out.enqueue(conn, topics::INVENTORY_COMMANDS, flight_id, command)
                .await
        }
        BookingStep::ConfirmBooking => {
            let command = ConfirmSeats {
                step: step_ref,
                flight_id,
                hold_id: variables.hold_id,
            };
            out.enqueue(conn, topics::INVENTORY_COMMANDS, flight_id, command)
                .await
        }
        BookingStep::TakePayment => {
            let command = take_payment(step_ref, price(slip, &variables)?, &variables)?;
            out.enqueue(conn, topics::PAYMENT_COMMANDS, booking_id, command)
                .await
        }
        BookingStep::Refund => {
            let reason = slip
                .cancellation_reason
                .clone()
                .or_else(|| slip.failure_reason.clone())
                .unwrap_or_else(|| "the booking failed".to_owned());
            let command = Refund {
                step: step_ref,
                booking_id,
                reason,
            };
            out.enqueue(conn, topics::PAYMENT_COMMANDS, booking_id, command)
                .await
        }
        BookingStep::SendConfirmation => {
            let command = notification(step_ref, NotificationKind::Confirmation, slip, &variables)?;
            out.enqueue(conn, topics::NOTIFICATION_COMMANDS, booking_id, command)
                .await
        }
        BookingStep::SendCancellation => {
            let command = notification(step_ref, NotificationKind::Cancellation, slip, &variables)?;
            out.enqueue(conn, topics::NOTIFICATION_COMMANDS, booking_id, command)
                .await
        }
        BookingStep::SendCorrection => {
            let command = notification(step_ref, NotificationKind::Correction, slip, &variables)?;
            out.enqueue(conn, topics::NOTIFICATION_COMMANDS, booking_id, command)
                .await
        }
    }
}

/// Where one attempt's command goes, and when its sender stops waiting.
struct Outgoing<'a> {
    variables: &'a BookingVariables,
    expires_at: Option<DateTime<Utc>>,
}

impl Outgoing<'_> {
    fn envelope<M: Message>(&self, command: M) -> Envelope<M> {
        Envelope::new(command, self.variables.booking_id).expiring_at(self.expires_at)
    }

    /// Writes `command` to `topic` under `key`: flight-inventory's keyed by
    /// flight (one flight's commands stay in order), payment's and
    /// notification's by booking.
    async fn enqueue<M: Message>(
        &self,
        conn: &mut PgConnection,
        topic: &str,
        key: Uuid,
        command: M,
    ) -> anyhow::Result<()> {
        let envelope = self.envelope(command);
        messaging::enqueue(conn, topic, &key.to_string(), &envelope).await
    }
}

fn notification(
    step: StepRef,
    kind: NotificationKind,
    slip: &RoutingSlip,
    variables: &BookingVariables,
) -> anyhow::Result<SendNotification> {
    Ok(SendNotification {
        step,
        booking_id: variables.booking_id,
        kind,
        contact: variables.contact.clone(),
        booking: BookingSummary {
            customer_id: variables.customer_id.clone(),
            flight: variables.flight.clone(),
            passengers: variables.passengers.clone(),
            total: price(slip, variables)?,
        },
        reason: slip.cancellation_reason.clone(),
    })
}

/// Splits `total` between miles (as many as offered and needed) and the card.
pub fn take_payment(
    step: StepRef,
    total: Money,
    variables: &BookingVariables,
) -> anyhow::Result<TakePayment> {
    let miles = redeem_miles(variables.miles_offered, &total)?;
    let by_miles = miles
        .as_ref()
        .map_or(Money::zero(total.currency()), |miles| miles.amount);
    let rest = total.checked_sub(&by_miles)?;
    // Without a card the miles must cover it all; if they do not (the held
    // fare rose above the quote), payment refuses the inconsistent split and
    // the saga compensates with that reason.
    let card = match &variables.card {
        Some(card) if !rest.is_zero() => Some(CardCharge {
            card_token: card.card_token,
            amount: rest,
        }),
        _ => None,
    };
    Ok(TakePayment {
        step,
        booking_id: variables.booking_id,
        customer_id: variables.customer_id.clone(),
        total,
        card,
        miles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::variables::tests::{usd, variables};
    use uuid::Uuid;

    fn step() -> StepRef {
        StepRef {
            saga_id: Uuid::now_v7(),
            step: BookingStep::TakePayment.name().to_owned(),
            attempt: 1,
        }
    }

    #[test]
    fn miles_pay_what_they_can_and_the_card_the_rest() {
        let variables = variables(true, 10_000);
        let command = take_payment(step(), usd("398.00"), &variables).unwrap();
        assert_eq!(command.total, usd("398.00"));
        assert_eq!(command.miles.as_ref().unwrap().amount, usd("100.00"));
        assert_eq!(command.card.as_ref().unwrap().amount, usd("298.00"));
    }

    #[test]
    fn enough_miles_leave_nothing_for_the_card() {
        let variables = variables(true, 100_000);
        let command = take_payment(step(), usd("398.00"), &variables).unwrap();
        assert_eq!(command.miles.unwrap().miles, 39_800);
        assert!(command.card.is_none());
    }

    #[test]
    fn the_card_pays_the_held_fare_not_the_quote() {
        let variables = variables(true, 0);
        let command = take_payment(step(), usd("420.00"), &variables).unwrap();
        assert_eq!(command.card.unwrap().amount, usd("420.00"));
    }
}
