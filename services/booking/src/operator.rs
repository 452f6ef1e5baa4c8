//! The operator's API (admin scope), which the console page calls:
//!
//! - `GET /sagas`: sagas by status, age, flight and customer, latest change
//!   first, paged with a keyset (`before`, `before_id`) that neither skips
//!   nor repeats a saga that shares its `updated_at` with another;
//! - `GET /sagas/{id}/timeline`: what a saga did, step by step, attempt by
//!   attempt, what it compensated, what it carries, why it failed, where its
//!   trace is and what an operator may do with it now;
//! - `/services/{service}/dead-letters…`: the dead letters of every service,
//!   through booking. Booking answers its own from its database and forwards
//!   the others to the owning service's dead-letter API with the operator's
//!   own bearer token, so each service still decides who may see and replay
//!   its messages; a page served by booking needs no CORS and knows one
//!   origin only.
//!
//! The routes act on booking's own tables only: the `sagas` table and, for
//! the customer and flight of a saga, the `bookings` row under the same id.

use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use contracts::notification::FlightSummary;
use messaging::dead_letters::{self, DeadLetter, DeadLetterStatus};
use saga::slip::{ActivityEntry, AttemptResult, CompensationEntry, Phase, Work, WorkState};
use saga::{RoutingSlip, SagaStatus};
use serde::{Deserialize, Serialize};
use service_kit::auth::Admin;
use service_kit::{ApiError, ErrorCode, Json, PageLimit, Path, Query, Routes};
use sqlx::types::Json as SqlJson;
use sqlx::PgPool;
use uuid::Uuid;

use crate::console::{TraceId, TraceUrlTemplate};
use crate::db::{self, BookingStatus};
use crate::delegates::DelegateSettings;
use crate::request;

/// `?limit=` of the saga list: 20 unless asked, at most 100.
type Limit = PageLimit<20, 100>;

/// What the operator routes share.
#[derive(Debug, Clone)]
pub struct OperatorState {
    pub pool: PgPool,
    pub trace_url: Option<TraceUrlTemplate>,
    pub services: ServiceDirectory,
}

/// The operator routes, with their state.
pub fn routes(state: OperatorState) -> Routes {
    Routes::new()
        .get("/sagas", list_sagas)
        .get("/sagas/{saga_id}/timeline", timeline)
        .get("/services/{service}/dead-letters", list_dead_letters)
        .post(
            "/services/{service}/dead-letters/{dead_letter_id}/replay",
            replay_dead_letter,
        )
        .post(
            "/services/{service}/dead-letters/{dead_letter_id}/discard",
            discard_dead_letter,
        )
        .with_state(state)
}

// ---------------------------------------------------------------- saga list

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SagaQuery {
    status: Option<String>,
    flight_id: Option<Uuid>,
    customer_id: Option<String>,
    /// Sagas started at or after this instant (younger than an age).
    created_after: Option<DateTime<Utc>>,
    /// Sagas started before this instant (older than an age).
    created_before: Option<DateTime<Utc>>,
    #[serde(default)]
    limit: Limit,
    /// The previous page's last `updated_at` (its `next_before`).
    before: Option<DateTime<Utc>>,
    /// The previous page's last saga id (its `next_before_id`); only with `before`.
    before_id: Option<Uuid>,
}

/// A validated saga search.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaFilter {
    pub status: Option<SagaStatus>,
    pub flight_id: Option<Uuid>,
    pub customer_id: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Sagas ordered after this `(updated_at, saga_id)` in the listing.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

fn invalid_query(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request(detail).with_type("invalid-query")
}

impl SagaQuery {
    fn validate(self) -> Result<SagaFilter, ApiError> {
        let status = self
            .status
            .as_deref()
            .map(str::parse::<SagaStatus>)
            .transpose()
            .map_err(|error| {
                invalid_query(format!(
                    "{error}; one of {}",
                    SagaStatus::ALL.map(SagaStatus::as_str).join(", ")
                ))
            })?;
        if let Some(customer_id) = &self.customer_id {
            request::validate_customer_id(customer_id)
                .map_err(|detail| invalid_query(format!("customer_id: {detail}")))?;
        }
        if let (Some(after), Some(before)) = (self.created_after, self.created_before) {
            if after >= before {
                return Err(invalid_query(
                    "created_after must be earlier than created_before",
                ));
            }
        }
        let after = match (self.before, self.before_id) {
            // Without an id, strictly before the instant: nil sorts below every id.
            (Some(before), id) => Some((before, id.unwrap_or_else(Uuid::nil))),
            (None, Some(_)) => return Err(invalid_query("before_id needs before")),
            (None, None) => None,
        };
        Ok(SagaFilter {
            status,
            flight_id: self.flight_id,
            customer_id: self.customer_id,
            created_after: self.created_after,
            created_before: self.created_before,
            after,
            limit: self.limit.get()?,
        })
    }
}

