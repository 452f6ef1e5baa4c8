//! The backlog gate: stops taking new work while the work already taken is
//! stuck behind a backlog.
//!
//! The waiting room ([`crate::admission`]) bounds how many requests run at
//! once, but a request that starts asynchronous work (booking's saga) ends
//! long before that work does. When the work queues up downstream — a
//! broker that was down, a participant that is catching up — every request
//! admitted meanwhile adds to the queue, and work that waits longer than its
//! own timeouts fails however fast the front door answers. The gate watches
//! the backlog as the service measures it — how much of the work it took
//! more than `older_than_ms` ago is still unfinished (booking: sagas not
//! decided a whole step timeout after they started) — and, while that is
//! high, refuses new work with a 503 and
//! `Retry-After` before anything is written, so what was already taken
//! drains first and the client's retry lands on a system that can finish it.
//!
//! It closes when the count reaches `max` and opens again only when it has
//! fallen to half of that: without the gap, every client refused while it
//! was closed would come back at once, refill the backlog and close it again.
//! A count that cannot be measured opens it: the gate sheds load, it must
//! never turn a failing measurement into an outage of its own.
//!
//! Metrics, labelled with the gate's name: `backlog_size` (the last count),
//! `backlog_gate_closed` (1 while refusing) and
//! `admission_rejected_total{reason="backlog"}`, beside the waiting room's
//! refusals.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::problem::ApiError;

/// `[backlog]`: what counts as backlog, how large a backlog closes the
/// gate, how often it is measured and when a refused client should come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct BacklogSettings {
    /// The count at which new work is refused; 0 turns the gate off.
    #[serde(default = "default_max")]
    pub max: u64,
    /// Work still unfinished this long after it was taken is backlog.
    #[serde(default = "default_older_than_ms")]
    pub older_than_ms: u64,
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    #[serde(default = "default_retry_after_secs")]
    pub retry_after_secs: u64,
}

impl Default for BacklogSettings {
    fn default() -> Self {
        Self {
            max: default_max(),
            older_than_ms: default_older_than_ms(),
            poll_interval_ms: default_poll_interval_ms(),
            retry_after_secs: default_retry_after_secs(),
        }
    }
}

fn default_max() -> u64 {
    100
}
fn default_older_than_ms() -> u64 {
    10_000
}
fn default_poll_interval_ms() -> u64 {
    1_000
}
fn default_retry_after_secs() -> u64 {
    5
}

impl BacklogSettings {
    pub fn older_than(&self) -> Duration {
        Duration::from_millis(self.older_than_ms)
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }
}

/// Whether the gate lets work in, from the last count and the state before
/// it: closed from `max` up, open again from half of it down, unchanged in
/// between. A `max` of 0 never closes.
pub fn next_state(closed: bool, count: u64, max: u64) -> bool {
    if max == 0 {
        return false;
    }
    if count >= max {
        true
    } else if count <= max / 2 {
        false
    } else {
        closed
    }
}

/// A gate in front of the routes that take new work; clones share it.
#[derive(Debug, Clone)]
pub struct BacklogGate {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: &'static str,
    settings: BacklogSettings,
    closed: AtomicBool,
    last_count: AtomicU64,
}

impl BacklogGate {
    /// An open gate named `name` (the metrics' `gate` label).
    pub fn new(name: &'static str, settings: BacklogSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                settings,
                closed: AtomicBool::new(false),
                last_count: AtomicU64::new(0),
            }),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// The backlog as last measured.
    pub fn last_count(&self) -> u64 {
        self.inner.last_count.load(Ordering::SeqCst)
    }

    /// Takes a new measurement: closes or opens the gate as [`next_state`] says.
    pub fn observe(&self, count: u64) {
        let inner = &self.inner;
        inner.last_count.store(count, Ordering::SeqCst);
        metrics::gauge!("backlog_size", "gate" => inner.name).set(count as f64);
        self.set_closed(next_state(self.is_closed(), count, inner.settings.max));
    }

    /// The one place the gate changes state: the gauge follows it, and a
    /// change is logged once.
    fn set_closed(&self, closed: bool) {
        let inner = &self.inner;
        let was_closed = inner.closed.swap(closed, Ordering::SeqCst);
        metrics::gauge!("backlog_gate_closed", "gate" => inner.name).set(if closed {
            1.0
        } else {
            0.0
        });
        match (was_closed, closed) {
            (false, true) => tracing::warn!(
                gate = inner.name,
                backlog = self.last_count(),
                max = inner.settings.max,
                "backlog too large: refusing new work until it drains"
            ),
            (true, false) => tracing::info!(
                gate = inner.name,
                backlog = self.last_count(),
                "taking new work again"
            ),
            _ => {}
        }
    }

    /// Measures the backlog every poll interval until `shutdown`, the
    /// service's worker for this gate: `count(older_than)` answers how much
    /// work taken more than `older_than` ago is unfinished. A failed
    /// measurement is logged and opens the gate (see the module's
    /// documentation).
    pub async fn watch<F, Fut>(self, count: F, shutdown: CancellationToken) -> anyhow::Result<()>
    where
        F: Fn(Duration) -> Fut,
        Fut: Future<Output = anyhow::Result<u64>>,
    {
        if self.inner.settings.max == 0 {
            return Ok(());
        }
        let mut interval = tokio::time::interval(self.inner.settings.poll_interval());
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = interval.tick() => {}
            }
            match count(self.inner.settings.older_than()).await {
                Ok(count) => self.observe(count),
                Err(error) => {
                    tracing::debug!(
                        gate = self.inner.name,
                        error = format!("{error:#}"),
                        "the backlog could not be measured; the gate stays open"
                    );
                    self.set_closed(false);
                }
            }
        }
    }
}

