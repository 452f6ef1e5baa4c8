//! What every Contrail service promises at its edge, checked the same way for
//! each: run [`check_service_conformance`] from each service's own tests.

use std::collections::BTreeSet;

use anyhow::{ensure, Context};
use reqwest::StatusCode;
use serde_json::Value;
use service_kit::runtime::launch;
use service_kit::settings::ServiceSettings;
use service_kit::Service;

use crate::http::content_type;
use crate::tokens;
use crate::{overrides_for, spawn, unique_topic_prefix, TestDatabase, TestService};

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
        let body: Value = ready.json().await.context("parse the readiness body")?;
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
        // As an admin: these are about what the service refuses past authentication.
        let mut request = client
            .request(method.clone(), service.url(path))
            .bearer_auth(tokens::admin());
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await?;
        let status = response.status();
        let content_type = content_type(&response);
        let problem: Value = response
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

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Spawns `S` and checks the OpenAPI document it serves at `/openapi.json`:
/// an OpenAPI 3.1 document whose local `$ref`s resolve and whose templated
/// path parameters are declared, and whose operations are exactly the routes
/// the running service registered (its own, the operational endpoints and the
/// dead-letter endpoints), as recorded by `service_kit::Routes` while the
/// router was built. Full schema validation is `openapi-spec-validator` in
/// `scripts/validate-deploy.sh`.
pub async fn check_openapi_document<S: Service>() -> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let (service, routed) = spawn_recording_routes::<S>(&database).await?;
    let client = reqwest::Client::new();
    let name = S::NAME;

    let response = client.get(service.url("/openapi.json")).send().await?;
    ensure!(
        response.status() == StatusCode::OK,
        "{name} /openapi.json answered {}",
        response.status()
    );
    let content_type = content_type(&response);
    ensure!(
        content_type.starts_with("application/json"),
        "{name} /openapi.json content type {content_type}"
    );
    let document: Value = response
        .json()
        .await
        .with_context(|| format!("{name} /openapi.json is not JSON"))?;

    let problems = document_problems(&document);
    ensure!(
        problems.is_empty(),
        "{name} /openapi.json:\n  {}",
        problems.join("\n  ")
    );

    let documented = operations(&document);
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    ensure!(
        undocumented.is_empty() && unrouted.is_empty(),
        "{name} /openapi.json disagrees with the router:\n  routed but not documented: {undocumented:?}\n  documented but not routed: {unrouted:?}"
    );
    let open = open_operations(&document);
    let operational_but_closed: Vec<_> = OPERATIONAL_ROUTES
        .iter()
        .filter(|path| !open.contains(&("GET".to_owned(), (**path).to_owned())))
        .collect();
    ensure!(
        operational_but_closed.is_empty(),
        "{name} /openapi.json does not document these as open (`security: []`): {operational_but_closed:?}"
    );
    check_authentication(&service, &routed, &open, name).await?;
    service.stop().await
}

/// Routes every service opens to anyone: probes, metrics and the API's own
/// description.
const OPERATIONAL_ROUTES: [&str; 4] =
    ["/health/live", "/health/ready", "/metrics", "/openapi.json"];

/// `(METHOD, path)` of the operations the document declares open
/// (`security: []`): the operational routes, and pages that carry no data
/// (booking's operator console).
fn open_operations(document: &Value) -> BTreeSet<(String, String)> {
    operations(document)
        .into_iter()
        .filter(|(method, path)| {
            document["paths"][path][method.to_ascii_lowercase()]["security"]
                .as_array()
                .is_some_and(Vec::is_empty)
        })
        .collect()
}

/// Every route the document does not declare open refuses a request
/// without a valid bearer token with 401, problem+json and a
/// `WWW-Authenticate: Bearer` challenge: no token, an expired one, one for
/// another audience, one for another issuer, and an admin token signed by a
/// key nobody trusts. A route declared open answers without a token.
async fn check_authentication(
    service: &TestService,
    routed: &BTreeSet<(String, String)>,
    open: &BTreeSet<(String, String)>,
    name: &str,
) -> anyhow::Result<()> {
    use service_kit::auth::Scope;
    let client = reqwest::Client::new();
    let mut expired = tokens::claims(Scope::Admin, "operator");
    expired.exp = expired.iat - 3600;
    expired.nbf = expired.iat - 7200;
    let mut elsewhere = tokens::claims(Scope::Admin, "operator");
    elsewhere.aud = "another-system".to_owned();
    let mut impostor = tokens::claims(Scope::Admin, "operator");
    impostor.iss = "someone-else".to_owned();
    let bad_tokens = [
        ("no token", None),
        ("an expired token", Some(tokens::signed(&expired))),
        (
            "a token for another audience",
            Some(tokens::signed(&elsewhere)),
        ),
        (
            "a token from another issuer",
            Some(tokens::signed(&impostor)),
        ),
        (
            "a token with a forged signature",
            Some(tokens::forged_admin()),
        ),
        ("a malformed token", Some("not.a.jwt".to_owned())),
    ];
    for (method, path) in routed {
        if open.contains(&(method.clone(), path.clone())) {
            let concrete = with_parameters(path);
            let method = reqwest::Method::from_bytes(method.as_bytes()).context("parse method")?;
            let status = client
                .request(method.clone(), service.url(&concrete))
                .send()
                .await?
                .status();
            ensure!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{name} {method} {concrete} is documented open but answered {status} without a token"
            );
            continue;
        }
        let concrete = with_parameters(path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).context("parse method")?;
        for (what, token) in &bad_tokens {
            let mut request = client
                .request(method.clone(), service.url(&concrete))
                .header("content-type", "application/json")
                .body("{}");
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await?;
            let status = response.status();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let content_type = content_type(&response);
            ensure!(
                status == StatusCode::UNAUTHORIZED
                    && challenge.starts_with("Bearer")
                    && content_type == "application/problem+json",
                "{name} {method} {concrete} with {what}: {status}, challenge {challenge:?}, {content_type}"
            );
        }
    }
    Ok(())
}

