//! A realistic sample network for the demo: 50 routes between 20 airports,
//! each flown daily for 30 days, with mixed aircraft sizes and fares.
//! Deterministic, so every demo has the same timetable (shifted to start
//! tomorrow), and skipped when any flight exists already.

use chrono::{Days, NaiveTime, TimeDelta, Utc};
use contracts::{Currency, Money};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::decide::ScheduleFlight;
use crate::store::FlightStore;

const AIRPORTS: [&str; 20] = [
    "ICN", "NRT", "HND", "KIX", "PVG", "PEK", "HKG", "TPE", "SIN", "BKK", "SYD", "LAX", "SFO",
    "SEA", "JFK", "ORD", "LHR", "CDG", "FRA", "AMS",
];
const CAPACITIES: [u32; 5] = [120, 150, 180, 220, 300];
const ROUTES: usize = 50;
const DAYS: u64 = 30;

/// Schedules the sample network unless the store has flights; returns how many it scheduled.
pub async fn seed(store: &FlightStore, pool: &PgPool) -> anyhow::Result<usize> {
    let existing: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'FlightScheduled'")
            .fetch_one(pool)
            .await?;
    if existing > 0 {
        tracing::info!(
            existing,
            "flights exist already; not seeding the sample network"
        );
        return Ok(0);
    }
    let tomorrow = Utc::now().date_naive() + Days::new(1);
    let mut scheduled = 0;
    for route in 0..ROUTES {
        // Spread routes over airport pairs without repeating one.
        let origin = AIRPORTS[route % AIRPORTS.len()];
        let destination = AIRPORTS[(route * 7 + 3 + route / AIRPORTS.len()) % AIRPORTS.len()];
        let destination = if destination == origin {
            AIRPORTS[(route + 1) % AIRPORTS.len()]
        } else {
            destination
        };
        let capacity = CAPACITIES[route % CAPACITIES.len()];
        let fare = Money::new(
            Decimal::new(8_900 + (route as i64 * 3_700) % 60_000, 2),
            Currency::Usd,
        )
        .map_err(|error| anyhow::anyhow!("sample fare: {error}"))?;
        let departs_at =
            NaiveTime::from_hms_opt(6 + (route % 16) as u32, (route % 4) as u32 * 15, 0)
                .ok_or_else(|| anyhow::anyhow!("sample departure time"))?;
        let duration = TimeDelta::minutes(75 + (route as i64 * 37) % 600);
        for day in 0..DAYS {
            let departure = (tomorrow + Days::new(day)).and_time(departs_at).and_utc();
            let command = ScheduleFlight {
                flight_id: Uuid::now_v7(),
                flight_number: format!("CT{}", 100 + route),
                origin: origin.to_owned(),
                destination: destination.to_owned(),
                departure,
                arrival: departure + duration,
                capacity,
                fare,
            };
            let now = Utc::now();
            store
                .decide(command.flight_id, |flight| {
                    Ok((flight.schedule(command.clone(), now)?, ()))
                })
                .await
                .map_err(|error| {
                    anyhow::anyhow!(
                        "schedule {} on {}: {error}",
                        command.flight_number,
                        departure.date_naive()
                    )
                })?;
            scheduled += 1;
        }
    }
    tracing::info!(scheduled, "sample network scheduled");
    Ok(scheduled)
}
