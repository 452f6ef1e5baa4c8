//! booking's HTTP API: the public booking endpoints and the operator's saga
//! endpoints. Every refusal is a problem+json; nothing a client sends can
//! make it answer 500.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use contracts::notification::{Contact, FlightSummary, Passenger};
use contracts::payment::redeem_miles;
use contracts::Money;
use saga::{RoutingSlip, SagaError, SlipError};
use serde::{Deserialize, Serialize};
use service_kit::admission::AdmissionTicket;
use service_kit::auth::{Admin, Caller};
use service_kit::{telemetry, ApiError, IdempotencyKey, Json, PageLimit, Path, Query};
use uuid::Uuid;

use crate::db::{self, Booking, BookingStatus, CardRecord, PaymentRecord};
use crate::events;
use crate::request::{self, CreateBooking};
use crate::steps::{self, cancellation, BookingStep, BookingVariables, Canceller};
use crate::AppState;

/// The longest `Prefer: wait` the API promises; the service may honour less
/// (see [`crate::AppState::max_wait`]).
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// `?limit=` of booking's lists: 20 unless asked, at most 100.
type Limit = PageLimit<20, 100>;

/// A booking as the API shows it.
#[derive(Debug, Serialize)]
pub struct BookingView {
    booking_id: Uuid,
    customer_id: String,
    flight_id: Uuid,
    status: BookingStatus,
    seats: u32,
    total: Money,
    flight: FlightSummary,
    passengers: Vec<Passenger>,
    contact: Contact,
    payment: PaymentView,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancellation_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    routing_slip: Option<RoutingSlip>,
}

#[derive(Debug, Serialize)]
struct PaymentView {
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<CardView>,
    miles_offered: u64,
}

#[derive(Debug, Serialize)]
struct CardView {
    brand: String,
    last4: String,
}

fn view(booking: Booking, slip: Option<RoutingSlip>, with_slip: bool) -> BookingView {
    BookingView {
        booking_id: booking.booking_id,
        customer_id: booking.customer_id,
        flight_id: booking.flight_id,
        status: booking.status,
        seats: booking.seats,
        total: booking.total,
        flight: booking.flight,
        passengers: booking.passengers,
        contact: booking.contact,
        payment: PaymentView {
            card: booking.payment.card.map(|card| CardView {
                brand: card.brand,
                last4: card.last4,
            }),
            miles_offered: booking.payment.miles,
        },
        failure_reason: slip.as_ref().and_then(|slip| slip.failure_reason.clone()),
        cancellation_reason: slip
            .as_ref()
            .and_then(|slip| slip.cancellation_reason.clone()),
        created_at: booking.created_at,
        updated_at: booking.updated_at,
        routing_slip: slip.filter(|_| with_slip),
    }
}

/// The booking row and its slip from one snapshot: they change together in
/// one transaction (D13), and two separate reads could straddle it and show
/// a compensated slip beside a booking still confirmed.
/// The booking as `caller` may see it: another customer's booking is "not
/// found", never "forbidden", so the answer says nothing of what exists.
async fn load_view(
    state: &AppState,
    caller: &Caller,
    booking_id: Uuid,
) -> Result<BookingView, ApiError> {
    let mut tx = state.pool.begin().await.map_err(anyhow::Error::from)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?;
    let booking = db::get(&mut tx, booking_id)
        .await?
        .filter(|booking| caller.may_act_for(&booking.customer_id))
        .ok_or_else(booking_not_found)?;
    let slip = saga::store::get(&mut tx, booking_id).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(view(booking, slip, true))
}

fn booking_not_found() -> ApiError {
    ApiError::not_found("no such booking").with_type("booking-not-found")
}

