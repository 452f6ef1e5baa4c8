//! Who undid a booking, and what follows from it.
//!
//! The slip keeps the reason the customer reads as text; who cancelled is
//! kept beside it as a typed variable, set in the same change, so the
//! compensations act on it without parsing the text.

use contracts::inventory::ReleaseReason;
use saga::{Cancellation, RoutingSlip};
use serde::{Deserialize, Serialize};

/// Who cancelled a booking; it decides the reason inventory records for
/// the released seats and what the customer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Canceller {
    Customer,
    Airline,
    Operator,
}

impl Canceller {
    /// How the customer reads it, before any detail.
    fn reason(self) -> &'static str {
        match self {
            Canceller::Customer => "cancelled by the customer",
            Canceller::Airline => "flight cancelled by the airline",
            Canceller::Operator => "compensated by an operator",
        }
    }
}

const CANCELLED_BY: &str = "cancelled_by";

/// The cancellation `canceller` asks for, with `detail` (their words) if any.
pub fn cancellation(canceller: Canceller, detail: &str) -> Cancellation {
    let reason = if detail.is_empty() {
        canceller.reason().to_owned()
    } else {
        format!("{}: {detail}", canceller.reason())
    };
    let mut variables = serde_json::Map::new();
    variables.insert(
        CANCELLED_BY.to_owned(),
        serde_json::Value::from(match canceller {
            Canceller::Customer => "customer",
            Canceller::Airline => "airline",
            Canceller::Operator => "operator",
        }),
    );
    Cancellation { reason, variables }
}

/// Who cancelled the saga; `None` if nobody did (it is undone because it failed).
pub fn cancelled_by(slip: &RoutingSlip) -> anyhow::Result<Option<Canceller>> {
    if let Some(canceller) = slip.variables.get(CANCELLED_BY) {
        return Ok(Some(Canceller::deserialize(canceller)?));
    }
    // Slips cancelled before `cancelled_by` was recorded carry only the
    // text, which began with the canceller's words: read it once, here.
    Ok(slip.cancellation_reason.as_deref().map(|reason| {
        [Canceller::Airline, Canceller::Operator]
            .into_iter()
            .find(|canceller| reason.starts_with(canceller.reason()))
            .unwrap_or(Canceller::Customer)
    }))
}

/// The reason inventory records for released seats.
pub fn release_reason(slip: &RoutingSlip) -> anyhow::Result<ReleaseReason> {
    Ok(match cancelled_by(slip)? {
        None => ReleaseReason::BookingFailed,
        Some(Canceller::Airline) => ReleaseReason::FlightCancelled,
        Some(Canceller::Customer | Canceller::Operator) => ReleaseReason::BookingCancelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::variables::tests::{slip, variables};
    use chrono::Utc;

    fn cancel(slip: &mut RoutingSlip, canceller: Canceller, detail: &str) {
        let cancellation = cancellation(canceller, detail);
        slip.cancel(cancellation.reason, vec![], Utc::now())
            .unwrap();
        slip.variables.extend(cancellation.variables);
    }

    #[test]
    fn released_seats_say_why() {
        let mut failed = slip(&variables(true, 0));
        assert_eq!(
            release_reason(&failed).unwrap(),
            ReleaseReason::BookingFailed
        );
        failed.start(Utc::now());

        let mut by_airline = slip(&variables(true, 0));
        by_airline.start(Utc::now());
        cancel(&mut by_airline, Canceller::Airline, "weather");
        assert_eq!(
            by_airline.cancellation_reason.as_deref(),
            Some("flight cancelled by the airline: weather")
        );
        assert_eq!(
            release_reason(&by_airline).unwrap(),
            ReleaseReason::FlightCancelled
        );

        let mut by_customer = slip(&variables(true, 0));
        by_customer.start(Utc::now());
        cancel(&mut by_customer, Canceller::Customer, "");
        assert_eq!(
            release_reason(&by_customer).unwrap(),
            ReleaseReason::BookingCancelled
        );
    }

    #[test]
    fn a_canceller_is_recorded_as_it_serializes() {
        for canceller in [Canceller::Customer, Canceller::Airline, Canceller::Operator] {
            let recorded = &cancellation(canceller, "").variables[CANCELLED_BY];
            assert_eq!(recorded, &serde_json::to_value(canceller).unwrap());
        }
    }

    #[test]
    fn a_slip_cancelled_before_the_canceller_was_recorded_still_says_who() {
        let mut legacy = slip(&variables(true, 0));
        legacy.start(Utc::now());
        legacy
            .cancel("flight cancelled by the airline: ash", vec![], Utc::now())
            .unwrap();
        assert_eq!(cancelled_by(&legacy).unwrap(), Some(Canceller::Airline));
        assert_eq!(
            release_reason(&legacy).unwrap(),
            ReleaseReason::FlightCancelled
        );
    }
}
