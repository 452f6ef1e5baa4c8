//! Bookings through booking's public API while faults hit the stack: the
//! load generator's mix (`loadgen::mix`) and world (`loadgen::setup`), sent
//! open loop at a fixed rate, each request retried with its
//! `Idempotency-Key` while the stack cannot answer (a killed service, a
//! restarting broker or database), as a careful client would.
//!
//! The driver checks one promise itself: every answer for one key names the
//! same booking. Everything else is the invariant checker's job.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadgen::mix::{self, Scenario};
use loadgen::setup::World;
use loadgen::Targets;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use uuid::Uuid;

/// How long one booking keeps retrying before the driver gives up on it.
const BOOKING_PATIENCE: Duration = Duration::from_secs(150);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// `Prefer: wait` for a booking that is cancelled once confirmed.
const WAIT_SECS: u64 = 20;
const MAX_IN_FLIGHT: usize = 400;
/// Traffic goes on while faults are still being injected, up to this many
/// times the bookings asked for.
pub const MAX_EXTRA_FACTOR: u64 = 5;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TrafficFigures {
    pub sent: u64,
    pub accepted: u64,
    /// Refused for a business reason (409: sold out, closed).
    pub refused: u64,
    /// Gave up after `BOOKING_PATIENCE` of retries, or refused unexpectedly.
    pub gave_up: u64,
    pub retried_requests: u64,
    pub cancellations: u64,
    /// The answer kinds the driver gave up on, counted.
    pub problems: BTreeMap<String, u64>,
    /// Keys answered with two different bookings: a broken idempotency promise.
    pub idempotency_violations: Vec<String>,
}

