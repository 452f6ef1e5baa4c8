//! Reads the system's state: the rows of every schema through one read-only
//! snapshot, and each booked flight's seats from flight-inventory's API.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rust_decimal::Decimal;
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::rows::{
    BookingRow, FlightSeats, MessagingCounts, NotificationRow, PaymentRow, SagaRow, Snapshot,
};

/// The schemas that hold an outbox and dead letters: one per service.
pub const SERVICE_SCHEMAS: [&str; 4] = ["booking", "flight_inventory", "payment", "notification"];

/// How many availability requests are in flight at once.
const AVAILABILITY_CONCURRENCY: usize = 8;
const AVAILABILITY_TIMEOUT: Duration = Duration::from_secs(5);

/// Every row the checks need. All of them come from one `REPEATABLE READ
/// READ ONLY` transaction: the schemas share a database, so the checker sees
/// one consistent instant across services and cannot write by mistake.
pub async fn fetch_rows(pool: &PgPool) -> anyhow::Result<Snapshot> {
    let mut tx = pool.begin().await.context("begin the audit transaction")?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await
        .context("make the audit transaction a read-only snapshot")?;
    let snapshot = Snapshot {
        bookings: fetch_bookings(&mut tx).await?,
        sagas: fetch_sagas(&mut tx).await?,
        payments: fetch_payments(&mut tx).await?,
        notifications: fetch_notifications(&mut tx).await?,
        messaging: fetch_messaging_counts(&mut tx).await?,
        ..Snapshot::default()
    };
    tx.rollback().await.context("end the audit transaction")?;
    Ok(snapshot)
}

async fn fetch_bookings(conn: &mut PgConnection) -> anyhow::Result<Vec<BookingRow>> {
    type Row = (Uuid, Uuid, String, i64, Decimal, String, bool, bool);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT booking_id, flight_id, status, seats::bigint, total_amount, currency,
                (contact->>'email') IS NOT NULL, (contact->>'phone') IS NOT NULL
         FROM booking.bookings",
    )
    .fetch_all(conn)
    .await
    .context("read booking.bookings")?;
    Ok(rows
        .into_iter()
        .map(
            |(
                booking_id,
                flight_id,
                status,
                seats,
                total_amount,
                currency,
                has_email,
                has_phone,
            )| {
                BookingRow {
                    booking_id,
                    flight_id,
                    status,
                    seats,
                    total_amount,
                    currency,
                    has_email,
                    has_phone,
                }
            },
        )
        .collect())
}

async fn fetch_sagas(conn: &mut PgConnection) -> anyhow::Result<Vec<SagaRow>> {
    // The deadline is read as text and parsed here: one malformed slip must
    // show up as a violation of that saga, not fail the whole query.
    type Row = (
        Uuid,
        String,
        Option<bool>,
        Option<String>,
        Option<String>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT saga_id, status, (slip->>'pivoted')::boolean, slip->>'deadline',
                slip->>'failure_reason', created_at, finished_at
         FROM booking.sagas",
    )
    .fetch_all(conn)
    .await
    .context("read booking.sagas")?;
    Ok(rows
        .into_iter()
        .map(
            |(saga_id, status, pivoted, deadline, failure_reason, created_at, finished_at)| {
                SagaRow {
                    saga_id,
                    status,
                    pivoted: pivoted.unwrap_or(false),
                    deadline: deadline
                        .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
                        .map(|deadline| deadline.with_timezone(&Utc)),
                    failure_reason,
                    created_at,
                    finished_at,
                }
            },
        )
        .collect())
}

async fn fetch_payments(conn: &mut PgConnection) -> anyhow::Result<Vec<PaymentRow>> {
    let rows: Vec<(Uuid, Uuid, String, String, Decimal, String)> = sqlx::query_as(
        "SELECT payment_id, booking_id, kind, method, amount, currency
         FROM payment.payment_ledger",
    )
    .fetch_all(conn)
    .await
    .context("read payment.payment_ledger")?;
    Ok(rows
        .into_iter()
        .map(
            |(payment_id, booking_id, kind, method, amount, currency)| PaymentRow {
                payment_id,
                booking_id,
                kind,
                method,
                amount,
                currency,
            },
        )
        .collect())
}

async fn fetch_notifications(conn: &mut PgConnection) -> anyhow::Result<Vec<NotificationRow>> {
    let rows: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT booking_id, kind, channel FROM notification.notifications")
            .fetch_all(conn)
            .await
            .context("read notification.notifications")?;
    Ok(rows
        .into_iter()
        .map(|(booking_id, kind, channel)| NotificationRow {
            booking_id,
            kind,
            channel,
        })
        .collect())
}

