//! The load generator's own world: flights it schedules through
//! flight-inventory's admin API and customers it credits with miles, so its
//! traffic never depends on (or disturbs the seats of) anyone else's flights.

use anyhow::{bail, Context};
use chrono::{TimeDelta, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::Targets;

/// Close to flight-inventory's largest allowed capacity (853).
pub const BIG_FLIGHT_CAPACITY: u32 = 800;
/// Small enough that a few bookings sell it out.
pub const SMALL_FLIGHT_CAPACITY: u32 = 2;
pub const SMALL_FLIGHTS: usize = 4;
pub const MILES_CREDITED: i64 = 1_000_000;

#[derive(Debug)]
pub struct World {
    pub run_id: String,
    pub big_flights: Vec<Uuid>,
    pub small_flights: Vec<Uuid>,
    pub customers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Scheduled {
    flight_id: Uuid,
}

/// Enough big flights for `planned_bookings` (at most two seats each, with
/// room to spare), the small ones, and `customers` customers with miles.
pub async fn prepare(
    http: &reqwest::Client,
    targets: &Targets,
    planned_bookings: u64,
    customers: usize,
) -> anyhow::Result<World> {
    let run_id = Uuid::now_v7().simple().to_string()[20..].to_owned();
    // 1.25 seats per booking on average (see mix::passengers_for), plus 20 %.
    let seats_needed = planned_bookings.saturating_mul(3) / 2;
    let big_count = seats_needed
        .div_ceil(u64::from(BIG_FLIGHT_CAPACITY))
        .clamp(4, 400);
    // A flight number per run and flight: a designator plus up to 4 digits.
    let number_base = u64::from_str_radix(&run_id[8..], 16).unwrap_or(0) % 5000;
    let mut big_flights = Vec::new();
    for index in 0..big_count {
        let flight_number = format!("LG{}", 1 + (number_base + index) % 9999);
        big_flights.push(
            schedule_flight(http, targets, &flight_number, index, BIG_FLIGHT_CAPACITY).await?,
        );
    }
    let mut small_flights = Vec::new();
    for index in 0..SMALL_FLIGHTS as u64 {
        let flight_number = format!("LS{}", 1 + (number_base + index) % 9999);
        small_flights.push(
            schedule_flight(http, targets, &flight_number, index, SMALL_FLIGHT_CAPACITY).await?,
        );
    }
    let customers: Vec<String> = (0..customers)
        .map(|index| format!("loadgen-{run_id}-{index}"))
        .collect();
    for customer in &customers {
        credit_miles(http, targets, customer).await?;
    }
    Ok(World {
        run_id,
        big_flights,
        small_flights,
        customers,
    })
}

async fn schedule_flight(
    http: &reqwest::Client,
    targets: &Targets,
    flight_number: &str,
    index: u64,
    capacity: u32,
) -> anyhow::Result<Uuid> {
    // A month out, an hour apart: far from any departure-time rule.
    let departure = Utc::now() + TimeDelta::days(30) + TimeDelta::hours(index as i64 % 500);
    let arrival = departure + TimeDelta::minutes(150);
    let body = json!({
        "flight_number": flight_number,
        "origin": "ICN",
        "destination": "NRT",
        "departure": departure.to_rfc3339(),
        "arrival": arrival.to_rfc3339(),
        "capacity": capacity,
        "fare": {"amount": "199.00", "currency": "USD"},
    });
    let url = format!("{}/flights", targets.inventory_url);
    let response = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let detail = response.text().await.unwrap_or_default();
        bail!("POST {url} answered {status}: {detail}");
    }
    let scheduled: Scheduled = response
        .json()
        .await
        .with_context(|| format!("read the flight POST {url} scheduled"))?;
    Ok(scheduled.flight_id)
}

async fn credit_miles(
    http: &reqwest::Client,
    targets: &Targets,
    customer: &str,
) -> anyhow::Result<()> {
    let url = format!("{}/accounts/{customer}/miles/credits", targets.payment_url);
    let response = http
        .post(&url)
        .header("Idempotency-Key", format!("{customer}-welcome"))
        .json(&json!({"miles": MILES_CREDITED, "reason": "loadgen welcome bonus"}))
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let detail = response.text().await.unwrap_or_default();
        bail!("POST {url} answered {status}: {detail}");
    }
    Ok(())
}

impl World {
    /// The `sequence`-th booking request of the mix: `passengers` travellers
    /// on `flight_id` for one of the world's customers (named after
    /// `tool` when there is none), paid as `scenario` says. loadgen and the
    /// chaos harness send the same bodies.
    pub fn booking_body(
        &self,
        tool: &str,
        scenario: crate::mix::Scenario,
        sequence: u64,
        passengers: usize,
        flight_id: Uuid,
    ) -> serde_json::Value {
        let customer = self
            .customers
            .get((sequence % self.customers.len().max(1) as u64) as usize)
            .cloned()
            .unwrap_or_else(|| format!("{tool}-{}-0", self.run_id));
        let passengers: Vec<serde_json::Value> = (0..passengers)
            .map(|index| json!({"first_name": "Load", "last_name": format!("Tester{index}")}))
            .collect();
        let (email, phone) = crate::mix::contact_for(sequence);
        let mut contact = serde_json::Map::new();
        if email {
            contact.insert("email".to_owned(), json!(format!("{customer}@example.com")));
        }
        if phone {
            contact.insert("phone".to_owned(), json!("+821012345678"));
        }
        json!({
            "customer_id": customer,
            "flight_id": flight_id,
            "passengers": passengers,
            "payment": {
                "card": {"number": scenario.card_number(), "expiry": "12/35", "cvc": crate::mix::CVC},
                "miles": scenario.miles(),
            },
            "contact": contact,
        })
    }
}
