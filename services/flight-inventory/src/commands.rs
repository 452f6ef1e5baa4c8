//! Seat commands over Kafka (`inventory.commands`, keyed by flight id), the
//! saga's way of changing inventory. Each is applied in the consumer's
//! transaction — inbox row, flight events, their outbox messages and the
//! reply commit together — and answered on `booking.saga-replies`.
//!
//! A refusal (sold out, flight closed, hold no longer active) is an answer,
//! not a failure: it commits with its reply and the saga compensates. Only
//! unexpected failures (the database) are retried and, in the end, parked.

use chrono::{TimeDelta, Utc};
use contracts::inventory::{
    CommandRefused, ConfirmSeats, HoldSeats, Refusal, ReleaseSeats, SeatsConfirmed, SeatsHeld,
    SeatsReleased,
};
use contracts::saga::StepRef;
use contracts::{topics, Envelope, Message};
use futures::future::BoxFuture;
use messaging::{HandlerError, Incoming, MessageHandler};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::decide;
use crate::domain::error::FlightError;
use crate::domain::events::ReleaseReason;
use crate::store::{CommandError, FlightStore};

/// The consumer's name: its consumer group and its inbox key.
pub const CONSUMER: &str = "flight-inventory.seat-commands";

#[derive(Debug, Clone)]
pub struct SeatCommands {
    pub store: FlightStore,
    pub hold_ttl: TimeDelta,
}

impl MessageHandler for SeatCommands {
    fn message_types(&self) -> &[&'static str] {
        &[
            HoldSeats::MESSAGE_TYPE,
            ReleaseSeats::MESSAGE_TYPE,
            ConfirmSeats::MESSAGE_TYPE,
        ]
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        message: &'a Incoming,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let envelope = &message.envelope;
            match envelope.message_type.as_str() {
                HoldSeats::MESSAGE_TYPE => {
                    let command = envelope.decode::<HoldSeats>()?.payload;
                    self.hold(conn, envelope, command).await
                }
                ReleaseSeats::MESSAGE_TYPE => {
                    let command = envelope.decode::<ReleaseSeats>()?.payload;
                    self.release(conn, envelope, command).await
                }
                ConfirmSeats::MESSAGE_TYPE => {
                    let command = envelope.decode::<ConfirmSeats>()?.payload;
                    self.confirm(conn, envelope, command).await
                }
                other => Err(HandlerError::Permanent(anyhow::anyhow!(
                    "unexpected message type {other}"
                ))),
            }
        })
    }
}

impl SeatCommands {
    async fn hold(
        &self,
        conn: &mut PgConnection,
        cause: &Envelope,
        command: HoldSeats,
    ) -> Result<(), HandlerError> {
        let hold = decide::HoldSeats {
            hold_id: command.hold_id,
            booking_id: command.booking_id,
            seats: command.seats,
            hold_ttl: self.hold_ttl,
        };
        let now = Utc::now();
        let decided = self
            .store
            .decide_in(conn, command.flight_id, Some(cause), |flight| {
                Ok((flight.hold_seats(hold, now)?, ()))
            })
            .await;
        match decided {
            Ok(decided) => {
                // A retried command decides nothing new; its reply repeats the original's.
                let Some(held) = decided.flight.hold(command.hold_id) else {
                    return Err(HandlerError::Transient(anyhow::anyhow!(
                        "hold {} missing after it was decided",
                        command.hold_id
                    )));
                };
                let reply = SeatsHeld {
                    step: command.step.clone(),
                    flight_id: command.flight_id,
                    hold_id: command.hold_id,
                    seats: held.seats,
                    fare: held.fare,
                    total: held.total,
                    expires_at: held.expires_at,
                };
                send_reply(conn, cause, &command.step, reply).await
            }
            Err(error) => {
                self.refuse(conn, cause, command.step, command.flight_id, error)
                    .await
            }
        }
    }

