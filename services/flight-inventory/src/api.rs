//! flight-inventory's HTTP API: what other services and people ask the
//! delegate service, and the admin writes that change flights.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use contracts::http::inventory::{Quote, QuoteQuery};
use contracts::Money;
use serde::{Deserialize, Serialize};
use service_kit::auth::{Admin, Caller};
use service_kit::{ApiError, Json, PageLimit, Path, Query};
use uuid::Uuid;

use crate::domain::decide::{ReportPosition, ScheduleFlight};
use crate::domain::error::FlightError;
use crate::domain::events::FlightEvent;
use crate::domain::flight::{Availability, Flight, Position};
use crate::domain::status::FlightStatus;
use crate::read_cache::{self, CachedJson, LoadError};
use crate::search::{self, SearchFilter};
use crate::store::{stream_of, CommandError};
use crate::AppState;

/// A flight as the API shows it.
#[derive(Debug, Serialize)]
pub struct FlightView {
    flight_id: Uuid,
    flight_number: String,
    origin: String,
    destination: String,
    departure: DateTime<Utc>,
    arrival: DateTime<Utc>,
    capacity: u32,
    fare: Money,
    status: FlightStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancellation_reason: Option<String>,
    availability: Availability,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_position: Option<Position>,
    /// The version of the flight's stream this view reflects.
    version: u64,
}

/// The flight as the API shows it; a flight that is not scheduled is a 404.
fn view(flight: &Flight, version: u64) -> Result<FlightView, FlightError> {
    let scheduled = flight.scheduled().ok_or(FlightError::NotScheduled)?;
    Ok(FlightView {
        flight_id: scheduled.id,
        flight_number: scheduled.number.as_str().to_owned(),
        origin: scheduled.origin.as_str().to_owned(),
        destination: scheduled.destination.as_str().to_owned(),
        departure: scheduled.departure,
        arrival: scheduled.arrival,
        capacity: scheduled.capacity,
        fare: scheduled.fare,
        status: scheduled.status,
        cancellation_reason: scheduled.cancellation_reason.clone(),
        availability: flight.availability(),
        last_position: scheduled.last_position,
        version,
    })
}