/// Middleware refusing requests while the gate in its state is closed: for
/// [`Routes::route_layer`](crate::Routes::route_layer) on the routes that
/// take new work, as `middleware::from_fn_with_state(gate, backlog::guard)`.
/// Put it outside the waiting room, so a refused request never waits in line.
pub async fn guard(State(gate): State<BacklogGate>, request: Request, next: Next) -> Response {
    if !gate.is_closed() {
        return next.run(request).await;
    }
    metrics::counter!(
        "admission_rejected_total",
        "queue" => gate.inner.name,
        "reason" => "backlog"
    )
    .increment(1);
    ApiError::unavailable(
        "earlier requests are still being processed; retry shortly",
        gate.inner.settings.retry_after_secs.max(1),
    )
    .with_type("backlog")
    .with_extension("reason", "backlog")
    .counted()
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_closes_at_the_maximum_and_opens_again_only_at_half_of_it() {
        let max = 100;
        assert!(!next_state(false, 99, max));
        assert!(next_state(false, 100, max));
        assert!(next_state(true, 51, max), "still closed above half");
        assert!(!next_state(false, 51, max), "still open below the maximum");
        assert!(!next_state(true, 50, max));
        assert!(!next_state(true, 0, max));
    }

    #[test]
    fn a_maximum_of_zero_never_closes() {
        assert!(!next_state(false, 1_000_000, 0));
        assert!(!next_state(true, 1_000_000, 0));
    }

    #[test]
    fn observing_a_backlog_closes_and_drains_it_open() {
        let gate = BacklogGate::new("test", BacklogSettings::default());
        for (count, closed) in [
            (10, false),
            (100, true),
            (70, true),
            (50, false),
            (99, false),
        ] {
            gate.observe(count);
            assert_eq!(gate.is_closed(), closed, "after a count of {count}");
            assert_eq!(gate.last_count(), count);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_that_cannot_be_measured_opens_the_gate() {
        let gate = BacklogGate::new("test", BacklogSettings::default());
        gate.observe(500);
        assert!(gate.is_closed());
        let shutdown = CancellationToken::new();
        let watcher = tokio::spawn(gate.clone().watch(
            |_| async { Err(anyhow::anyhow!("no database")) },
            shutdown.clone(),
        ));
        for _ in 0..100 {
            if !gate.is_closed() {
                break;
            }
            tokio::task::yield_now().await;
        }
        shutdown.cancel();
        watcher.await.unwrap().unwrap();
        assert!(!gate.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn the_watcher_measures_every_interval() {
        let gate = BacklogGate::new("test", BacklogSettings::default());
        let counts = Arc::new(std::sync::Mutex::new(vec![0_u64, 150, 120, 40]));
        let shutdown = CancellationToken::new();
        let source = Arc::clone(&counts);
        let watcher = tokio::spawn(gate.clone().watch(
            move |older_than| {
                assert_eq!(older_than, Duration::from_secs(10));
                let next = source.lock().unwrap().pop();
                async move { next.ok_or_else(|| anyhow::anyhow!("no more counts")) }
            },
            shutdown.clone(),
        ));
        let mut seen = Vec::new();
        // Looks half-way between the ticks (at 0, 1 and 2 s), never at one.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for _ in 0..3 {
            seen.push((gate.last_count(), gate.is_closed()));
            tokio::time::sleep(Duration::from_millis(1_000)).await;
        }
        shutdown.cancel();
        watcher.await.unwrap().unwrap();
        // The counts are popped from the end: 40, then 120, then 150.
        assert_eq!(seen, vec![(40, false), (120, true), (150, true)]);
    }
}
