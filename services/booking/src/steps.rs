//! The booking saga's steps: the itinerary (policies as data, from
//! settings), how each step becomes a command to a participant, how each
//! participant's reply becomes a step outcome, and what booking mirrors when
//! the slip changes.
//!
//! ```text
//! HoldSeats ──► TakePayment ──► ConfirmBooking ──► SendConfirmation
//! (ReleaseSeats)   (Refund)       pivot              retriable
//! ```

use chrono::{DateTime, TimeDelta, Utc};
use contracts::inventory::{
    CommandRefused, ConfirmSeats, HoldSeats, ReleaseSeats, SeatsConfirmed, SeatsHeld, SeatsReleased,
};
use contracts::notification::{
    BookingSummary, Contact, FlightSummary, NotificationKind, NotificationSent, Passenger,
    SendNotification,
};
use contracts::payment::{
    redeem_miles, CardCharge, PaymentFailed, PaymentRefunded, PaymentRefused, PaymentTaken, Refund,
    TakePayment,
};
use contracts::saga::StepRef;
use contracts::{topics, Envelope, Message, Money};
use futures::future::BoxFuture;
use saga::slip::CompensationDefinition;
use saga::{
    Action, RetryPolicy, RoutingSlip, SagaStatus, StepDefinition, StepExecutor, StepKind,
    StepOutcome,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::{self, BookingStatus, CardRecord};

pub const SAGA_TYPE: &str = "booking";
pub const HOLD_SEATS: &str = "HoldSeats";
pub const RELEASE_SEATS: &str = "ReleaseSeats";
pub const TAKE_PAYMENT: &str = "TakePayment";
pub const REFUND: &str = "Refund";
pub const CONFIRM_BOOKING: &str = "ConfirmBooking";
pub const SEND_CONFIRMATION: &str = "SendConfirmation";
pub const SEND_CANCELLATION: &str = "SendCancellation";
pub const SEND_CORRECTION: &str = "SendCorrection";

/// The Postgres channel on which a booking's status changes are announced.
pub const STATUS_CHANNEL: &str = "booking_status";

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
            StepDefinition {
                name: HOLD_SEATS.to_owned(),
                kind: StepKind::Compensatable,
                policy: self.hold_seats.clone(),
                compensation: Some(CompensationDefinition {
                    name: RELEASE_SEATS.to_owned(),
                    policy: self.release_seats.clone(),
                }),
            },
            StepDefinition {
                name: TAKE_PAYMENT.to_owned(),
                kind: StepKind::Compensatable,
                policy: self.take_payment.clone(),
                compensation: Some(CompensationDefinition {
                    name: REFUND.to_owned(),
                    policy: self.refund.clone(),
                }),
            },
            StepDefinition {
                name: CONFIRM_BOOKING.to_owned(),
                kind: StepKind::Pivot,
                policy: self.confirm_booking.clone(),
                compensation: None,
            },
            self.notification_step(SEND_CONFIRMATION),
        ]
    }

    /// A message to the customer: retried, never compensated.
    pub fn notification_step(&self, name: &str) -> StepDefinition {
        StepDefinition {
            name: name.to_owned(),
            kind: StepKind::Retriable,
            policy: self.send_notification.clone(),
            compensation: None,
        }
    }

    pub fn deadline(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + TimeDelta::seconds(i64::try_from(self.deadline_secs).unwrap_or(i64::MAX / 1000))
    }
}

/// Who cancelled a booking; it decides the reason inventory records for
/// the released seats and what the customer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canceller {
    Customer,
    Airline,
    Operator,
}

const AIRLINE_PREFIX: &str = "flight cancelled by the airline";
const OPERATOR_PREFIX: &str = "compensated by an operator";

/// The slip's cancellation reason for `canceller`.
pub fn cancellation_reason(canceller: Canceller, detail: &str) -> String {
    let prefix = match canceller {
        Canceller::Customer => "cancelled by the customer",
        Canceller::Airline => AIRLINE_PREFIX,
        Canceller::Operator => OPERATOR_PREFIX,
    };
    if detail.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}: {detail}")
    }
}

