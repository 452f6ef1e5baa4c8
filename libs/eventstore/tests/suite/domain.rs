//! A small flight aggregate for the tests: seats scheduled, held, released.

use eventstore::Aggregate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flight {
    pub capacity: u32,
    pub held: u32,
    pub holds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum FlightEvent {
    Scheduled { capacity: u32 },
    SeatsHeld { seats: u32 },
    SeatsReleased { seats: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoldError {
    #[error("only {available} seats left")]
    SoldOut { available: u32 },
}

impl Aggregate for Flight {
    type Event = FlightEvent;
    const SCHEMA_VERSION: u32 = 1;

    fn event_type(event: &FlightEvent) -> &'static str {
        match event {
            FlightEvent::Scheduled { .. } => "Scheduled",
            FlightEvent::SeatsHeld { .. } => "SeatsHeld",
            FlightEvent::SeatsReleased { .. } => "SeatsReleased",
        }
    }

    fn apply(&mut self, event: &FlightEvent) {
        match event {
            FlightEvent::Scheduled { capacity } => self.capacity = *capacity,
            FlightEvent::SeatsHeld { seats } => {
                self.held += seats;
                self.holds += 1;
            }
            FlightEvent::SeatsReleased { seats } => self.held = self.held.saturating_sub(*seats),
        }
    }
}

impl Flight {
    /// The decision of the "hold seats" command.
    pub fn hold(&self, seats: u32) -> Result<Vec<FlightEvent>, HoldError> {
        let available = self.capacity - self.held;
        if seats > available {
            return Err(HoldError::SoldOut { available });
        }
        Ok(vec![FlightEvent::SeatsHeld { seats }])
    }
}
