//! `GET /flights/{flight_id}/quote?seats=N` on flight-inventory.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Money;

/// The query of a quote request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteQuery {
    pub seats: u32,
}

/// What `seats` seats on a flight cost now; refused with a problem when
/// they cannot be sold (`sold-out`, `flight-closed`, `flight-not-found`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub flight_id: Uuid,
    /// What a booking needs to say which flight it is, without a second call.
    pub flight_number: String,
    pub origin: String,
    pub destination: String,
    pub departure: DateTime<Utc>,
    pub arrival: DateTime<Utc>,
    pub seats: u32,
    /// Per seat.
    pub fare: Money,
    pub total: Money,
    pub available: u32,
    /// The flight's status in flight-inventory's words (`scheduled`,
    /// `delayed`, …); informative only, since a flight that takes no
    /// bookings is refused rather than quoted.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_quote_reads_and_writes_the_same_json() {
        let body = json!({
            "flight_id": "0193a0c2-0000-7000-8000-000000000000",
            "flight_number": "CT101",
            "origin": "ICN",
            "destination": "NRT",
            "departure": "2026-12-01T09:00:00Z",
            "arrival": "2026-12-01T11:30:00Z",
            "seats": 2,
            "fare": {"amount": "99.00", "currency": "USD"},
            "total": {"amount": "198.00", "currency": "USD"},
            "available": 8,
            "status": "scheduled"
        });
        let quote: Quote = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(quote.seats, 2);
        assert_eq!(serde_json::to_value(&quote).unwrap(), body);
    }
}
