//! One open-loop run at a fixed rate: requests leave on schedule whether or
//! not earlier ones have finished, up to an explicit cap on those in flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_support::Latencies;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::mix::{self, Scenario};
use crate::setup::World;
use crate::Targets;

/// Longest `Prefer: wait` booking honours.
pub const MAX_WAIT_SECS: u64 = 30;
/// Beyond the wait itself, for the HTTP exchange and the cancellation.
const REQUEST_SLACK: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct StepPlan {
    pub rate: u64,
    pub duration: Duration,
    pub max_in_flight: usize,
    pub wait_secs: u64,
    /// The sequence number of the first request, so steps never reuse keys.
    pub first_sequence: u64,
}

/// How one request ended.
#[derive(Debug, Clone)]
enum Outcome {
    /// Settled (201) with this booking status, and the saga's failure reason.
    Settled {
        status: String,
        failure_reason: Option<String>,
    },
    /// Still pending when the wait ran out.
    StillPending,
    /// Refused with a problem: status and problem type.
    Refused { status: u16, problem: String },
    /// No HTTP answer at all.
    Transport(String),
}

impl Outcome {
    fn label(&self) -> String {
        match self {
            Self::Settled {
                status,
                failure_reason: Some(reason),
            } => format!("{status}: {}", shorten(reason)),
            Self::Settled { status, .. } => status.clone(),
            Self::StillPending => "still pending when the wait ran out".to_owned(),
            Self::Refused { status, problem } => format!("HTTP {status} {problem}"),
            Self::Transport(kind) => format!("no answer: {kind}"),
        }
    }

    /// Business outcomes (confirmed, failed, sold out) are the system
    /// working; these are it not keeping up or breaking.
    fn is_error(&self) -> bool {
        match self {
            Self::Settled { .. } => false,
            Self::Refused { status, problem } => {
                !(*status == 409 && (problem.contains("sold-out") || problem.contains("closed")))
            }
            Self::StillPending | Self::Transport(_) => true,
        }
    }
}

/// Failure reasons carry ids and amounts; the counts group by their start.
fn shorten(reason: &str) -> String {
    let short: String = reason.chars().take(70).collect();
    if short.len() < reason.len() {
        format!("{short}…")
    } else {
        short
    }
}

#[derive(Debug)]
struct Sample {
    scenario: Scenario,
    /// Sending the request → 202 (booking stored, saga started).
    accept: Option<Duration>,
    /// Sending the request → the booking settled.
    terminal: Option<Duration>,
    /// When it settled, measured from the step's start.
    settled_at: Option<Duration>,
    outcome: Outcome,
    /// For a cancellation after confirmation: the cancel call's status.
    cancel: Option<String>,
}

#[derive(Debug)]
pub struct StepFigures {
    pub rate: u64,
    pub sent: u64,
    /// Requests not sent because the in-flight cap was reached.
    pub shed_at_cap: u64,
    pub peak_in_flight: usize,
    /// How far behind schedule the sender ever was.
    pub max_send_lag: Duration,
    pub settled: u64,
    /// Bookings settled per second over a window as long as the send
    /// window, shifted by the median request → settled latency: at a
    /// constant latency that is exactly the rate kept up with, and it falls
    /// short as soon as the system builds a backlog.
    pub steady_throughput: f64,
    pub errors: u64,
    pub accept: Latencies,
    pub terminal: Latencies,
    pub outcomes: BTreeMap<String, u64>,
    pub by_scenario: BTreeMap<(Scenario, String), u64>,
    pub cancellations: BTreeMap<String, u64>,
    /// From the first send to the last answer.
    pub elapsed: Duration,
}

impl StepFigures {
    pub fn error_share(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        self.errors as f64 / self.sent as f64
    }
}

