//! Miles accounts: a balance is the sum of the customer's ledger entries.

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::auth::{Admin, Caller};
use service_kit::db::{self, LockNamespace};
use service_kit::{ApiError, IdempotencyKey, Json, Path};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::events;

const MAX_CREDIT: i64 = 10_000_000;
const MAX_REASON_CHARS: usize = 200;

#[derive(Debug, Serialize)]
pub struct Balance {
    customer_id: String,
    balance: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    miles: i64,
    reason: String,
}

#[derive(Debug, Serialize)]
pub struct CreditReceipt {
    entry_id: Uuid,
    customer_id: String,
    miles: i64,
    reason: String,
    balance: i64,
}

/// `GET /accounts/{customer_id}/miles`
#[tracing::instrument(skip_all, fields(customer_id = %customer_id))]
pub async fn balance(
    State(pool): State<PgPool>,
    caller: Caller,
    Path(customer_id): Path<String>,
) -> Result<Json<Balance>, ApiError> {
    validate_customer_id(&customer_id)?;
    if !caller.may_act_for(&customer_id) {
        // Another customer's account: as if it did not exist.
        return Err(ApiError::not_found("no such miles account").with_type("account-not-found"));
    }
    let mut conn = pool.acquire().await?;
    let balance = balance_of(&mut conn, &customer_id).await?;
    Ok(Json(Balance {
        customer_id,
        balance,
    }))
}

/// `POST /accounts/{customer_id}/miles/credits`; an `Idempotency-Key` header makes retries safe.
#[tracing::instrument(skip_all, fields(customer_id = %customer_id))]
pub async fn credit(
    State(pool): State<PgPool>,
    _admin: Admin,
    Path(customer_id): Path<String>,
    idempotency_key: Option<IdempotencyKey>,
    Json(request): Json<CreditRequest>,
) -> Result<(StatusCode, Json<CreditReceipt>), ApiError> {
    validate_customer_id(&customer_id)?;
    let reason = request.reason.trim().to_owned();
    if !(1..=MAX_CREDIT).contains(&request.miles) {
        return Err(
            ApiError::unprocessable(format!("miles must be between 1 and {MAX_CREDIT}"))
                .with_extension("field", "miles"),
        );
    }
    // Control characters (a NUL above all, which Postgres text cannot hold) are refused.
    if reason.is_empty()
        || reason.chars().count() > MAX_REASON_CHARS
        || reason.chars().any(char::is_control)
    {
        return Err(ApiError::unprocessable(format!(
            "reason must be 1 to {MAX_REASON_CHARS} printable characters"
        ))
        .with_extension("field", "reason"));
    }
    let idempotency_key = idempotency_key.as_ref().map(IdempotencyKey::as_str);

    let mut tx = pool.begin().await?;
    let inserted: Option<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        "INSERT INTO miles_ledger (entry_id, customer_id, miles, kind, reason, idempotency_key)
         VALUES ($1, $2, $3, 'credit', $4, $5)
         ON CONFLICT (customer_id, idempotency_key) DO NOTHING
         RETURNING entry_id, recorded_at",
    )
    .bind(Uuid::now_v7())
    .bind(&customer_id)
    .bind(request.miles)
    .bind(&reason)
    .bind(idempotency_key)
    .fetch_optional(&mut *tx)
    .await?;
    let (entry_id, status) = match inserted {
        Some((entry_id, recorded_at)) => {
            let entry = events::MilesEntry {
                entry_id,
                customer_id: customer_id.clone(),
                miles: request.miles,
                booking_id: None,
                recorded_at,
            };
            events::publish_miles_entry(&mut tx, entry).await?;
            (entry_id, StatusCode::CREATED)
        }
        None => {
            // The key was used before: the same request gets the same answer, a different one is refused.
            let (entry_id, miles, previous_reason): (Uuid, i64, String) = sqlx::query_as(
                "SELECT entry_id, miles, reason FROM miles_ledger
                 WHERE customer_id = $1 AND idempotency_key = $2",
            )
            .bind(&customer_id)
            .bind(idempotency_key)
            .fetch_one(&mut *tx)
            .await?;
            if miles != request.miles || previous_reason != reason {
                return Err(ApiError::unprocessable(
                    "this Idempotency-Key was already used for a different credit",
                )
                .with_type("idempotency-key-reused"));
            }
            (entry_id, StatusCode::OK)
        }
    };
    let balance = balance_of(&mut tx, &customer_id).await?;
    tx.commit().await?;
    Ok((
        status,
        Json(CreditReceipt {
            entry_id,
            customer_id,
            miles: request.miles,
            reason,
            balance,
        }),
    ))
}

pub(crate) async fn balance_of(
    conn: &mut PgConnection,
    customer_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(miles), 0)::bigint FROM miles_ledger WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_one(conn)
    .await
}

/// Serializes the decisions that spend a customer's miles until the
/// transaction ends, so two redemptions cannot both see the same balance.
/// Credits and refunds only add, so they need not take it.
pub(crate) async fn lock_account(
    conn: &mut PgConnection,
    customer_id: &str,
) -> Result<(), sqlx::Error> {
    db::advisory_xact_lock(conn, ACCOUNT_LOCK, customer_id).await
}

const ACCOUNT_LOCK: LockNamespace = LockNamespace::new("payment.miles");

/// A booking's movement of miles: a redemption (negative) or its refund
/// (positive), with its public event.
pub(crate) async fn record_booking_entry(
    conn: &mut PgConnection,
    customer_id: &str,
    miles: i64,
    kind: &str,
    reason: &str,
    booking_id: Uuid,
) -> anyhow::Result<Uuid> {
    let (entry_id, recorded_at): (Uuid, DateTime<Utc>) = sqlx::query_as(
        "INSERT INTO miles_ledger (entry_id, customer_id, miles, kind, reason, booking_id)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING entry_id, recorded_at",
    )
    .bind(Uuid::now_v7())
    .bind(customer_id)
    .bind(miles)
    .bind(kind)
    .bind(reason)
    .bind(booking_id)
    .fetch_one(&mut *conn)
    .await
    .context("append to the miles ledger")?;
    let entry = events::MilesEntry {
        entry_id,
        customer_id: customer_id.to_owned(),
        miles,
        booking_id: Some(booking_id),
        recorded_at,
    };
    events::publish_miles_entry(conn, entry).await?;
    Ok(entry_id)
}

/// Customer ids are opaque to payment, but bounded and printable.
pub(crate) fn is_valid_customer_id(customer_id: &str) -> bool {
    (1..=64).contains(&customer_id.len())
        && customer_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn validate_customer_id(customer_id: &str) -> Result<(), ApiError> {
    if is_valid_customer_id(customer_id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "customer id must be 1 to 64 characters of letters, digits, '-', '_' or '.'",
        )
        .with_type("invalid-path"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids_are_bounded_and_printable() {
        assert!(validate_customer_id("cust-42").is_ok());
        assert!(validate_customer_id("").is_err());
        assert!(validate_customer_id("has space").is_err());
        assert!(validate_customer_id(&"x".repeat(65)).is_err());
    }
}
