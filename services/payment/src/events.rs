//! payment's public events on `payment.events`: every ledger movement, as
//! an analyst reads it. Written to the outbox by the function that appends
//! the ledger row, in the same transaction, so a row and its event exist
//! together or not at all. Keyed by booking id; a miles grant, which
//! belongs to no booking, by customer id.

use chrono::{DateTime, Utc};
use contracts::payment::{
    MilesCreditKind, MilesCredited, MilesRedeemed, PaymentCaptured, RefundIssued,
};
use contracts::{topics, Message};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::ledger::{EntryKind, LedgerEntry};

/// The event for a payment ledger row: a capture or a refund.
pub async fn publish_ledger_entry(
    conn: &mut PgConnection,
    entry: &LedgerEntry,
) -> anyhow::Result<()> {
    let booking_id = entry.booking_id;
    match (entry.kind, entry.refund_of) {
        (EntryKind::Capture, _) => {
            let event = PaymentCaptured {
                payment_id: entry.payment_id,
                booking_id,
                customer_id: entry.customer_id.clone(),
                method: entry.method,
                amount: entry.amount,
                miles: entry.miles,
                captured_at: entry.recorded_at,
            };
            enqueue(conn, &booking_id.to_string(), booking_id, event).await
        }
        (EntryKind::Refund, Some(refund_of)) => {
            let event = RefundIssued {
                payment_id: entry.payment_id,
                refund_of,
                booking_id,
                customer_id: entry.customer_id.clone(),
                method: entry.method,
                amount: entry.amount,
                miles: entry.miles,
                refunded_at: entry.recorded_at,
            };
            enqueue(conn, &booking_id.to_string(), booking_id, event).await
        }
        // The table's check constraint makes a refund name its capture.
        (EntryKind::Refund, None) => anyhow::bail!(
            "refund {} names no capture; not publishing it",
            entry.payment_id
        ),
    }
}

/// A miles ledger row, as its event sees it.
#[derive(Debug, Clone)]
pub struct MilesEntry {
    pub entry_id: Uuid,
    pub customer_id: String,
    /// Signed: negative for a redemption.
    pub miles: i64,
    pub booking_id: Option<Uuid>,
    pub recorded_at: DateTime<Utc>,
}

/// The event for a miles ledger row: a redemption when it takes miles, a
/// credit (a grant, or a refund when it belongs to a booking) when it adds.
pub async fn publish_miles_entry(conn: &mut PgConnection, entry: MilesEntry) -> anyhow::Result<()> {
    let magnitude = entry.miles.unsigned_abs();
    match (entry.miles < 0, entry.booking_id) {
        (true, Some(booking_id)) => {
            let event = MilesRedeemed {
                entry_id: entry.entry_id,
                customer_id: entry.customer_id,
                booking_id,
                miles: magnitude,
                redeemed_at: entry.recorded_at,
            };
            enqueue(conn, &booking_id.to_string(), booking_id, event).await
        }
        (true, None) => anyhow::bail!(
            "miles entry {} takes miles for no booking; not publishing it",
            entry.entry_id
        ),
        (false, booking_id) => {
            let kind = match booking_id {
                Some(_) => MilesCreditKind::Refund,
                None => MilesCreditKind::Grant,
            };
            // A grant belongs to no booking: its key is the account, and it
            // is a process of its own (correlated with itself).
            let (key, correlation_id) = match booking_id {
                Some(booking_id) => (booking_id.to_string(), booking_id),
                None => (entry.customer_id.clone(), entry.entry_id),
            };
            let event = MilesCredited {
                entry_id: entry.entry_id,
                customer_id: entry.customer_id,
                kind,
                miles: magnitude,
                booking_id,
                credited_at: entry.recorded_at,
            };
            enqueue(conn, &key, correlation_id, event).await
        }
    }
}

async fn enqueue<M: Message>(
    conn: &mut PgConnection,
    key: &str,
    correlation_id: Uuid,
    event: M,
) -> anyhow::Result<()> {
    messaging::enqueue_event(conn, topics::PAYMENT_EVENTS, key, correlation_id, event).await
}
