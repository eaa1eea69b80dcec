pub(crate) mod health;
pub(crate) mod tiles;

pub use tiles::{tile_server, TilesState};

use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::AppState;

/// The whole HTTP surface; `serve` and the tests both build it here.
pub fn app(state: AppState) -> Router {
    let sessions = state.sessions.layer(state.config.https);
    Router::new()
        .nest("/api/v1", health::router().merge(crate::rest::router()))
        .merge(crate::rest::legacy_router())
        .merge(crate::set_archives::router())
        .merge(crate::pages::router())
        .fallback(|| async {
            crate::error::ApiError::new(crate::error::Code::NotFound, "no such route")
        })
        .layer(axum::middleware::map_response(crate::error::json_errors))
        .layer(axum::middleware::map_response(security_headers))
        .layer(sessions)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Headers every answer carries: no content sniffing, no framing by other sites, and no caching
/// of answers that are private (JSON, unless a route chose its own cache policy, as the pixel
/// routes do).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
