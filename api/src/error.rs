//! The one place where errors become HTTP responses: a stable snake_case `code`, a message for
//! people, and the field at fault where there is one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use exact_store::StoreError;
use serde::Serialize;

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
            field: self.field.as_deref(),
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let (status, code) = match &e {
            StoreError::Conflict { .. } => (StatusCode::CONFLICT, "version_conflict"),
            StoreError::DuplicateEvent { .. } => (StatusCode::CONFLICT, "duplicate_event"),
            StoreError::InvalidAppend(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "store_unavailable"),
        };
        if status.is_server_error() {
            // The details (SQL, paths) go to the log, not to the client.
            tracing::error!(error = %e, "store error");
            return ApiError {
                status,
                code,
                message: "the event store failed; the error is logged".into(),
                field: None,
            };
        }
        ApiError {
            status,
            code,
            message: e.to_string(),
            field: None,
        }
    }
}
