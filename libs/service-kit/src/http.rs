//! The HTTP stack every service shares.
//!
//! [`stack`] wraps a service's routes with, from the outside in: request
//! ids, a trace span continued from the caller's W3C `traceparent`, RED
//! metrics, load shedding (503 + `Retry-After` beyond the in-flight limit), a
//! request timeout, a body limit and panic recovery. [`operational`] are the
//! endpoints `/health/live`, `/health/ready` and `/metrics`; [`assemble`] is
//! both. Anything that does not match a route is a 404 problem; a wrong
//! method is a 405 problem.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use opentelemetry_http::HeaderExtractor;
use serde::Serialize;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::problem::{ApiError, ErrorCode};
use crate::routes::Routes;
use crate::runtime::ReadinessCheck;
use crate::settings::HttpSettings;

/// How long one readiness check may take before it counts as failed.
const READINESS_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Adds the operational endpoints to `routes` and wraps them in the shared middleware stack.
pub fn assemble(
    routes: Router,
    readiness: Vec<Arc<dyn ReadinessCheck>>,
    settings: &HttpSettings,
) -> Router {
    let (operational, _) = operational(readiness).into_parts();
    stack(routes.merge(operational), settings)
}

/// `/health/live`, `/health/ready` (running `readiness`) and `/metrics`.
pub fn operational(readiness: Vec<Arc<dyn ReadinessCheck>>) -> Routes {
    Routes::new()
        .get("/health/live", live)
        .get("/health/ready", ready)
        .get("/metrics", metrics_text)
        .with_state(Arc::new(readiness))
}

/// Wraps `routes` in the shared middleware stack, with problem+json fallbacks.
pub fn stack(routes: Router, settings: &HttpSettings) -> Router {
    // Install the recorder before the first request, or that request's metrics go nowhere.
    crate::metrics::handle();
    // At zero before the first shed request (see `pool_metrics` for why).
    metrics::counter!("http_requests_shed_total").increment(0);
    let limits = Arc::new(Limits {
        in_flight: Semaphore::new(settings.max_concurrent_requests.max(1)),
        timeout: settings.request_timeout(),
    });
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panic_to_problem))
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(middleware::from_fn_with_state(limits, shed_and_time_out))
        .layer(middleware::from_fn_with_state(
            settings.body_limit_bytes,
            refuse_announced_oversize,
        ))
        .layer(middleware::from_fn(crate::metrics::track_http))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                // A failed request is logged once, by its problem
                // (`ApiError`), at the level its cause deserves; tower-http
                // would log every 5xx again at ERROR, overload included.
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http_request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
        trace_id = tracing::field::Empty,
        // What the request is about (a booking's id), once the handler knows:
        // `telemetry::record_correlation_id`.
        correlation_id = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let _ = span.set_parent(parent);
    if let Some(trace_id) = span_trace_id(&span) {
        span.record("trace_id", trace_id);
    }
    span
}

fn span_trace_id(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// A body announced larger than the limit (`Content-Length`) is refused with
/// 413 before anything reads it. Reading it is what makes the server send
/// `100 Continue` to a client that asked (`Expect: 100-continue`); refusing
/// after that leaves the client sending a body the server no longer wants,
/// and it sees a dropped connection instead of the 413.
async fn refuse_announced_oversize(
    State(limit): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match announced {
        Some(length) if length > limit as u64 => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

struct Limits {
    in_flight: Semaphore,
    timeout: Duration,
}

async fn shed_and_time_out(
    State(limits): State<Arc<Limits>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = limits.in_flight.try_acquire() else {
        metrics::counter!("http_requests_shed_total").increment(1);
        return ApiError::unavailable("the service is overloaded, retry shortly", 1)
            .with_type("overloaded")
            .into_response();
    };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable("the request took too long and was abandoned", 1)
            .with_type("timeout")
            .into_response(),
    }
}

fn panic_to_problem(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no resource at {}", request.uri().path()))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn live() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "live" }))
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    checks: serde_json::Map<String, serde_json::Value>,
}

type Checks = Arc<Vec<Arc<dyn ReadinessCheck>>>;

/// Runs every readiness check (each bounded by [`READINESS_CHECK_TIMEOUT`])
/// and records the outcome as `service_ready` and `readiness_check_ok{check}`
/// gauges; returns each check's failure, if it failed.
async fn run_readiness_checks(checks: &Checks) -> Vec<(&'static str, Option<String>)> {
    let outcomes = futures::future::join_all(checks.iter().map(|check| async move {
        let outcome = tokio::time::timeout(READINESS_CHECK_TIMEOUT, check.check()).await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!("{error:#}")),
            Err(_) => Some("timed out".to_owned()),
        };
        (check.name(), failure)
    }))
    .await;
    for (name, failure) in &outcomes {
        metrics::gauge!("readiness_check_ok", "check" => *name).set(if failure.is_none() {
            1.0
        } else {
            0.0
        });
    }
    let all_ready = outcomes.iter().all(|(_, failure)| failure.is_none());
    metrics::gauge!("service_ready").set(if all_ready { 1.0 } else { 0.0 });
    outcomes
}

async fn ready(State(checks): State<Checks>) -> Response {
    let outcomes = run_readiness_checks(&checks).await;
    let mut all_ready = true;
    let mut report = serde_json::Map::new();
    for (name, failure) in outcomes {
        let value = match failure {
            None => "ok".to_owned(),
            Some(reason) => {
                all_ready = false;
                tracing::warn!(check = name, %reason, "readiness check failed");
                reason
            }
        };
        report.insert(name.to_owned(), value.into());
    }
    if all_ready {
        axum::Json(Readiness {
            status: "ready",
            checks: report,
        })
        .into_response()
    } else {
        ApiError::unavailable("a dependency is not reachable", 5)
            .with_type("not-ready")
            .with_extension("checks", report)
            .into_response()
    }
}

/// The Prometheus text format. Readiness is checked on every scrape, so
/// `service_ready` is fresh wherever Prometheus scrapes, whether or not an
/// orchestrator probes `/health/ready`.
async fn metrics_text(State(checks): State<Checks>) -> Response {
    run_readiness_checks(&checks).await;
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        crate::metrics::render(),
    )
        .into_response()
}
