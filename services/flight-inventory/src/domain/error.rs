//! Why a command was refused.
//!
//! Every variant is a client-side outcome with an obvious HTTP status (noted
//! on each) and saga reply; none is an internal failure, which is why there
//! is no `Unexpected` here: the domain does no I/O that could fail.

use std::fmt::Display;

use contracts::Currency;
use uuid::Uuid;

use super::flight::HoldState;
use super::status::FlightStatus;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlightError {
    /// 404: no such flight (its stream has no `FlightScheduled`).
    #[error("flight is not scheduled")]
    NotScheduled,
    /// 409: the flight id is taken.
    #[error("flight {flight_id} is already scheduled")]
    AlreadyScheduled { flight_id: Uuid },
    /// 422: the command itself is malformed, whatever the flight's state.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// 409: not enough seats left.
    #[error("{requested} seats requested but only {available} available")]
    SoldOut { requested: u32, available: u32 },
    /// 409: the flight no longer sells seats or changes fares.
    #[error("flight is {status} and closed for sale")]
    FlightClosed { status: FlightStatus },
    /// 409: positions are reported only between departure and arrival.
    #[error("flight is {status}, not in the air")]
    NotAirborne { status: FlightStatus },
    /// 404: no hold with this id on this flight.
    #[error("hold {hold_id} not found")]
    HoldNotFound { hold_id: Uuid },
    /// 409: the hold expired or was released and can no longer be confirmed
    /// or made again; the booking needs a new hold.
    #[error("hold {hold_id} is {state}, not active")]
    HoldNotActive { hold_id: Uuid, state: HoldState },
    /// 409 (or 422): the hold id was already used for another booking or
    /// another number of seats; a retry must repeat the original command.
    #[error("hold {hold_id} already exists for another booking or number of seats")]
    HoldMismatch { hold_id: Uuid },
    /// 422: an amount in another currency than the flight's fare.
    #[error("expected an amount in {expected}, got {actual}")]
    CurrencyMismatch {
        expected: Currency,
        actual: Currency,
    },
    /// 409: the status table does not allow this move.
    #[error("flight status cannot change from {from} to {to}")]
    InvalidTransition {
        from: FlightStatus,
        to: FlightStatus,
    },
}

impl FlightError {
    pub(crate) fn invalid(field: &'static str, reason: impl Display) -> Self {
        FlightError::Invalid {
            field,
            reason: reason.to_string(),
        }
    }
}