/// The step a saga is on, in a line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurrentStep {
    pub step: String,
    pub phase: Phase,
    pub attempt: u32,
    pub attempts_left: u32,
    #[serde(flatten)]
    pub state: WorkState,
}

impl From<&Work> for CurrentStep {
    fn from(work: &Work) -> Self {
        Self {
            step: work.step.name.clone(),
            phase: work.phase,
            attempt: work.attempt,
            attempts_left: work.attempts_left,
            state: work.state.clone(),
        }
    }
}

/// One line of the saga list.
#[derive(Debug, Serialize)]
pub struct SagaSummary {
    pub saga_id: Uuid,
    pub saga_type: String,
    pub status: SagaStatus,
    pub failure_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<CurrentStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flight: Option<FlightSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_status: Option<BookingStatus>,
    pub next_wakeup_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct SagaList {
    items: Vec<SagaSummary>,
    /// Pass both as `before` and `before_id` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct SagaSummaryRow {
    saga_id: Uuid,
    saga_type: String,
    status: String,
    failure_reason: Option<String>,
    current: Option<SqlJson<Work>>,
    customer_id: Option<String>,
    flight: Option<SqlJson<FlightSummary>>,
    booking_status: Option<String>,
    next_wakeup_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl SagaSummaryRow {
    fn into_summary(self) -> anyhow::Result<SagaSummary> {
        Ok(SagaSummary {
            saga_id: self.saga_id,
            saga_type: self.saga_type,
            status: self.status.parse()?,
            failure_reason: self.failure_reason,
            current: self.current.as_ref().map(|SqlJson(work)| work.into()),
            customer_id: self.customer_id,
            flight: self.flight.map(|SqlJson(flight)| flight),
            booking_status: self
                .booking_status
                .as_deref()
                .map(BookingStatus::parse)
                .transpose()?,
            next_wakeup_at: self.next_wakeup_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
        })
    }
}

/// Sagas matching `filter`, latest change first (ties by saga id).
pub async fn search(
    conn: &mut sqlx::PgConnection,
    filter: &SagaFilter,
) -> anyhow::Result<Vec<SagaSummary>> {
    let (before, before_id) = filter.after.unzip();
    let rows: Vec<SagaSummaryRow> = sqlx::query_as(
        "SELECT s.saga_id, s.saga_type, s.status, s.slip->>'failure_reason' AS failure_reason,
                s.slip->'current' AS current, b.customer_id, b.flight, b.status AS booking_status,
                s.next_wakeup_at, s.created_at, s.updated_at, s.finished_at
         FROM sagas s
         LEFT JOIN bookings b ON b.booking_id = s.saga_id
         WHERE ($1::text IS NULL OR s.status = $1)
           AND ($2::uuid IS NULL OR b.flight_id = $2)
           AND ($3::text IS NULL OR b.customer_id = $3)
           AND ($4::timestamptz IS NULL OR s.created_at >= $4)
           AND ($5::timestamptz IS NULL OR s.created_at < $5)
           AND ($6::timestamptz IS NULL OR (s.updated_at, s.saga_id) < ($6, $7))
         ORDER BY s.updated_at DESC, s.saga_id DESC
         LIMIT $8",
    )
    .bind(filter.status.map(SagaStatus::as_str))
    .bind(filter.flight_id)
    .bind(filter.customer_id.as_deref())
    .bind(filter.created_after)
    .bind(filter.created_before)
    .bind(before)
    .bind(before_id)
    .bind(filter.limit)
    .fetch_all(conn)
    .await
    .context("search sagas")?;
    rows.into_iter()
        .map(SagaSummaryRow::into_summary)
        .collect::<anyhow::Result<_>>()
        .context("read a saga summary")
}

/// `GET /sagas?status=…&flight_id=…&customer_id=…&created_before=…` (operator).
pub async fn list_sagas(
    State(state): State<OperatorState>,
    _admin: Admin,
    Query(query): Query<SagaQuery>,
) -> Result<Json<SagaList>, ApiError> {
    let filter = query.validate()?;
    let mut conn = state.pool.acquire().await.map_err(anyhow::Error::from)?;
    let items = search(&mut conn, &filter).await?;
    let last = (items.len() as i64 == filter.limit)
        .then(|| items.last().map(|saga| (saga.updated_at, saga.saga_id)))
        .flatten();
    Ok(Json(SagaList {
        items,
        next_before: last.map(|(updated_at, _)| updated_at),
        next_before_id: last.map(|(_, saga_id)| saga_id),
    }))
}

// ---------------------------------------------------------------- timeline

/// One attempt of a step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptView {
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    pub result: AttemptResult,
}

/// A step of the activity log, with every attempt of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRun {
    pub step: String,
    pub phase: Phase,
    pub attempts: Vec<AttemptView>,
}

