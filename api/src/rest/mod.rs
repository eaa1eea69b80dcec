//! EXACT's REST API (`/api/v1/...`), field for field what `exact-sync` 0.0.41 sends and reads,
//! plus what EXACT lacked: history, `as_of`, `in_bbox`, ETags and reasons.
//!
//! Every handler takes an [`Authenticated`](crate::auth::Authenticated) caller. Lists show only
//! what the caller may read; a single resource the caller may not read is a 404, as if it did
//! not exist.

pub mod access;
mod accounts;
mod annotations;
pub mod body;
mod catalog;
mod events;
mod expand;
pub(crate) mod exports;
pub mod filters;
mod images;
mod imports;
pub mod input;
mod media_files;
pub mod openapi;
pub mod params;
mod screening;
mod set_tags;
pub mod shapes;
mod versions;

pub use shapes::membership_id;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::Value;

use crate::auth::Authenticated;
use crate::commands::Caller;
use crate::error::{ApiError, Code};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(accounts::router())
        .merge(catalog::router())
        .merge(annotations::router())
        .merge(images::api_router())
        .merge(events::router())
        .merge(exports::router())
        .merge(imports::router())
        .merge(versions::router())
        .merge(set_tags::router())
        .merge(screening::router())
        .merge(media_files::router())
        .merge(openapi::router())
        .route("/timesync/", get(timesync))
        .route("/processing/{*rest}", any(not_built))
        .route("/images/registration/", any(not_built))
        .route("/images/registration/{*rest}", any(not_built))
        .layer(DefaultBodyLimit::max(input::MAX_BODY))
}

/// The routes outside `/api/v1` that `exact-sync` calls (image download) and EXACT's viewer
/// uses (DeepZoom by image id).
pub fn legacy_router() -> Router<AppState> {
    images::legacy_router().merge(imports::legacy_router())
}

/// The server's clock
///
/// The server's clock, for clients that compare times (EXACT's `/timesync/`).
#[utoipa::path(get, path = "/timesync/", responses((status = 200, body = crate::rest::shapes::TimeSync)))]
async fn timesync() -> Json<shapes::TimeSync> {
    let now = chrono::Utc::now();
    Json(shapes::TimeSync {
        time: now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        timestamp: now.timestamp_micros() as f64 / 1e6,
    })
}

/// EXACT's plugin, registration, screening and media routes are not built yet: say so.
async fn not_built() -> ApiError {
    ApiError::new(
        Code::NotImplemented,
        "this part of EXACT's API (plugins, processing, registration) is not built in this \
         server yet",
    )
}

/// The version a write expects, from `If-Match` (an ETag this server gave: `"N"`).
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("W/").unwrap_or(text);
    text.trim_matches('"').parse().map(Some).map_err(|_| {
        ApiError::new(
            Code::InvalidHeader,
            "If-Match must be an ETag this server sent, such as \"3\"",
        )
        .with_field("If-Match")
    })
}

/// A single resource with its stream version as the ETag.
pub fn with_etag(status: StatusCode, body: Value, version: i64) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// The command caller for a write, with the reason from the body's `reason` field if it has
/// one, else from the `X-Exact-Reason` header.
pub fn caller_for(auth: &Authenticated, body: &Value) -> Caller {
    let from_body = body
        .get("reason")
        .and_then(Value::as_str)
        .map(|r| r.trim().chars().take(1000).collect::<String>())
        .filter(|r| !r.is_empty());
    let reason = from_body.or_else(|| auth.caller.reason.clone());
    auth.caller.clone().with_reason(reason)
}
