//! The one place where errors become HTTP responses: a stable snake_case `code`, a message for
//! people, and the field at fault where there is one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use exact_domain::DomainError;
use exact_projections::annotation_query::QueryError;
use exact_store::StoreError;
use serde::Serialize;

mod code;
pub use code::Code;

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    /// Says the status too: [`ApiError::status`].
    pub code: Code,
    pub message: String,
    pub field: Option<String>,
    /// What a refused import found, line by line (its report).
    pub report: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a serde_json::Value>,
}

/// Seconds a client is asked to wait before trying again while the database is out of reach.
const RETRY_AFTER_SECONDS: &str = "5";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code.name(),
            message: &self.message,
            field: self.field.as_deref(),
            report: self.report.as_ref(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        if self.code == Code::DatabaseUnavailable {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            return ApiError::unavailable(&e);
        }
        let code = match &e {
            StoreError::Conflict { .. } => Code::VersionConflict,
            StoreError::DuplicateEvent { .. } => Code::DuplicateEvent,
            StoreError::InvalidAppend(_) => Code::InvalidEvent,
            _ => Code::StoreUnavailable,
        };
        if code.status().is_server_error() {
            // The details (SQL, paths) go to the log, not to the client.
            tracing::error!(error = %e, "store error");
            return ApiError::new(code, "the event store failed; the error is logged");
        }
        ApiError::new(code, e.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} ({field}): {}", self.code.name(), self.message),
            None => write!(f, "{}: {}", self.code.name(), self.message),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            report: None,
        }
    }

    /// With the report of what was refused (an import's, line by line).
    #[must_use]
    pub fn with_report(mut self, report: serde_json::Value) -> Self {
        self.report = Some(report);
        self
    }

    /// The HTTP status, the code's own.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    #[must_use]
    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// The caller acted on a version that is no longer current (`If-Match`).
    pub fn stale(stream: &str, seen: i64, current: i64) -> Self {
        Self::new(
            Code::StaleVersion,
            format!("{stream} is at version {current}, not {seen}: reload it and try again"),
        )
    }

    /// Others kept changing the same thing while the command was retried.
    pub fn busy(stream: &str) -> Self {
        Self::new(
            Code::VersionConflict,
            format!("{stream} kept changing while this command was applied; try again"),
        )
    }

    /// The database is out of reach: 503 with `Retry-After`, the details in the log.
    pub fn unavailable(error: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %error, "the database cannot be reached");
        Self::new(
            Code::DatabaseUnavailable,
            "the database cannot be reached now and nothing was changed; try again shortly",
        )
    }

    /// Writing a file failed: a full disk (or quota) is the client's to know, as 507, and a
    /// file over the file system's size limit is 413; anything else is the server's fault.
    pub fn storing(what: &str, error: &std::io::Error) -> Self {
        use std::io::ErrorKind;
        match error.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
                tracing::warn!(error = %error, "{what}: the disk is full");
                Self::new(
                    Code::InsufficientStorage,
                    format!("{what}: the server's disk is full; nothing was kept"),
                )
            }
            ErrorKind::FileTooLarge => Self::new(
                Code::UploadTooLarge,
                format!("{what}: a file is larger than the server's file system takes"),
            ),
            _ => Self::internal(what, error),
        }
    }

    pub fn internal(what: &str, error: &dyn std::fmt::Display) -> Self {
        // The details (SQL, paths) go to the log, not to the client.
        tracing::error!(error = %error, "{what}");
        Self::new(Code::InternalError, format!("{what}; the error is logged"))
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        use exact_domain::annotation::AnnotationError as A;
        let (code, field) = match &e {
            DomainError::Invalid { field, .. } => (Code::Invalid, Some(*field)),
            DomainError::Taken { field, .. } => (Code::Taken, Some(*field)),
            DomainError::NotFound(_) => (Code::NotFound, None),
            DomainError::AlreadyExists(_) => (Code::AlreadyExists, None),
            DomainError::Forbidden(_) | DomainError::ForbiddenInSet(_) => (Code::Forbidden, None),
            DomainError::Deleted(_) => (Code::Deleted, None),
            DomainError::InUse { field, .. } => (Code::InUse, Some(*field)),
            DomainError::Annotation(a) => match a {
                A::Forbidden(_) => (Code::Forbidden, None),
                A::NotFound => (Code::NotFound, None),
                A::AlreadyExists { .. } | A::GlobalExists => (Code::AlreadyExists, None),
                A::Deleted => (Code::Deleted, None),
                A::TypeInactive(_) | A::TypeNotOffered(_) | A::WrongType { .. } => {
                    (Code::Invalid, Some("annotation_type"))
                }
                A::WrongImage { .. } => (Code::Invalid, Some("image")),
                A::DescriptionTooLong => (Code::Invalid, Some("description")),
                A::Vector(_) => (Code::Invalid, Some("vector")),
                A::ReasonRequired => (Code::ReasonRequired, Some("reason")),
                A::SignatureRequired => (Code::SignatureRequired, Some("password")),
                A::SignerUnnamed => (Code::Invalid, Some("password")),
            },
        };
        let error = ApiError::new(code, e.to_string());
        match field {
            Some(field) => error.with_field(field),
            None => error,
        }
    }
}

