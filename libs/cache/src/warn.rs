//! At most one warning per interval, with how many were held back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct WarnLimiter {
    every: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl WarnLimiter {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(how many were held back since the last one)` if a warning is due now.
    pub(crate) fn should_warn(&self) -> Option<u64> {
        self.should_warn_at(Instant::now())
    }

    fn should_warn_at(&self, now: Instant) -> Option<u64> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match *last {
            Some(at) if now.saturating_duration_since(at) < self.every => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                None
            }
            _ => {
                *last = Some(now);
                Some(self.suppressed.swap(0, Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_then_the_count_of_those_held_back() {
        let limiter = WarnLimiter::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(limiter.should_warn_at(start), Some(0));
        for second in 1..=9 {
            assert_eq!(
                limiter.should_warn_at(start + Duration::from_secs(second)),
                None
            );
        }
        assert_eq!(
            limiter.should_warn_at(start + Duration::from_secs(10)),
            Some(9)
        );
        assert_eq!(
            limiter.should_warn_at(start + Duration::from_secs(11)),
            None
        );
    }
}
