//! The waiting room: a bounded, first-come-first-served admission queue in
//! front of chosen routes.
//!
//! Up to `max_concurrent` requests run at once; the next `max_waiting` wait
//! in line, in arrival order, for at most `max_wait_ms`; anyone beyond the
//! line, or still waiting at the end of it, is answered 503 with
//! `Retry-After` and a problem body. The line is `tokio::sync::Semaphore`'s
//! own queue, which is FIFO: a permit given back goes to the longest waiter,
//! and `try_acquire` never succeeds while anyone waits, so nobody jumps the
//! line. The bound is a count of waiters kept beside it.
//!
//! It guards routes, not the service: a service applies [`guard`]
//! to the routes that are expensive and bursty (booking's `POST /bookings`),
//! so reads never queue behind them. It sits inside the shared stack of
//! [`crate::http`]: a request waiting here holds one of the service's
//! `max_concurrent_requests` slots and runs against its request timeout, so
//! [`AdmissionSettings::check_against`] insists that the line fits within the
//! first with room to spare, and that the wait ends before the second.
//!
//! Metrics, labelled with the queue's name: `admission_queue_depth` (waiting
//! now), `admission_in_flight` (admitted and running),
//! `admission_wait_seconds` (time in line of those admitted),
//! `admission_admitted_total` and `admission_rejected_total{reason}`
//! (`queue_full` or `timed_out`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::problem::ApiError;
use crate::settings::HttpSettings;

/// `[admission]`: how many guarded requests run at once, how many may wait
/// and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AdmissionSettings {
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    #[serde(default = "default_max_waiting")]
    pub max_waiting: usize,
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            max_concurrent: default_max_concurrent(),
            max_waiting: default_max_waiting(),
            max_wait_ms: default_max_wait_ms(),
        }
    }
}

// A booking is a few database transactions and two calls to other services;
// on two cores about 16 at once keep the CPU busy without piling up on the
// database pool, and a line of 128 drains within the wait at ~50 a second.
fn default_max_concurrent() -> usize {
    16
}
fn default_max_waiting() -> usize {
    128
}
fn default_max_wait_ms() -> u64 {
    5_000
}

impl AdmissionSettings {
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }

    /// Refuses settings that contradict the HTTP stack around the queue:
    /// admitted and waiting requests together must leave at least a quarter
    /// of the service's in-flight slots to everything else (so a full line
    /// never makes reads shed), and the wait must end before the request's
    /// deadline (or the deadline answers first, with a less helpful 503).
    pub fn check_against(&self, http: &HttpSettings) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_concurrent >= 1,
            "admission.max_concurrent must be at least 1"
        );
        let guarded = self.max_concurrent + self.max_waiting;
        let room = http.max_concurrent_requests - http.max_concurrent_requests / 4;
        anyhow::ensure!(
            guarded <= room,
            "admission.max_concurrent + admission.max_waiting ({guarded}) must leave a quarter of \
             http.max_concurrent_requests ({}) to other requests: at most {room}",
            http.max_concurrent_requests
        );
        anyhow::ensure!(
            self.max_wait() < http.request_timeout(),
            "admission.max_wait_ms ({}) must be shorter than http.request_timeout_ms ({})",
            self.max_wait_ms,
            http.request_timeout_ms
        );
        Ok(())
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the waiting line is full")]
    QueueFull,
    #[error("no place freed up within the longest wait")]
    TimedOut,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::TimedOut => "timed_out",
        }
    }
}

/// A bounded FIFO admission queue; clones share it.
#[derive(Debug, Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: &'static str,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    in_flight: AtomicUsize,
    settings: AdmissionSettings,
}

/// A place among the admitted; the next in line goes in when it is dropped.
#[derive(Debug)]
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    inner: Arc<Inner>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let running = self.inner.in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("admission_in_flight", "queue" => self.inner.name).set(running as f64);
    }
}

/// A place in line, given up when the waiter is admitted, refused or goes
/// away (a client that hangs up drops its request's future).
struct InLine<'a> {
    inner: &'a Inner,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        let waiting = self.inner.waiting.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("admission_queue_depth", "queue" => self.inner.name).set(waiting as f64);
    }
}