/// The booking behind a saga.
#[derive(Debug, Serialize)]
pub struct BookingRef {
    pub customer_id: String,
    pub status: BookingStatus,
    pub flight: FlightSummary,
}

/// The saga's trace, and where to see it.
#[derive(Debug, Serialize)]
pub struct TraceLink {
    pub trace_id: TraceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// What an operator may do with the saga now.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct OperatorActions {
    pub retry: bool,
    pub compensate: bool,
}

/// A saga's story, for the console's timeline.
#[derive(Debug, Serialize)]
pub struct Timeline {
    pub saga_id: Uuid,
    pub saga_type: String,
    pub status: SagaStatus,
    pub pivoted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    pub deadline: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking: Option<BookingRef>,
    /// The steps run so far, in the order they began, each with its attempts.
    pub steps: Vec<StepRun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<CurrentStep>,
    /// Forward steps not started yet.
    pub upcoming: Vec<String>,
    /// Steps to run once everything is compensated.
    pub after_compensation: Vec<String>,
    /// What undoes what, top of the log last.
    pub compensations: Vec<CompensationEntry>,
    pub variables: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceLink>,
    pub actions: OperatorActions,
}

/// The activity log, grouped by step (and phase) in the order the steps began.
pub fn step_runs(log: &[ActivityEntry]) -> Vec<StepRun> {
    let mut runs: Vec<StepRun> = Vec::new();
    for entry in log {
        let attempt = AttemptView {
            attempt: entry.attempt,
            started_at: entry.started_at,
            finished_at: entry.finished_at,
            result: entry.result.clone(),
        };
        match runs
            .iter_mut()
            .find(|run| run.step == entry.step && run.phase == entry.phase)
        {
            Some(run) => run.attempts.push(attempt),
            None => runs.push(StepRun {
                step: entry.step.clone(),
                phase: entry.phase,
                attempts: vec![attempt],
            }),
        }
    }
    runs
}

/// The timeline of `slip`, with its booking and trace.
pub fn timeline_of(
    slip: RoutingSlip,
    booking: Option<BookingRef>,
    trace: Option<TraceLink>,
) -> Timeline {
    Timeline {
        saga_id: slip.saga_id,
        steps: step_runs(&slip.activity_log),
        current: slip.current.as_ref().map(CurrentStep::from),
        upcoming: slip
            .itinerary
            .iter()
            .map(|step| step.name.clone())
            .collect(),
        after_compensation: slip
            .after_compensation
            .iter()
            .map(|step| step.name.clone())
            .collect(),
        actions: OperatorActions {
            retry: slip.status.may_be_retried(),
            compensate: slip.status.may_be_cancelled(),
        },
        saga_type: slip.saga_type,
        status: slip.status,
        pivoted: slip.pivoted,
        failure_reason: slip.failure_reason,
        cancellation_reason: slip.cancellation_reason,
        deadline: slip.deadline,
        created_at: slip.created_at,
        updated_at: slip.updated_at,
        finished_at: slip.finished_at,
        booking,
        compensations: slip.compensation_log,
        variables: slip.variables,
        trace,
    }
}