/// One booking's story, as the driver saw it.
#[derive(Debug, Default)]
struct Attempt {
    accepted: bool,
    refused: bool,
    retries: u64,
    cancelled: bool,
    problem: Option<String>,
    idempotency_violation: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BookingAnswer {
    booking_id: Uuid,
    status: String,
}

/// Sends bookings at `rate` a second until at least `bookings` are sent
/// and `faults_done` says every fault of the run has been injected and
/// measured (so no fault hits an idle stack), at most `MAX_EXTRA_FACTOR`
/// times `bookings`; then waits for each to be accepted (or given up).
pub async fn drive(
    http: reqwest::Client,
    targets: Targets,
    world: Arc<World>,
    bookings: u64,
    rate: u64,
    key_prefix: String,
    faults_done: watch::Receiver<bool>,
) -> TrafficFigures {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let cap = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let mut sent = 0;
    for sequence in 0..bookings.saturating_mul(MAX_EXTRA_FACTOR) {
        if sequence >= bookings && *faults_done.borrow() {
            break;
        }
        tokio::time::sleep_until((started + interval.mul_f64(sequence as f64)).into()).await;
        let Ok(permit) = Arc::clone(&cap).acquire_owned().await else {
            break;
        };
        let http = http.clone();
        let targets = targets.clone();
        let world = Arc::clone(&world);
        let key = format!("{key_prefix}-{sequence}");
        tasks.spawn(async move {
            let attempt = book(&http, &targets, &world, sequence, &key).await;
            drop(permit);
            attempt
        });
        sent += 1;
    }
    let mut figures = TrafficFigures {
        sent,
        ..TrafficFigures::default()
    };
    while let Some(joined) = tasks.join_next().await {
        let attempt = joined.unwrap_or_else(|error| Attempt {
            problem: Some(format!("the request task failed: {error}")),
            ..Attempt::default()
        });
        figures.accepted += u64::from(attempt.accepted);
        figures.refused += u64::from(attempt.refused);
        figures.cancellations += u64::from(attempt.cancelled);
        figures.retried_requests += attempt.retries;
        if let Some(problem) = attempt.problem {
            figures.gave_up += 1;
            *figures.problems.entry(problem).or_insert(0) += 1;
        }
        if let Some(violation) = attempt.idempotency_violation {
            figures.idempotency_violations.push(violation);
        }
    }
    figures
}

/// A booking that should confirm, sent after a fault to see the saga run end
/// to end again: its settle time is the fault's end-to-end recovery.
pub async fn probe(
    http: &reqwest::Client,
    targets: &Targets,
    world: &World,
    key: &str,
) -> Result<String, String> {
    let body = booking_body(world, Scenario::Card, 1, 1, pick(&world.big_flights, 0));
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    loop {
        match post_booking(http, targets, key, &body, Some(WAIT_SECS)).await {
            Ok(answer) if answer.status != "pending" => return Ok(answer.status),
            Ok(_) => {}
            Err(Answer::Refused(problem)) => return Err(problem),
            Err(Answer::Retry(_)) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        if started.elapsed() > BOOKING_PATIENCE {
            return Err("still pending".to_owned());
        }
    }
}

async fn book(
    http: &reqwest::Client,
    targets: &Targets,
    world: &World,
    sequence: u64,
    key: &str,
) -> Attempt {
    let scenario = mix::scenario_for(sequence);
    let flight = if scenario == Scenario::SmallFlight {
        pick(&world.small_flights, sequence / 20)
    } else {
        pick(&world.big_flights, sequence)
    };
    let body = booking_body(
        world,
        scenario,
        sequence,
        mix::passengers_for(sequence),
        flight,
    );
    let mut attempt = Attempt::default();
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut booking: Option<Uuid> = None;
    // Until accepted; for a cancellation, until it has settled.
    let wait = (scenario == Scenario::CancelAfterConfirm).then_some(WAIT_SECS);
    let settled = loop {
        match post_booking(
            http,
            targets,
            key,
            &body,
            wait.filter(|_| booking.is_some()),
        )
        .await
        {
            Ok(answer) => {
                if let Some(first) = booking {
                    if first != answer.booking_id {
                        attempt.idempotency_violation = Some(format!(
                            "key {key} answered booking {first}, then {}",
                            answer.booking_id
                        ));
                    }
                }
                booking = Some(answer.booking_id);
                attempt.accepted = true;
                if wait.is_none() || answer.status != "pending" {
                    break Some(answer);
                }
            }
            Err(Answer::Refused(problem)) => {
                if problem.starts_with("409") {
                    attempt.refused = true;
                } else {
                    attempt.problem = Some(problem);
                }
                break None;
            }
            Err(Answer::Retry(problem)) => {
                attempt.retries += 1;
                if started.elapsed() > BOOKING_PATIENCE {
                    attempt.problem = Some(format!("gave up retrying: {problem}"));
                    break None;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        if started.elapsed() > BOOKING_PATIENCE {
            break None;
        }
    };
    if let Some(answer) = settled {
        if scenario == Scenario::CancelAfterConfirm && answer.status == "confirmed" {
            attempt.cancelled = cancel(http, targets, answer.booking_id).await;
        }
    }
    attempt
}

/// How a request ended, for the retry loop.
enum Answer {
    /// Not answered, or answered by a stack that cannot serve right now
    /// (5xx, 429): the same request again later.
    Retry(String),
    /// A client-side refusal (4xx other than 429): "409 /problems/sold-out".
    Refused(String),
}

async fn post_booking(
    http: &reqwest::Client,
    targets: &Targets,
    key: &str,
    body: &Value,
    wait_secs: Option<u64>,
) -> Result<BookingAnswer, Answer> {
    let mut request = http
        .post(format!("{}/bookings", targets.booking_url))
        .header("Idempotency-Key", key)
        .json(body);
    if let Some(wait_secs) = wait_secs {
        request = request.header("Prefer", format!("wait={wait_secs}"));
    }
    let response = request
        .send()
        .await
        .map_err(|error| Answer::Retry(transport_kind(&error)))?;
    let status = response.status();
    if status == StatusCode::ACCEPTED || status == StatusCode::CREATED {
        return response
            .json::<BookingAnswer>()
            .await
            .map_err(|error| Answer::Retry(transport_kind(&error)));
    }
    let problem = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|problem| {
            problem
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let label = format!("{} {problem}", status.as_u16());
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Err(Answer::Retry(label))
    } else {
        Err(Answer::Refused(label))
    }
}

/// `POST /bookings/{id}/cancel`, retried while the stack cannot answer.
async fn cancel(http: &reqwest::Client, targets: &Targets, booking_id: Uuid) -> bool {
    let url = format!("{}/bookings/{booking_id}/cancel", targets.booking_url);
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    while started.elapsed() < BOOKING_PATIENCE {
        let sent = http
            .post(&url)
            .json(&json!({"reason": "chaos: the customer changed plans"}))
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => return true,
            Ok(response)
                if response.status().is_client_error()
                    && response.status() != StatusCode::TOO_MANY_REQUESTS =>
            {
                return false
            }
            _ => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    false
}

fn booking_body(
    world: &World,
    scenario: Scenario,
    sequence: u64,
    passengers: usize,
    flight_id: Uuid,
) -> Value {
    world.booking_body("chaos", scenario, sequence, passengers, flight_id)
}

fn pick(flights: &[Uuid], index: u64) -> Uuid {
    flights
        .get((index % flights.len().max(1) as u64) as usize)
        .copied()
        .unwrap_or_default()
}

fn transport_kind(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection refused"
    } else if error.is_decode() {
        "unreadable body"
    } else {
        "connection lost"
    };
    format!("no answer: {kind}")
}