impl From<exact_domain::annotation::AnnotationError> for ApiError {
    fn from(e: exact_domain::annotation::AnnotationError) -> Self {
        DomainError::from(e).into()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if exact_store::is_unavailable(&e) {
            return ApiError::unavailable(&e);
        }
        Self::internal("reading the read models failed", &e)
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Invalid(message) => Self::new(Code::InvalidQuery, message),
            QueryError::Database(e) => e.into(),
        }
    }
}

impl From<exact_tiles::TilesError> for ApiError {
    fn from(e: exact_tiles::TilesError) -> Self {
        Self::from_tiles(&e, None)
    }
}

impl ApiError {
    /// A tiles error about a file the client knows as `client_name` (else by its stored file
    /// name). Where the server keeps the file is not the client's to learn: no message names a
    /// stored path.
    pub fn from_tiles(e: &exact_tiles::TilesError, client_name: Option<&str>) -> Self {
        use exact_tiles::TilesError as T;
        let about = |file: &str, what: &str, reason: &str| {
            let name = client_name.map_or_else(|| file_name(file), str::to_owned);
            format!("{name}: {what}: {}", without_paths(reason, file))
        };
        let (code, message) = match e {
            T::NotFound(what) if std::path::Path::new(what).is_absolute() => (
                Code::NotFound,
                format!(
                    "{}: not found",
                    client_name.map_or_else(|| file_name(what), str::to_owned)
                ),
            ),
            T::NotFound(what) => (Code::NotFound, format!("not found: {what}")),
            T::Unsupported { file, reason } => {
                (Code::UnsupportedFile, about(file, "unsupported", reason))
            }
            T::Corrupt { file, reason } => {
                (Code::UnreadableFile, about(file, "cannot be read", reason))
            }
            T::OutOfRange(m) => (Code::OutOfRange, m.clone()),
            T::TooLarge(m) => (Code::TooLarge, m.clone()),
            T::Decode { file, reason } => {
                // One damaged tile: logged, answered alone; the slide is reopened.
                tracing::error!(error = %e, "tile decode failed");
                (
                    Code::TileUnreadable,
                    about(file, "pixels could not be decoded", reason),
                )
            }
            T::Encode(_) | T::Io(_) => return Self::internal("rendering pixels failed", e),
        };
        Self::new(code, message)
    }
}

fn file_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `reason` with the stored path `file` (and the folder it is in) replaced by the file's own
/// name: libraries such as OpenSlide put the path they opened into their messages.
fn without_paths(reason: &str, file: &str) -> String {
    let path = std::path::Path::new(file);
    let mut text = reason.replace(file, &file_name(file));
    if let Some(folder) = path.parent().map(|p| p.display().to_string()) {
        if !folder.is_empty() && folder != "/" {
            text = text.replace(&format!("{folder}/"), "");
        }
    }
    text
}

/// Every error leaves as JSON, including those axum answers before a handler runs (no such
/// route, a method the route does not take, a path segment that is not a number): their text
/// becomes the `message` of a JSON error.
pub async fn json_errors(response: axum::response::Response) -> axum::response::Response {
    use axum::http::header;
    let status = response.status();
    // JSON errors are already what they should be, and a page's own error page (HTML, for a
    // person in a browser) stays a page: only axum's plain-text answers are rewritten.
    let is_ours = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_ours {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let (code, fallback) = match status {
        StatusCode::NOT_FOUND => (Code::NotFound, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => (
            Code::MethodNotAllowed,
            "this route does not take that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (Code::BodyTooLarge, "the body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            Code::UnsupportedMediaType,
            "send JSON, a form or multipart data",
        ),
        s if s.is_server_error() => (
            Code::InternalError,
            "the server failed; the error is logged",
        ),
        _ => (Code::InvalidRequest, "the request cannot be read"),
    };
    let message = if text.is_empty() {
        fallback.to_owned()
    } else {
        text
    };
    let mut error = ApiError::new(code, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            error.headers_mut().insert(name.clone(), value.clone());
        }
    }
    error
}
