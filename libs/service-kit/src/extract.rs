//! Extractors whose rejections are problem+json, never plain text.
//!
//! Use these instead of axum's own: `service_kit::Json<T>` for bodies (400 bad
//! syntax, 413 too large, 415 wrong content type, 422 wrong shape),
//! `service_kit::Path<T>` and `service_kit::Query<T>` (400).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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
            _ => rejection.body_text(),
        };
        ApiError::new(code, detail)
    }
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
