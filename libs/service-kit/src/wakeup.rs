//! Waking a worker in the same process when there is new work for it,
//! instead of `NOTIFY` from the transaction that made the work.
//!
//! Postgres serializes the commits of every transaction that sent a
//! `NOTIFY` on one database-wide lock, held through the commit's WAL flush:
//! such commits cannot share a flush (no group commit), and each one waits
//! for the one before it. Under load that lock was where a booking spent its
//! time (`Lock:object` in `pg_stat_activity`, see docs/benchmarks.md).
//!
//! A worker that runs in the same process as the writers (every service runs
//! its own outbox relay and dispatcher) needs no database round trip to
//! learn of new work: the writer calls [`Wakeup::wake`]. A writer may wake
//! the worker before its transaction has committed, so a worker that found
//! nothing right after a wake looks again a few times shortly after
//! ([`RECHECK_AFTER_WAKE`]), then waits for the next wake or its poll
//! interval. Work written by another process (a CLI, another replica that has
//! a worker of its own) is found by the poll.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// After a wake that found no work yet, look again after each of these delays.
pub const RECHECK_AFTER_WAKE: [Duration; 5] = [
    Duration::from_millis(1),
    Duration::from_millis(3),
    Duration::from_millis(10),
    Duration::from_millis(30),
    Duration::from_millis(100),
];

/// A wake-up signal that any number of workers wait on; a wake is never lost
/// between two of a worker's looks, however busy it was when it came.
#[derive(Debug)]
pub struct Wakeup {
    generation: AtomicU64,
    notify: Notify,
}

impl Default for Wakeup {
    fn default() -> Self {
        Self::new()
    }
}

impl Wakeup {
    pub const fn new() -> Self {
        Self {
            generation: AtomicU64::new(0),
            notify: Notify::const_new(),
        }
    }

    /// There is (or is about to be) new work: every waiting worker looks.
    pub fn wake(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// A worker's view of this signal.
    pub fn waiter(&self) -> Waiter<'_> {
        Waiter {
            wakeup: self,
            seen: self.generation.load(Ordering::SeqCst),
            rechecks_left: 0,
        }
    }
}

/// Remembers which wakes a worker has seen and where it is in its rechecks.
#[derive(Debug)]
pub struct Waiter<'a> {
    wakeup: &'a Wakeup,
    seen: u64,
    rechecks_left: usize,
}

impl Waiter<'_> {
    /// Waits until the worker should look for work again: at once if it was
    /// woken since its last look, after the next recheck delay if a recent
    /// wake found nothing yet, otherwise at the next wake or after `poll`.
    /// `found_work` says whether the last look found any: then the wake it
    /// answered has been served and no rechecks follow (under load they
    /// would only add empty looks).
    pub async fn wait(&mut self, poll: Duration, found_work: bool) {
        if found_work {
            self.rechecks_left = 0;
        }
        let notified = self.wakeup.notify.notified();
        tokio::pin!(notified);
        // Registered before the generation is read, so a wake in between is not lost.
        notified.as_mut().enable();
        if self.take_wake() {
            return;
        }
        let delay = match self.rechecks_left {
            0 => poll,
            left => {
                self.rechecks_left = left - 1;
                RECHECK_AFTER_WAKE[RECHECK_AFTER_WAKE.len() - left]
            }
        };
        tokio::select! {
            () = &mut notified => {
                self.take_wake();
            }
            () = tokio::time::sleep(delay) => {}
        }
    }

    /// Whether a wake came since the last look; if so, the rechecks start over.
    fn take_wake(&mut self) -> bool {
        let generation = self.wakeup.generation.load(Ordering::SeqCst);
        if generation == self.seen {
            return false;
        }
        self.seen = generation;
        self.rechecks_left = RECHECK_AFTER_WAKE.len();
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    const POLL: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_wake_while_the_worker_was_busy_makes_it_look_at_once() {
        let wakeup = Wakeup::new();
        let mut waiter = wakeup.waiter();
        wakeup.wake();
        let started = Instant::now();
        waiter.wait(POLL, false).await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn after_a_wake_the_worker_rechecks_then_waits_for_the_poll() {
        tokio::time::pause();
        let wakeup = Wakeup::new();
        let mut waiter = wakeup.waiter();
        wakeup.wake();
        waiter.wait(POLL, false).await;
        let started = tokio::time::Instant::now();
        for _ in RECHECK_AFTER_WAKE {
            waiter.wait(POLL, false).await;
        }
        // The timer rounds each sleep up to its next millisecond tick.
        let tick = Duration::from_millis(1);
        let rechecks: Duration = RECHECK_AFTER_WAKE.iter().sum();
        let waited = started.elapsed();
        assert!(
            waited >= rechecks && waited <= rechecks + tick * RECHECK_AFTER_WAKE.len() as u32,
            "{waited:?}"
        );
        let started = tokio::time::Instant::now();
        waiter.wait(POLL, false).await;
        let waited = started.elapsed();
        assert!(waited >= POLL && waited <= POLL + tick, "{waited:?}");
    }

    #[tokio::test]
    async fn a_look_that_found_work_ends_the_rechecks() {
        tokio::time::pause();
        let wakeup = Wakeup::new();
        let mut waiter = wakeup.waiter();
        wakeup.wake();
        waiter.wait(POLL, false).await;
        let started = tokio::time::Instant::now();
        waiter.wait(POLL, true).await;
        assert!(started.elapsed() >= POLL);
    }

    #[tokio::test]
    async fn every_waiting_worker_is_woken() {
        let wakeup = std::sync::Arc::new(Wakeup::new());
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let wakeup = std::sync::Arc::clone(&wakeup);
                tokio::spawn(async move { wakeup.waiter().wait(POLL, false).await })
            })
            .collect();
        // Until every worker waits, keep waking: a worker that registers
        // late sees the generation move and returns at once.
        let all_woken = async {
            for worker in workers {
                while !worker.is_finished() {
                    wakeup.wake();
                    tokio::task::yield_now().await;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), all_woken)
            .await
            .unwrap_or_else(|_| panic!("a waiting worker was never woken"));
    }
}