/// What the steps need to write their commands, kept in the slip's variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BookingVariables {
    pub booking_id: Uuid,
    pub customer_id: String,
    pub flight: FlightSummary,
    pub hold_id: Uuid,
    pub seats: u32,
    pub passengers: Vec<Passenger>,
    pub contact: Contact,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRecord>,
    pub miles_offered: u64,
    pub quoted_total: Money,
}

const VARIABLES_KEY: &str = "booking";

impl BookingVariables {
    pub fn into_map(self) -> anyhow::Result<serde_json::Map<String, Value>> {
        let mut map = serde_json::Map::new();
        map.insert(VARIABLES_KEY.to_owned(), serde_json::to_value(self)?);
        Ok(map)
    }

    pub fn of(slip: &RoutingSlip) -> anyhow::Result<Self> {
        let value = slip
            .variables
            .get(VARIABLES_KEY)
            .ok_or_else(|| anyhow::anyhow!("saga {} has no booking variables", slip.saga_id))?;
        Ok(Self::deserialize(value)?)
    }
}

/// The price: the held fare once seats are held, the quote before.
pub fn price(slip: &RoutingSlip, variables: &BookingVariables) -> Money {
    slip.step_data(HOLD_SEATS)
        .and_then(|held| held.get("total"))
        .and_then(|total| Money::deserialize(total).ok())
        .unwrap_or(variables.quoted_total)
}

/// The customer-facing status a slip stands for; `None` while it is undoing
/// (the booking keeps what it showed until the undoing is done).
pub fn booking_status(slip: &RoutingSlip) -> Option<BookingStatus> {
    match slip.status {
        SagaStatus::Running | SagaStatus::Completed | SagaStatus::Parked if slip.pivoted => {
            Some(BookingStatus::Confirmed)
        }
        SagaStatus::Running | SagaStatus::Parked => Some(BookingStatus::Pending),
        SagaStatus::Completed => Some(BookingStatus::Confirmed),
        SagaStatus::Compensated if slip.cancellation_reason.is_some() => {
            Some(BookingStatus::Cancelled)
        }
        SagaStatus::Compensated => Some(BookingStatus::Failed),
        SagaStatus::Compensating | SagaStatus::FailedCompensation => None,
    }
}

/// Turns the slip's actions into commands and mirrors its outcome.
#[derive(Debug, Clone, Default)]
pub struct BookingSteps;

