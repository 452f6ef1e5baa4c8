//! The facts of a flight's life, in the past tense.
//!
//! These are stored forever and read by code that has not been written yet,
//! so their JSON is a contract: `{"type": "SeatsHeld", "data": {...}}`, with
//! the type names below and the field names as written. Renaming a variant
//! or a field is a breaking change; add a new event instead (the tests pin
//! the shape).
//!
//! A fare change is a `FareIncreased` or a `FareDecreased`, never a
//! "FareChanged": the history says which way the price moved, as a pricing
//! analyst would ask it.

use chrono::{DateTime, Utc};
use contracts::Money;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::status::FlightStatus;
use super::values::{AirportCode, FlightNumber};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum FlightEvent {
    /// The flight exists: its route, times, seats and opening fare.
    FlightScheduled {
        flight_id: Uuid,
        flight_number: FlightNumber,
        origin: AirportCode,
        destination: AirportCode,
        departure: DateTime<Utc>,
        arrival: DateTime<Utc>,
        capacity: u32,
        /// Per seat.
        fare: Money,
    },
    /// The per-seat fare went up. Existing holds keep the fare they locked.
    FareIncreased { from: Money, to: Money },
    /// The per-seat fare went down. Existing holds keep the fare they locked.
    FareDecreased { from: Money, to: Money },
    /// Seats are set aside for a booking until `expires_at`, at a locked fare.
    SeatsHeld {
        hold_id: Uuid,
        booking_id: Uuid,
        seats: u32,
        /// Per seat, locked when the hold was made.
        fare: Money,
        /// `fare × seats`: what the booking will be charged.
        total: Money,
        expires_at: DateTime<Utc>,
    },
    /// A hold, or the seats it sold, went back to inventory.
    SeatsReleased {
        hold_id: Uuid,
        seats: u32,
        reason: ReleaseReason,
    },
    /// A hold became a sale.
    SeatsConfirmed { hold_id: Uuid, seats: u32 },
    /// A hold lapsed unconfirmed, and its seats went back to inventory.
    HoldExpired { hold_id: Uuid, seats: u32 },
    /// The flight moved along its day (see [`FlightStatus`] for the table).
    FlightStatusChanged {
        from: FlightStatus,
        to: FlightStatus,
    },
    /// Where the flight was in the air, in degrees and feet.
    PositionReported {
        latitude: f64,
        longitude: f64,
        altitude_ft: i32,
        reported_at: DateTime<Utc>,
    },
    /// The airline cancelled the flight. Its holds were released just before.
    FlightCancelled { reason: String },
}

impl FlightEvent {
    /// The stable name of the event, as stored in the `type` field.
    pub const fn event_type(&self) -> &'static str {
        match self {
            FlightEvent::FlightScheduled { .. } => "FlightScheduled",
            FlightEvent::FareIncreased { .. } => "FareIncreased",
            FlightEvent::FareDecreased { .. } => "FareDecreased",
            FlightEvent::SeatsHeld { .. } => "SeatsHeld",
            FlightEvent::SeatsReleased { .. } => "SeatsReleased",
            FlightEvent::SeatsConfirmed { .. } => "SeatsConfirmed",
            FlightEvent::HoldExpired { .. } => "HoldExpired",
            FlightEvent::FlightStatusChanged { .. } => "FlightStatusChanged",
            FlightEvent::PositionReported { .. } => "PositionReported",
            FlightEvent::FlightCancelled { .. } => "FlightCancelled",
        }
    }
}

