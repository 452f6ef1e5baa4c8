//! Waiting for what happens in the background (consumers, relays, projections,
//! sagas) without sleeping a fixed time: poll, bounded by a timeout.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

const POLL_EVERY: Duration = Duration::from_millis(50);

/// Fetches until `done` holds for the value and returns it; after `timeout`,
/// panics with `what` and the last value fetched.
pub async fn poll_until<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut fetch: F,
    done: impl Fn(&T) -> bool,
) -> T
where
    T: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let value = fetch().await;
        if done(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}; last seen: {value:#?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Polls `condition` until it holds; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll_until(timeout, what, condition, |held| *held).await;
}