/// `POST /bookings`: validates, asks flight-inventory for a quote and
/// payment for a card token, then stores the booking and starts its saga in
/// one transaction. 202 with the pending booking; with `Prefer: wait=N`, 201
/// once it settles within N seconds.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    idempotency_key: IdempotencyKey,
    ticket: Option<Extension<AdmissionTicket>>,
    headers: HeaderMap,
    Json(request): Json<CreateBooking>,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency_key.as_str();
    let ticket = ticket.map(|Extension(ticket)| ticket);
    let wait = prefer_wait(&headers).map(|wait| wait.min(state.max_wait));
    let valid = request::validate(&request).map_err(|errors| {
        let detail = errors
            .iter()
            .map(|error| format!("{}: {}", error.field, error.detail))
            .collect::<Vec<_>>()
            .join("; ");
        ApiError::unprocessable(detail)
            .with_type("validation-failed")
            .with_extension("errors", errors)
    })?;
    caller.require_acting_for(&valid.customer_id)?;
    let fingerprint = request::fingerprint(&request, &state.fingerprint_key);

    let mut conn = state.pool.acquire().await.map_err(anyhow::Error::from)?;
    if let Some(booking_id) = replayed(&mut conn, idempotency_key, &fingerprint).await? {
        drop(conn);
        telemetry::record_correlation_id(booking_id);
        return respond(&state, &caller, booking_id, wait, ticket.as_ref()).await;
    }
    drop(conn);
    // Minted before the delegates are asked, so every line this request
    // logs from here on (and every message of the saga) carries it.
    let booking_id = Uuid::now_v7();
    telemetry::record_correlation_id(booking_id);

    let quote = state
        .delegates
        .quote(valid.flight_id, valid.seats())
        .await?;
    if valid.card.is_none() {
        let covered = redeem_miles(valid.miles, &quote.total)
            .map_err(anyhow::Error::from)?
            .is_some_and(|miles| miles.amount == quote.total);
        if !covered {
            return Err(ApiError::unprocessable(format!(
                "without a card the miles must cover the whole total of {}",
                quote.total
            ))
            .with_type("insufficient-miles-offered")
            .with_extension("field", "payment.miles"));
        }
    }
    let card = match &valid.card {
        Some(card) => {
            let token = state.delegates.tokenize(card).await?;
            Some(CardRecord {
                card_token: token.card_token,
                brand: token.brand,
                last4: token.last4,
            })
        }
        None => None,
    };

    let now = Utc::now();
    let flight = FlightSummary {
        flight_id: quote.flight_id,
        flight_number: quote.flight_number,
        origin: quote.origin,
        destination: quote.destination,
        departure: quote.departure,
    };
    let booking = Booking {
        booking_id,
        customer_id: valid.customer_id.clone(),
        flight_id: valid.flight_id,
        status: BookingStatus::Pending,
        seats: quote.seats,
        total: quote.total,
        hold_id: Uuid::now_v7(),
        passengers: valid.passengers.clone(),
        contact: valid.contact.clone(),
        payment: PaymentRecord {
            card: card.clone(),
            miles: valid.miles,
        },
        flight: flight.clone(),
        created_at: now,
        updated_at: now,
    };
    let variables = BookingVariables {
        booking_id,
        customer_id: valid.customer_id,
        flight,
        hold_id: booking.hold_id,
        seats: booking.seats,
        passengers: valid.passengers,
        contact: valid.contact,
        card,
        miles_offered: valid.miles,
        quoted_total: quote.total,
    };
    let slip = RoutingSlip::new(
        booking_id,
        steps::SAGA_TYPE,
        state.saga.itinerary(),
        variables.into_map()?,
        state.saga.deadline(now),
        now,
    )
    .map_err(anyhow::Error::from)?;

    let mut tx = state.pool.begin().await.map_err(anyhow::Error::from)?;
    if !db::insert(&mut tx, &booking, idempotency_key, &fingerprint).await? {
        // Another request with this key won the race: answer as a retry of it.
        drop(tx);
        let mut conn = state.pool.acquire().await.map_err(anyhow::Error::from)?;
        let booking_id = replayed(&mut conn, idempotency_key, &fingerprint)
            .await?
            .ok_or_else(|| anyhow::anyhow!("idempotency key {idempotency_key} vanished"))?;
        drop(conn);
        return respond(&state, &caller, booking_id, wait, ticket.as_ref()).await;
    }
    events::publish_created(&mut tx, &booking).await?;
    state
        .orchestrator
        .start(&mut tx, slip, now)
        .await
        .map_err(saga_error)?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    tracing::info!(%booking_id, "booking accepted; saga started");
    respond(&state, &caller, booking_id, wait, ticket.as_ref()).await
}

/// The booking an earlier request with this key made, if it was this same request.
async fn replayed(
    conn: &mut sqlx::PgConnection,
    idempotency_key: &str,
    fingerprint: &str,
) -> Result<Option<Uuid>, ApiError> {
    match db::find_by_key(conn, idempotency_key).await? {
        None => Ok(None),
        Some((booking_id, Some(earlier))) if earlier == fingerprint => Ok(Some(booking_id)),
        // Made before fingerprints were keyed: nothing to compare with.
        Some((booking_id, None)) => Ok(Some(booking_id)),
        Some(_) => Err(ApiError::unprocessable(
            "this Idempotency-Key was already used for a different booking request",
        )
        .with_type("idempotency-key-reused")),
    }
}

