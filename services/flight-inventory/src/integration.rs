//! The public events flight-inventory publishes on `inventory.events`.
//!
//! Its own events ([`FlightEvent`]) are the event store's private record and
//! may change with the aggregate; other services (booking, the data lake)
//! see only the versioned contracts of [`contracts::inventory`], written to
//! the outbox in the transaction that appended the events they stand for.

use chrono::Utc;
use contracts::inventory::{
    FareChanged, FlightCancelled, FlightScheduled, HoldExpired, HoldPlaced, HoldReleased, SeatsSold,
};
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
            PublicEvent::FlightScheduled(event) => {
                send(conn, &key, event, flight_id, cause).await?
            }
            PublicEvent::FareChanged(event) => send(conn, &key, event, flight_id, cause).await?,
            PublicEvent::HoldPlaced(event) => send(conn, &key, event, flight_id, cause).await?,
            PublicEvent::HoldReleased(event) => send(conn, &key, event, flight_id, cause).await?,
            PublicEvent::HoldExpired(event) => send(conn, &key, event, flight_id, cause).await?,
            PublicEvent::SeatsSold(event) => send(conn, &key, event, flight_id, cause).await?,
            PublicEvent::FlightCancelled(event) => {
                send(conn, &key, event, flight_id, cause).await?
            }
        }
    }
    Ok(())
}

/// What one of the flight's own events means to other services.
#[derive(Debug, Clone, PartialEq)]
pub enum PublicEvent {
    FlightScheduled(FlightScheduled),
    FareChanged(FareChanged),
    HoldPlaced(HoldPlaced),
    HoldReleased(HoldReleased),
    HoldExpired(HoldExpired),
    SeatsSold(SeatsSold),
    FlightCancelled(FlightCancelled),
}

/// The public event `event` (the flight's `version`th) amounts to, if any.
/// Status changes and positions stay private: they are operations data,
/// served by flight-inventory's own API, and nobody downstream acts on them.
pub fn public_event(flight_id: Uuid, version: u64, event: &FlightEvent) -> Option<PublicEvent> {
    let public = match event {
        FlightEvent::FlightScheduled {
            flight_id: _,
            flight_number,
            origin,
            destination,
            departure,
            arrival,
            capacity,
            fare,
        } => PublicEvent::FlightScheduled(FlightScheduled {
            flight_id,
            version,
            flight_number: flight_number.as_str().to_owned(),
            origin: origin.as_str().to_owned(),
            destination: destination.as_str().to_owned(),
            departure: *departure,
            arrival: *arrival,
            capacity: *capacity,
            fare: *fare,
        }),
        FlightEvent::FareIncreased { from, to } | FlightEvent::FareDecreased { from, to } => {
            PublicEvent::FareChanged(FareChanged {
                flight_id,
                version,
                from: *from,
                to: *to,
            })
        }
        FlightEvent::SeatsHeld {
            hold_id,
            booking_id,
            seats,
            fare,
            total,
            expires_at,
        } => PublicEvent::HoldPlaced(HoldPlaced {
            flight_id,
            version,
            hold_id: *hold_id,
            booking_id: *booking_id,
            seats: *seats,
            fare: *fare,
            total: *total,
            expires_at: *expires_at,
        }),
        FlightEvent::SeatsReleased {
            hold_id,
            seats,
            reason,
        } => PublicEvent::HoldReleased(HoldReleased {
            flight_id,
            version,
            hold_id: *hold_id,
            seats: *seats,
            reason: *reason,
        }),
        FlightEvent::SeatsConfirmed { hold_id, seats } => PublicEvent::SeatsSold(SeatsSold {
            flight_id,
            version,
            hold_id: *hold_id,
            seats: *seats,
        }),
        FlightEvent::HoldExpired { hold_id, seats } => PublicEvent::HoldExpired(HoldExpired {
            flight_id,
            version,
            hold_id: *hold_id,
            seats: *seats,
        }),
        FlightEvent::FlightCancelled { reason } => PublicEvent::FlightCancelled(FlightCancelled {
            flight_id,
            version,
            reason: reason.clone(),
            cancelled_at: Utc::now(),
        }),
        FlightEvent::FlightStatusChanged { .. } | FlightEvent::PositionReported { .. } => {
            return None
        }
    };
    Some(public)
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
    fn seat_movements_are_published_without_the_private_format() {
        let flight_id = Uuid::now_v7();
        let hold_id = Uuid::now_v7();
        let event = FlightEvent::SeatsReleased {
            hold_id,
            seats: 2,
            reason: ReleaseReason::BookingFailed,
        };
        assert_eq!(
            public_event(flight_id, 3, &event),
            Some(PublicEvent::HoldReleased(HoldReleased {
                flight_id,
                version: 3,
                hold_id,
                seats: 2,
                reason: ReleaseReason::BookingFailed,
            }))
        );
        let sold = FlightEvent::SeatsConfirmed { hold_id, seats: 2 };
        assert_eq!(
            public_event(flight_id, 4, &sold),
            Some(PublicEvent::SeatsSold(SeatsSold {
                flight_id,
                version: 4,
                hold_id,
                seats: 2,
            }))
        );
    }

    #[test]
    fn positions_stay_private() {
        let event = FlightEvent::PositionReported {
            latitude: 37.46,
            longitude: 126.44,
            altitude_ft: 35_000,
            reported_at: Utc::now(),
        };
        assert_eq!(public_event(Uuid::now_v7(), 9, &event), None);
    }
}
