//! The booking payment ledger (`payment_ledger`): one append-only row per
//! capture and per refund, per payment method; and the closure of a booking's
//! payment (`payment_closures`). Queries take the caller's connection so the
//! caller owns the transaction.

use anyhow::Context;
use axum::extract::State;
use chrono::{DateTime, Utc};
use contracts::payment::{PaymentEntry, PaymentMethod};
use contracts::{Currency, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use service_kit::auth::Caller;
use service_kit::db::{self, LockNamespace};
use service_kit::{ApiError, Json, PageLimit, Query};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::AppState;
use crate::{events, miles};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Capture,
    Refund,
}

impl EntryKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Capture => "capture",
            Self::Refund => "refund",
        }
    }
}

pub fn method_str(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Card => "card",
        PaymentMethod::Miles => "miles",
    }
}

/// One row of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerEntry {
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    pub customer_id: String,
    pub kind: EntryKind,
    pub method: PaymentMethod,
    pub amount: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miles: Option<u64>,
    #[serde(skip)]
    pub card_token: Option<Uuid>,
    #[serde(skip)]
    pub gateway_reference: Option<String>,
    #[serde(skip)]
    pub refund_of: Option<Uuid>,
    pub recorded_at: DateTime<Utc>,
}

impl LedgerEntry {
    /// The entry as the saga's replies carry it.
    pub fn to_contract(&self) -> PaymentEntry {
        PaymentEntry {
            payment_id: self.payment_id,
            method: self.method,
            amount: self.amount,
            miles: self.miles,
        }
    }
}

/// A row about to be appended.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub booking_id: Uuid,
    pub customer_id: String,
    pub kind: EntryKind,
    pub method: PaymentMethod,
    pub amount: Money,
    pub miles: Option<u64>,
    pub card_token: Option<Uuid>,
    pub gateway_reference: Option<String>,
    pub refund_of: Option<Uuid>,
}

type Row = (
    Uuid,
    Uuid,
    String,
    String,
    String,
    Decimal,
    String,
    Option<i64>,
    Option<Uuid>,
    Option<String>,
    Option<Uuid>,
    DateTime<Utc>,
);

const COLUMNS: &str = "payment_id, booking_id, customer_id, kind, method, amount, currency, \
                       miles, card_token, gateway_reference, refund_of, recorded_at";

fn entry_of(row: Row) -> anyhow::Result<LedgerEntry> {
    let (
        payment_id,
        booking_id,
        customer_id,
        kind,
        method,
        amount,
        currency,
        miles,
        card_token,
        gateway_reference,
        refund_of,
        recorded_at,
    ) = row;
    let kind = match kind.as_str() {
        "capture" => EntryKind::Capture,
        "refund" => EntryKind::Refund,
        other => anyhow::bail!("ledger entry {payment_id} has unknown kind {other}"),
    };
    let method = match method.as_str() {
        "card" => PaymentMethod::Card,
        "miles" => PaymentMethod::Miles,
        other => anyhow::bail!("ledger entry {payment_id} has unknown method {other}"),
    };
    let currency: Currency = currency
        .parse()
        .with_context(|| format!("ledger entry {payment_id} currency"))?;
    let amount = Money::new(amount, currency)
        .with_context(|| format!("ledger entry {payment_id} amount"))?;
    let miles = miles
        .map(u64::try_from)
        .transpose()
        .with_context(|| format!("ledger entry {payment_id} miles"))?;
    Ok(LedgerEntry {
        payment_id,
        booking_id,
        customer_id,
        kind,
        method,
        amount,
        miles,
        card_token,
        gateway_reference,
        refund_of,
        recorded_at,
    })
}

/// Why an entry could not be appended.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The booking already has an entry of this kind and method: another
    /// delivery of the same command got there first.
    #[error("the booking already has a {kind} by {method}")]
    AlreadyRecorded {
        kind: &'static str,
        method: &'static str,
    },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Appends an entry, with its public event. The unique constraint, not a
