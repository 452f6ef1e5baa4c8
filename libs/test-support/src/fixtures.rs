//! Request bodies that more than one crate's tests send, so that they are
//! written once: a service's own tests and the whole-system tests alike.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

/// `POST /flights` (flight-inventory): flight CT123 from Incheon to Narita,
/// departing tomorrow, with `capacity` seats at `fare` USD.
pub fn schedule_body(capacity: u32, fare: &str) -> Value {
    let departure = Utc::now() + Duration::days(1);
    json!({
        "flight_number": "CT123",
        "origin": "ICN",
        "destination": "NRT",
        "departure": departure.to_rfc3339(),
        "arrival": (departure + Duration::minutes(150)).to_rfc3339(),
        "capacity": capacity,
        "fare": { "amount": fare, "currency": "USD" },
    })
}