impl Admission {
    /// A queue named `name` (the metrics' `queue` label).
    pub fn new(name: &'static str, settings: AdmissionSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                permits: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
                waiting: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                settings,
            }),
        }
    }

    /// How many wait in line now.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::SeqCst)
    }

    /// How many were admitted and have not finished.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Waits for a place: at once if one is free, else in line behind
    /// everyone who came earlier, for at most `max_wait`.
    pub async fn admit(&self) -> Result<Admitted, Refusal> {
        let inner = &self.inner;
        if let Ok(permit) = Arc::clone(&inner.permits).try_acquire_owned() {
            metrics::histogram!("admission_wait_seconds", "queue" => inner.name).record(0.0);
            return Ok(self.admitted(permit));
        }
        let joined = inner
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |waiting| {
                (waiting < inner.settings.max_waiting).then_some(waiting + 1)
            });
        let Ok(ahead) = joined else {
            return Err(self.refused(Refusal::QueueFull));
        };
        metrics::gauge!("admission_queue_depth", "queue" => inner.name).set((ahead + 1) as f64);
        let in_line = InLine { inner };
        let started = Instant::now();
        let acquired = tokio::time::timeout(
            inner.settings.max_wait(),
            Arc::clone(&inner.permits).acquire_owned(),
        )
        .await;
        drop(in_line);
        match acquired {
            Ok(Ok(permit)) => {
                metrics::histogram!("admission_wait_seconds", "queue" => inner.name)
                    .record(started.elapsed().as_secs_f64());
                Ok(self.admitted(permit))
            }
            // The semaphore is never closed; a closed one admits nobody.
            Ok(Err(_)) | Err(_) => Err(self.refused(Refusal::TimedOut)),
        }
    }

    fn admitted(&self, permit: OwnedSemaphorePermit) -> Admitted {
        let running = self.inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::gauge!("admission_in_flight", "queue" => self.inner.name).set(running as f64);
        metrics::counter!("admission_admitted_total", "queue" => self.inner.name).increment(1);
        Admitted {
            _permit: permit,
            inner: Arc::clone(&self.inner),
        }
    }

    fn refused(&self, refusal: Refusal) -> Refusal {
        metrics::counter!(
            "admission_rejected_total",
            "queue" => self.inner.name,
            "reason" => refusal.label()
        )
        .increment(1);
        // Counted, not logged at warn: a surge would turn each refusal into a line.
        tracing::debug!(
            queue = self.inner.name,
            reason = refusal.label(),
            "request not admitted"
        );
        refusal
    }

    /// How long a refused client should wait before trying again: the
    /// longest wait, the time in which the whole line ahead was served or
    /// sent away; at least a second.
    fn retry_after_secs(&self) -> u64 {
        self.inner.settings.max_wait_ms.div_ceil(1000).max(1)
    }
}

/// Middleware admitting each request through the queue in its state: for
/// [`Routes::route_layer`](crate::Routes::route_layer) on the routes it
/// guards, as `middleware::from_fn_with_state(admission, admission::guard)`.
pub async fn guard(
    State(admission): State<Admission>,
    mut request: Request,
    next: Next,
) -> Response {
    match admission.admit().await {
        Ok(admitted) => {
            let ticket = AdmissionTicket(Arc::new(Mutex::new(Some(admitted))));
            request.extensions_mut().insert(ticket.clone());
            let response = next.run(request).await;
            ticket.release();
            response
        }
        Err(refusal) => {
            let detail = match refusal {
                Refusal::QueueFull => "too many requests are waiting; retry shortly",
                Refusal::TimedOut => "the request waited its turn too long; retry shortly",
            };
            ApiError::unavailable(detail, admission.retry_after_secs())
                .with_type("waiting-room-full")
                .with_extension("reason", refusal.label())
                .counted()
                .into_response()
        }
    }
}

/// An admitted request's place, in its extensions (`Extension<AdmissionTicket>`).
/// A handler whose costly part is over gives it up with [`release`](Self::release)
/// before it waits on something cheap — booking, before it waits for a saga
/// to settle (`Prefer: wait`) — so the next in line goes in; otherwise the
/// place is given up with the response.
#[derive(Debug, Clone)]
pub struct AdmissionTicket(Arc<Mutex<Option<Admitted>>>);