/// `GET /sagas/{id}/timeline` (operator).
pub async fn timeline(
    State(state): State<OperatorState>,
    _admin: Admin,
    Path(saga_id): Path<Uuid>,
) -> Result<Json<Timeline>, ApiError> {
    // The slip and the booking change together (one transaction): read them
    // from one snapshot.
    let mut tx = state.pool.begin().await.map_err(anyhow::Error::from)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?;
    // The saga's trace context, where the row keeps one: read through
    // `to_jsonb` so a schema without the column reads none.
    let row: Option<(SqlJson<RoutingSlip>, Option<String>)> = sqlx::query_as(
        "SELECT s.slip, to_jsonb(s)->'trace_context'->>'traceparent' FROM sagas s WHERE s.saga_id = $1",
    )
    .bind(saga_id)
    .fetch_optional(&mut *tx)
    .await
    .with_context(|| format!("read saga {saga_id}"))?;
    let (SqlJson(slip), traceparent) =
        row.ok_or_else(|| ApiError::not_found("no such saga").with_type("saga-not-found"))?;
    let booking = db::get(&mut tx, saga_id).await?.map(|booking| BookingRef {
        customer_id: booking.customer_id,
        status: booking.status,
        flight: booking.flight,
    });
    tx.commit().await.map_err(anyhow::Error::from)?;
    let trace = traceparent
        .as_deref()
        .and_then(TraceId::from_traceparent)
        .map(|trace_id| TraceLink {
            url: state
                .trace_url
                .as_ref()
                .map(|template| template.url_for(&trace_id)),
            trace_id,
        });
    Ok(Json(timeline_of(slip, booking, trace)))
}

// ---------------------------------------------------------------- dead letters

/// A service whose dead letters the console shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceName {
    Booking,
    FlightInventory,
    Payment,
    Notification,
}

impl ServiceName {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Booking => "booking",
            Self::FlightInventory => "flight-inventory",
            Self::Payment => "payment",
            Self::Notification => "notification",
        }
    }
}

/// Where the other services' APIs are (`[delegates]`).
#[derive(Debug, Clone)]
pub struct ServiceDirectory {
    client: reqwest::Client,
    inventory_url: String,
    payment_url: String,
    notification_url: String,
}

impl ServiceDirectory {
    pub fn new(settings: &DelegateSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .build()
            .context("build the http client")?;
        let base = |url: &str| url.trim_end_matches('/').to_owned();
        Ok(Self {
            client,
            inventory_url: base(&settings.inventory_url),
            payment_url: base(&settings.payment_url),
            notification_url: base(&settings.notification_url),
        })
    }

    /// The base address of `service`; `None` for booking itself.
    fn url_of(&self, service: ServiceName) -> Option<&str> {
        match service {
            ServiceName::Booking => None,
            ServiceName::FlightInventory => Some(&self.inventory_url),
            ServiceName::Payment => Some(&self.payment_url),
            ServiceName::Notification => Some(&self.notification_url),
        }
    }

    /// Sends `request` with the operator's `Authorization` header and the
    /// current trace context; a problem answer becomes the same problem here.
    async fn forward<T: serde::de::DeserializeOwned>(
        &self,
        service: ServiceName,
        request: reqwest::RequestBuilder,
        authorization: &str,
    ) -> Result<T, ApiError> {
        let request = service_kit::telemetry::current_trace_headers()
            .into_iter()
            .fold(
                request.header(header::AUTHORIZATION, authorization),
                |request, (name, value)| request.header(name, value),
            );
        let response = request
            .send()
            .await
            .map_err(|error| service_unavailable(service, error.into()))?;
        let status = response.status();
        if status.is_success() {
            return response
                .json::<T>()
                .await
                .map_err(|error| service_unavailable(service, error.into()));
        }
        let problem: RemoteProblem = response.json().await.unwrap_or_default();
        Err(match status {
            StatusCode::NOT_FOUND => ApiError::not_found(problem.detail),
            StatusCode::CONFLICT => {
                ApiError::conflict(problem.detail).with_type("dead-letter-not-parked")
            }
            StatusCode::BAD_REQUEST => invalid_query(problem.detail),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "{} refused the operator's token: {}",
                    service.as_str(),
                    problem.detail
                ),
            ),
            _ => service_unavailable(
                service,
                anyhow::anyhow!("answered {status}: {}", problem.detail),
            ),
        })
    }
}

