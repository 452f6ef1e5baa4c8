//! The `bookings` table and its idempotency keys. Every function takes the
//! caller's connection so the booking, its routing slip and the commands
//! they send commit together.
//!
//! `bookings` is partitioned by month on `booking_id`, a UUIDv7 whose time
//! prefix is the creation time (migration 0003, docs/partitioning.md): a
//! look-up by id reads one partition; the service keeps the next months'
//! partitions created ([`service_kit::partitions`]).

use anyhow::Context;
use chrono::{DateTime, Utc};
use contracts::notification::{Contact, FlightSummary, Passenger};
use contracts::{Currency, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::PgConnection;
use uuid::Uuid;

/// The partitioned table, as [`service_kit::partitions::MonthlyPartitions`] names it.
pub const TABLE: &str = "bookings";

/// What the customer-facing booking says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Pending,
    Confirmed,
    Failed,
    Cancelled,
}

impl BookingStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        match text {
            "pending" => Ok(Self::Pending),
            "confirmed" => Ok(Self::Confirmed),
            "failed" => Ok(Self::Failed),
            "cancelled" => Ok(Self::Cancelled),
            other => anyhow::bail!("unknown booking status {other}"),
        }
    }

    /// The booking's outcome is known (a confirmed booking may still be cancelled later).
    pub const fn is_settled(self) -> bool {
        !matches!(self, Self::Pending)
    }
}

/// How the customer pays, as booking keeps it: never a card number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRecord>,
    /// The most miles the customer offered.
    pub miles: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRecord {
    pub card_token: Uuid,
    pub brand: String,
    pub last4: String,
}

#[derive(Debug, Clone)]
pub struct Booking {
    pub booking_id: Uuid,
    pub customer_id: String,
    pub flight_id: Uuid,
    pub status: BookingStatus,
    pub seats: u32,
    pub total: Money,
    pub hold_id: Uuid,
    pub passengers: Vec<Passenger>,
    pub contact: Contact,
    pub payment: PaymentRecord,
    pub flight: FlightSummary,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct BookingRow {
    booking_id: Uuid,
    customer_id: String,
    flight_id: Uuid,
    status: String,
    seats: i32,
    total_amount: Decimal,
    currency: String,
    hold_id: Uuid,
    passengers: Json<Vec<Passenger>>,
    contact: Json<Contact>,
    payment: Json<PaymentRecord>,
    flight: Json<FlightSummary>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<BookingRow> for Booking {
    type Error = anyhow::Error;

    fn try_from(row: BookingRow) -> anyhow::Result<Self> {
        let currency: Currency = row
            .currency
            .parse()
            .with_context(|| format!("booking {} has currency {}", row.booking_id, row.currency))?;
        Ok(Self {
            booking_id: row.booking_id,
            customer_id: row.customer_id,
            flight_id: row.flight_id,
            status: BookingStatus::parse(&row.status)?,
            seats: u32::try_from(row.seats).context("seats out of range")?,
            total: Money::new(row.total_amount, currency).context("stored total")?,
            hold_id: row.hold_id,
            passengers: row.passengers.0,
            contact: row.contact.0,
            payment: row.payment.0,
            flight: row.flight.0,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const COLUMNS: &str =
    "booking_id, customer_id, flight_id, status, seats, total_amount, currency, hold_id,
                       passengers, contact, payment, flight, created_at, updated_at";

/// Inserts a new booking and its idempotency key; `false` if the key is
/// taken. One statement, so neither row exists without the other: the key's
/// row decides a race between two requests with the same key (the second
/// waits on the unique index, then inserts nothing, booking included).
pub async fn insert(
    conn: &mut PgConnection,
    booking: &Booking,
    idempotency_key: &str,
    fingerprint: &str,
) -> anyhow::Result<bool> {
    let inserted = sqlx::query(
        "WITH claimed AS (
             INSERT INTO booking_idempotency_keys (idempotency_key, booking_id, request_fingerprint, created_at)
             VALUES ($13, $1, $14, $15)
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING booking_id
         )
         INSERT INTO bookings (booking_id, customer_id, flight_id, status, seats, total_amount, currency,
                               hold_id, passengers, contact, payment, flight, created_at, updated_at)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $15, $15 FROM claimed",
    )
    .bind(booking.booking_id)
    .bind(&booking.customer_id)
    .bind(booking.flight_id)
    .bind(booking.status.as_str())
    .bind(i32::try_from(booking.seats).context("seats out of range")?)
    .bind(booking.total.amount())
    .bind(booking.total.currency().code())
    .bind(booking.hold_id)
    .bind(Json(&booking.passengers))
    .bind(Json(&booking.contact))
    .bind(Json(&booking.payment))
    .bind(Json(&booking.flight))
    .bind(idempotency_key)
    .bind(fingerprint)
    .bind(booking.created_at)
    .execute(conn)
    .await
    .context("insert booking")?
    .rows_affected();
    Ok(inserted == 1)
}

/// The booking an idempotency key made, with the request's fingerprint.
pub async fn find_by_key(
    conn: &mut PgConnection,
    idempotency_key: &str,
) -> anyhow::Result<Option<(Uuid, Option<String>)>> {
    sqlx::query_as(
        "SELECT booking_id, request_fingerprint FROM booking_idempotency_keys
         WHERE idempotency_key = $1",
    )
    .bind(idempotency_key)
    .fetch_optional(conn)
    .await
    .context("look up idempotency key")
}

pub async fn get(conn: &mut PgConnection, booking_id: Uuid) -> anyhow::Result<Option<Booking>> {
    let row: Option<BookingRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE booking_id = $1"
    ))
    .bind(booking_id)
    .fetch_optional(conn)
    .await
    .with_context(|| format!("read booking {booking_id}"))?;
    row.map(Booking::try_from).transpose()
}

/// The same, locked until the caller's transaction ends.
pub async fn get_for_update(
    conn: &mut PgConnection,
    booking_id: Uuid,
) -> anyhow::Result<Option<Booking>> {
    let row: Option<BookingRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE booking_id = $1 FOR UPDATE"
    ))
    .bind(booking_id)
    .fetch_optional(conn)
    .await
    .with_context(|| format!("lock booking {booking_id}"))?;
    row.map(Booking::try_from).transpose()
}

pub async fn status_of(
    conn: &mut PgConnection,
    booking_id: Uuid,
) -> anyhow::Result<Option<BookingStatus>> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM bookings WHERE booking_id = $1")
            .bind(booking_id)
            .fetch_optional(conn)
            .await
            .with_context(|| format!("read the status of booking {booking_id}"))?;
    status.as_deref().map(BookingStatus::parse).transpose()
}

