//! Monthly partitions, created ahead of time.
//!
//! A table `PARTITION BY RANGE` on a UUIDv7 column (booking's `bookings` on
//! `booking_id`) is partitioned by creation time: a UUIDv7 begins with its
//! creation time in milliseconds since the epoch, big-endian, and Postgres
//! compares UUIDs byte by byte. The partition of month M holds the ids from
//! the smallest UUID of M's first millisecond (that time, then zeros) to the
//! smallest of the next month's; it is named `<table>_pYYYY_MM`.
//! docs/partitioning.md explains the choice.
//!
//! An insert whose month has no partition fails, so [`MonthlyPartitions`]
//! keeps the current month and the next `months_ahead` created: at start
//! and then on an interval, in one transaction under an advisory lock so two
//! replicas do not race on the catalog (the loser finds the partitions made).
//! Each pass reports `db_partitions_ahead{table}`: how many months after the
//! current one have their partition, counting until the first that does not
//! (0 also when the current month has none). Fewer than wanted is logged as a
//! warning; the alert rules watch the gauge.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::{advisory_xact_lock, quote_ident, LockNamespace};

/// Partition maintenance of any table takes this lock, keyed by the table.
const PARTITION_LOCK: LockNamespace = LockNamespace::new("partitions.monthly");

/// `[partitions]`: how far ahead to create, how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct PartitionSettings {
    /// Months after the current one that must have a partition.
    #[serde(default = "default_months_ahead")]
    pub months_ahead: u32,
    #[serde(default = "default_check_interval_secs")]
    pub check_interval_secs: u64,
}

impl Default for PartitionSettings {
    fn default() -> Self {
        Self {
            months_ahead: default_months_ahead(),
            check_interval_secs: default_check_interval_secs(),
        }
    }
}

fn default_months_ahead() -> u32 {
    3
}
fn default_check_interval_secs() -> u64 {
    3_600
}

/// A calendar month (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    /// 1 to 12.
    month: u32,
}