async fn fetch_messaging_counts(conn: &mut PgConnection) -> anyhow::Result<Vec<MessagingCounts>> {
    let mut counts = Vec::with_capacity(SERVICE_SCHEMAS.len());
    for schema in SERVICE_SCHEMAS {
        // The schema names are the constants above, never input.
        let (outbox_rows, outbox_unpublished, oldest_unpublished): (
            i64,
            i64,
            Option<DateTime<Utc>>,
        ) = sqlx::query_as(&format!(
            "SELECT count(*), count(*) FILTER (WHERE published_at IS NULL),
                    min(created_at) FILTER (WHERE published_at IS NULL)
             FROM {schema}.outbox"
        ))
        .fetch_one(&mut *conn)
        .await
        .with_context(|| format!("read {schema}.outbox"))?;
        let (dead_letters_parked, dead_letters_replay_requested): (i64, i64) =
            sqlx::query_as(&format!(
                "SELECT count(*) FILTER (WHERE status = 'parked'),
                        count(*) FILTER (WHERE status = 'replay_requested')
                 FROM {schema}.dead_letters"
            ))
            .fetch_one(&mut *conn)
            .await
            .with_context(|| format!("read {schema}.dead_letters"))?;
        counts.push(MessagingCounts {
            schema: schema.to_owned(),
            outbox_rows,
            outbox_unpublished,
            oldest_unpublished,
            dead_letters_parked,
            dead_letters_replay_requested,
        });
    }
    Ok(counts)
}

#[derive(Debug, Deserialize)]
struct Availability {
    capacity: i64,
    available: i64,
    held: i64,
    sold: i64,
}

/// Each flight's seats from flight-inventory, a few requests at a time.
/// Returns the flights read and, separately, those that could not be.
pub async fn fetch_flight_seats(
    http: &reqwest::Client,
    inventory_url: &str,
    flight_ids: Vec<Uuid>,
) -> (Vec<FlightSeats>, Vec<(Uuid, String)>) {
    let base = inventory_url.trim_end_matches('/');
    let results: Vec<(Uuid, Result<FlightSeats, String>)> = futures::stream::iter(flight_ids)
        .map(|flight_id| async move {
            let url = format!("{base}/flights/{flight_id}/availability");
            (flight_id, fetch_one(http, &url, flight_id).await)
        })
        .buffer_unordered(AVAILABILITY_CONCURRENCY)
        .collect()
        .await;
    let mut seats = Vec::new();
    let mut unreadable = Vec::new();
    for (flight_id, result) in results {
        match result {
            Ok(flight) => seats.push(flight),
            Err(why) => unreadable.push((flight_id, why)),
        }
    }
    seats.sort_by_key(|flight| flight.flight_id);
    unreadable.sort();
    (seats, unreadable)
}

async fn fetch_one(
    http: &reqwest::Client,
    url: &str,
    flight_id: Uuid,
) -> Result<FlightSeats, String> {
    let response = http
        .get(url)
        .timeout(AVAILABILITY_TIMEOUT)
        .send()
        .await
        .map_err(|error| format!("GET {url}: {error}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    let availability: Availability = response
        .json()
        .await
        .map_err(|error| format!("GET {url}: unreadable body: {error}"))?;
    Ok(FlightSeats {
        flight_id,
        capacity: availability.capacity,
        available: availability.available,
        held: availability.held,
        sold: availability.sold,
    })
}

/// Sagas still running or compensating, oldest first (at most `limit`), and
/// how many there are in all.
pub async fn open_sagas(
    pool: &PgPool,
    limit: i64,
) -> anyhow::Result<(i64, Vec<(Uuid, String, DateTime<Utc>)>)> {
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM booking.sagas WHERE status IN ('running', 'compensating')",
    )
    .fetch_one(pool)
    .await
    .context("count open sagas")?;
    let oldest: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT saga_id, status, created_at FROM booking.sagas
         WHERE status IN ('running', 'compensating') ORDER BY created_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("list open sagas")?;
    Ok((open, oldest))
}

/// Outbox rows not yet published, across every service schema.
pub async fn unpublished_outbox_rows(pool: &PgPool) -> anyhow::Result<i64> {
    let query = SERVICE_SCHEMAS
        .iter()
        .map(|schema| format!("(SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL)"))
        .collect::<Vec<_>>()
        .join(" + ");
    sqlx::query_scalar(&format!("SELECT {query}"))
        .fetch_one(pool)
        .await
        .context("count unpublished outbox rows")
}

/// Messages notification has recorded but not yet delivered or given up on.
/// Its dispatcher settles each one after the saga that asked for it closed,
/// writing `NotificationDelivered`/`NotificationFailed` to the outbox then:
/// until none is pending, new outbox rows may still appear.
pub async fn pending_deliveries(pool: &PgPool) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM notification.notifications WHERE status = 'pending'")
        .fetch_one(pool)
        .await
        .context("count notification's pending deliveries")
}
