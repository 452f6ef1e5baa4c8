//! A flight cancelled by the airline cancels every live booking on it.
//!
//! flight-inventory publishes `inventory.FlightCancelled.v1` on
//! `inventory.events`; each live booking's saga is cancelled in the
//! consumer's transaction (inbox row, slips, bookings and the compensating
//! commands commit together), then the customer is told.

use chrono::Utc;
use contracts::inventory::FlightCancelled;
use messaging::{Delivery, HandlerError, Handles, Participant};
use saga::{Orchestrator, SagaError};

use crate::db;
use crate::steps::{cancellation, BookingStep, BookingSteps, Canceller, SagaSettings};

/// The consumer's name: its consumer group and its inbox key.
pub const CONSUMER: &str = "booking.flight-events";

#[derive(Debug, Clone)]
pub struct FlightCancellations {
    pub orchestrator: Orchestrator<BookingSteps>,
    pub saga: SagaSettings,
}

impl FlightCancellations {
    pub fn participant(self) -> Participant<Self> {
        Participant::new(self).on::<FlightCancelled>()
    }
}

impl Handles<FlightCancelled> for FlightCancellations {
    async fn handle(
        &self,
        delivery: Delivery<'_>,
        cancelled: FlightCancelled,
    ) -> Result<(), HandlerError> {
        let conn = delivery.conn;
        let bookings = db::live_on_flight(conn, cancelled.flight_id).await?;
        tracing::info!(flight_id = %cancelled.flight_id, bookings = bookings.len(), "flight cancelled; cancelling its bookings");
        for booking_id in bookings {
            let then = vec![self.saga.notification_step(BookingStep::SendCancellation)];
            let cancellation = cancellation(Canceller::Airline, &cancelled.reason);
            match self
                .orchestrator
                .cancel(conn, booking_id, cancellation, then, Utc::now())
                .await
            {
                Ok(_) => {}
                // Already undoing (its payment failed, say): nothing more to do.
                Err(SagaError::Refused(_)) => {}
                Err(SagaError::NotFound(id)) => {
                    tracing::warn!(booking_id = %id, "booking without a saga");
                }
                Err(SagaError::Unexpected(error)) => return Err(HandlerError::Transient(error)),
            }
        }
        Ok(())
    }
}