/// The part of another service's problem+json the proxy passes on.
#[derive(Debug, Default, Deserialize)]
struct RemoteProblem {
    #[serde(default)]
    detail: String,
}

fn service_unavailable(service: ServiceName, error: anyhow::Error) -> ApiError {
    tracing::warn!(
        service = service.as_str(),
        error = format!("{error:#}"),
        "a service's dead-letter API failed"
    );
    ApiError::unavailable(
        format!("{} is unavailable; try again shortly", service.as_str()),
        1,
    )
    .with_type("dependency-unavailable")
}

/// The operator's `Authorization` header, already verified as an admin's.
fn authorization(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "an admin request without a readable Authorization header"
            ))
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    status: Option<DeadLetterStatus>,
    #[serde(default)]
    limit: PageLimit<100, 1000>,
}

/// The same query, validated, as the owning service is asked it.
#[derive(Debug, Serialize)]
struct ForwardedQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<DeadLetterStatus>,
    limit: i64,
}

#[derive(Debug, Serialize)]
pub struct DeadLetterList {
    service: ServiceName,
    items: Vec<DeadLetter>,
}

/// A service's own `GET /dead-letters` answer.
#[derive(Debug, Deserialize)]
struct RemoteDeadLetterList {
    items: Vec<DeadLetter>,
}

/// `GET /services/{service}/dead-letters?status=…&limit=…` (operator).
pub async fn list_dead_letters(
    State(state): State<OperatorState>,
    _admin: Admin,
    headers: HeaderMap,
    Path(service): Path<ServiceName>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let limit = query.limit.get()?;
    let items = match state.services.url_of(service) {
        None => dead_letters::list(&state.pool, query.status, limit).await?,
        Some(base) => {
            let request = state
                .services
                .client
                .get(format!("{base}/dead-letters"))
                .query(&ForwardedQuery {
                    status: query.status,
                    limit,
                });
            let remote: RemoteDeadLetterList = state
                .services
                .forward(service, request, authorization(&headers)?)
                .await?;
            remote.items
        }
    };
    Ok(Json(DeadLetterList { service, items }))
}

/// What an operator does with a parked message.
#[derive(Debug, Clone, Copy)]
enum Disposal {
    Replay,
    Discard,
}

async fn dispose(
    state: &OperatorState,
    headers: &HeaderMap,
    service: ServiceName,
    id: Uuid,
    disposal: Disposal,
) -> Result<DeadLetter, ApiError> {
    match (state.services.url_of(service), disposal) {
        (None, Disposal::Replay) => Ok(dead_letters::request_replay(&state.pool, id).await?),
        (None, Disposal::Discard) => Ok(dead_letters::discard(&state.pool, id).await?),
        (Some(base), disposal) => {
            let verb = match disposal {
                Disposal::Replay => "replay",
                Disposal::Discard => "discard",
            };
            let request = state
                .services
                .client
                .post(format!("{base}/dead-letters/{id}/{verb}"));
            state
                .services
                .forward(service, request, authorization(headers)?)
                .await
        }
    }
}

/// `POST /services/{service}/dead-letters/{id}/replay` (operator): the owning
/// consumer applies the message again, through its inbox.
#[tracing::instrument(skip_all, fields(service = service.as_str(), dead_letter_id = %id))]
pub async fn replay_dead_letter(
    State(state): State<OperatorState>,
    _admin: Admin,
    headers: HeaderMap,
    Path((service, id)): Path<(ServiceName, Uuid)>,
) -> Result<(StatusCode, Json<DeadLetter>), ApiError> {
    let dead_letter = dispose(&state, &headers, service, id, Disposal::Replay).await?;
    tracing::info!("dead letter replay requested by an operator");
    Ok((StatusCode::ACCEPTED, Json(dead_letter)))
}