/// A customer's bookings, newest first; `before` is the last page's final
/// booking. Ordered by id, which is the order of creation (UUIDv7) and the
/// partition key: the newest partition is read first, and the scan stops
/// once the page is full.
pub async fn list_for_customer(
    conn: &mut PgConnection,
    customer_id: &str,
    before: Option<Uuid>,
    limit: i64,
) -> anyhow::Result<Vec<Booking>> {
    let rows: Vec<BookingRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM bookings
         WHERE customer_id = $1 AND booking_id < $2
         ORDER BY booking_id DESC
         LIMIT $3"
    ))
    .bind(customer_id)
    // A bound rather than `$2 IS NULL OR …`, so the index and the
    // partition bounds can use it.
    .bind(before.unwrap_or(Uuid::max()))
    .bind(limit)
    .fetch_all(conn)
    .await
    .context("list a customer's bookings")?;
    rows.into_iter().map(Booking::try_from).collect()
}

/// Bookings on a flight that are still pending or confirmed.
pub async fn live_on_flight(conn: &mut PgConnection, flight_id: Uuid) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT booking_id FROM bookings
         WHERE flight_id = $1 AND status IN ('pending', 'confirmed')
         ORDER BY booking_id",
    )
    .bind(flight_id)
    .fetch_all(conn)
    .await
    .with_context(|| format!("find the live bookings on flight {flight_id}"))
}

/// Records the booking's status and price; `true` if the status changed.
pub async fn record_outcome(
    conn: &mut PgConnection,
    booking_id: Uuid,
    status: BookingStatus,
    total: Money,
) -> anyhow::Result<bool> {
    let previous: Option<String> = sqlx::query_scalar(
        "UPDATE bookings AS b SET status = $2, total_amount = $3, currency = $4, updated_at = now()
         FROM (SELECT status FROM bookings WHERE booking_id = $1) AS before
         WHERE b.booking_id = $1
           AND (b.status, b.total_amount, b.currency) IS DISTINCT FROM ($2, $3, $4)
         RETURNING before.status",
    )
    .bind(booking_id)
    .bind(status.as_str())
    .bind(total.amount())
    .bind(total.currency().code())
    .fetch_optional(conn)
    .await
    .with_context(|| format!("record the outcome of booking {booking_id}"))?;
    Ok(previous.is_some_and(|previous| previous != status.as_str()))
}
