mod health;
pub(crate) mod tiles;

pub use tiles::{tile_server, TilesState};

use axum::Router;
use tower_http::trace::TraceLayer;

use crate::AppState;

/// The whole HTTP surface; `serve` and the tests both build it here.
pub fn app(state: AppState) -> Router {
    let sessions = state.sessions.layer(state.config.https);
    Router::new()
        .nest("/api/v1", health::router().merge(crate::rest::router()))
        .merge(crate::rest::legacy_router())
        .fallback(|| async {
            crate::error::ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "no such route",
            )
        })
        .layer(axum::middleware::map_response(crate::error::json_errors))
        .layer(sessions)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