    async fn release(
        &self,
        conn: &mut PgConnection,
        cause: &Envelope,
        command: ReleaseSeats,
    ) -> Result<(), HandlerError> {
        let reason = release_reason(&command.reason);
        let decided = self
            .store
            .decide_in(conn, command.flight_id, Some(cause), |flight| {
                // Nothing to release on a flight that does not exist: the compensation is done.
                if flight.scheduled().is_none() {
                    return Ok((Vec::new(), ()));
                }
                Ok((flight.release_seats(command.hold_id, reason)?, ()))
            })
            .await;
        match decided {
            Ok(_) => {
                let reply = SeatsReleased {
                    step: command.step.clone(),
                    flight_id: command.flight_id,
                    hold_id: command.hold_id,
                };
                send_reply(conn, cause, &command.step, reply).await
            }
            Err(error) => {
                self.refuse(conn, cause, command.step, command.flight_id, error)
                    .await
            }
        }
    }

    async fn confirm(
        &self,
        conn: &mut PgConnection,
        cause: &Envelope,
        command: ConfirmSeats,
    ) -> Result<(), HandlerError> {
        let now = Utc::now();
        let decided = self
            .store
            .decide_in(conn, command.flight_id, Some(cause), |flight| {
                Ok((flight.confirm_seats(command.hold_id, now)?, ()))
            })
            .await;
        match decided {
            Ok(_) => {
                let reply = SeatsConfirmed {
                    step: command.step.clone(),
                    flight_id: command.flight_id,
                    hold_id: command.hold_id,
                };
                send_reply(conn, cause, &command.step, reply).await
            }
            Err(error) => {
                self.refuse(conn, cause, command.step, command.flight_id, error)
                    .await
            }
        }
    }

    async fn refuse(
        &self,
        conn: &mut PgConnection,
        cause: &Envelope,
        step: StepRef,
        flight_id: Uuid,
        error: CommandError,
    ) -> Result<(), HandlerError> {
        let refusal = match error {
            CommandError::Unexpected(error) => return Err(HandlerError::Transient(error)),
            CommandError::Refused(refusal) => refusal,
        };
        tracing::info!(%flight_id, step = step.step, refusal = %refusal, "seat command refused");
        let reply = CommandRefused {
            step: step.clone(),
            flight_id,
            refusal: refusal_of(&refusal),
            detail: refusal.to_string(),
        };
        send_reply(conn, cause, &step, reply).await
    }
}

/// How a domain refusal reads to the saga.
fn refusal_of(error: &FlightError) -> Refusal {
    match error {
        FlightError::NotScheduled => Refusal::FlightNotFound,
        FlightError::SoldOut { .. } => Refusal::SoldOut,
        FlightError::FlightClosed { .. }
        | FlightError::NotAirborne { .. }
        | FlightError::InvalidTransition { .. } => Refusal::FlightClosed,
        FlightError::HoldNotActive { .. } | FlightError::HoldNotFound { .. } => {
            Refusal::HoldNotActive
        }
        FlightError::AlreadyScheduled { .. }
        | FlightError::Invalid { .. }
        | FlightError::HoldMismatch { .. }
        | FlightError::CurrencyMismatch { .. } => Refusal::Invalid,
    }
}

/// The contract carries the reason as text; the domain knows three.
fn release_reason(reason: &str) -> ReleaseReason {
    match reason {
        "booking_cancelled" => ReleaseReason::BookingCancelled,
        "flight_cancelled" => ReleaseReason::FlightCancelled,
        _ => ReleaseReason::BookingFailed,
    }
}

async fn send_reply<P: Message>(
    conn: &mut PgConnection,
    cause: &Envelope,
    step: &StepRef,
    reply: P,
) -> Result<(), HandlerError> {
    let envelope = Envelope::caused_by(reply, cause);
    messaging::enqueue(
        conn,
        topics::SAGA_REPLIES,
        &step.saga_id.to_string(),
        &envelope,
    )
    .await?;
    Ok(())
}
