//! Extractors whose rejections are problem+json, never plain text.
//!
//! Use these instead of axum's own: `service_kit::Json<T>` for bodies (400 bad
//! syntax, 413 too large, 415 wrong content type, 422 wrong shape),
//! `service_kit::Path<T>` and `service_kit::Query<T>` (400).
//!
//! Two request parts every service reads the same way have their own types:
//! [`IdempotencyKey`], the `Idempotency-Key` header (required, or optional as
//! `Option<IdempotencyKey>`), and [`PageLimit`], the `limit` of a paged list.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::FromRequest;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::problem::{ApiError, ErrorCode};

/// A JSON body in, or a JSON body out.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query-string parameters.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

fn code_for(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::Unprocessable,
        status if status.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let code = code_for(rejection.status());
        let detail = match code {
            ErrorCode::UnsupportedMediaType => {
                "expected a request body with `Content-Type: application/json`".to_owned()
            }
            ErrorCode::PayloadTooLarge => "the request body is too large".to_owned(),
            _ => without_values(&rejection.body_text()),
        };
        ApiError::new(code, detail)
    }
}

/// A deserialization message with the offending values taken out: serde
/// quotes what it could not read (`invalid type: integer `4242…``), and a
/// request body may hold a card number or a CVC, which must never be echoed
/// back or logged. What was wrong, where, and what was expected stay.
pub fn without_values(message: &str) -> String {
    const MARKERS: [&str; 2] = ["invalid type: ", "invalid value: "];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some((at, marker)) = MARKERS
        .iter()
        .filter_map(|marker| rest.find(marker).map(|at| (at, *marker)))
        .min_by_key(|(at, _)| *at)
    {
        let (head, tail) = rest.split_at(at + marker.len());
        out.push_str(head);
        let kind_end = tail.find(['`', '"', ',']).unwrap_or(tail.len());
        out.push_str(tail[..kind_end].trim_end());
        let literal = &tail[kind_end..];
        rest = match literal.chars().next() {
            Some('`') => skip_quoted(&literal[1..], '`'),
            Some('"') => skip_quoted(&literal[1..], '"'),
            _ => literal,
        };
    }
    out.push_str(rest);
    out
}

/// What follows the closing `quote` (honouring backslash escapes).
fn skip_quoted(text: &str, quote: char) -> &str {
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == quote && !escaped => return &text[at + c.len_utf8()..],
            _ => escaped = false,
        }
    }
    ""
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match code_for(rejection.status()) {
            ErrorCode::Internal => ApiError::internal(anyhow::anyhow!(rejection.body_text())),
            _ => ApiError::bad_request(rejection.body_text()).with_type("invalid-path"),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(rejection.body_text()).with_type("invalid-query")
    }
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters once
/// trimmed. Extracted as `IdempotencyKey` it is required (400
/// `idempotency-key-required` when absent); as `Option<IdempotencyKey>` it
/// may be absent. Either way a malformed key is a 400 `idempotency-key-invalid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const HEADER: &'static str = "idempotency-key";
    pub const MAX_LEN: usize = 255;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parse(value: &HeaderValue) -> Result<Self, ApiError> {
        value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|key| !key.is_empty() && key.len() <= Self::MAX_LEN)
            .map(|key| Self(key.to_owned()))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Idempotency-Key must be 1 to {} visible ASCII characters",
                    Self::MAX_LEN
                ))
                .with_type("idempotency-key-invalid")
            })
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match parts.headers.get(Self::HEADER) {
            Some(value) => Self::parse(value),
            None => Err(ApiError::bad_request(format!(
                "{} {} needs an Idempotency-Key header",
                parts.method,
                parts.uri.path()
            ))
            .with_type("idempotency-key-required")),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, ApiError> {
        parts.headers.get(Self::HEADER).map(Self::parse).transpose()
    }
}

/// The `limit` query parameter of a paged list: absent means `DEFAULT`,
/// otherwise 1 to `MAX`. A field of the list's own query type (with
/// `#[serde(default)]`), so the query keeps refusing unknown parameters;
/// [`get`](Self::get) answers the one problem every list gives for a bad limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct PageLimit<const DEFAULT: i64, const MAX: i64>(Option<i64>);

