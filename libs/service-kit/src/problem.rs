//! One error vocabulary, rendered as RFC 9457 `application/problem+json`.
//!
//! Services map their domain errors to an [`ErrorCode`]; this module owns the
//! mapping to HTTP status codes and the body shape. Server-side failures are
//! logged once with their full cause chain and answered with a body that says
//! nothing internal.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// What went wrong, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed request: bad syntax, bad path or query parameters, missing header.
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    /// The request conflicts with the current state (sold out, already cancelled, version clash).
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// Well-formed but semantically invalid (a failed validation, a reused idempotency key).
    Unprocessable,
    TooManyRequests,
    /// Overloaded or a dependency is down; the client may retry later.
    Unavailable,
    /// A bug or an unexpected failure; never the client's fault.
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `type` URI slug of this code.
    pub fn slug(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Unprocessable => "unprocessable",
            Self::TooManyRequests => "too-many-requests",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// An error on its way to becoming a problem+json response.
///
/// `problem_type` defaults to the code's slug; domains refine it
/// (`sold-out`, `card-declined`) so clients can branch on it.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    problem_type: Option<&'static str>,
    title: Option<String>,
    detail: String,
    extensions: Map<String, Value>,
    /// `Retry-After` on a 503, `WWW-Authenticate` on a 401.
    headers: Box<[(HeaderName, HeaderValue)]>,
    source: Option<anyhow::Error>,
    /// Logged at debug only: see [`counted`](Self::counted).
    counted: bool,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            problem_type: None,
            title: None,
            detail: detail.into(),
            extensions: Map::new(),
            headers: Box::default(),
            source: None,
            counted: false,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, detail)
    }

    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unprocessable, detail)
    }

    /// A 503 the client may retry after `retry_after_secs`.
    pub fn unavailable(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(ErrorCode::Unavailable, detail)
            .with_header(header::RETRY_AFTER, retry_after_secs.to_string())
    }

    /// An unexpected failure: logged with its cause chain, answered as an opaque 500.
    pub fn internal(source: anyhow::Error) -> Self {
        Self::new(ErrorCode::Internal, "an unexpected error occurred").with_source(source)
    }

    /// A refusal that a metric already counts (the waiting room's, the
    /// backlog gate's): logged at debug only, because under a surge a line
    /// per refused request would flood the logs exactly when they matter.
    pub fn counted(mut self) -> Self {
        self.counted = true;
        self
    }

    /// The failure behind this problem, logged (never answered) when it is rendered.
    pub fn with_source(mut self, source: anyhow::Error) -> Self {
        self.source = Some(source);
        self
    }

    /// A domain-specific problem type, e.g. `sold-out`; rendered as `/problems/sold-out`.
    pub fn with_type(mut self, problem_type: &'static str) -> Self {
        self.problem_type = Some(problem_type);
        self
    }

    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// An extension member (RFC 9457 §3.2), e.g. the list of invalid fields.
    pub fn with_extension(mut self, key: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.extensions.insert(key.to_owned(), value);
        self
    }

    /// A response header the problem needs (`WWW-Authenticate` on a 401);
    /// a value that cannot be a header is dropped.
    pub fn with_header(mut self, name: HeaderName, value: impl AsRef<str>) -> Self {
        if let Ok(value) = HeaderValue::from_str(value.as_ref()) {
            let mut headers = std::mem::take(&mut self.headers).into_vec();
            headers.push((name, value));
            self.headers = headers.into_boxed_slice();
        }
        self
    }

    /// Logs the problem once, at the level its cause deserves: ERROR only
    /// for what an operator must look at (a bug, a broken dependency); WARN
    /// for overload, which an operator watches but which heals; INFO for a
    /// client's mistake or a business refusal (sold out, declined), which is
    /// the system working as designed.
    fn log(&self, status: StatusCode) {
        let problem_type = self.problem_type.unwrap_or(self.code.slug());
        let status = status.as_u16();
        if self.counted {
            tracing::debug!(
                status,
                problem_type,
                detail = self.detail,
                "request refused"
            );
            return;
        }
        match (&self.source, self.code) {
            (Some(source), ErrorCode::Internal) => tracing::error!(
                status,
                problem_type,
                error = format!("{source:#}"),
                "request failed"
            ),
            (Some(source), _) => tracing::warn!(
                status,
                problem_type,
                error = format!("{source:#}"),
                "request refused"
            ),
            (None, ErrorCode::Unavailable | ErrorCode::Internal) => {
                tracing::warn!(
                    status,
                    problem_type,
                    detail = self.detail,
                    "request refused"
                )
            }
            (None, _) => {
                tracing::info!(
                    status,
                    problem_type,
                    detail = self.detail,
                    "request refused"
                )
            }
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl From<anyhow::Error> for ApiError {
    /// An exhausted pool is overload, and a database that cannot be reached
    /// (restarting, failing over) is an outage, whatever context wraps
    /// either: 503 with `Retry-After`, never a 500.
    fn from(source: anyhow::Error) -> Self {
        let pool_exhausted = source
            .chain()
            .any(|cause| matches!(cause.downcast_ref(), Some(sqlx::Error::PoolTimedOut)));
        if pool_exhausted {
            metrics::counter!("db_pool_acquire_timeouts_total").increment(1);
            return Self::unavailable("the service is busy, try again shortly", 1)
                .with_source(source);
        }
        if crate::db::unavailable(&source) {
            return Self::unavailable(
                "the service's database is unreachable, try again shortly",
                2,
            )
            .with_source(source);
        }
        Self::internal(source)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(source: sqlx::Error) -> Self {
        Self::from(anyhow::Error::new(source))
    }
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    problem_type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(flatten)]
    extensions: &'a Map<String, Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        self.log(status);
        let title = self
            .title
            .as_deref()
            .or_else(|| status.canonical_reason())
            .unwrap_or("Error");
        let body = ProblemBody {
            problem_type: format!(
                "/problems/{}",
                self.problem_type.unwrap_or(self.code.slug())
            ),
            title,
            status: status.as_u16(),
            detail: &self.detail,
            extensions: &self.extensions,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers.into_vec() {
            headers.insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use http_body_util::BodyExt;

    #[test]
    fn an_exhausted_pool_is_overload_however_it_was_wrapped() {
        let wrapped = Err::<(), _>(sqlx::Error::PoolTimedOut)
            .context("begin a transaction")
            .context("create the booking")
            .unwrap_err();
        let error = ApiError::from(wrapped);
        assert_eq!(error.code(), ErrorCode::Unavailable);
        assert_eq!(error.into_response().headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn an_unreachable_database_is_an_outage_not_an_internal_error() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let wrapped = Err::<(), _>(sqlx::Error::Io(refused))
            .context("read the booking")
            .unwrap_err();
        let error = ApiError::from(wrapped);
        assert_eq!(error.code(), ErrorCode::Unavailable);
        assert_eq!(error.into_response().headers()[header::RETRY_AFTER], "2");
        let not_found = ApiError::from(anyhow::Error::new(sqlx::Error::RowNotFound));
        assert_eq!(not_found.code(), ErrorCode::Internal);
    }

    /// The levels of the events logged while `f` runs.
    fn levels_logged(f: impl FnOnce()) -> Vec<tracing::Level> {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};

        struct Levels(Arc<Mutex<Vec<tracing::Level>>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Levels {
            fn on_event(&self, event: &tracing::Event<'_>, _: LayerContext<'_, S>) {
                self.0.lock().unwrap().push(*event.metadata().level());
            }
        }
        let levels = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Levels(Arc::clone(&levels)));
        tracing::subscriber::with_default(subscriber, f);
        let levels = levels.lock().unwrap().clone();
        levels
    }

    #[test]
    fn a_refusal_a_metric_counts_is_logged_at_debug_and_others_at_warn() {
        let counted = levels_logged(|| {
            let response = ApiError::unavailable("the line is full", 5)
                .counted()
                .into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        });
        assert_eq!(counted, vec![tracing::Level::DEBUG]);
        let shed = levels_logged(|| {
            let response = ApiError::unavailable("overloaded", 1).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        });
        assert_eq!(shed, vec![tracing::Level::WARN]);
    }

    async fn render(error: ApiError) -> (StatusCode, String, Value) {
        let response = error.into_response();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_domain_error_renders_as_problem_json() {
        let error = ApiError::conflict("only 2 seats left")
            .with_type("sold-out")
            .with_extension("available", 2);
        let (status, content_type, body) = render(error).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(content_type, PROBLEM_JSON);
        assert_eq!(body["type"], "/problems/sold-out");
        assert_eq!(body["status"], 409);
        assert_eq!(body["title"], "Conflict");
        assert_eq!(body["detail"], "only 2 seats left");
        assert_eq!(body["available"], 2);
    }

    #[tokio::test]
    async fn an_internal_error_hides_its_cause() {
        let error =
            ApiError::internal(anyhow::anyhow!("password authentication failed for user x"));
        let (status, _, body) = render(error).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("password"));
    }

    #[tokio::test]
    async fn unavailable_carries_retry_after() {
        let response = ApiError::unavailable("overloaded", 2).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
