//! booking's public events on `booking.events`, keyed by booking id: what
//! became of each booking, in the words an analyst uses. Each event carries
//! the trip (flight, route, seats) and the price, so nobody needs booking's
//! tables — or flight-inventory's — to read it. Never a card, never a
//! passenger's name or contact: the customer is its opaque id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;
use crate::Message;

/// What was booked: the same in every booking event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookedTrip {
    pub flight_id: Uuid,
    pub flight_number: String,
    /// IATA airport codes.
    pub origin: String,
    pub destination: String,
    pub departure: DateTime<Utc>,
    pub seats: u32,
}

/// A customer asked for a booking; its saga starts. `total` is the quoted price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingCreated {
    pub booking_id: Uuid,
    /// Opaque: the id the customer's token names.
    pub customer_id: String,
    #[serde(flatten)]
    pub trip: BookedTrip,
    pub total: Money,
    pub created_at: DateTime<Utc>,
}

impl Message for BookingCreated {
    const MESSAGE_TYPE: &'static str = "booking.BookingCreated.v1";
}

/// The booking is sold: seats held, payment taken, booking confirmed (the
/// saga's pivot). `total` is what was charged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingConfirmed {
    pub booking_id: Uuid,
    pub customer_id: String,
    #[serde(flatten)]
    pub trip: BookedTrip,
    pub total: Money,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: DateTime<Utc>,
}

impl Message for BookingConfirmed {
    const MESSAGE_TYPE: &'static str = "booking.BookingConfirmed.v1";
}

/// The booking could not be made and everything it did is undone (the
/// saga is compensated): seats released, any payment refunded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingFailed {
    pub booking_id: Uuid,
    pub customer_id: String,
    #[serde(flatten)]
    pub trip: BookedTrip,
    /// The price quoted; nothing of it was kept.
    pub total: Money,
    /// Why the saga turned around (the failing step's words).
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub failed_at: DateTime<Utc>,
}

impl Message for BookingFailed {
    const MESSAGE_TYPE: &'static str = "booking.BookingFailed.v1";
}

/// Who cancelled a booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelledBy {
    Customer,
    /// The airline cancelled the flight.
    Airline,
    /// An operator compensated the booking.
    Operator,
}

impl CancelledBy {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Airline => "airline",
            Self::Operator => "operator",
        }
    }
}

/// A booking was cancelled, before or after it was confirmed, and
/// everything it did is undone (seats released, payment refunded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingCancelled {
    pub booking_id: Uuid,
    pub customer_id: String,
    #[serde(flatten)]
    pub trip: BookedTrip,
    pub total: Money,
    pub cancelled_by: CancelledBy,
    /// The reason the customer reads.
    pub reason: String,
    /// It had been sold before it was cancelled.
    pub was_confirmed: bool,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: DateTime<Utc>,
}

impl Message for BookingCancelled {
    const MESSAGE_TYPE: &'static str = "booking.BookingCancelled.v1";
}

/// Every message type booking publishes on `booking.events`.
pub const EVENT_TYPES: [&str; 4] = [
    BookingCreated::MESSAGE_TYPE,
    BookingConfirmed::MESSAGE_TYPE,
    BookingFailed::MESSAGE_TYPE,
    BookingCancelled::MESSAGE_TYPE,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use serde_json::json;

    #[test]
    fn a_booking_event_carries_its_trip_flat_beside_the_booking() {
        let booking_id = Uuid::from_u128(1);
        let flight_id = Uuid::from_u128(2);
        let at = DateTime::parse_from_rfc3339("2030-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let created = BookingCreated {
            booking_id,
            customer_id: "cust-42".to_owned(),
            trip: BookedTrip {
                flight_id,
                flight_number: "CT123".to_owned(),
                origin: "ICN".to_owned(),
                destination: "NRT".to_owned(),
                departure: at,
                seats: 2,
            },
            total: Money::parse("398", Currency::Usd).unwrap(),
            created_at: at,
        };
        let wire = serde_json::to_value(&created).unwrap();
        assert_eq!(
            wire,
            json!({
                "booking_id": booking_id, "customer_id": "cust-42",
                "flight_id": flight_id, "flight_number": "CT123",
                "origin": "ICN", "destination": "NRT",
                "departure": "2030-05-01T10:00:00Z", "seats": 2,
                "total": {"amount": "398.00", "currency": "USD"},
                "created_at": "2030-05-01T10:00:00Z",
            })
        );
        assert_eq!(
            serde_json::from_value::<BookingCreated>(wire).unwrap(),
            created
        );
    }
}
