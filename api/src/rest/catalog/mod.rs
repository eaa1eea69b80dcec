//! Users, teams, memberships, products, annotation types and image sets.

pub(in crate::rest) mod annotation_types;
pub(in crate::rest) mod export_formats;
pub(in crate::rest) mod image_sets;
pub(in crate::rest) mod products;
pub(in crate::rest) mod teams;
pub(in crate::rest) mod users;

use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use exact_domain::DomainError;
use serde_json::Value;

use super::with_etag;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(users::router())
        .merge(teams::router())
        .merge(products::router())
        .merge(export_formats::router())
        .merge(annotation_types::router())
        .merge(image_sets::router())
}

fn created(body: Value, version: i64) -> Response {
    with_etag(StatusCode::CREATED, body, version)
}

fn ok(body: Value, version: i64) -> Response {
    with_etag(StatusCode::OK, body, version)
}

fn not_found(what: &'static str) -> ApiError {
    DomainError::NotFound(what).into()
}