/// 202 while pending; with `Prefer: wait`, waits and answers 201 once
/// settled. The costly part is over by then: the request's place in the
/// waiting room goes to the next in line before it waits.
async fn respond(
    state: &AppState,
    caller: &Caller,
    booking_id: Uuid,
    wait: Option<Duration>,
    ticket: Option<&AdmissionTicket>,
) -> Result<Response, ApiError> {
    let mut status = StatusCode::ACCEPTED;
    if let Some(wait) = wait {
        if let Some(ticket) = ticket {
            ticket.release();
        }
        let settled = state.watch.settled(&state.pool, booking_id, wait).await?;
        if settled.is_some_and(BookingStatus::is_settled) {
            status = StatusCode::CREATED;
        }
    }
    let body = load_view(state, caller, booking_id).await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/bookings/{booking_id}")) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(wait) = wait {
        if let Ok(applied) = HeaderValue::from_str(&format!("wait={}", wait.as_secs())) {
            headers.insert("preference-applied", applied);
        }
    }
    Ok((status, headers, Json(body)).into_response())
}

/// `Prefer: wait=N` (RFC 7240), capped; preferences it does not know are ignored.
fn prefer_wait(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|preference| preference.trim().strip_prefix("wait="))
        .find_map(|seconds| seconds.trim().parse::<u64>().ok())
        .map(|seconds| Duration::from_secs(seconds).min(MAX_WAIT))
}

