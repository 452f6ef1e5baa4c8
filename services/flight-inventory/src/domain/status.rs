//! Where a flight is in its day, and how it may move on.
//!
//! The transition table ([`FlightStatus::can_change_to`]):
//!
//! | from \ to   | scheduled | delayed | boarding | departed | arrived |
//! |-------------|-----------|---------|----------|----------|---------|
//! | scheduled   | —         | yes     | yes      |          |         |
//! | delayed     | yes       | —       | yes      |          |         |
//! | boarding    |           | yes     | —        | yes      |         |
//! | departed    |           |         |          | —        | yes     |
//! | arrived     |           |         |          |          | —       |
//! | cancelled   |           |         |          |          |         |
//!
//! - `delayed → scheduled`: the delay is recovered and the flight is back on
//!   time; a status board shows "on time" again.
//! - `boarding → delayed`: boarding is suspended (a technical issue at the
//!   gate); the flight reopens for sale until boarding resumes.
//! - `arrived` is terminal. `cancelled` is terminal and reached only through
//!   the cancel command, which also releases the flight's holds; a status
//!   change can neither reach nor leave it.
//! - Asking for the status a flight already has is not a transition: it
//!   decides no events (idempotent), and is no error.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlightStatus {
    Scheduled,
    Delayed,
    Boarding,
    Departed,
    Arrived,
    Cancelled,
}

impl FlightStatus {
    pub const ALL: [FlightStatus; 6] = [
        FlightStatus::Scheduled,
        FlightStatus::Delayed,
        FlightStatus::Boarding,
        FlightStatus::Departed,
        FlightStatus::Arrived,
        FlightStatus::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FlightStatus::Scheduled => "scheduled",
            FlightStatus::Delayed => "delayed",
            FlightStatus::Boarding => "boarding",
            FlightStatus::Departed => "departed",
            FlightStatus::Arrived => "arrived",
            FlightStatus::Cancelled => "cancelled",
        }
    }

    /// Whether seats can be held and the fare changed: only before boarding
    /// (or while boarding is suspended) and never once cancelled.
    pub const fn is_open_for_sale(self) -> bool {
        matches!(self, FlightStatus::Scheduled | FlightStatus::Delayed)
    }

    /// Whether the flight has left the gate: it can no longer be cancelled,
    /// and its sold seats are flown, not released.
    pub const fn has_departed(self) -> bool {
        matches!(self, FlightStatus::Departed | FlightStatus::Arrived)
    }

    /// The transition table: whether a status change from `self` to `to` is
    /// allowed. Same-status requests are handled by the decider as no-ops.
    pub const fn can_change_to(self, to: FlightStatus) -> bool {
        use FlightStatus::*;
        matches!(
            (self, to),
            (Scheduled, Delayed | Boarding)
                | (Delayed, Scheduled | Boarding)
                | (Boarding, Delayed | Departed)
                | (Departed, Arrived)
        )
    }
}

impl fmt::Display for FlightStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::FlightStatus::*;
    use super::*;

    #[test]
    fn the_transition_table_allows_exactly_the_documented_moves() {
        let allowed = [
            (Scheduled, Delayed),
            (Scheduled, Boarding),
            (Delayed, Scheduled),
            (Delayed, Boarding),
            (Boarding, Delayed),
            (Boarding, Departed),
            (Departed, Arrived),
        ];
        for from in FlightStatus::ALL {
            for to in FlightStatus::ALL {
                assert_eq!(
                    from.can_change_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn statuses_serialize_in_snake_case() {
        for status in FlightStatus::ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(
                serde_json::from_value::<FlightStatus>(json).unwrap(),
                status
            );
        }
    }
}
