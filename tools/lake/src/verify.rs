//! `verify`: does the lake hold exactly what the services say happened?
//!
//! Per source and event type, the ids the lake holds (deduplicated by
//! message id) are compared with the ids the service's own schema records
//! for that kind of fact — counts, a checksum over the sorted ids, and the
//! first few ids missing on either side. The services' schemas are read
//! through one connection, read-only (`default_transaction_read_only`):
//! an operator tool may look at every schema, and changes none.
//!
//! Run it once the writer has caught up: a fact committed a moment ago may
//! not have reached the lake yet. Facts older than the events themselves
//! (a database that predates them) show as missing.

use std::collections::BTreeSet;

use anyhow::Context;
use arrow::array::{Array, StringArray};
use arrow::datatypes::DataType;
use contracts::{booking, inventory, notification, payment, Message};
use datafusion::prelude::SessionContext;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::query;
use crate::store::LakeStore;
use crate::tables::Table;

/// One comparison: a kind of fact, the lake against its source.
#[derive(Debug, Clone)]
struct Check {
    table: Table,
    message_type: &'static str,
    /// The id of each fact, as text, in the lake (a SQL expression over the table).
    lake_id: &'static str,
    /// The same ids from the source's schema.
    source_sql: String,
}

/// What each event stands for in its source. The inventory's facts are the
/// flight's event store rows, named by `<flight id>:<version>`.
fn checks() -> Vec<Check> {
    let check = |table, message_type, lake_id, source_sql: &str| Check {
        table,
        message_type,
        lake_id,
        source_sql: source_sql.to_owned(),
    };
    vec![
        check(
            Table::Booking,
            booking::BookingCreated::MESSAGE_TYPE,
            "booking_id",
            "SELECT booking_id::text FROM booking.bookings",
        ),
        check(
            Table::Booking,
            booking::BookingConfirmed::MESSAGE_TYPE,
            "booking_id",
            // Confirmed once, whatever came after: the saga passed its pivot.
            "SELECT b.booking_id::text FROM booking.bookings b
             JOIN booking.sagas s ON s.saga_id = b.booking_id
             WHERE (s.slip ->> 'pivoted')::boolean",
        ),
        check(
            Table::Booking,
            booking::BookingFailed::MESSAGE_TYPE,
            "booking_id",
            "SELECT booking_id::text FROM booking.bookings WHERE status = 'failed'",
        ),
        check(
            Table::Booking,
            booking::BookingCancelled::MESSAGE_TYPE,
            "booking_id",
            "SELECT booking_id::text FROM booking.bookings WHERE status = 'cancelled'",
        ),
        check(
            Table::Payment,
            payment::PaymentCaptured::MESSAGE_TYPE,
            "payment_id",
            "SELECT payment_id::text FROM payment.payment_ledger WHERE kind = 'capture'",
        ),
        check(
            Table::Payment,
            payment::RefundIssued::MESSAGE_TYPE,
            "payment_id",
            "SELECT payment_id::text FROM payment.payment_ledger WHERE kind = 'refund'",
        ),
        check(
            Table::Payment,
            payment::MilesCredited::MESSAGE_TYPE,
            "entry_id",
            "SELECT entry_id::text FROM payment.miles_ledger WHERE kind IN ('credit', 'refund')",
        ),
        check(
            Table::Payment,
            payment::MilesRedeemed::MESSAGE_TYPE,
            "entry_id",
            "SELECT entry_id::text FROM payment.miles_ledger WHERE kind = 'redemption'",
        ),
        check(
            Table::Notification,
            notification::NotificationDelivered::MESSAGE_TYPE,
            "notification_id",
            "SELECT notification_id::text FROM notification.notifications WHERE status = 'delivered'",
        ),
        check(
            Table::Notification,
            notification::NotificationFailed::MESSAGE_TYPE,
            "notification_id",
            "SELECT notification_id::text FROM notification.notifications WHERE status = 'failed'",
        ),
        inventory_check(inventory::FlightScheduled::MESSAGE_TYPE, "('FlightScheduled')"),
        inventory_check(
            inventory::FareChanged::MESSAGE_TYPE,
            "('FareIncreased', 'FareDecreased')",
        ),
        inventory_check(inventory::HoldPlaced::MESSAGE_TYPE, "('SeatsHeld')"),
        inventory_check(inventory::HoldReleased::MESSAGE_TYPE, "('SeatsReleased')"),
        inventory_check(inventory::HoldExpired::MESSAGE_TYPE, "('HoldExpired')"),
        inventory_check(inventory::SeatsSold::MESSAGE_TYPE, "('SeatsConfirmed')"),
        inventory_check(inventory::FlightCancelled::MESSAGE_TYPE, "('FlightCancelled')"),
    ]
}