/// prior check, decides whether a second capture or refund of a method can exist.
pub async fn record(conn: &mut PgConnection, entry: NewEntry) -> Result<LedgerEntry, RecordError> {
    let miles = entry
        .miles
        .map(i64::try_from)
        .transpose()
        .context("miles out of range")?;
    let inserted: Result<Row, sqlx::Error> = sqlx::query_as(&format!(
        "INSERT INTO payment_ledger (payment_id, booking_id, customer_id, kind, method, amount,
                                     currency, miles, card_token, gateway_reference, refund_of)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(entry.booking_id)
    .bind(&entry.customer_id)
    .bind(entry.kind.as_str())
    .bind(method_str(entry.method))
    .bind(entry.amount.amount())
    .bind(entry.amount.currency().code())
    .bind(miles)
    .bind(entry.card_token)
    .bind(&entry.gateway_reference)
    .bind(entry.refund_of)
    .fetch_one(&mut *conn)
    .await;
    match inserted {
        Ok(row) => {
            let entry = entry_of(row)?;
            events::publish_ledger_entry(conn, &entry).await?;
            Ok(entry)
        }
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
            Err(RecordError::AlreadyRecorded {
                kind: entry.kind.as_str(),
                method: method_str(entry.method),
            })
        }
        Err(error) => Err(RecordError::Unexpected(
            anyhow::Error::new(error).context("append to the payment ledger"),
        )),
    }
}

/// A booking's entries, oldest first.
pub async fn entries_of_booking(
    conn: &mut PgConnection,
    booking_id: Uuid,
) -> anyhow::Result<Vec<LedgerEntry>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payment_ledger WHERE booking_id = $1
         ORDER BY recorded_at, payment_id"
    ))
    .bind(booking_id)
    .fetch_all(conn)
    .await
    .context("read a booking's ledger")?;
    rows.into_iter().map(entry_of).collect()
}

/// A customer's entries, oldest first, at most `limit`.
pub async fn entries_of_customer(
    conn: &mut PgConnection,
    customer_id: &str,
    limit: i64,
) -> anyhow::Result<Vec<LedgerEntry>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payment_ledger WHERE customer_id = $1
         ORDER BY recorded_at, payment_id LIMIT $2"
    ))
    .bind(customer_id)
    .bind(limit)
    .fetch_all(conn)
    .await
    .context("read a customer's ledger")?;
    rows.into_iter().map(entry_of).collect()
}

/// Serializes every payment decision about one booking (capture, refund,
/// closure) until the transaction ends. Commands of a booking share a
/// partition, but during a rebalance two consumers can briefly hold the same
/// one; the lock keeps "closed" and "captured" from being decided side by side.
pub async fn lock_booking(conn: &mut PgConnection, booking_id: Uuid) -> anyhow::Result<()> {
    db::advisory_xact_lock(conn, BOOKING_LOCK, booking_id)
        .await
        .context("lock the booking's payment")
}

const BOOKING_LOCK: LockNamespace = LockNamespace::new("payment.booking");

pub async fn is_closed(conn: &mut PgConnection, booking_id: Uuid) -> anyhow::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM payment_closures WHERE booking_id = $1)")
        .bind(booking_id)
        .fetch_one(conn)
        .await
        .context("read the booking's closure")
}

/// Closes the booking's payment; closing it again changes nothing.
pub async fn close(conn: &mut PgConnection, booking_id: Uuid, reason: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO payment_closures (booking_id, reason) VALUES ($1, $2)
         ON CONFLICT (booking_id) DO NOTHING",
    )
    .bind(booking_id)
    .bind(reason)
    .execute(conn)
    .await
    .context("close the booking's payment")?;
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsQuery {
    booking_id: Option<Uuid>,
    customer_id: Option<String>,
    /// 100 unless asked, at most 1000.
    #[serde(default)]
    limit: PageLimit<100, 1000>,
}

#[derive(Debug, Serialize)]
pub struct Payments {
    items: Vec<LedgerEntry>,
}

/// `GET /payments?booking_id=…` or `?customer_id=…[&limit=…]`: ledger entries, oldest first.
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PaymentsQuery>,
) -> Result<Json<Payments>, ApiError> {
    let limit = query.limit.get()?;
    let mut conn = state.pool.acquire().await?;
    let items = match (query.booking_id, query.customer_id) {
        (Some(booking_id), None) => entries_of_booking(&mut conn, booking_id).await?,
        (None, Some(customer_id)) => {
            if !miles::is_valid_customer_id(&customer_id) {
                return Err(ApiError::bad_request(
                    "customer_id must be 1 to 64 characters of letters, digits, '-', '_' or '.'",
                )
                .with_type("invalid-query")
                .with_extension("field", "customer_id"));
            }
            entries_of_customer(&mut conn, &customer_id, limit).await?
        }
        _ => {
            return Err(
                ApiError::bad_request("give exactly one of booking_id or customer_id")
                    .with_type("invalid-query")
                    .with_extension("field", "booking_id"),
            )
        }
    };
    // A customer sees only its own entries: another customer's booking
    // reads as one without payments.
    let items = items
        .into_iter()
        .filter(|entry| caller.may_act_for(&entry.customer_id))
        .collect();
    Ok(Json(Payments { items }))
}
