//! flight-inventory's messages: the commands it accepts on
//! `inventory.commands` (keyed by flight id), its replies on
//! `booking.saga-replies`, and the public events it publishes on
//! `inventory.events`. Its own event-sourced events stay private: other
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
