//! EXACT's `images/screening_modes`: a user's screening of an image (the grid of tiles the
//! viewer walks, and which of them were looked at). `PATCH current_index` moves to a tile and
//! marks it screened, as EXACT does.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use exact_domain::screening::{mark_current_screened, ScreeningState};
use exact_domain::DomainError;
use exact_projections::catalog_read::ScreeningRow;
use serde_json::{json, Value};

use super::expand::{expand, expand_results, Related};
use super::input::{Fields, Input};
use super::params::Params;
use super::{caller_for, if_match, with_etag};
use crate::auth::Authenticated;
use crate::commands::screening_state;
use crate::error::ApiError;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/images/screening_modes/",
            get(list_screenings).post(create_screening),
        )
        .route(
            "/images/screening_modes/{id}/",
            get(get_screening)
                .patch(update_screening)
                .put(update_screening)
                .delete(delete_screening),
        )
}

/// What `expand=` may replace in a screening.
const SCREENING_EXPANDS: &[(&str, Related)] = &[("image", Related::Image), ("user", Related::User)];

fn screening_json(row: &ScreeningRow) -> Value {
    let state = screening_state(row);
    json!({
        "id": row.id,
        "image": row.image,
        "user": row.user_id,
        "screening_tiles": state.screening_tiles,
        "x_steps": state.x_steps,
        "y_steps": state.y_steps,
        "x_resolution": state.x_resolution,
        "y_resolution": state.y_resolution,
        "current_index": state.current_index,
    })
}

/// Screenings of images the caller may read.
async fn visible_screenings(
    state: &AppState,
    auth: &Authenticated,
    image: Option<i64>,
) -> Result<Vec<ScreeningRow>, ApiError> {
    let rows = state.read.screenings(image).await?;
    if auth.caller.actor.superuser {
        return Ok(rows);
    }
    let readable: std::collections::BTreeSet<i64> = state
        .read
        .readable_images(auth.caller.actor, None)
        .await?
        .iter()
        .map(|i| i.id)
        .collect();
    Ok(rows
        .into_iter()
        .filter(|s| readable.contains(&s.image))
        .collect())
}

async fn visible_screening(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<ScreeningRow, ApiError> {
    visible_screenings(state, auth, None)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| DomainError::NotFound("screening").into())
}

async fn list_screenings(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<axum::Json<Value>, ApiError> {
    let ids = params.id_filter("id")?;
    let user = params.int("user")?;
    let rows = visible_screenings(&state, &auth, params.int("image")?)
        .await?
        .iter()
        .filter(|s| ids.as_ref().is_none_or(|ids| ids.contains(&s.id)))
        .filter(|s| user.is_none_or(|u| u == s.user_id))
        .map(screening_json)
        .collect();
    let mut page = params.page_of(rows)?;
    expand_results(&state, &auth, &params, &mut page, SCREENING_EXPANDS).await?;
    Ok(axum::Json(page))
}

async fn get_screening(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let row = visible_screening(&state, &auth, id).await?;
    let mut body = params.shape(screening_json(&row));
    expand(
        &state,
        &auth,
        &params,
        std::slice::from_mut(&mut body),
        SCREENING_EXPANDS,
    )
    .await?;
    Ok(with_etag(StatusCode::OK, body, row.version))
}

/// `state` with every field the body names replaced.
fn screening_fields(
    fields: &Fields<'_>,
    mut state: ScreeningState,
) -> Result<ScreeningState, ApiError> {
    if fields.has("screening_tiles") {
        state.screening_tiles = fields.json("screening_tiles")?.unwrap_or(Value::Null);
    }
    for (name, slot) in [
        ("x_steps", &mut state.x_steps),
        ("y_steps", &mut state.y_steps),
        ("x_resolution", &mut state.x_resolution),
        ("y_resolution", &mut state.y_resolution),
        ("current_index", &mut state.current_index),
    ] {
        if let Some(value) = fields.int(name)? {
            *slot = value;
        }
    }
    Ok(state)
}

/// `image` (required), `user` (default: the caller), and the viewer's grid.
async fn create_screening(
    State(state): State<AppState>,
    auth: Authenticated,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let image = fields.required_int("image")?;
    let user = fields.int("user")?.unwrap_or(auth.caller.actor.id);
    let screening = screening_fields(&fields, ScreeningState::default())?;
    let written = state
        .commands
        .start_screening(&caller_for(&auth, &body), image, user, screening)
        .await?;
    let row = visible_screening(&state, &auth, written.id).await?;
    Ok(with_etag(
        StatusCode::CREATED,
        screening_json(&row),
        row.version,
    ))
}

/// Replaces the fields the body names; a `current_index` also marks that tile screened.
async fn update_screening(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let row = visible_screening(&state, &auth, id).await?;
    let fields = Fields::of(&body)?;
    let mut screening = screening_fields(&fields, screening_state(&row))?;
    if fields.has("current_index") {
        mark_current_screened(&mut screening);
    }
    state
        .commands
        .change_screening(
            &caller_for(&auth, &body),
            &row,
            if_match(&headers)?,
            screening,
        )
        .await?;
    let row = visible_screening(&state, &auth, id).await?;
    Ok(with_etag(StatusCode::OK, screening_json(&row), row.version))
}

/// EXACT's screening delete: the walk ends (its owner's or a superuser's call); the log keeps
/// every step of it.
async fn delete_screening(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let row = visible_screening(&state, &auth, id).await?;
    state
        .commands
        .end_screening(&auth.caller, &row, if_match(&headers)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
