//! What booking mirrors when its saga's slip changes: the status the
//! customer sees and the price, in the orchestrator's transaction.

use saga::{RoutingSlip, SagaStatus};
use sqlx::PgConnection;

use super::variables::{price, BookingVariables};
use crate::db::{self, BookingStatus};
use crate::events;

/// The Postgres channel on which a booking's status changes are announced.
pub const STATUS_CHANNEL: &str = "booking_status";

/// The customer-facing status a slip stands for; `None` while it is undoing
/// (the booking keeps what it showed until the undoing is done).
pub fn booking_status(slip: &RoutingSlip) -> Option<BookingStatus> {
    match slip.status {
        SagaStatus::Running | SagaStatus::Completed | SagaStatus::Parked if slip.pivoted => {
            Some(BookingStatus::Confirmed)
        }
        SagaStatus::Running | SagaStatus::Parked => Some(BookingStatus::Pending),
        SagaStatus::Completed => Some(BookingStatus::Confirmed),
        SagaStatus::Compensated if slip.cancellation_reason.is_some() => {
            Some(BookingStatus::Cancelled)
        }
        SagaStatus::Compensated => Some(BookingStatus::Failed),
        SagaStatus::Compensating | SagaStatus::FailedCompensation => None,
    }
}

/// Records the slip's outcome on the booking and, if it changed, announces
/// it: to waiting requests, and as a public event.
pub async fn mirror(conn: &mut PgConnection, slip: &RoutingSlip) -> anyhow::Result<()> {
    let Some(status) = booking_status(slip) else {
        return Ok(());
    };
    let variables = BookingVariables::of(slip)?;
    let total = price(slip, &variables)?;
    let changed = db::record_outcome(conn, variables.booking_id, status, total).await?;
    if changed {
        events::publish_status_change(conn, slip, &variables, status, total).await?;
        metrics::counter!("bookings_total", "status" => status.as_str()).increment(1);
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(STATUS_CHANNEL)
            .bind(variables.booking_id.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::cancellation::{cancellation, Canceller};
    use crate::steps::variables::tests::{slip, variables};

    #[test]
    fn a_slip_maps_to_the_status_the_customer_sees() {
        let mut slip = slip(&variables(true, 0));
        assert_eq!(booking_status(&slip), Some(BookingStatus::Pending));
        slip.pivoted = true;
        assert_eq!(booking_status(&slip), Some(BookingStatus::Confirmed));
        slip.status = SagaStatus::Compensating;
        assert_eq!(booking_status(&slip), None);
        slip.status = SagaStatus::Compensated;
        assert_eq!(booking_status(&slip), Some(BookingStatus::Failed));
        slip.cancellation_reason = Some(cancellation(Canceller::Customer, "").reason);
        assert_eq!(booking_status(&slip), Some(BookingStatus::Cancelled));
    }
}