impl StepExecutor for BookingSteps {
    fn execute<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        slip: &'a RoutingSlip,
        action: &'a Action,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let variables = BookingVariables::of(slip)?;
            let step = StepRef {
                saga_id: slip.saga_id,
                step: action.step.clone(),
                attempt: action.attempt,
            };
            let booking_id = variables.booking_id;
            let flight_key = variables.flight.flight_id.to_string();
            let booking_key = booking_id.to_string();
            match action.step.as_str() {
                HOLD_SEATS => {
                    let command = HoldSeats {
                        step,
                        flight_id: variables.flight.flight_id,
                        booking_id,
                        hold_id: variables.hold_id,
                        seats: variables.seats,
                    };
                    send(
                        conn,
                        topics::INVENTORY_COMMANDS,
                        &flight_key,
                        command,
                        booking_id,
                    )
                    .await
                }
                RELEASE_SEATS => {
                    let command = ReleaseSeats {
                        step,
                        flight_id: variables.flight.flight_id,
                        hold_id: variables.hold_id,
                        reason: release_reason(slip).to_owned(),
                    };
                    send(
                        conn,
                        topics::INVENTORY_COMMANDS,
                        &flight_key,
                        command,
                        booking_id,
                    )
                    .await
                }
                CONFIRM_BOOKING => {
                    let command = ConfirmSeats {
                        step,
                        flight_id: variables.flight.flight_id,
                        hold_id: variables.hold_id,
                    };
                    send(
                        conn,
                        topics::INVENTORY_COMMANDS,
                        &flight_key,
                        command,
                        booking_id,
                    )
                    .await
                }
                TAKE_PAYMENT => {
                    let command = take_payment(step, slip, &variables)?;
                    send(
                        conn,
                        topics::PAYMENT_COMMANDS,
                        &booking_key,
                        command,
                        booking_id,
                    )
                    .await
                }
                REFUND => {
                    let reason = slip
                        .cancellation_reason
                        .clone()
                        .or_else(|| slip.failure_reason.clone())
                        .unwrap_or_else(|| "the booking failed".to_owned());
                    let command = Refund {
                        step,
                        booking_id,
                        reason,
                    };
                    send(
                        conn,
                        topics::PAYMENT_COMMANDS,
                        &booking_key,
                        command,
                        booking_id,
                    )
                    .await
                }
                SEND_CONFIRMATION | SEND_CANCELLATION | SEND_CORRECTION => {
                    let kind = match action.step.as_str() {
                        SEND_CONFIRMATION => NotificationKind::Confirmation,
                        SEND_CANCELLATION => NotificationKind::Cancellation,
                        _ => NotificationKind::Correction,
                    };
                    let command = SendNotification {
                        step,
                        booking_id,
                        kind,
                        contact: variables.contact.clone(),
                        booking: BookingSummary {
                            customer_id: variables.customer_id.clone(),
                            flight: variables.flight.clone(),
                            passengers: variables.passengers.clone(),
                            total: price(slip, &variables),
                        },
                        reason: slip.cancellation_reason.clone(),
                    };
                    send(
                        conn,
                        topics::NOTIFICATION_COMMANDS,
                        &booking_key,
                        command,
                        booking_id,
                    )
                    .await
                }
                other => anyhow::bail!("the booking saga has no step {other}"),
            }
        })
    }

    fn on_change<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        _previous: SagaStatus,
        slip: &'a RoutingSlip,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let Some(status) = booking_status(slip) else {
                return Ok(());
            };
            let variables = BookingVariables::of(slip)?;
            let total = price(slip, &variables);
            let changed = db::record_outcome(conn, variables.booking_id, status, total).await?;
            if changed {
                metrics::counter!("bookings_total", "status" => status.as_str()).increment(1);
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(STATUS_CHANNEL)
                    .bind(variables.booking_id.to_string())
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        })
    }
}

/// The reason inventory records for released seats.
fn release_reason(slip: &RoutingSlip) -> &'static str {
    match slip.cancellation_reason.as_deref() {
        Some(reason) if reason.starts_with(AIRLINE_PREFIX) => "flight_cancelled",
        Some(_) => "booking_cancelled",
        None => "booking_failed",
    }
}

