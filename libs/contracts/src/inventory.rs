//! flight-inventory's messages: the commands it accepts on
//! `inventory.commands` (keyed by flight id), its replies on
//! `booking.saga-replies`, and its domain events on `inventory.events`.

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
    pub reason: String,
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

/// One event of a flight's stream, as published on `inventory.events`:
/// `event` is the event's own JSON (`{"type": "SeatsHeld", "data": {…}}`),
/// `version` its position in the flight's stream, so consumers can detect
/// gaps and ignore what they have already seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlightEventRecorded {
    pub flight_id: Uuid,
    pub version: u64,
    pub recorded_at: DateTime<Utc>,
    pub event: serde_json::Value,
}

impl Message for FlightEventRecorded {
    const MESSAGE_TYPE: &'static str = "inventory.FlightEventRecorded.v1";
}