/// Sends `plan.rate` bookings a second for `plan.duration`, then waits for
/// the answers (bounded by the longest request time).
pub async fn run_step(
    http: &reqwest::Client,
    targets: &Targets,
    world: &World,
    plan: &StepPlan,
) -> StepFigures {
    let total = plan.rate.saturating_mul(plan.duration.as_secs().max(1));
    let interval = Duration::from_secs_f64(1.0 / plan.rate.max(1) as f64);
    let cap = Arc::new(Semaphore::new(plan.max_in_flight));
    let wait_secs = plan.wait_secs.min(MAX_WAIT_SECS);
    let request_budget = Duration::from_secs(wait_secs) + REQUEST_SLACK;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let mut shed_at_cap = 0;
    let mut peak_in_flight = 0;
    let mut max_send_lag = Duration::ZERO;

    for offset in 0..total {
        let due = started + interval.mul_f64(offset as f64);
        tokio::time::sleep_until(due.into()).await;
        max_send_lag = max_send_lag.max(Instant::now().saturating_duration_since(due));
        let Ok(permit) = Arc::clone(&cap).try_acquire_owned() else {
            shed_at_cap += 1;
            continue;
        };
        peak_in_flight = peak_in_flight.max(plan.max_in_flight - cap.available_permits());
        let sequence = plan.first_sequence + offset;
        let request = BookingRequest::new(world, sequence, wait_secs);
        let http = http.clone();
        let targets = targets.clone();
        tasks.spawn(async move {
            let sample =
                tokio::time::timeout(request_budget, request.send(&http, &targets, started))
                    .await
                    .unwrap_or_else(|_| Sample {
                        scenario: request.scenario,
                        accept: None,
                        terminal: None,
                        settled_at: None,
                        outcome: Outcome::Transport("gave up after the request budget".to_owned()),
                        cancel: None,
                    });
            drop(permit);
            sample
        });
    }
    let sent = total - shed_at_cap;

    let mut samples = Vec::with_capacity(sent as usize);
    let drain_deadline = tokio::time::Instant::now() + request_budget + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(drain_deadline, tasks.join_next()).await {
            Ok(Some(Ok(sample))) => samples.push(sample),
            Ok(Some(Err(join_error))) => samples.push(Sample {
                scenario: Scenario::Card,
                accept: None,
                terminal: None,
                settled_at: None,
                outcome: Outcome::Transport(format!("request task failed: {join_error}")),
                cancel: None,
            }),
            Ok(None) => break,
            // Every request has its own timeout, so this is a safety net.
            Err(_) => {
                tasks.abort_all();
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    summarise(
        plan,
        samples,
        sent,
        shed_at_cap,
        peak_in_flight,
        max_send_lag,
        elapsed,
    )
}

fn summarise(
    plan: &StepPlan,
    samples: Vec<Sample>,
    sent: u64,
    shed_at_cap: u64,
    peak_in_flight: usize,
    max_send_lag: Duration,
    elapsed: Duration,
) -> StepFigures {
    let mut outcomes = BTreeMap::new();
    let mut by_scenario = BTreeMap::new();
    let mut cancellations = BTreeMap::new();
    let mut accept = Vec::new();
    let mut terminal = Vec::new();
    let mut settled = 0;
    let mut settled_times = Vec::new();
    let mut errors = 0;
    for sample in &samples {
        let label = sample.outcome.label();
        *outcomes.entry(label.clone()).or_insert(0) += 1;
        *by_scenario.entry((sample.scenario, label)).or_insert(0) += 1;
        if sample.outcome.is_error() {
            errors += 1;
        }
        if let Some(latency) = sample.accept {
            accept.push(latency);
        }
        if let Some(latency) = sample.terminal {
            terminal.push(latency);
        }
        if let Some(at) = sample.settled_at {
            settled += 1;
            settled_times.push(at);
        }
        if let Some(cancel) = &sample.cancel {
            *cancellations.entry(cancel.clone()).or_insert(0) += 1;
        }
    }
    // Requests that never got an answer in time count as errors too.
    errors += sent.saturating_sub(samples.len() as u64);
    let terminal = Latencies::from(terminal);
    let shift = Duration::from_secs_f64(terminal.percentile_ms(0.5).max(0.0) / 1000.0);
    let window_end = shift + plan.duration;
    let settled_in_window = settled_times
        .iter()
        .filter(|at| **at >= shift && **at <= window_end)
        .count();
    StepFigures {
        rate: plan.rate,
        sent,
        shed_at_cap,
        peak_in_flight,
        max_send_lag,
        settled,
        steady_throughput: if plan.duration.is_zero() {
            0.0
        } else {
            settled_in_window as f64 / plan.duration.as_secs_f64()
        },
        errors,
        accept: Latencies::from(accept),
        terminal,
        outcomes,
        by_scenario,
        cancellations,
        elapsed,
    }
}

/// One booking request, built before it is sent so sending does no choosing.
#[derive(Debug)]
struct BookingRequest {
    scenario: Scenario,
    idempotency_key: String,
    body: Value,
    wait_secs: u64,
}

#[derive(Debug, Deserialize)]
struct BookingAnswer {
    booking_id: Uuid,
    status: String,
    #[serde(default)]
    failure_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Problem {
    #[serde(rename = "type", default)]
    problem_type: Option<String>,
}

impl BookingRequest {
    fn new(world: &World, sequence: u64, wait_secs: u64) -> Self {
        let scenario = mix::scenario_for(sequence);
        let flight_id = if scenario == Scenario::SmallFlight {
            pick(&world.small_flights, sequence / 20)
        } else {
            pick(&world.big_flights, sequence)
        };
        let body = world.booking_body(
            "loadgen",
            scenario,
            sequence,
            mix::passengers_for(sequence),
            flight_id,
        );
        Self {
            scenario,
            idempotency_key: format!("loadgen-{}-{sequence}", world.run_id),
            body,
            wait_secs,
        }
    }

    /// POSTs the booking (202 = accepted), then the same request again with
    /// `Prefer: wait` — an idempotent replay, which answers once the booking
    /// has settled. Both latencies are measured from the first send.
    async fn send(&self, http: &reqwest::Client, targets: &Targets, step_start: Instant) -> Sample {
        let sent_at = Instant::now();
        let mut sample = Sample {
            scenario: self.scenario,
            accept: None,
            terminal: None,
            settled_at: None,
            outcome: Outcome::StillPending,
            cancel: None,
        };
        let accepted = match self.post(http, targets, None).await {
            Ok(answer) => answer,
            Err(outcome) => {
                sample.outcome = outcome;
                return sample;
            }
        };
        sample.accept = Some(sent_at.elapsed());
        let answer = if accepted.status == "pending" {
            match self.post(http, targets, Some(self.wait_secs)).await {
                Ok(answer) => answer,
                // Accepted, but the wait for it to settle was refused or cut
                // short: the booking exists and the invariant checks see it.
                Err(Outcome::Refused { status, problem }) => {
                    sample.outcome = Outcome::Refused {
                        status,
                        problem: format!("{problem} (accepted; on the settle wait)"),
                    };
                    return sample;
                }
                Err(outcome) => {
                    sample.outcome = outcome;
                    return sample;
                }
            }
        } else {
            accepted
        };
        if answer.status == "pending" {
            return sample;
        }
        sample.terminal = Some(sent_at.elapsed());
        sample.settled_at = Some(step_start.elapsed());
        if self.scenario == Scenario::CancelAfterConfirm && answer.status == "confirmed" {
            sample.cancel = Some(cancel(http, targets, answer.booking_id).await);
        }
        sample.outcome = Outcome::Settled {
            status: answer.status,
            failure_reason: answer.failure_reason,
        };
        sample
    }

    async fn post(
        &self,
        http: &reqwest::Client,
        targets: &Targets,
        wait_secs: Option<u64>,
    ) -> Result<BookingAnswer, Outcome> {
        let mut request = http
            .post(format!("{}/bookings", targets.booking_url))
            .header("Idempotency-Key", &self.idempotency_key)
            .json(&self.body);
        if let Some(wait_secs) = wait_secs {
            request = request.header("Prefer", format!("wait={wait_secs}"));
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if status == StatusCode::ACCEPTED || status == StatusCode::CREATED {
            return response.json::<BookingAnswer>().await.map_err(transport);
        }
        let problem = response
            .json::<Problem>()
            .await
            .ok()
            .and_then(|problem| problem.problem_type)
            .unwrap_or_default();
        Err(Outcome::Refused {
            status: status.as_u16(),
            problem,
        })
    }
}

fn pick(flights: &[Uuid], index: u64) -> Uuid {
    flights
        .get((index % flights.len().max(1) as u64) as usize)
        .copied()
        .unwrap_or_default()
}

fn transport(error: reqwest::Error) -> Outcome {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection refused or reset"
    } else if error.is_decode() {
        "unreadable body"
    } else {
        "request error"
    };
    Outcome::Transport(kind.to_owned())
}

/// The customer changes their mind: `POST /bookings/{id}/cancel`.
async fn cancel(http: &reqwest::Client, targets: &Targets, booking_id: Uuid) -> String {
    let url = format!("{}/bookings/{booking_id}/cancel", targets.booking_url);
    match http
        .post(&url)
        .json(&json!({"reason": "loadgen: the customer changed plans"}))
        .send()
        .await
    {
        Ok(response) => format!("cancel HTTP {}", response.status().as_u16()),
        Err(error) => format!("cancel failed: {}", transport(error).label()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sold_out_refusals_are_business_outcomes_not_errors() {
        let sold_out = Outcome::Refused {
            status: 409,
            problem: "/problems/sold-out".to_owned(),
        };
        assert!(!sold_out.is_error());
        let unavailable = Outcome::Refused {
            status: 503,
            problem: String::new(),
        };
        assert!(unavailable.is_error());
        assert!(Outcome::StillPending.is_error());
    }

    #[test]
    fn long_failure_reasons_are_grouped_by_their_start() {
        let reason = "x".repeat(200);
        assert_eq!(shorten(&reason).chars().count(), 71);
        assert_eq!(shorten("card declined"), "card declined");
    }
}
