//! The writer's health over HTTP, for Kubernetes probes: `/health/live` and
//! `/health/ready` answer 200 while the write loop keeps turning (it turns
//! at least once a second when idle), 503 once it has been stuck longer than
//! the allowed stall — a writer wedged on the broker or the store is
//! restarted rather than left holding its partitions.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

/// When the write loop last turned, shared by the loop and the endpoint.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    last_beat_ms: Arc<AtomicI64>,
}

impl Heartbeat {
    pub fn beat(&self) {
        self.last_beat_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    fn is_fresh(&self, stall: Duration) -> bool {
        let age_ms =
            chrono::Utc::now().timestamp_millis() - self.last_beat_ms.load(Ordering::Relaxed);
        u128::try_from(age_ms).is_ok_and(|age| age <= stall.as_millis())
    }
}

/// Serves the probes on `port` until `shutdown`.
pub async fn serve(
    port: u16,
    heartbeat: Heartbeat,
    stall: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let probe = move || {
        let heartbeat = heartbeat.clone();
        async move {
            if heartbeat.is_fresh(stall) {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    };
    let router = Router::new()
        .route("/health/live", get(probe.clone()))
        .route("/health/ready", get(probe));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("bind the health port {port}"))?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .context("serve the health endpoints")
}