/// `path` with each `{parameter}` filled with a well-formed value.
fn with_parameters(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "0193a0c2-7d1e-7c3b-9a1f-2f0e6c1d4b5a"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Starts `S` as [`spawn`] does, and keeps the `(METHOD, path)` of every
/// route it registered, which only the bound service knows.
async fn spawn_recording_routes<S: Service>(
    database: &TestDatabase,
) -> anyhow::Result<(TestService, BTreeSet<(String, String)>)> {
    let overrides = overrides_for::<S>(database, &unique_topic_prefix());
    let settings: ServiceSettings<S::Domain> =
        service_kit::settings::load_with_overrides(S::NAME, S::DEFAULT_SETTINGS, &overrides)?;
    let bound = launch::<S>(settings).await?;
    let routes = bound
        .routes()
        .iter()
        .map(|route| (route.method.to_string(), route.path.clone()))
        .collect();
    Ok((TestService::serve(bound), routes))
}

/// `name` if `segment` is a whole-segment template `{name}` (the only kind
/// axum routes and these documents use).
fn template_name(segment: &str) -> Option<&str> {
    segment
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|name| !name.is_empty())
}

/// `(METHOD, path)` of every operation in the document.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    document["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| {
            HTTP_METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| (method.to_ascii_uppercase(), path.clone()))
        })
        .collect()
}

/// What makes the document unusable, short of full schema validation.
fn document_problems(document: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let version = document["openapi"].as_str().unwrap_or_default();
    if !version.starts_with("3.1.") {
        problems.push(format!("`openapi` is {:?}, not 3.1.x", document["openapi"]));
    }
    for field in ["title", "version"] {
        if !document["info"][field].is_string() {
            problems.push(format!("info.{field} is missing"));
        }
    }
    let Some(paths) = document["paths"].as_object() else {
        problems.push("`paths` is not an object".to_owned());
        return problems;
    };
    let mut refs = Vec::new();
    collect_refs(document, &mut refs);
    for reference in refs {
        match reference.strip_prefix('#') {
            Some(pointer) if document.pointer(pointer).is_some() => {}
            _ => problems.push(format!("$ref {reference} does not resolve")),
        }
    }
    for (path, item) in paths {
        if !path.starts_with('/') {
            problems.push(format!("path {path} does not start with /"));
        }
        let templated: BTreeSet<String> = path
            .split('/')
            .filter_map(template_name)
            .map(str::to_owned)
            .collect();
        let shared = path_parameters(document, item.get("parameters"));
        for method in HTTP_METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let mut declared = shared.clone();
            declared.extend(path_parameters(document, operation.get("parameters")));
            if declared != templated {
                problems.push(format!(
                    "{} {path}: path parameters declared {declared:?}, templated {templated:?}",
                    method.to_ascii_uppercase()
                ));
            }
            if operation["responses"]
                .as_object()
                .is_none_or(serde_json::Map::is_empty)
            {
                problems.push(format!(
                    "{} {path}: no responses",
                    method.to_ascii_uppercase()
                ));
            }
        }
    }
    problems
}

/// Names of the required `in: path` parameters of a parameter list, `$ref`s followed.
fn path_parameters(document: &Value, parameters: Option<&Value>) -> BTreeSet<String> {
    parameters
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|parameter| match parameter["$ref"].as_str() {
            Some(reference) => reference
                .strip_prefix('#')
                .and_then(|pointer| document.pointer(pointer)),
            None => Some(parameter),
        })
        .filter(|parameter| parameter["in"] == "path" && parameter["required"] == true)
        .filter_map(|parameter| parameter["name"].as_str().map(str::to_owned))
        .collect()
}

fn collect_refs<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => refs.push(reference),
                    _ => collect_refs(child, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Value {
        json!({
            "openapi": "3.1.0",
            "info": { "title": "t", "version": "1" },
            "paths": {
                "/items/{item_id}": {
                    "get": {
                        "parameters": [{ "$ref": "#/components/parameters/ItemId" }],
                        "responses": { "200": { "$ref": "#/components/responses/Item" } }
                    },
                    "post": {
                        "parameters": [{ "name": "item_id", "in": "path", "required": true }],
                        "responses": { "202": { "description": "ok" } }
                    }
                }
            },
            "components": {
                "parameters": { "ItemId": { "name": "item_id", "in": "path", "required": true } },
                "responses": { "Item": { "description": "ok" } }
            }
        })
    }

    #[test]
    fn a_sound_document_has_no_problems_and_lists_its_operations() {
        let document = document();
        assert_eq!(document_problems(&document), Vec::<String>::new());
        let expected: BTreeSet<_> = [("GET", "/items/{item_id}"), ("POST", "/items/{item_id}")]
            .map(|(method, path)| (method.to_owned(), path.to_owned()))
            .into();
        assert_eq!(operations(&document), expected);
    }

    #[test]
    fn version_refs_path_parameters_and_responses_are_checked() {
        let mut document = document();
        document["openapi"] = json!("3.0.3");
        document["paths"]["/items/{item_id}"]["get"]["responses"]["200"]["$ref"] =
            json!("#/components/responses/Nope");
        document["paths"]["/items/{item_id}"]["post"]["parameters"] = json!([]);
        document["paths"]["/items/{item_id}"]["post"]["responses"] = json!({});
        let problems = document_problems(&document);
        assert_eq!(problems.len(), 4, "{problems:#?}");
    }
}
