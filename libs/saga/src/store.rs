//! Routing slips in the owning service's `sagas` table (migration 3001).
//!
//! Every function takes the caller's connection, so a slip is always written
//! in the same transaction as the commands it sends and the state it mirrors.
//! Loading for change takes the row lock: replies, timers, cancellations and
//! operator actions on one saga are applied one at a time.

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgConnection;
use uuid::Uuid;

use service_kit::trace_context::TraceContext;

use crate::slip::RoutingSlip;

/// Stores a new slip, with the trace context everything the saga does later
/// continues (migration 3002).
pub async fn insert(
    conn: &mut PgConnection,
    slip: &RoutingSlip,
    trace: &TraceContext,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO sagas (saga_id, saga_type, status, slip, next_wakeup_at, created_at, updated_at, finished_at, trace_context)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(slip.saga_id)
    .bind(&slip.saga_type)
    .bind(slip.status.as_str())
    .bind(Json(slip))
    .bind(slip.next_wakeup())
    .bind(slip.created_at)
    .bind(slip.updated_at)
    .bind(slip.finished_at)
    .bind((!trace.is_empty()).then_some(Json(trace)))
    .execute(conn)
    .await
    .with_context(|| format!("insert saga {}", slip.saga_id))?;
    Ok(())
}

/// The slip, locked until the caller's transaction ends.
pub async fn load_for_update(
    conn: &mut PgConnection,
    saga_id: Uuid,
) -> anyhow::Result<Option<RoutingSlip>> {
    let slip: Option<Json<RoutingSlip>> =
        sqlx::query_scalar("SELECT slip FROM sagas WHERE saga_id = $1 FOR UPDATE")
            .bind(saga_id)
            .fetch_optional(conn)
            .await
            .with_context(|| format!("load saga {saga_id}"))?;
    Ok(slip.map(|Json(slip)| slip))
}

/// The slip as it is now, without locking it.
pub async fn get(conn: &mut PgConnection, saga_id: Uuid) -> anyhow::Result<Option<RoutingSlip>> {
    let slip: Option<Json<RoutingSlip>> =
        sqlx::query_scalar("SELECT slip FROM sagas WHERE saga_id = $1")
            .bind(saga_id)
            .fetch_optional(conn)
            .await
            .with_context(|| format!("read saga {saga_id}"))?;
    Ok(slip.map(|Json(slip)| slip))
}

/// The trace context the saga was started in; empty if it was started
/// outside a trace or before sagas kept one.
pub async fn trace_context(conn: &mut PgConnection, saga_id: Uuid) -> anyhow::Result<TraceContext> {
    let trace = sqlx::query_scalar::<_, Option<Json<TraceContext>>>(
        "SELECT trace_context FROM sagas WHERE saga_id = $1",
    )
    .bind(saga_id)
    .fetch_optional(conn)
    .await
    .with_context(|| format!("read the trace context of saga {saga_id}"))?
    .flatten();
    Ok(trace.map(|Json(trace)| trace).unwrap_or_default())
}

/// Writes a changed slip back.
pub async fn save(conn: &mut PgConnection, slip: &RoutingSlip) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE sagas SET status = $2, slip = $3, next_wakeup_at = $4, updated_at = $5, finished_at = $6
         WHERE saga_id = $1",
    )
    .bind(slip.saga_id)
    .bind(slip.status.as_str())
    .bind(Json(slip))
    .bind(slip.next_wakeup())
    .bind(slip.updated_at)
    .bind(slip.finished_at)
    .execute(conn)
    .await
    .with_context(|| format!("save saga {}", slip.saga_id))?;
    Ok(())
}

/// Claims one saga whose timer is due, skipping any another worker or a
/// reply holds: the row stays locked until the caller's transaction ends.
pub async fn claim_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT saga_id FROM sagas WHERE next_wakeup_at <= $1
         ORDER BY next_wakeup_at LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .fetch_optional(conn)
    .await
    .context("claim a due saga")
}

/// Moves a saga's timer later: used when waking it failed, so one broken
/// saga cannot hold up every other due one.
pub async fn postpone(
    conn: &mut PgConnection,
    saga_id: Uuid,
    until: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE sagas SET next_wakeup_at = $2 WHERE saga_id = $1")
        .bind(saga_id)
        .bind(until)
        .execute(conn)
        .await
        .with_context(|| format!("postpone saga {saga_id}"))?;
    Ok(())
}

/// How many sagas are in one unsettled status, and how long the oldest has
/// been there.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OpenSagas {
    pub status: String,
    pub count: i64,
    /// Seconds since the oldest of them was started.
    pub oldest_age_seconds: f64,
}

/// Sagas that are not settled (running, compensating, or waiting for an
/// operator), by status; statuses without any are left out.
pub async fn open_sagas(conn: &mut PgConnection) -> anyhow::Result<Vec<OpenSagas>> {
    sqlx::query_as(
        "SELECT status, count(*) AS count,
                extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_seconds
         FROM sagas
         WHERE status IN ('running', 'compensating', 'failed_compensation', 'parked')
         GROUP BY status",
    )
    .fetch_all(conn)
    .await
    .context("count unsettled sagas")
}

/// How many sagas started more than `older_than` ago are still undecided:
/// running before their pivot, or compensating. A healthy saga is decided
/// within a second or two; one that is not after a whole step timeout has
/// had an attempt go unanswered, so this counts the work stuck behind a
/// backlog (booking's backlog gate, `service_kit::backlog`). Sagas past
/// their pivot are left out: their outcome stands whatever the remaining
/// steps wait for.
pub async fn count_undecided_older_than(
    conn: &mut PgConnection,
    older_than: std::time::Duration,
) -> anyhow::Result<u64> {
    let older_than_ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sagas
         WHERE created_at < now() - make_interval(secs => $1::float8 / 1000)
           AND (status = 'compensating'
                OR (status = 'running' AND NOT (slip->>'pivoted')::boolean))",
    )
    .bind(older_than_ms)
    .fetch_one(conn)
    .await
    .context("count the undecided sagas")?;
    Ok(u64::try_from(count).unwrap_or(0))
}