/// `GET /bookings/{id}`: the booking with its routing slip.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(booking_id): Path<Uuid>,
) -> Result<Json<BookingView>, ApiError> {
    Ok(Json(load_view(&state, &caller, booking_id).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /bookings/{id}/cancel`: undoes a pending or confirmed booking —
/// seats released, card and miles refunded — and tells the customer.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(booking_id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, ApiError> {
    telemetry::record_correlation_id(booking_id);
    let request: CancelRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CancelRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|error| {
            ApiError::unprocessable(format!(
                "the body is not a cancellation: {}",
                service_kit::extract::without_values(&error.to_string())
            ))
        })?
    };
    let detail = request.reason.as_deref().map(str::trim).unwrap_or_default();
    if detail.chars().count() > 200 || detail.chars().any(char::is_control) {
        return Err(
            ApiError::unprocessable("a reason is at most 200 printable characters")
                .with_extension("field", "reason"),
        );
    }

    let mut tx = state.pool.begin().await.map_err(anyhow::Error::from)?;
    let booking = db::get_for_update(&mut tx, booking_id)
        .await?
        .filter(|booking| caller.may_act_for(&booking.customer_id))
        .ok_or_else(booking_not_found)?;
    match booking.status {
        BookingStatus::Failed | BookingStatus::Cancelled => {
            return Err(ApiError::conflict(format!(
                "the booking is {} already",
                booking.status.as_str()
            ))
            .with_type("booking-not-cancellable"));
        }
        BookingStatus::Pending | BookingStatus::Confirmed => {}
    }
    if booking.flight.departure <= Utc::now() {
        return Err(ApiError::conflict(
            "the flight has departed; the booking can no longer be cancelled",
        )
        .with_type("flight-departed"));
    }
    let cancellation = cancellation(Canceller::Customer, detail);
    let then = vec![state.saga.notification_step(BookingStep::SendCancellation)];
    match state
        .orchestrator
        .cancel(&mut tx, booking_id, cancellation, then, Utc::now())
        .await
    {
        Ok(_) => tx.commit().await.map_err(anyhow::Error::from)?,
        // Already being undone: by a cancellation (asking again is harmless) or a failure.
        Err(SagaError::Refused(SlipError::NotAllowed(..))) => {
            drop(tx);
            let current = load_view(&state, &caller, booking_id).await?;
            if current.cancellation_reason.is_none() {
                return Err(ApiError::conflict(
                    "the booking is being undone already because it failed",
                )
                .with_type("booking-not-cancellable"));
            }
        }
        Err(error) => return Err(saga_error(error)),
    }
    let body = load_view(&state, &caller, booking_id).await?;
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[serde(default)]
    limit: Limit,
    /// The last booking id of the previous page.
    before: Option<Uuid>,
}

#[derive(Debug, Serialize)]
pub struct BookingList {
    items: Vec<BookingView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<Uuid>,
}

/// `GET /customers/{id}/bookings`: newest first, paged with `before`.
pub async fn for_customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<BookingList>, ApiError> {
    request::validate_customer_id(&customer_id)
        .map_err(|detail| ApiError::bad_request(detail).with_type("invalid-path"))?;
    if !caller.may_act_for(&customer_id) {
        return Err(ApiError::not_found("no such customer").with_type("customer-not-found"));
    }
    let limit = query.limit.get()?;
    let mut conn = state.pool.acquire().await.map_err(anyhow::Error::from)?;
    let before = match query.before {
        Some(id) => {
            let booking = db::get(&mut conn, id)
                .await?
                .filter(|booking| booking.customer_id == customer_id)
                .ok_or_else(|| {
                    ApiError::bad_request("`before` is not one of this customer's bookings")
                        .with_type("invalid-query")
                })?;
            Some(booking.booking_id)
        }
        None => None,
    };
    let bookings = db::list_for_customer(&mut conn, &customer_id, before, limit).await?;
    let next_before = (bookings.len() as i64 == limit)
        .then(|| bookings.last().map(|booking| booking.booking_id))
        .flatten();
    let items = bookings
        .into_iter()
        .map(|booking| view(booking, None, false))
        .collect();
    Ok(Json(BookingList { items, next_before }))
}

/// `GET /sagas/{id}` (operator): the routing slip.
pub async fn get_saga(
    State(state): State<AppState>,
    _admin: Admin,
    Path(saga_id): Path<Uuid>,
) -> Result<Json<RoutingSlip>, ApiError> {
    let mut conn = state.pool.acquire().await.map_err(anyhow::Error::from)?;
    let slip = saga::store::get(&mut conn, saga_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such saga").with_type("saga-not-found"))?;
    Ok(Json(slip))
}

/// `POST /sagas/{id}/retry` (operator): a parked saga's stuck step gets a fresh budget.
#[tracing::instrument(skip_all, fields(saga_id = %saga_id))]
pub async fn retry_saga(
    State(state): State<AppState>,
    _admin: Admin,
    Path(saga_id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let mut tx = state.pool.begin().await.map_err(anyhow::Error::from)?;
    let slip = state
        .orchestrator
        .retry(&mut tx, saga_id, Utc::now())
        .await
        .map_err(saga_error)?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok((StatusCode::ACCEPTED, Json(slip)).into_response())
}

/// `POST /sagas/{id}/compensate` (operator): undoes a running, parked or
/// completed saga. A customer who was already sent a confirmation gets a
/// correction: it cannot be unsent.
#[tracing::instrument(skip_all, fields(saga_id = %saga_id))]
pub async fn compensate_saga(
    State(state): State<AppState>,
    _admin: Admin,
    Path(saga_id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let mut tx = state.pool.begin().await.map_err(anyhow::Error::from)?;
    let current = saga::store::load_for_update(&mut tx, saga_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such saga").with_type("saga-not-found"))?;
    let then = if steps::variables::confirmation_sent(&current)? {
        vec![state.saga.notification_step(BookingStep::SendCorrection)]
    } else {
        Vec::new()
    };
    let cancellation = cancellation(Canceller::Operator, "");
    let slip = state
        .orchestrator
        .cancel(&mut tx, saga_id, cancellation, then, Utc::now())
        .await
        .map_err(saga_error)?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok((StatusCode::ACCEPTED, Json(slip)).into_response())
}

fn saga_error(error: SagaError) -> ApiError {
    match error {
        SagaError::NotFound(_) => ApiError::not_found("no such saga").with_type("saga-not-found"),
        SagaError::Refused(refusal) => {
            ApiError::conflict(refusal.to_string()).with_type("saga-state-conflict")
        }
        SagaError::Unexpected(error) => ApiError::internal(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn prefer_wait_is_read_among_other_preferences_and_capped() {
        assert_eq!(prefer_wait(&headers(&[])), None);
        assert_eq!(
            prefer_wait(&headers(&[("prefer", "respond-async, wait=5")])),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            prefer_wait(&headers(&[("prefer", "wait=600")])),
            Some(MAX_WAIT)
        );
        assert_eq!(prefer_wait(&headers(&[("prefer", "wait=soon")])), None);
    }
}