/// Why seats went back to inventory: the saga's reason, as the contract
/// that carries it defines it (the JSON is the same either way).
pub use contracts::inventory::ReleaseReason;

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use contracts::Currency;
    use serde_json::json;

    use super::*;

    fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::Usd).unwrap()
    }

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 5, 1, hour, 0, 0).unwrap()
    }

    /// One of every event, with the JSON it must keep producing.
    fn every_event() -> Vec<(FlightEvent, serde_json::Value)> {
        let flight_id = Uuid::from_u128(1);
        let hold_id = Uuid::from_u128(2);
        let booking_id = Uuid::from_u128(3);
        vec![
            (
                FlightEvent::FlightScheduled {
                    flight_id,
                    flight_number: FlightNumber::parse("CT123").unwrap(),
                    origin: AirportCode::parse("ICN").unwrap(),
                    destination: AirportCode::parse("JFK").unwrap(),
                    departure: at(10),
                    arrival: at(23),
                    capacity: 180,
                    fare: usd("199"),
                },
                json!({"type": "FlightScheduled", "data": {
                    "flight_id": flight_id, "flight_number": "CT123",
                    "origin": "ICN", "destination": "JFK",
                    "departure": "2030-05-01T10:00:00Z", "arrival": "2030-05-01T23:00:00Z",
                    "capacity": 180, "fare": {"amount": "199.00", "currency": "USD"}
                }}),
            ),
            (
                FlightEvent::FareIncreased {
                    from: usd("199"),
                    to: usd("219.5"),
                },
                json!({"type": "FareIncreased", "data": {
                    "from": {"amount": "199.00", "currency": "USD"},
                    "to": {"amount": "219.50", "currency": "USD"}
                }}),
            ),
            (
                FlightEvent::FareDecreased {
                    from: usd("219.5"),
                    to: usd("150"),
                },
                json!({"type": "FareDecreased", "data": {
                    "from": {"amount": "219.50", "currency": "USD"},
                    "to": {"amount": "150.00", "currency": "USD"}
                }}),
            ),
            (
                FlightEvent::SeatsHeld {
                    hold_id,
                    booking_id,
                    seats: 2,
                    fare: usd("150"),
                    total: usd("300"),
                    expires_at: at(1),
                },
                json!({"type": "SeatsHeld", "data": {
                    "hold_id": hold_id, "booking_id": booking_id, "seats": 2,
                    "fare": {"amount": "150.00", "currency": "USD"},
                    "total": {"amount": "300.00", "currency": "USD"},
                    "expires_at": "2030-05-01T01:00:00Z"
                }}),
            ),
            (
                FlightEvent::SeatsReleased {
                    hold_id,
                    seats: 2,
                    reason: ReleaseReason::BookingFailed,
                },
                json!({"type": "SeatsReleased", "data": {
                    "hold_id": hold_id, "seats": 2, "reason": "booking_failed"
                }}),
            ),
            (
                FlightEvent::SeatsConfirmed { hold_id, seats: 2 },
                json!({"type": "SeatsConfirmed", "data": {"hold_id": hold_id, "seats": 2}}),
            ),
            (
                FlightEvent::HoldExpired { hold_id, seats: 2 },
                json!({"type": "HoldExpired", "data": {"hold_id": hold_id, "seats": 2}}),
            ),
            (
                FlightEvent::FlightStatusChanged {
                    from: FlightStatus::Scheduled,
                    to: FlightStatus::Delayed,
                },
                json!({"type": "FlightStatusChanged", "data": {
                    "from": "scheduled", "to": "delayed"
                }}),
            ),
            (
                FlightEvent::PositionReported {
                    latitude: 37.4602,
                    longitude: 126.4407,
                    altitude_ft: 35_000,
                    reported_at: at(12),
                },
                json!({"type": "PositionReported", "data": {
                    "latitude": 37.4602, "longitude": 126.4407, "altitude_ft": 35000,
                    "reported_at": "2030-05-01T12:00:00Z"
                }}),
            ),
            (
                FlightEvent::FlightCancelled {
                    reason: "typhoon".to_owned(),
                },
                json!({"type": "FlightCancelled", "data": {"reason": "typhoon"}}),
            ),
        ]
    }

    #[test]
    fn every_event_keeps_its_json_shape() {
        for (event, expected) in every_event() {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json, expected, "{}", event.event_type());
            assert_eq!(json["type"], event.event_type());
            let back: FlightEvent = serde_json::from_value(json).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn events_with_invalid_values_do_not_deserialize() {
        let mut json = every_event()[0].1.clone();
        json["data"]["origin"] = json!("icn");
        assert!(serde_json::from_value::<FlightEvent>(json).is_err());

        let mut json = every_event()[1].1.clone();
        json["data"]["to"]["amount"] = json!(219.5);
        assert!(serde_json::from_value::<FlightEvent>(json).is_err());

        let unknown = json!({"type": "FareChanged", "data": {}});
        assert!(serde_json::from_value::<FlightEvent>(unknown).is_err());
    }
}
