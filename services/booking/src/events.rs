//! booking's public events on `booking.events`, keyed by booking id: a
//! booking was created, confirmed, failed or cancelled. Each is written to
//! the outbox in the transaction that records the change — the booking's
//! insert, or the saga transition that moves its status — so the status and
//! its event commit together, once per change.
//!
//! They carry the trip and the price but nothing personal: no passenger
//! names, no contact, no card; the customer is its opaque id.

use anyhow::Context;
use contracts::booking::{
    BookedTrip, BookingCancelled, BookingConfirmed, BookingCreated, BookingFailed, CancelledBy,
};
use contracts::notification::FlightSummary;
use contracts::{topics, Message, Money};
use saga::RoutingSlip;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::db::{Booking, BookingStatus};
use crate::steps::cancellation::{cancelled_by, Canceller};
use crate::steps::BookingVariables;

/// `BookingCreated`, in the transaction that inserts `booking`.
pub async fn publish_created(conn: &mut PgConnection, booking: &Booking) -> anyhow::Result<()> {
    let event = BookingCreated {
        booking_id: booking.booking_id,
        customer_id: booking.customer_id.clone(),
        trip: trip(&booking.flight, booking.seats),
        total: booking.total,
        created_at: booking.created_at,
    };
    enqueue(conn, booking.booking_id, event).await
}

/// The event for a booking whose status just became `status` through
/// `slip`'s transition, charged `total`; `Pending` has none (it is
/// `BookingCreated`'s).
pub async fn publish_status_change(
    conn: &mut PgConnection,
    slip: &RoutingSlip,
    variables: &BookingVariables,
    status: BookingStatus,
    total: Money,
) -> anyhow::Result<()> {
    let booking_id = variables.booking_id;
    let customer_id = variables.customer_id.clone();
    let trip = trip(&variables.flight, variables.seats);
    let created_at = slip.created_at;
    let at = slip.updated_at;
    match status {
        BookingStatus::Pending => Ok(()),
        BookingStatus::Confirmed => {
            let event = BookingConfirmed {
                booking_id,
                customer_id,
                trip,
                total,
                created_at,
                confirmed_at: at,
            };
            enqueue(conn, booking_id, event).await
        }
        BookingStatus::Failed => {
            let reason = match &slip.failure_reason {
                Some(reason) => reason.clone(),
                // Every way a saga fails records why; say so if one did not.
                None => "compensated without a recorded reason".to_owned(),
            };
            let event = BookingFailed {
                booking_id,
                customer_id,
                trip,
                total,
                reason,
                created_at,
                failed_at: at,
            };
            enqueue(conn, booking_id, event).await
        }
        BookingStatus::Cancelled => {
            let canceller = cancelled_by(slip)?.with_context(|| {
                format!("booking {booking_id} is cancelled but its saga names no canceller")
            })?;
            let event = BookingCancelled {
                booking_id,
                customer_id,
                trip,
                total,
                cancelled_by: match canceller {
                    Canceller::Customer => CancelledBy::Customer,
                    Canceller::Airline => CancelledBy::Airline,
                    Canceller::Operator => CancelledBy::Operator,
                },
                reason: slip.cancellation_reason.clone().unwrap_or_default(),
                was_confirmed: slip.pivoted,
                created_at,
                cancelled_at: at,
            };
            enqueue(conn, booking_id, event).await
        }
    }
}

fn trip(flight: &FlightSummary, seats: u32) -> BookedTrip {
    BookedTrip {
        flight_id: flight.flight_id,
        flight_number: flight.flight_number.clone(),
        origin: flight.origin.clone(),
        destination: flight.destination.clone(),
        departure: flight.departure,
        seats,
    }
}

async fn enqueue<M: Message>(
    conn: &mut PgConnection,
    booking_id: Uuid,
    event: M,
) -> anyhow::Result<()> {
    let key = booking_id.to_string();
    messaging::enqueue_event(conn, topics::BOOKING_EVENTS, &key, booking_id, event).await
}