fn inventory_check(message_type: &'static str, private_types: &'static str) -> Check {
    let source_sql = format!(
        "SELECT substr(stream_id, length('flight-') + 1) || ':' || version
         FROM flight_inventory.events
         WHERE stream_id LIKE 'flight-%' AND event_type IN {private_types}"
    );
    Check {
        table: Table::Inventory,
        message_type,
        lake_id: "flight_id || ':' || CAST(version AS VARCHAR)",
        source_sql,
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub table: &'static str,
    pub message_type: &'static str,
    pub lake_count: usize,
    pub source_count: usize,
    pub lake_checksum: String,
    pub source_checksum: String,
    /// In the source, not in the lake (the first few).
    pub missing: Vec<String>,
    /// In the lake, not in the source (the first few).
    pub unexpected: Vec<String>,
}

impl Comparison {
    pub fn matches(&self) -> bool {
        self.lake_count == self.source_count && self.lake_checksum == self.source_checksum
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub comparisons: Vec<Comparison>,
}

impl Report {
    pub fn matches(&self) -> bool {
        self.comparisons.iter().all(Comparison::matches)
    }

    pub fn render(&self) -> String {
        let mut text = format!(
            "{:<20} {:<42} {:>8} {:>8}  {:<16} {:<16} result\n",
            "table", "message type", "lake", "source", "lake checksum", "source checksum"
        );
        for c in &self.comparisons {
            text.push_str(&format!(
                "{:<20} {:<42} {:>8} {:>8}  {:<16} {:<16} {}\n",
                c.table,
                c.message_type,
                c.lake_count,
                c.source_count,
                c.lake_checksum,
                c.source_checksum,
                if c.matches() { "ok" } else { "DIFFERENT" }
            ));
            if !c.missing.is_empty() {
                text.push_str(&format!(
                    "    missing from the lake: {}\n",
                    c.missing.join(", ")
                ));
            }
            if !c.unexpected.is_empty() {
                text.push_str(&format!(
                    "    in the lake, not in the source: {}\n",
                    c.unexpected.join(", ")
                ));
            }
        }
        text
    }
}

const SHOWN: usize = 5;

/// Compares the lake in `store` with the schemas `source` can read.
pub async fn verify(store: &LakeStore, source: &mut PgConnection) -> anyhow::Result<Report> {
    let context = query::session(store).await?;
    let mut comparisons = Vec::new();
    for check in checks() {
        let lake = lake_ids(&context, &check).await?;
        let source_ids: Vec<String> = sqlx::query_scalar(&check.source_sql)
            .fetch_all(&mut *source)
            .await
            .with_context(|| format!("read the source of {}", check.message_type))?;
        let source_ids: BTreeSet<String> = source_ids.into_iter().collect();
        comparisons.push(Comparison {
            table: check.table.name(),
            message_type: check.message_type,
            lake_count: lake.len(),
            source_count: source_ids.len(),
            lake_checksum: checksum(&lake),
            source_checksum: checksum(&source_ids),
            missing: source_ids.difference(&lake).take(SHOWN).cloned().collect(),
            unexpected: lake.difference(&source_ids).take(SHOWN).cloned().collect(),
        });
    }
    Ok(Report { comparisons })
}

async fn lake_ids(context: &SessionContext, check: &Check) -> anyhow::Result<BTreeSet<String>> {
    let sql = format!(
        "SELECT CAST({id} AS VARCHAR) AS id FROM {table} WHERE message_type = '{message_type}'",
        id = check.lake_id,
        table = check.table.name(),
        message_type = check.message_type,
    );
    let batches = query::run(context, &sql)
        .await
        .with_context(|| format!("read the lake's {}", check.message_type))?;
    let mut ids = BTreeSet::new();
    for batch in batches {
        // SQL's VARCHAR may come back as a string view; read it as plain text.
        let column = arrow::compute::cast(batch.column(0), &DataType::Utf8)
            .context("read the ids as text")?;
        let strings = column
            .as_any()
            .downcast_ref::<StringArray>()
            .context("ids are text")?;
        for index in 0..strings.len() {
            if strings.is_valid(index) {
                ids.insert(strings.value(index).to_owned());
            }
        }
    }
    Ok(ids)
}

/// The first 16 hex digits of SHA-256 over the sorted ids, one per line.
fn checksum(ids: &BTreeSet<String>) -> String {
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update(id.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_the_lake_knows_is_verified() {
        let verified: BTreeSet<&str> = checks().iter().map(|c| c.message_type).collect();
        for table in Table::ALL {
            for message_type in table.event_types() {
                assert!(
                    verified.contains(message_type),
                    "{message_type} is not verified"
                );
            }
        }
    }

    #[test]
    fn the_checksum_depends_on_the_ids_not_their_order_of_arrival() {
        let a: BTreeSet<String> = ["x", "y"].map(str::to_owned).into();
        let b: BTreeSet<String> = ["y", "x"].map(str::to_owned).into();
        let c: BTreeSet<String> = ["x"].map(str::to_owned).into();
        assert_eq!(checksum(&a), checksum(&b));
        assert_ne!(checksum(&a), checksum(&c));
    }
}
