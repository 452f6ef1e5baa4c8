//! Seat holds expire on their own: if a saga dies, its seats come back.
//!
//! The sweeper asks the read model which flights have active holds past
//! their expiry and has each flight decide `HoldExpired` for them. The read
//! model only points; the flight's own state decides, so a stale read model
//! can delay an expiry but never expire a hold that is not due.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::search::flights_with_lapsed_holds;
use crate::store::{CommandError, FlightStore};

pub async fn run(
    store: FlightStore,
    pool: PgPool,
    interval: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
        }
        let flights = match flights_with_lapsed_holds(&pool, 100).await {
            Ok(flights) => flights,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "hold sweep: could not read lapsed holds"
                );
                continue;
            }
        };
        for flight_id in flights {
            let now = Utc::now();
            match store
                .decide(flight_id, |flight| Ok((flight.expire_holds(now), ())))
                .await
            {
                Ok(decided) if decided.appended > 0 => {
                    metrics::counter!("seat_holds_expired_total")
                        .increment(decided.appended as u64);
                    tracing::info!(%flight_id, expired = decided.appended, "expired lapsed seat holds");
                }
                Ok(_) => {}
                Err(CommandError::Refused(refusal)) => {
                    tracing::warn!(%flight_id, %refusal, "hold sweep refused")
                }
                Err(CommandError::Unexpected(error)) => {
                    tracing::warn!(%flight_id, error = format!("{error:#}"), "hold sweep failed");
                }
            }
        }
    }
}
