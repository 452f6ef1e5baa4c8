//! What every Contrail service promises at its edge, checked the same way for
//! each: run [`check_service_conformance`] from each service's own tests.

use anyhow::{ensure, Context};
use reqwest::StatusCode;
use service_kit::Service;

use crate::{spawn, unique_topic_prefix, TestDatabase};

/// Spawns `S` against a fresh database and the test broker, then checks the
/// operational endpoints and that malformed requests get problem+json answers.
/// `malformed` lists requests the service must refuse: `(method, path, body, expected status)`.
pub async fn check_service_conformance<S: Service>(
    malformed: &[(&str, &str, &str, u16)],
) -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let service = spawn::<S>(&database, &unique_topic_prefix(), &[]).await?;
    let client = reqwest::Client::new();

    let live = client.get(service.url("/health/live")).send().await?;
    ensure!(
        live.status() == StatusCode::OK,
        "{} /health/live answered {}",
        S::NAME,
        live.status()
    );

    // Readiness is eventually true: a fresh broker client may need a few
    // seconds for its first metadata answer, more on a busy machine.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let body = loop {
        let ready = client.get(service.url("/health/ready")).send().await?;
        let status = ready.status();
        let body: serde_json::Value = ready.json().await.context("parse the readiness body")?;
        if status == StatusCode::OK {
            break body;
        }
        ensure!(
            status == StatusCode::SERVICE_UNAVAILABLE,
            "{} readiness answered {status}: {body}",
            S::NAME
        );
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{} did not become ready within 60 s: {body}",
            S::NAME
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    ensure!(
        body["checks"]["database"] == "ok",
        "{} database check: {body}",
        S::NAME
    );
    ensure!(
        body["checks"]["broker"] == "ok",
        "{} broker check: {body}",
        S::NAME
    );

    let metrics = client
        .get(service.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        metrics.contains("http_requests_total"),
        "{} /metrics has no http_requests_total:\n{metrics}",
        S::NAME
    );

    let mut refusals = vec![
        ("GET", "/no/such/route", "", 404),
        ("DELETE", "/health/ready", "", 405),
    ];
    refusals.extend_from_slice(malformed);
    for (method, path, body, expected) in refusals {
        let method = reqwest::Method::from_bytes(method.as_bytes()).context("parse method")?;
        let mut request = client.request(method.clone(), service.url(path));
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let problem: serde_json::Value = response
            .json()
            .await
            .with_context(|| format!("{} {method} {path}: body is not JSON", S::NAME))?;
        ensure!(
            status.as_u16() == expected,
            "{} {method} {path}: expected {expected}, got {status}: {problem}",
            S::NAME
        );
        ensure!(
            content_type == "application/problem+json",
            "{} {method} {path}: content type {content_type}",
            S::NAME
        );
        ensure!(
            problem["status"] == expected,
            "{} {method} {path}: problem body {problem}",
            S::NAME
        );
    }
    service.stop().await
}