impl From<FlightError> for ApiError {
    fn from(error: FlightError) -> Self {
        let detail = error.to_string();
        match error {
            FlightError::NotScheduled => {
                ApiError::not_found("no such flight").with_type("flight-not-found")
            }
            FlightError::HoldNotFound { .. } => {
                ApiError::not_found(detail).with_type("hold-not-found")
            }
            FlightError::AlreadyScheduled { .. } => {
                ApiError::conflict(detail).with_type("already-scheduled")
            }
            FlightError::Invalid { field, .. } => {
                ApiError::unprocessable(detail).with_extension("field", field)
            }
            FlightError::CurrencyMismatch { .. } => {
                ApiError::unprocessable(detail).with_type("currency-mismatch")
            }
            FlightError::SoldOut {
                requested,
                available,
            } => ApiError::conflict(detail)
                .with_type("sold-out")
                .with_extension("requested", requested)
                .with_extension("available", available),
            FlightError::FlightClosed { status } => ApiError::conflict(detail)
                .with_type("flight-closed")
                .with_extension("flight_status", status),
            FlightError::NotAirborne { .. } => ApiError::conflict(detail).with_type("not-airborne"),
            FlightError::HoldNotActive { .. } | FlightError::HoldMismatch { .. } => {
                ApiError::conflict(detail).with_type("hold-conflict")
            }
            FlightError::InvalidTransition { .. } => {
                ApiError::conflict(detail).with_type("invalid-transition")
            }
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Refused(refusal) => refusal.into(),
            CommandError::Unexpected(error) => ApiError::internal(error),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailQuery {
    /// Time travel: the flight as it was at this instant.
    as_of: Option<DateTime<Utc>>,
    /// Time travel: the flight as it was right after this version of its stream.
    version: Option<u64>,
}

/// `GET /flights/{id}`, `?as_of=<RFC 3339>` or `?version=N` for the flight as it was.
/// The flight as it is now goes through the read cache; time travel does not
/// (it reads history, which the cache would only duplicate).
#[tracing::instrument(skip_all, fields(flight_id = %flight_id))]
pub async fn detail(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(flight_id): Path<Uuid>,
    Query(query): Query<DetailQuery>,
) -> Result<Response, ApiError> {
    let stream = stream_of(flight_id);
    let flights = state.store.repository();
    let loaded = match (query.as_of, query.version) {
        (None, None) => {
            let store = state.store.clone();
            let body = read_cache::cache_for(state.store.cache(), &caller, &headers)
                .get_or_load(&read_cache::detail_entry(flight_id), move || async move {
                    let loaded = store.load(flight_id).await?;
                    read_cache::to_json(&view(&loaded.state, loaded.version)?)
                })
                .await?;
            return Ok(CachedJson(body).into_response());
        }
        (Some(_), Some(_)) => {
            return Err(
                ApiError::bad_request("give as_of or version, not both").with_type("invalid-query")
            )
        }
        (Some(at), None) => flights.load_as_of(&stream, at).await,
        (None, Some(version)) => {
            let current = flights.load(&stream).await.map_err(anyhow::Error::new)?;
            if version == 0 || version > current.version {
                return Err(ApiError::not_found(format!(
                    "the flight has versions 1 to {}, not {version}",
                    current.version
                ))
                .with_type("version-not-found"));
            }
            flights.load_as_of_version(&stream, version).await
        }
    }
    .map_err(anyhow::Error::new)?;
    Ok(Json(view(&loaded.state, loaded.version)?).into_response())
}

/// `GET /flights/{id}/availability`: from the event stream, through the read
/// cache, which the flight's every change invalidates as it commits.
pub async fn availability(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(flight_id): Path<Uuid>,
) -> Result<CachedJson, ApiError> {
    let store = state.store.clone();
    let body = read_cache::cache_for(state.store.cache(), &caller, &headers)
        .get_or_load(
            &read_cache::availability_entry(flight_id),
            move || async move {
                let loaded = store.load(flight_id).await?;
                loaded.state.scheduled().ok_or(FlightError::NotScheduled)?;
                read_cache::to_json(&loaded.state.availability())
            },
        )
        .await?;
    Ok(CachedJson(body))
}

/// `GET /flights/{id}/quote?seats=N`: what N seats cost now, if they can be sold.
pub async fn quote(
    State(state): State<AppState>,
    _caller: Caller,
    Path(flight_id): Path<Uuid>,
    Query(query): Query<QuoteQuery>,
) -> Result<Json<Quote>, ApiError> {
    let loaded = state.store.load(flight_id).await?;
    let flight = &loaded.state;
    let scheduled = flight.scheduled().ok_or(FlightError::NotScheduled)?;
    let total = flight.quote(query.seats)?;
    let available = flight.availability().available;
    if query.seats > available {
        return Err(FlightError::SoldOut {
            requested: query.seats,
            available,
        }
        .into());
    }
    Ok(Json(Quote {
        flight_id,
        flight_number: scheduled.number.as_str().to_owned(),
        origin: scheduled.origin.as_str().to_owned(),
        destination: scheduled.destination.as_str().to_owned(),
        departure: scheduled.departure,
        arrival: scheduled.arrival,
        seats: query.seats,
        fare: scheduled.fare,
        total,
        available,
        status: scheduled.status.as_str().to_owned(),
    }))
}

#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    version: u64,
    #[serde(rename = "type")]
    event_type: String,
    data: serde_json::Value,
    recorded_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct History {
    flight_id: Uuid,
    items: Vec<HistoryEntry>,
}

/// `GET /flights/{id}/history`: every event of the flight, oldest first.
pub async fn history(
    State(state): State<AppState>,
    _caller: Caller,
    Path(flight_id): Path<Uuid>,
) -> Result<Json<History>, ApiError> {
    use eventstore::EventStore;
    let events = state
        .store
        .events()
        .read_stream(&stream_of(flight_id), 1)
        .await
        .map_err(anyhow::Error::new)?;
    if events.is_empty() {
        return Err(FlightError::NotScheduled.into());
    }
    let items = events
        .into_iter()
        .map(|event| HistoryEntry {
            version: event.version,
            event_type: event.event_type,
            data: event
                .payload
                .get("data")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            recorded_at: event.recorded_at,
        })
        .collect();
    Ok(Json(History { flight_id, items }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    origin: Option<String>,
    destination: Option<String>,
    date: Option<NaiveDate>,
    /// 50 unless asked, at most 200.
    #[serde(default)]
    limit: PageLimit<50, 200>,
}

/// `GET /flights?origin=ICN&destination=NRT&date=2026-12-01`: from the search read model.
/// Through the read cache, which the projection invalidates as it commits:
/// a cached search is never staler than the read model.
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> Result<CachedJson, ApiError> {
    let code = |field: &'static str, value: Option<String>| -> Result<Option<String>, ApiError> {
        match value {
            None => Ok(None),
            Some(code) if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) => {
                Ok(Some(code.to_ascii_uppercase()))
            }
            Some(_) => Err(ApiError::bad_request(format!(
                "{field} must be a three-letter IATA airport code"
            ))
            .with_type("invalid-query")),
        }
    };
    let filter = SearchFilter {
        origin: code("origin", query.origin)?,
        destination: code("destination", query.destination)?,
        date: query.date,
        limit: query.limit.get()?,
    };
    let entry = read_cache::search_entry(filter.cache_key());
    let pool = state.pool.clone();
    let body = read_cache::cache_for(state.store.cache(), &caller, &headers)
        .get_or_load(&entry, move || async move {
            let results = search::search(&pool, &filter)
                .await
                .map_err(LoadError::from)?;
            read_cache::to_json(&results)
        })
        .await?;
    Ok(CachedJson(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    flight_number: String,
    origin: String,
    destination: String,
    departure: DateTime<Utc>,
    arrival: DateTime<Utc>,
    capacity: u32,
    fare: Money,
}

/// `POST /flights` (admin): schedules a flight; `201 Created` with its `Location`.
#[tracing::instrument(skip_all)]
pub async fn schedule(
    State(state): State<AppState>,
    _admin: Admin,
    Json(request): Json<ScheduleRequest>,
) -> Result<Response, ApiError> {
    let flight_id = Uuid::now_v7();
    let command = ScheduleFlight {
        flight_id,
        flight_number: request.flight_number,
        origin: request.origin,
        destination: request.destination,
        departure: request.departure,
        arrival: request.arrival,
        capacity: request.capacity,
        fare: request.fare,
    };
    let now = Utc::now();
    let decided = state
        .store
        .decide(flight_id, |flight| {
            Ok((flight.schedule(command.clone(), now)?, ()))
        })
        .await?;
    let body = view(&decided.flight, decided.version)?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = format!("/flights/{flight_id}").parse() {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(body)).into_response())
}

/// An admin write: decide on the flight, commit, answer with the flight after it.
async fn change(
    state: &AppState,
    flight_id: Uuid,
    decide: impl Fn(&Flight) -> Result<Vec<FlightEvent>, FlightError>,
) -> Result<Json<FlightView>, ApiError> {
    let decided = state
        .store
        .decide(flight_id, |flight| Ok((decide(flight)?, ())))
        .await?;
    Ok(Json(view(&decided.flight, decided.version)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FareRequest {
    fare: Money,
}

/// `POST /flights/{id}/fare` (admin): the new per-seat fare.
pub async fn change_fare(
    State(state): State<AppState>,
    _admin: Admin,
    Path(flight_id): Path<Uuid>,
    Json(request): Json<FareRequest>,
) -> Result<Json<FlightView>, ApiError> {
    change(&state, flight_id, |flight| flight.change_fare(request.fare)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    status: FlightStatus,
}

/// `POST /flights/{id}/status` (admin): `delayed`, `boarding`, `departed`, `arrived`, …
pub async fn change_status(
    State(state): State<AppState>,
    _admin: Admin,
    Path(flight_id): Path<Uuid>,
    Json(request): Json<StatusRequest>,
) -> Result<Json<FlightView>, ApiError> {
    change(&state, flight_id, |flight| {
        flight.change_status(request.status)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionRequest {
    latitude: f64,
    longitude: f64,
    altitude_ft: i32,
    reported_at: Option<DateTime<Utc>>,
}

/// `POST /flights/{id}/position` (admin): where the flight is.
pub async fn report_position(
    State(state): State<AppState>,
    _admin: Admin,
    Path(flight_id): Path<Uuid>,
    Json(request): Json<PositionRequest>,
) -> Result<Json<FlightView>, ApiError> {
    let now = Utc::now();
    let report = ReportPosition {
        latitude: request.latitude,
        longitude: request.longitude,
        altitude_ft: request.altitude_ft,
        reported_at: request.reported_at.unwrap_or(now),
    };
    change(&state, flight_id, |flight| {
        flight.report_position(report, now)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    reason: String,
}

/// `POST /flights/{id}/cancel` (admin): the airline cancels the flight.
pub async fn cancel(
    State(state): State<AppState>,
    _admin: Admin,
    Path(flight_id): Path<Uuid>,
    Json(request): Json<CancelRequest>,
) -> Result<Json<FlightView>, ApiError> {
    change(&state, flight_id, |flight| flight.cancel(&request.reason)).await
}
