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

/// The pid of a backend `LISTEN`ing in `pool`'s database, once there is one
/// other than `not` (and other than the asking connection): for tests that
/// terminate a listener's connection and expect it back. Panics after
/// `timeout`.
pub async fn listening_backend(pool: &sqlx::PgPool, not: Option<i32>, timeout: Duration) -> i32 {
    let found = poll_until(
        timeout,
        "a backend listens in this database",
        || async {
            sqlx::query_scalar::<_, i32>(
                "SELECT pid FROM pg_stat_activity \
                 WHERE datname = current_database() AND query LIKE 'LISTEN %' \
                   AND pid <> pg_backend_pid() AND pid IS DISTINCT FROM $1 \
                 LIMIT 1",
            )
            .bind(not)
            .fetch_optional(pool)
            .await
            .map_err(|error| error.to_string())
        },
        |found| matches!(found, Ok(Some(_))),
    )
    .await;
    match found {
        Ok(Some(pid)) => pid,
        other => unreachable!("poll_until returned {other:?}, which `done` refused"),
    }
}
