//! The shared HTTP stack's promises: every rejection is problem+json with the
//! right status, overload and slowness are 503s with `Retry-After`, and every
//! response carries a request id.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use serde::Deserialize;
use service_kit::http::assemble;
use service_kit::settings::HttpSettings;
use service_kit::{ApiError, Json, Path, Query};
use tower::ServiceExt;

#[derive(Debug, Deserialize)]
struct Greeting {
    #[allow(dead_code)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct Paging {
    #[allow(dead_code)]
    limit: u32,
}

fn settings() -> HttpSettings {
    HttpSettings {
        host: "127.0.0.1".parse().unwrap(),
        port: 0,
        request_timeout_ms: 200,
        body_limit_bytes: 1024,
        max_concurrent_requests: 1,
        shutdown_grace_ms: 1000,
    }
}

fn app() -> Router {
    let routes = Router::new()
        .route("/greetings", post(|Json(_): Json<Greeting>| async { "ok" }))
        .route("/items/{id}", get(|Path(_): Path<u64>| async { "ok" }))
        .route("/items", get(|Query(_): Query<Paging>| async { "ok" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/panics",
            get(|| async {
                panic!("boom");
                #[allow(unreachable_code)]
                "unreachable"
            }),
        )
        .route(
            "/conflict",
            get(|| async { Err::<(), _>(ApiError::conflict("taken")) }),
        );
    assemble(routes, Vec::new(), &settings())
}

async fn send(
    router: Router,
    request: Request<Body>,
) -> (StatusCode, Option<String>, serde_json::Value) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, content_type, body)
}

fn post_json(uri: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.into())
        .unwrap()
}

async fn assert_problem(request: Request<Body>, expected: StatusCode) -> serde_json::Value {
    let (status, content_type, body) = send(app(), request).await;
    assert_eq!(status, expected, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert_eq!(body["status"], expected.as_u16());
    assert!(body["type"].as_str().unwrap().starts_with("/problems/"));
    assert!(!body["detail"].as_str().unwrap().is_empty());
    body
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    assert_problem(
        Request::get("/nowhere").body(Body::empty()).unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    assert_problem(
        Request::delete("/greetings").body(Body::empty()).unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    assert_problem(
        post_json("/greetings", "application/json", "{\"name\":"),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_422_problem() {
    let body = assert_problem(
        post_json("/greetings", "application/json", "{\"nom\":\"x\"}"),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("name"), "{body}");
}

#[tokio::test]
async fn a_body_without_json_content_type_is_a_415_problem() {
    assert_problem(
        post_json("/greetings", "text/plain", "{\"name\":\"x\"}"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem() {
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(4096));
    assert_problem(
        post_json("/greetings", "application/json", huge),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
}

/// Over a real socket: a client that announces a too-large body and waits
/// for `100 Continue` gets the 413 problem at once, not a `100 Continue`
/// followed by a dropped connection.
#[tokio::test]
async fn an_announced_oversized_body_is_refused_before_the_client_sends_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app()).await });

    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            b"POST /greetings HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n{") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("the server answers without waiting for the body")
            .unwrap();
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

#[tokio::test]
async fn a_malformed_path_parameter_is_a_400_problem() {
    assert_problem(
        Request::get("/items/abc").body(Body::empty()).unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn a_malformed_query_is_a_400_problem() {
    assert_problem(
        Request::get("/items?limit=-3").body(Body::empty()).unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn a_domain_error_keeps_its_status() {
    assert_problem(
        Request::get("/conflict").body(Body::empty()).unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn a_panicking_handler_is_an_opaque_500_problem() {
    let body = assert_problem(
        Request::get("/panics").body(Body::empty()).unwrap(),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
    assert!(!body.to_string().contains("boom"));
}

#[tokio::test]
async fn a_request_past_its_deadline_is_a_503_problem() {
    let body = assert_problem(
        Request::get("/slow").body(Body::empty()).unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(body["type"], "/problems/timeout");
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_are_shed_with_retry_after() {
    let router = app();
    // The limit is one request in flight: hold it with a slow request, then ask again.
    let slow = tokio::spawn(
        router
            .clone()
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap()),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let shed = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no request was shed"
        );
        let response = router
            .clone()
            .oneshot(Request::get("/items/1").body(Body::empty()).unwrap())
            .await
            .unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            break response;
        }
        // The slow request has not taken its permit yet.
        tokio::task::yield_now().await;
    };
    assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
    assert_eq!(
        shed.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    slow.await.unwrap().unwrap();
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_callers() {
    let response = app()
        .oneshot(
            Request::get("/items/1")
                .header("x-request-id", "abc-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response = app()
        .oneshot(Request::get("/items/1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(!response.headers()["x-request-id"].is_empty());
}

#[tokio::test]
async fn liveness_needs_nothing_and_readiness_with_no_checks_is_ready() {
    let (status, _, body) = send(
        app(),
        Request::get("/health/live").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "live");
    let (status, _, body) = send(
        app(),
        Request::get("/health/ready").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
}

struct AlwaysDown;

impl service_kit::ReadinessCheck for AlwaysDown {
    fn name(&self) -> &'static str {
        "broker"
    }
    fn check(&self) -> futures::future::BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async { Err(anyhow::anyhow!("connection refused")) })
    }
}

#[tokio::test]
async fn readiness_is_a_503_problem_naming_the_failed_dependency() {
    let router = assemble(Router::new(), vec![Arc::new(AlwaysDown)], &settings());
    let (status, content_type, body) = send(
        router,
        Request::get("/health/ready").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    assert!(body["checks"]["broker"]
        .as_str()
        .unwrap()
        .contains("connection refused"));
}
