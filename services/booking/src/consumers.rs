//! What booking consumes: the participants' replies (`booking.saga-replies`),
//! which move the sagas, and flight-inventory's events (`inventory.events`),
//! of which a flight cancelled by the airline cancels every live booking on it.
//! Both apply in the consumer's transaction: inbox row, slip, booking and the
//! commands they cause commit together.

use chrono::Utc;
use contracts::inventory::FlightEventRecorded;
use contracts::Message;
use futures::future::BoxFuture;
use messaging::{HandlerError, Incoming, MessageHandler};
use saga::{Orchestrator, Reply, ReplyOutcome, SagaError};
use sqlx::PgConnection;

use crate::db;
use crate::steps::{self, BookingSteps, Canceller, SagaSettings};

pub const REPLIES_CONSUMER: &str = "booking.saga-replies";
pub const FLIGHT_EVENTS_CONSUMER: &str = "booking.flight-events";

#[derive(Debug, Clone)]
pub struct SagaReplies {
    pub orchestrator: Orchestrator<BookingSteps>,
}

impl MessageHandler for SagaReplies {
    fn message_types(&self) -> &[&'static str] {
        &steps::REPLY_TYPES
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        message: &'a Incoming,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let (step, outcome) =
                steps::outcome_of(&message.envelope).map_err(HandlerError::Permanent)?;
            let reply = Reply {
                step: step.step,
                attempt: step.attempt,
                outcome,
            };
            match self
                .orchestrator
                .reply(conn, step.saga_id, reply, Utc::now())
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
        })
    }
}

#[derive(Debug, Clone)]
pub struct FlightEvents {
    pub orchestrator: Orchestrator<BookingSteps>,
    pub saga: SagaSettings,
}

impl MessageHandler for FlightEvents {
    fn message_types(&self) -> &[&'static str] {
        &[FlightEventRecorded::MESSAGE_TYPE]
    }

    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        message: &'a Incoming,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let recorded = message.envelope.decode::<FlightEventRecorded>()?.payload;
            if recorded.event.get("type").and_then(|t| t.as_str()) != Some("FlightCancelled") {
                return Ok(());
            }
            let detail = recorded
                .event
                .pointer("/data/reason")
                .and_then(|reason| reason.as_str())
                .unwrap_or_default();
            let reason = steps::cancellation_reason(Canceller::Airline, detail);
            let bookings = db::live_on_flight(conn, recorded.flight_id).await?;
            tracing::info!(flight_id = %recorded.flight_id, bookings = bookings.len(), "flight cancelled; cancelling its bookings");
            for booking_id in bookings {
                let then = vec![self.saga.notification_step(steps::SEND_CANCELLATION)];
                match self
                    .orchestrator
                    .cancel(conn, booking_id, &reason, then, Utc::now())
                    .await
                {
                    Ok(_) => {}
                    // Already undoing (its payment failed, say): nothing more to do.
                    Err(SagaError::Refused(_)) => {}
                    Err(SagaError::NotFound(id)) => {
                        tracing::warn!(booking_id = %id, "booking without a saga");
                    }
                    Err(SagaError::Unexpected(error)) => {
                        return Err(HandlerError::Transient(error))
                    }
                }
            }
            Ok(())
        })
    }
}