/// `POST /services/{service}/dead-letters/{id}/discard` (operator).
#[tracing::instrument(skip_all, fields(service = service.as_str(), dead_letter_id = %id))]
pub async fn discard_dead_letter(
    State(state): State<OperatorState>,
    _admin: Admin,
    headers: HeaderMap,
    Path((service, id)): Path<(ServiceName, Uuid)>,
) -> Result<Json<DeadLetter>, ApiError> {
    let dead_letter = dispose(&state, &headers, service, id, Disposal::Discard).await?;
    tracing::info!("dead letter discarded by an operator");
    Ok(Json(dead_letter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn query(pairs: &str) -> Result<SagaFilter, ApiError> {
        let uri: axum::http::Uri = format!("/sagas?{pairs}").parse().unwrap();
        let axum::extract::Query(query) = axum::extract::Query::<SagaQuery>::try_from_uri(&uri)
            .map_err(|rejection| invalid_query(rejection.body_text()))?;
        query.validate()
    }

    #[test]
    fn a_saga_query_is_validated_into_a_filter() {
        let filter = query(
            "status=failed_compensation&customer_id=cust-1&flight_id=0193a0c2-7d1e-7c3b-9a1f-2f0e6c1d4b5a\
             &created_before=2026-12-01T10:00:00Z&limit=5\
             &before=2026-12-01T11:00:00Z&before_id=0193a0c2-7d1e-7c3b-9a1f-2f0e6c1d4b5b",
        )
        .unwrap();
        assert_eq!(filter.status, Some(SagaStatus::FailedCompensation));
        assert_eq!(filter.customer_id.as_deref(), Some("cust-1"));
        assert_eq!(filter.limit, 5);
        let (before, id) = filter.after.unwrap();
        assert_eq!(before.to_rfc3339(), "2026-12-01T11:00:00+00:00");
        assert_eq!(id.to_string(), "0193a0c2-7d1e-7c3b-9a1f-2f0e6c1d4b5b");
        assert_eq!(query("").unwrap().limit, 20);
    }

    #[test]
    fn contradictory_or_malformed_saga_filters_are_refused() {
        for (pairs, why) in [
            ("status=stuck", "an unknown status"),
            ("customer_id=a%20b", "a customer id with a space"),
            (
                "before_id=0193a0c2-7d1e-7c3b-9a1f-2f0e6c1d4b5b",
                "an id without its instant",
            ),
            (
                "created_after=2026-12-02T00:00:00Z&created_before=2026-12-01T00:00:00Z",
                "an empty age range",
            ),
            ("limit=0", "a limit below 1"),
            ("limit=101", "a limit above 100"),
        ] {
            let error = query(pairs).expect_err(why);
            assert_eq!(error.code(), ErrorCode::BadRequest, "{why}");
        }
    }

    fn entry(step: &str, phase: Phase, attempt: u32, result: AttemptResult) -> ActivityEntry {
        let started_at = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(i64::from(attempt));
        ActivityEntry {
            step: step.to_owned(),
            phase,
            attempt,
            started_at,
            finished_at: Some(started_at + TimeDelta::milliseconds(200)),
            result,
        }
    }

    #[test]
    fn the_activity_log_is_grouped_by_step_and_phase_in_the_order_steps_began() {
        let timed_out = AttemptResult::TimedOut;
        let log = [
            entry("HoldSeats", Phase::Forward, 1, AttemptResult::Succeeded),
            entry("TakePayment", Phase::Forward, 1, timed_out.clone()),
            entry("TakePayment", Phase::Forward, 2, AttemptResult::Succeeded),
            entry("Refund", Phase::Compensation, 1, timed_out.clone()),
            entry("Refund", Phase::Compensation, 2, timed_out),
            entry("Refund", Phase::Compensation, 3, AttemptResult::Succeeded),
            entry(
                "ReleaseSeats",
                Phase::Compensation,
                1,
                AttemptResult::Succeeded,
            ),
        ];
        let runs = step_runs(&log);
        let shape: Vec<(&str, Phase, Vec<u32>)> = runs
            .iter()
            .map(|run| {
                (
                    run.step.as_str(),
                    run.phase,
                    run.attempts.iter().map(|attempt| attempt.attempt).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("HoldSeats", Phase::Forward, vec![1]),
                ("TakePayment", Phase::Forward, vec![1, 2]),
                ("Refund", Phase::Compensation, vec![1, 2, 3]),
                ("ReleaseSeats", Phase::Compensation, vec![1]),
            ]
        );
    }

    #[test]
    fn services_are_named_in_paths_as_in_their_settings() {
        for service in [
            ServiceName::Booking,
            ServiceName::FlightInventory,
            ServiceName::Payment,
            ServiceName::Notification,
        ] {
            let parsed: ServiceName =
                serde_json::from_value(serde_json::Value::from(service.as_str())).unwrap();
            assert_eq!(parsed, service);
        }
    }
}
