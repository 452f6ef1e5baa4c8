//! flight-inventory's messages: the commands it accepts on
//! `inventory.commands` (keyed by flight id), its replies on
//! `booking.saga-replies`, and the public events it publishes on
//! `inventory.events` (keyed by flight id, each with its `version`, the
//! place of the fact in the flight's history). Its own event-sourced events stay private: other
//! services see only the versioned types below.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;
use crate::saga::StepRef;
use crate::Message;

/// Hold `seats` on a flight for a booking until `expires_at`. Idempotent by `hold_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldSeats {
    pub step: StepRef,
    pub flight_id: Uuid,
    pub booking_id: Uuid,
    pub hold_id: Uuid,
    pub seats: u32,
}

impl Message for HoldSeats {
    const MESSAGE_TYPE: &'static str = "inventory.HoldSeats.v1";
}

/// Give a hold's seats back (the compensation of `HoldSeats`). Releasing a
/// hold that is unknown, released or expired succeeds and changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseSeats {
    pub step: StepRef,
    pub flight_id: Uuid,
    pub hold_id: Uuid,
    pub reason: ReleaseReason,
}

/// Why seats go back to inventory; recorded in the flight's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// The booking saga compensated its hold (payment declined, saga timed out…).
    BookingFailed,
    /// A confirmed booking was cancelled, and its sold seats returned.
    BookingCancelled,
    /// The airline cancelled the flight.
    FlightCancelled,
}

impl Message for ReleaseSeats {
    const MESSAGE_TYPE: &'static str = "inventory.ReleaseSeats.v1";
}

/// Turn a hold into sold seats. Idempotent by `hold_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfirmSeats {
    pub step: StepRef,
    pub flight_id: Uuid,
    pub hold_id: Uuid,
}

impl Message for ConfirmSeats {
    const MESSAGE_TYPE: &'static str = "inventory.ConfirmSeats.v1";
}

/// Why flight-inventory refused a command: a business answer, final for
/// that command (retrying it cannot help).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    FlightNotFound,
    SoldOut,
    FlightClosed,
    HoldNotActive,
    Invalid,
}

impl Refusal {
    /// The refusal as it travels (its JSON string).
    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::FlightNotFound => "flight_not_found",
            Refusal::SoldOut => "sold_out",
            Refusal::FlightClosed => "flight_closed",
            Refusal::HoldNotActive => "hold_not_active",
            Refusal::Invalid => "invalid",
        }
    }
}

/// The seats are held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatsHeld {
    pub step: StepRef,
    pub flight_id: Uuid,
    pub hold_id: Uuid,
    pub seats: u32,
    /// The fare per seat, locked for the life of the hold.
    pub fare: Money,
    pub total: Money,
    pub expires_at: DateTime<Utc>,
}

impl Message for SeatsHeld {
    const MESSAGE_TYPE: &'static str = "inventory.SeatsHeld.v1";
}

/// The hold's seats are free again (or were never held).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatsReleased {
    pub step: StepRef,
    pub flight_id: Uuid,
    pub hold_id: Uuid,
}

impl Message for SeatsReleased {
    const MESSAGE_TYPE: &'static str = "inventory.SeatsReleased.v1";
}

/// The hold's seats are sold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatsConfirmed {
    pub step: StepRef,
    pub flight_id: Uuid,
    pub hold_id: Uuid,
}

impl Message for SeatsConfirmed {
    const MESSAGE_TYPE: &'static str = "inventory.SeatsConfirmed.v1";
}

/// A command was refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRefused {
    pub step: StepRef,
    pub flight_id: Uuid,
    pub refusal: Refusal,
    pub detail: String,
}

impl Message for CommandRefused {
    const MESSAGE_TYPE: &'static str = "inventory.CommandRefused.v1";
}

/// The airline cancelled a flight: every booking on it is void. Published
/// once, when the cancellation is recorded; `version` is the position of
/// that record in the flight's history, so a consumer can tell a repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlightCancelled {
    pub flight_id: Uuid,
    pub version: u64,
    /// The airline's words, shown to the travellers.
    pub reason: String,
    pub cancelled_at: DateTime<Utc>,
}

