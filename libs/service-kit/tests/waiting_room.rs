//! The waiting room inside the shared HTTP stack: guarded routes wait their
//! turn and are refused with a 503 problem and `Retry-After` beyond the line;
//! routes it does not guard answer at once however long the line is.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::Router;
use http_body_util::BodyExt;
use service_kit::admission::{self, Admission, AdmissionSettings};
use service_kit::settings::HttpSettings;
use service_kit::Routes;
use tokio::sync::Semaphore;
use tower::ServiceExt;

fn http_settings() -> HttpSettings {
    HttpSettings {
        host: "127.0.0.1".parse().unwrap(),
        port: 0,
        request_timeout_ms: 30_000,
        body_limit_bytes: 1024,
        max_concurrent_requests: 100,
        shutdown_grace_ms: 1000,
    }
}

/// `POST /bookings` behind the waiting room, finishing only when the test
/// opens `gate` (one permit per request), and `GET /bookings/{id}` beside it.
fn app(admission: &Admission, gate: &Arc<Semaphore>) -> Router {
    let gate = Arc::clone(gate);
    let routes = Routes::new()
        .post("/bookings", move || {
            let gate = Arc::clone(&gate);
            async move {
                gate.acquire().await.unwrap().forget();
                (StatusCode::ACCEPTED, "booked")
            }
        })
        .route_layer(from_fn_with_state(admission.clone(), admission::guard))
        .get("/bookings/{id}", || async { "found" });
    let (router, _) = routes.into_parts();
    service_kit::http::stack(router, &http_settings())
}

async fn send(
    router: &Router,
    request: Request<Body>,
) -> (StatusCode, Vec<(String, String)>, serde_json::Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, body)
}

fn book() -> Request<Body> {
    Request::post("/bookings").body(Body::empty()).unwrap()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[tokio::test]
async fn while_the_line_is_full_reads_answer_at_once_and_writes_are_refused_with_a_problem() {
    let admission = Admission::new(
        "full-line",
        AdmissionSettings {
            max_concurrent: 1,
            max_waiting: 2,
            max_wait_ms: 20_000,
        },
    );
    let gate = Arc::new(Semaphore::new(0));
    let router = app(&admission, &gate);
    let mut in_flight = Vec::new();
    for _ in 0..3 {
        let router = router.clone();
        in_flight.push(tokio::spawn(async move { send(&router, book()).await.0 }));
    }
    test_support::eventually(Duration::from_secs(10), "two bookings wait in line", || {
        let waiting = admission.waiting();
        async move { waiting == 2 }
    })
    .await;

    let read = tokio::time::timeout(
        Duration::from_secs(2),
        send(
            &router,
            Request::get("/bookings/42").body(Body::empty()).unwrap(),
        ),
    )
    .await
    .expect("a read does not wait behind the bookings");
    let (status, headers, problem) = send(&router, book()).await;

    assert_eq!(read.0, StatusCode::OK);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/problem+json")
    );
    assert_eq!(header(&headers, "retry-after"), Some("20"));
    assert_eq!(problem["type"], "/problems/waiting-room-full");
    assert_eq!(problem["reason"], "queue_full");
    assert_eq!(problem["status"], 503);

    gate.add_permits(3);
    for booking in in_flight {
        assert_eq!(
            booking.await.unwrap(),
            StatusCode::ACCEPTED,
            "every one in line is served"
        );
    }
    let metrics = service_kit::metrics::render();
    assert!(
        metrics.contains(r#"admission_rejected_total{queue="full-line",reason="queue_full"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"admission_admitted_total{queue="full-line"} 3"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_request_that_waits_longer_than_allowed_is_refused_and_the_line_moves_on() {
    let admission = Admission::new(
        "short-wait",
        AdmissionSettings {
            max_concurrent: 1,
            max_waiting: 4,
            max_wait_ms: 150,
        },
    );
    let gate = Arc::new(Semaphore::new(0));
    let router = app(&admission, &gate);
    let running = {
        let router = router.clone();
        tokio::spawn(async move { send(&router, book()).await.0 })
    };
    test_support::eventually(Duration::from_secs(10), "a booking runs", || {
        let running = admission.in_flight() == 1;
        async move { running }
    })
    .await;

    let started = std::time::Instant::now();
    let (status, headers, problem) = send(&router, book()).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(problem["reason"], "timed_out");
    assert_eq!(header(&headers, "retry-after"), Some("1"));
    assert_eq!(admission.waiting(), 0);
    gate.add_permits(2);
    assert_eq!(running.await.unwrap(), StatusCode::ACCEPTED);
    assert_eq!(send(&router, book()).await.0, StatusCode::ACCEPTED);
}