/// Splits the price between miles (as many as offered and needed) and the card.
fn take_payment(
    step: StepRef,
    slip: &RoutingSlip,
    variables: &BookingVariables,
) -> anyhow::Result<TakePayment> {
    let total = price(slip, variables);
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

async fn send<P: Message>(
    conn: &mut PgConnection,
    topic: &str,
    key: &str,
    command: P,
    booking_id: Uuid,
) -> anyhow::Result<()> {
    messaging::enqueue(conn, topic, key, &Envelope::new(command, booking_id)).await?;
    Ok(())
}

/// The reply types the saga listens for.
pub const REPLY_TYPES: [&str; 9] = [
    SeatsHeld::MESSAGE_TYPE,
    SeatsReleased::MESSAGE_TYPE,
    SeatsConfirmed::MESSAGE_TYPE,
    CommandRefused::MESSAGE_TYPE,
    PaymentTaken::MESSAGE_TYPE,
    PaymentRefused::MESSAGE_TYPE,
    PaymentFailed::MESSAGE_TYPE,
    PaymentRefunded::MESSAGE_TYPE,
    NotificationSent::MESSAGE_TYPE,
];

/// A participant's reply as the step it answers and its outcome.
pub fn outcome_of(envelope: &Envelope) -> anyhow::Result<(StepRef, StepOutcome)> {
    fn done(data: Value) -> StepOutcome {
        StepOutcome::Succeeded { data }
    }
    fn failed(reason: impl Serialize, detail: &str, transient: bool) -> StepOutcome {
        let reason = serde_json::to_value(reason)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_else(|| "failed".to_owned());
        StepOutcome::Failed {
            reason: format!("{reason}: {detail}"),
            transient,
        }
    }
    Ok(match envelope.message_type.as_str() {
        SeatsHeld::MESSAGE_TYPE => {
            let reply = envelope.decode::<SeatsHeld>()?.payload;
            let data = json!({
                "hold_id": reply.hold_id, "seats": reply.seats, "fare": reply.fare,
                "total": reply.total, "expires_at": reply.expires_at,
            });
            (reply.step, done(data))
        }
        SeatsReleased::MESSAGE_TYPE => {
            let reply = envelope.decode::<SeatsReleased>()?.payload;
            (reply.step, done(json!({"hold_id": reply.hold_id})))
        }
        SeatsConfirmed::MESSAGE_TYPE => {
            let reply = envelope.decode::<SeatsConfirmed>()?.payload;
            (reply.step, done(json!({"hold_id": reply.hold_id})))
        }
        CommandRefused::MESSAGE_TYPE => {
            let reply = envelope.decode::<CommandRefused>()?.payload;
            let outcome = failed(reply.refusal, &reply.detail, false);
            (reply.step, outcome)
        }
        PaymentTaken::MESSAGE_TYPE => {
            let reply = envelope.decode::<PaymentTaken>()?.payload;
            (reply.step, done(json!({"captures": reply.captures})))
        }
        PaymentRefused::MESSAGE_TYPE => {
            let reply = envelope.decode::<PaymentRefused>()?.payload;
            let outcome = failed(reply.refusal, &reply.detail, false);
            (reply.step, outcome)
        }
        PaymentFailed::MESSAGE_TYPE => {
            let reply = envelope.decode::<PaymentFailed>()?.payload;
            let outcome = failed("payment_failed", &reply.detail, true);
            (reply.step, outcome)
        }
        PaymentRefunded::MESSAGE_TYPE => {
            let reply = envelope.decode::<PaymentRefunded>()?.payload;
            (reply.step, done(json!({"refunds": reply.refunds})))
        }
        NotificationSent::MESSAGE_TYPE => {
            let reply = envelope.decode::<NotificationSent>()?.payload;
            (
                reply.step,
                done(json!({"kind": reply.kind, "messages": reply.messages})),
            )
        }
        other => anyhow::bail!("{other} is not a saga reply"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use contracts::Currency;
    use saga::Reply;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            timeout_ms: 5_000,
        }
    }

    fn settings() -> SagaSettings {
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

    fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::Usd).unwrap()
    }

    fn variables(card: bool, miles: u64) -> BookingVariables {
        BookingVariables {
            booking_id: Uuid::now_v7(),
            customer_id: "cust-42".to_owned(),
            flight: FlightSummary {
                flight_id: Uuid::now_v7(),
                flight_number: "CT123".to_owned(),
                origin: "ICN".to_owned(),
                destination: "NRT".to_owned(),
                departure: Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap(),
            },
            hold_id: Uuid::now_v7(),
            seats: 2,
            passengers: vec![],
            contact: Contact {
                email: Some("ada@example.com".to_owned()),
                phone: None,
            },
            card: card.then(|| CardRecord {
                card_token: Uuid::now_v7(),
                brand: "visa".to_owned(),
                last4: "4242".to_owned(),
            }),
            miles_offered: miles,
            quoted_total: usd("398.00"),
        }
    }

    fn slip(variables: &BookingVariables) -> RoutingSlip {
        let now = Utc::now();
        RoutingSlip::new(
            variables.booking_id,
            SAGA_TYPE,
            settings().itinerary(),
            variables.clone().into_map().unwrap(),
            settings().deadline(now),
            now,
        )
        .unwrap()
    }

    fn step(name: &str) -> StepRef {
        StepRef {
            saga_id: Uuid::now_v7(),
            step: name.to_owned(),
            attempt: 1,
        }
    }

    #[test]
    fn the_itinerary_holds_pays_confirms_then_notifies() {
        let names: Vec<String> = settings().itinerary().into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [HOLD_SEATS, TAKE_PAYMENT, CONFIRM_BOOKING, SEND_CONFIRMATION]
        );
    }

    #[test]
    fn miles_pay_what_they_can_and_the_card_the_rest() {
        let variables = variables(true, 10_000);
        let command = take_payment(step(TAKE_PAYMENT), &slip(&variables), &variables).unwrap();
        assert_eq!(command.total, usd("398.00"));
        assert_eq!(command.miles.as_ref().unwrap().amount, usd("100.00"));
        assert_eq!(command.card.as_ref().unwrap().amount, usd("298.00"));
    }

    #[test]
    fn enough_miles_leave_nothing_for_the_card() {
        let variables = variables(true, 100_000);
        let command = take_payment(step(TAKE_PAYMENT), &slip(&variables), &variables).unwrap();
        assert_eq!(command.miles.unwrap().miles, 39_800);
        assert!(command.card.is_none());
    }

    #[test]
    fn the_held_fare_is_the_price_once_seats_are_held() {
        let variables = variables(true, 0);
        let mut slip = slip(&variables);
        slip.start(Utc::now());
        let held = Reply {
            step: HOLD_SEATS.to_owned(),
            attempt: 1,
            outcome: StepOutcome::Succeeded {
                data: json!({"total": usd("420.00")}),
            },
        };
        slip.on_reply(held, Utc::now());
        assert_eq!(price(&slip, &variables), usd("420.00"));
        let command = take_payment(step(TAKE_PAYMENT), &slip, &variables).unwrap();
        assert_eq!(command.card.unwrap().amount, usd("420.00"));
    }

    #[test]
    fn a_slip_maps_to_the_status_the_customer_sees() {
        let variables = variables(true, 0);
        let mut slip = slip(&variables);
        assert_eq!(booking_status(&slip), Some(BookingStatus::Pending));
        slip.pivoted = true;
        assert_eq!(booking_status(&slip), Some(BookingStatus::Confirmed));
        slip.status = SagaStatus::Compensating;
        assert_eq!(booking_status(&slip), None);
        slip.status = SagaStatus::Compensated;
        assert_eq!(booking_status(&slip), Some(BookingStatus::Failed));
        slip.cancellation_reason = Some(cancellation_reason(Canceller::Customer, ""));
        assert_eq!(booking_status(&slip), Some(BookingStatus::Cancelled));
    }

    #[test]
    fn released_seats_say_why() {
        let variables = variables(true, 0);
        let mut slip = slip(&variables);
        assert_eq!(release_reason(&slip), "booking_failed");
        slip.cancellation_reason = Some(cancellation_reason(Canceller::Airline, "weather"));
        assert_eq!(release_reason(&slip), "flight_cancelled");
        slip.cancellation_reason = Some(cancellation_reason(Canceller::Customer, ""));
        assert_eq!(release_reason(&slip), "booking_cancelled");
    }

    #[test]
    fn replies_become_outcomes() {
        let refused = PaymentRefused {
            step: step(TAKE_PAYMENT),
            booking_id: Uuid::now_v7(),
            refusal: contracts::payment::PaymentRefusal::CardDeclined,
            detail: "do not honor".to_owned(),
        };
        let envelope = Envelope::new(refused, Uuid::now_v7()).to_json().unwrap();
        let (step_ref, outcome) = outcome_of(&envelope).unwrap();
        assert_eq!(step_ref.step, TAKE_PAYMENT);
        assert_eq!(
            outcome,
            StepOutcome::Failed {
                reason: "card_declined: do not honor".to_owned(),
                transient: false
            }
        );

        let flaky = PaymentFailed {
            step: step(TAKE_PAYMENT),
            booking_id: Uuid::now_v7(),
            detail: "gateway timeout".to_owned(),
        };
        let envelope = Envelope::new(flaky, Uuid::now_v7()).to_json().unwrap();
        assert!(matches!(
            outcome_of(&envelope).unwrap().1,
            StepOutcome::Failed {
                transient: true,
                ..
            }
        ));
    }
}