impl AdmissionTicket {
    pub fn release(&self) {
        // A poisoned lock means a handler panicked holding it; the place
        // goes with the request either way.
        if let Ok(mut place) = self.0.lock() {
            place.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(max_concurrent: usize, max_waiting: usize, max_wait_ms: u64) -> Admission {
        Admission::new(
            "test",
            AdmissionSettings {
                max_concurrent,
                max_waiting,
                max_wait_ms,
            },
        )
    }

    /// Lets spawned tasks run until `condition` holds; time is paused in
    /// these tests, so yielding is how the runtime makes progress.
    async fn until(condition: impl Fn() -> bool) {
        for _ in 0..1000 {
            if condition() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the condition never held");
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_admitted_in_the_order_they_arrived() {
        let admission = queue(1, 10, 60_000);
        let first = admission.admit().await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for arrival in 0..5 {
            let in_line = admission.clone();
            let order = Arc::clone(&order);
            waiters.push(tokio::spawn(async move {
                let admitted = in_line.admit().await.unwrap();
                order.lock().unwrap().push(arrival);
                // Holds its place a moment, so the next one waits for it.
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(admitted);
            }));
            // The next waiter arrives only once this one is in line.
            until(|| admission.waiting() == arrival + 1).await;
        }

        drop(first);
        for waiter in waiters {
            waiter.await.unwrap();
        }

        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(admission.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_line_refuses_at_once_and_takes_people_again_once_it_moves() {
        let admission = queue(1, 2, 60_000);
        let running = admission.admit().await.unwrap();
        let mut line = Vec::new();
        for position in 0..2 {
            let admission_in_line = admission.clone();
            line.push(tokio::spawn(async move {
                admission_in_line.admit().await.map(drop)
            }));
            until(|| admission.waiting() == position + 1).await;
        }

        let started = tokio::time::Instant::now();
        let refused = admission.admit().await;

        assert_eq!(refused.unwrap_err(), Refusal::QueueFull);
        assert_eq!(started.elapsed(), Duration::ZERO, "refused without waiting");
        drop(running);
        for waiter in line {
            assert_eq!(waiter.await.unwrap(), Ok(()));
        }
        assert!(
            admission.admit().await.is_ok(),
            "free again once the line moved"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_is_sent_away_after_the_longest_wait_and_leaves_the_line() {
        let admission = queue(1, 4, 2_000);
        let _running = admission.admit().await.unwrap();
        let started = tokio::time::Instant::now();

        let refused = admission.admit().await;

        assert_eq!(refused.unwrap_err(), Refusal::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_millis(2_000));
        assert_eq!(admission.waiting(), 0, "its place in line was given up");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_goes_away_gives_up_its_place() {
        let admission = queue(1, 1, 60_000);
        let running = admission.admit().await.unwrap();
        let in_line = admission.clone();
        let waiter = tokio::spawn(async move { in_line.admit().await.map(drop) });
        until(|| admission.waiting() == 1).await;

        waiter.abort();
        until(|| admission.waiting() == 0).await;
        drop(running);

        assert!(admission.admit().await.is_ok());
    }

    #[test]
    fn settings_that_would_starve_other_requests_or_outlast_the_deadline_are_refused() {
        let http = HttpSettings {
            host: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 0,
            request_timeout_ms: 10_000,
            body_limit_bytes: 1024,
            max_concurrent_requests: 100,
            shutdown_grace_ms: 1_000,
        };
        let fits = AdmissionSettings {
            max_concurrent: 15,
            max_waiting: 60,
            max_wait_ms: 5_000,
        };
        assert!(fits.check_against(&http).is_ok());
        let too_many = AdmissionSettings {
            max_waiting: 61,
            ..fits
        };
        assert!(too_many.check_against(&http).is_err());
        let too_long = AdmissionSettings {
            max_wait_ms: 10_000,
            ..fits
        };
        assert!(too_long.check_against(&http).is_err());
        let nobody = AdmissionSettings {
            max_concurrent: 0,
            ..fits
        };
        assert!(nobody.check_against(&http).is_err());
    }
}