impl Message for FlightCancelled {
    const MESSAGE_TYPE: &'static str = "inventory.FlightCancelled.v1";
}

/// A flight is on sale: its route, times, seats and opening fare per seat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlightScheduled {
    pub flight_id: Uuid,
    /// The position of this record in the flight's history (1 for the first).
    pub version: u64,
    pub flight_number: String,
    /// IATA airport codes.
    pub origin: String,
    pub destination: String,
    pub departure: DateTime<Utc>,
    pub arrival: DateTime<Utc>,
    pub capacity: u32,
    pub fare: Money,
}

impl Message for FlightScheduled {
    const MESSAGE_TYPE: &'static str = "inventory.FlightScheduled.v1";
}

/// The per-seat fare changed. Existing holds keep the fare they locked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FareChanged {
    pub flight_id: Uuid,
    pub version: u64,
    pub from: Money,
    pub to: Money,
}

impl Message for FareChanged {
    const MESSAGE_TYPE: &'static str = "inventory.FareChanged.v1";
}

/// Seats are set aside for a booking until `expires_at`, at a locked fare.
/// (`inventory.SeatsHeld.v1` is the saga's reply; this is the public fact.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldPlaced {
    pub flight_id: Uuid,
    pub version: u64,
    pub hold_id: Uuid,
    pub booking_id: Uuid,
    pub seats: u32,
    /// Per seat.
    pub fare: Money,
    pub total: Money,
    pub expires_at: DateTime<Utc>,
}

impl Message for HoldPlaced {
    const MESSAGE_TYPE: &'static str = "inventory.HoldPlaced.v1";
}

/// A hold's seats — held or already sold — went back on sale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldReleased {
    pub flight_id: Uuid,
    pub version: u64,
    pub hold_id: Uuid,
    pub seats: u32,
    pub reason: ReleaseReason,
}

impl Message for HoldReleased {
    const MESSAGE_TYPE: &'static str = "inventory.HoldReleased.v1";
}

/// A hold lapsed unconfirmed, and its seats went back on sale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldExpired {
    pub flight_id: Uuid,
    pub version: u64,
    pub hold_id: Uuid,
    pub seats: u32,
}

impl Message for HoldExpired {
    const MESSAGE_TYPE: &'static str = "inventory.HoldExpired.v1";
}

/// A hold became a sale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatsSold {
    pub flight_id: Uuid,
    pub version: u64,
    pub hold_id: Uuid,
    pub seats: u32,
}

impl Message for SeatsSold {
    const MESSAGE_TYPE: &'static str = "inventory.SeatsSold.v1";
}

/// Every message type flight-inventory publishes on `inventory.events`.
pub const EVENT_TYPES: [&str; 7] = [
    FlightScheduled::MESSAGE_TYPE,
    FareChanged::MESSAGE_TYPE,
    HoldPlaced::MESSAGE_TYPE,
    HoldReleased::MESSAGE_TYPE,
    HoldExpired::MESSAGE_TYPE,
    SeatsSold::MESSAGE_TYPE,
    FlightCancelled::MESSAGE_TYPE,
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refusal_reads_as_it_travels() {
        for refusal in [
            Refusal::FlightNotFound,
            Refusal::SoldOut,
            Refusal::FlightClosed,
            Refusal::HoldNotActive,
            Refusal::Invalid,
        ] {
            assert_eq!(
                serde_json::to_value(refusal).unwrap(),
                json!(refusal.as_str())
            );
        }
    }

    #[test]
    fn release_reasons_travel_as_the_words_of_earlier_versions() {
        for (reason, text) in [
            (ReleaseReason::BookingFailed, "booking_failed"),
            (ReleaseReason::BookingCancelled, "booking_cancelled"),
            (ReleaseReason::FlightCancelled, "flight_cancelled"),
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), json!(text));
        }
    }

    #[test]
    fn a_release_for_a_reason_nobody_defined_is_refused_not_guessed() {
        let command = json!({
            "step": {"saga_id": Uuid::nil(), "step": "ReleaseSeats", "attempt": 1},
            "flight_id": Uuid::nil(), "hold_id": Uuid::nil(), "reason": "because",
        });
        assert!(serde_json::from_value::<ReleaseSeats>(command).is_err());
    }
}
