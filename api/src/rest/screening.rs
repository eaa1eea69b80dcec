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
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::body::{lenient, Body};
use super::expand::{expand, expand_results, Related};
use super::filters::IdFilter;
use super::params::Params;
use super::shapes::{self, Screening};
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
    shapes::value(&Screening::of(
        row.id,
        row.image,
        row.user_id,
        screening_state(row),
    ))
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

/// The filters of the screening list.
#[derive(Debug, Deserialize)]
struct ScreeningFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    image: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
}

/// Screenings: a user's walk over an image's tiles
#[utoipa::path(get, path = "/images/screening_modes/", responses((status = 200, body = crate::rest::shapes::ScreeningModePage)))]
async fn list_screenings(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<axum::Json<Value>, ApiError> {
    let f: ScreeningFilters = params.filters()?;
    let (ids, user) = (f.id.allowed(), f.user);
    let rows = visible_screenings(&state, &auth, f.image)
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

/// One screening (ETag: its version)
#[utoipa::path(get, path = "/images/screening_modes/{id}/", responses((status = 200, body = crate::rest::shapes::Screening)))]
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

/// The viewer's grid a screening's creation or update may send; only what is sent changes.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ScreeningModeChange)]
pub(in crate::rest) struct ScreeningFields {
    #[serde(default, deserialize_with = "lenient::json")]
    screening_tiles: Option<Value>,
    #[serde(default, deserialize_with = "lenient::int")]
    x_steps: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    y_steps: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    x_resolution: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    y_resolution: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    current_index: Option<i64>,
}

impl ScreeningFields {
    /// `state` with every field sent replaced.
    fn applied_to(self, mut state: ScreeningState) -> ScreeningState {
        state.screening_tiles = self.screening_tiles.unwrap_or(state.screening_tiles);
        state.x_steps = self.x_steps.unwrap_or(state.x_steps);
        state.y_steps = self.y_steps.unwrap_or(state.y_steps);
        state.x_resolution = self.x_resolution.unwrap_or(state.x_resolution);
        state.y_resolution = self.y_resolution.unwrap_or(state.y_resolution);
        state.current_index = self.current_index.unwrap_or(state.current_index);
        state
    }
}

/// What a screening's creation reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewScreeningMode)]
pub(in crate::rest) struct NewScreeningBody {
    #[serde(deserialize_with = "lenient::required_int")]
    image: i64,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
    #[serde(flatten)]
    grid: ScreeningFields,
}

/// Start screening an image
///
/// `image` (required), `user` (default: the caller), and the viewer's grid.
#[utoipa::path(post, path = "/images/screening_modes/", request_body = NewScreeningBody, responses((status = 201, body = crate::rest::shapes::Screening)))]
async fn create_screening(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<NewScreeningBody>,
) -> Result<Response, ApiError> {
    let NewScreeningBody { image, user, grid } = fields;
    let user = user.unwrap_or(auth.caller.actor.id);
    let screening = grid.applied_to(ScreeningState::default());
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

/// Move on (current_index marks the tile screened) or change the grid
///
/// Replaces the fields the body names; a `current_index` also marks that tile screened.
#[utoipa::path(patch, path = "/images/screening_modes/{id}/", request_body = ScreeningFields, responses((status = 200, body = crate::rest::shapes::Screening)))]
async fn update_screening(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<ScreeningFields>,
) -> Result<Response, ApiError> {
    let row = visible_screening(&state, &auth, id).await?;
    let moved = fields.current_index.is_some();
    let mut screening = fields.applied_to(screening_state(&row));
    if moved {
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

/// End a screening (its owner or a superuser)
///
/// EXACT's screening delete: the walk ends (its owner's or a superuser's call); the log keeps
/// every step of it.
#[utoipa::path(delete, path = "/images/screening_modes/{id}/", responses((status = 204)))]
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