impl Month {
    pub fn of(at: DateTime<Utc>) -> Self {
        Self {
            year: at.year(),
            month: at.month(),
        }
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Midnight UTC on the first day.
    pub fn start(self) -> anyhow::Result<DateTime<Utc>> {
        Utc.with_ymd_and_hms(self.year, self.month, 1, 0, 0, 0)
            .single()
            .with_context(|| format!("the start of {}-{:02}", self.year, self.month))
    }
}

/// The smallest UUIDv7 made at `at` (milliseconds; the rest zeros): the
/// lower bound of the ids created from then on.
pub fn uuidv7_floor(at: DateTime<Utc>) -> anyhow::Result<Uuid> {
    let millis = u64::try_from(at.timestamp_millis())
        .with_context(|| format!("{at} is before the UUIDv7 epoch"))?;
    anyhow::ensure!(millis < 1 << 48, "{at} is beyond UUIDv7's 48-bit clock");
    let mut bytes = [0_u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    Ok(Uuid::from_bytes(bytes))
}

/// The monthly partitions of `table`, range-partitioned on a UUIDv7 column.
#[derive(Debug, Clone, Copy)]
pub struct MonthlyPartitions {
    table: &'static str,
    settings: PartitionSettings,
}

impl MonthlyPartitions {
    pub fn new(table: &'static str, settings: PartitionSettings) -> Self {
        Self { table, settings }
    }

    /// `bookings_p2026_12`.
    pub fn partition_name(&self, month: Month) -> String {
        format!("{}_p{:04}_{:02}", self.table, month.year, month.month)
    }

    /// Creates the missing partitions from the month of `now` to
    /// `months_ahead` after it; returns how many months ahead exist then.
    /// Idempotent, and safe to run from every replica at once.
    pub async fn ensure(&self, pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<u32> {
        let mut tx = pool.begin().await.context("begin partition maintenance")?;
        // Creating a partition locks the parent table exclusively for a
        // moment. Behind a long transaction that wait would queue every
        // query of the table behind it; giving up instead is harmless, with
        // months to spare and another pass within the hour.
        sqlx::query("SET LOCAL lock_timeout = '5s'")
            .execute(&mut *tx)
            .await
            .context("bound the partition maintenance's lock waits")?;
        advisory_xact_lock(&mut tx, PARTITION_LOCK, self.table)
            .await
            .with_context(|| format!("lock the partitions of {}", self.table))?;
        let mut month = Month::of(now);
        for _ in 0..=self.settings.months_ahead {
            if !self.exists(&mut tx, month).await? {
                self.create(&mut tx, month).await?;
            }
            month = month.next();
        }
        let ahead = self.months_ahead(&mut tx, now).await?;
        tx.commit().await.context("commit partition maintenance")?;
        Ok(ahead)
    }

    /// Months after the one of `now` whose partitions exist, up to the first
    /// gap; 0 when the current month itself has none.
    pub async fn months_ahead(
        &self,
        conn: &mut PgConnection,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u32> {
        let mut month = Month::of(now);
        if !self.exists(conn, month).await? {
            return Ok(0);
        }
        let mut ahead = 0;
        // Looking further than twice what is wanted tells nothing more.
        while ahead < self.settings.months_ahead * 2 + 1 {
            month = month.next();
            if !self.exists(conn, month).await? {
                break;
            }
            ahead += 1;
        }
        Ok(ahead)
    }

    async fn exists(&self, conn: &mut PgConnection, month: Month) -> anyhow::Result<bool> {
        let name = self.partition_name(month);
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(quote_ident(&name))
            .fetch_one(conn)
            .await
            .with_context(|| format!("look up partition {name}"))
    }

    async fn create(&self, conn: &mut PgConnection, month: Month) -> anyhow::Result<()> {
        let name = self.partition_name(month);
        let from = uuidv7_floor(month.start()?)?;
        let to = uuidv7_floor(month.next().start()?)?;
        // DDL takes no bind parameters; every part here is made by this code.
        let statement = format!(
            "CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ('{from}') TO ('{to}')",
            quote_ident(&name),
            quote_ident(self.table),
        );
        sqlx::query(&statement)
            .execute(conn)
            .await
            .with_context(|| format!("create partition {name}"))?;
        tracing::info!(table = self.table, partition = %name, "partition created");
        Ok(())
    }

    /// Keeps the partitions ahead until `shutdown`: a worker. A failed pass
    /// is logged and counted, and the next pass tries again; the service
    /// keeps serving meanwhile, because the months already made still take
    /// inserts and the gauge says how long they last.
    pub async fn maintain(self, pool: PgPool, shutdown: CancellationToken) -> anyhow::Result<()> {
        let interval = Duration::from_secs(self.settings.check_interval_secs.max(1));
        loop {
            match self.ensure(&pool, Utc::now()).await {
                Ok(ahead) => {
                    metrics::gauge!("db_partitions_ahead", "table" => self.table).set(ahead);
                    if ahead < self.settings.months_ahead {
                        tracing::warn!(
                            table = self.table,
                            months_ahead = ahead,
                            wanted = self.settings.months_ahead,
                            "fewer partitions ahead than wanted"
                        );
                    }
                }
                Err(error) => {
                    metrics::counter!("db_partition_maintenance_failures_total", "table" => self.table)
                        .increment(1);
                    tracing::error!(
                        table = self.table,
                        error = format!("{error:#}"),
                        "partition maintenance failed; retrying at the next pass"
                    );
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_roll_over_the_year() {
        let december = Month::of(Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap());
        assert_eq!(
            december.next().start().unwrap(),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_uuidv7_falls_between_the_floors_of_its_month_and_the_next() {
        let month = Month::of(Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap());
        let from = uuidv7_floor(month.start().unwrap()).unwrap();
        let to = uuidv7_floor(month.next().start().unwrap()).unwrap();
        let made = |at: DateTime<Utc>| {
            let millis = u64::try_from(at.timestamp_millis()).unwrap();
            Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                millis / 1000,
                u32::try_from(millis % 1000).unwrap() * 1_000_000,
            ))
        };

        let first = made(month.start().unwrap());
        let last = made(month.next().start().unwrap() - chrono::Duration::milliseconds(1));
        let next = made(month.next().start().unwrap());

        assert!(from <= first && first < to);
        assert!(from <= last && last < to);
        assert!(next >= to);
        assert_eq!(from.to_string(), "01a22ee6-b000-0000-0000-000000000000");
    }

    #[test]
    fn partitions_are_named_by_table_and_month() {
        let partitions = MonthlyPartitions::new("bookings", PartitionSettings::default());
        let month = Month::of(Utc.with_ymd_and_hms(2027, 3, 9, 0, 0, 0).unwrap());
        assert_eq!(partitions.partition_name(month), "bookings_p2027_03");
    }
}
