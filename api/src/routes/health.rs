use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    /// For signed-in callers only: the rest is nobody else's business.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
}

#[derive(Serialize)]
struct Details {
    version: &'static str,
    store: &'static str,
    position: i64,
}

/// Answers only when the store answers: a load balancer takes a process without a database out.
/// Anonymous callers (the load balancer) learn the status; signed-in ones also the version, the
/// backend and the log position.
async fn health(State(state): State<AppState>, mut parts: Parts) -> Result<Json<Health>, ApiError> {
    let position = state.store.last_position().await?;
    let signed_in = match Authenticated::from_request_parts(&mut parts, &state).await {
        Ok(_) => true,
        // Credentials that were sent must be right; no credentials (or an ended session) is
        // an anonymous caller.
        Err(e) if parts.headers.contains_key(header::AUTHORIZATION) => return Err(e),
        Err(_) => false,
    };
    let details = signed_in.then(|| Details {
        version: env!("CARGO_PKG_VERSION"),
        store: state.store.backend().name(),
        position,
    });
    Ok(Json(Health {
        status: "ok",
        details,
    }))
}
