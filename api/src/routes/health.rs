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

/// The server's health: `ok` whenever it answers at all. The rest is for signed-in callers
/// only: it is nobody else's business.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    /// `sqlite` or `postgres`.
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<&'static str>,
    /// The log's last position.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<i64>,
}

/// The server and its store answer
///
/// Answers only when the store answers: a load balancer takes a process without a database out.
/// Anonymous callers (the load balancer) learn the status; signed-in ones also the version, the
/// backend and the log position.
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health)))]
async fn health(State(state): State<AppState>, mut parts: Parts) -> Result<Json<Health>, ApiError> {
    let position = state.store.last_position().await?;
    let signed_in = match Authenticated::from_request_parts(&mut parts, &state).await {
        Ok(_) => true,
        // Credentials that were sent must be right; no credentials (or an ended session) is
        // an anonymous caller.
        Err(e) if parts.headers.contains_key(header::AUTHORIZATION) => return Err(e),
        Err(_) => false,
    };
    Ok(Json(Health {
        status: "ok",
        version: signed_in.then_some(env!("CARGO_PKG_VERSION")),
        store: signed_in.then(|| state.store.backend().name()),
        position: signed_in.then_some(position),
    }))
}
