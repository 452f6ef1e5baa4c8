//! The public events flight-inventory publishes on `inventory.events`.
//!
//! Its own events ([`FlightEvent`]) are the event store's private record and
//! may change with the aggregate; other services (booking, the data lake)
//! see only the versioned contracts of [`contracts::inventory`], written to
//! the outbox in the transaction that appended the events they stand for.

use chrono::Utc;
use contracts::inventory::FlightCancelled;
use contracts::{topics, Envelope, Message};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::events::FlightEvent;

/// Writes the public events for `events`, appended to `flight_id`'s stream
/// after version `decided_on`, to the outbox in `conn`'s transaction, keyed
/// by flight id (per-flight order).
pub async fn publish(
    conn: &mut PgConnection,
    flight_id: Uuid,
    decided_on: u64,
    events: &[FlightEvent],
    cause: Option<&Envelope>,
) -> anyhow::Result<()> {
    let key = flight_id.to_string();
    for (version, event) in (decided_on + 1..).zip(events) {
        let Some(public) = public_event(flight_id, version, event) else {
            continue;
        };
        match public {
            PublicEvent::FlightCancelled(cancelled) => {
                send(conn, &key, cancelled, flight_id, cause).await?;
            }
        }
    }
    Ok(())
}

/// What one of the flight's own events means to other services.
#[derive(Debug, Clone, PartialEq)]
pub enum PublicEvent {
    FlightCancelled(FlightCancelled),
}

/// The public event `event` (the flight's `version`th) amounts to, if any.
pub fn public_event(flight_id: Uuid, version: u64, event: &FlightEvent) -> Option<PublicEvent> {
    match event {
        FlightEvent::FlightCancelled { reason } => {
            Some(PublicEvent::FlightCancelled(FlightCancelled {
                flight_id,
                version,
                reason: reason.clone(),
                cancelled_at: Utc::now(),
            }))
        }
        FlightEvent::FlightScheduled { .. }
        | FlightEvent::FareIncreased { .. }
        | FlightEvent::FareDecreased { .. }
        | FlightEvent::SeatsHeld { .. }
        | FlightEvent::SeatsReleased { .. }
        | FlightEvent::SeatsConfirmed { .. }
        | FlightEvent::HoldExpired { .. }
        | FlightEvent::FlightStatusChanged { .. }
        | FlightEvent::PositionReported { .. } => None,
    }
}

async fn send<M: Message>(
    conn: &mut PgConnection,
    key: &str,
    message: M,
    flight_id: Uuid,
    cause: Option<&Envelope>,
) -> anyhow::Result<()> {
    let envelope = match cause {
        Some(cause) => Envelope::caused_by(message, cause),
        None => Envelope::new(message, flight_id),
    };
    messaging::enqueue(conn, topics::INVENTORY_EVENTS, key, &envelope).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::events::ReleaseReason;

    #[test]
    fn a_cancellation_is_published_with_its_place_in_the_history() {
        let flight_id = Uuid::now_v7();
        let event = FlightEvent::FlightCancelled {
            reason: "volcanic ash".to_owned(),
        };
        let Some(PublicEvent::FlightCancelled(cancelled)) = public_event(flight_id, 7, &event)
        else {
            panic!("a cancellation must be published");
        };
        assert_eq!(cancelled.flight_id, flight_id);
        assert_eq!(cancelled.version, 7);
        assert_eq!(cancelled.reason, "volcanic ash");
    }

    #[test]
    fn seat_movements_stay_private() {
        let event = FlightEvent::SeatsReleased {
            hold_id: Uuid::now_v7(),
            seats: 2,
            reason: ReleaseReason::BookingFailed,
        };
        assert_eq!(public_event(Uuid::now_v7(), 3, &event), None);
    }
}