impl<const DEFAULT: i64, const MAX: i64> PageLimit<DEFAULT, MAX> {
    /// The requested limit, or the default; 400 `invalid-query` out of range.
    pub fn get(self) -> Result<i64, ApiError> {
        match self.0 {
            None => Ok(DEFAULT),
            Some(limit) if (1..=MAX).contains(&limit) => Ok(limit),
            Some(_) => Err(
                ApiError::bad_request(format!("limit must be between 1 and {MAX}"))
                    .with_type("invalid-query")
                    .with_extension("field", "limit"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_refused_body_is_described_without_the_values_it_held() {
        let messages = [
            "Failed to deserialize the JSON body into the target type: payment.card.number: invalid type: integer `4242424242424242`, expected a string at line 1 column 80",
            "payment.card.cvc: invalid type: string \"123\", expected u16 at line 1 column 9",
            "seats: invalid value: integer `-4242424242424242`, expected u32 at line 1 column 3",
            "a: invalid type: string \"quoted \\\" 4242424242424242\", expected a map",
        ];
        for message in messages {
            let cleaned = without_values(message);
            assert!(
                !cleaned.contains("4242") && !cleaned.contains("123\""),
                "{cleaned}"
            );
            assert!(cleaned.contains("expected"), "{cleaned}");
        }
        assert_eq!(
            without_values(messages[0]),
            "Failed to deserialize the JSON body into the target type: payment.card.number: invalid type: integer, expected a string at line 1 column 80"
        );
        assert_eq!(without_values("missing field `cvc`"), "missing field `cvc`");
    }

    use super::*;
    use axum::http::Request;

    fn parts(headers: &[(&'static str, &'static str)]) -> Parts {
        let mut request = Request::post("/bookings");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    async fn required(
        headers: &[(&'static str, &'static str)],
    ) -> Result<IdempotencyKey, ApiError> {
        <IdempotencyKey as FromRequestParts<()>>::from_request_parts(&mut parts(headers), &()).await
    }

    async fn optional(
        headers: &[(&'static str, &'static str)],
    ) -> Result<Option<IdempotencyKey>, ApiError> {
        <IdempotencyKey as OptionalFromRequestParts<()>>::from_request_parts(
            &mut parts(headers),
            &(),
        )
        .await
    }

    #[tokio::test]
    async fn an_idempotency_key_is_required_trimmed_and_bounded() {
        let missing = required(&[]).await.unwrap_err();
        assert_eq!(missing.code(), ErrorCode::BadRequest);
        assert_eq!(
            missing.detail(),
            "POST /bookings needs an Idempotency-Key header"
        );
        assert!(required(&[("idempotency-key", "  ")]).await.is_err());
        let long = "k".repeat(256).leak();
        assert!(required(&[("idempotency-key", long)]).await.is_err());
        assert_eq!(
            required(&[("idempotency-key", " order-1 ")])
                .await
                .unwrap()
                .as_str(),
            "order-1"
        );
    }

    #[tokio::test]
    async fn an_optional_idempotency_key_may_be_absent_but_not_malformed() {
        assert_eq!(optional(&[]).await.unwrap(), None);
        assert!(optional(&[("idempotency-key", "")]).await.is_err());
        assert_eq!(
            optional(&[("idempotency-key", "credit-1")])
                .await
                .unwrap()
                .map(|key| key.to_string()),
            Some("credit-1".to_owned())
        );
    }

    #[test]
    fn a_page_limit_defaults_and_is_bounded() {
        assert_eq!(PageLimit::<20, 100>(None).get().unwrap(), 20);
        assert_eq!(PageLimit::<20, 100>(Some(100)).get().unwrap(), 100);
        let refused = PageLimit::<20, 100>(Some(0)).get().unwrap_err();
        assert_eq!(refused.code(), ErrorCode::BadRequest);
        assert_eq!(refused.detail(), "limit must be between 1 and 100");
        assert!(PageLimit::<20, 100>(Some(101)).get().is_err());
    }
}
