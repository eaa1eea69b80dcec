//! The image access log (EXACT's `log_image_actions`): who opened or closed an image, when.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use exact_domain::DomainError;
use exact_projections::catalog_read::AccessRow;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::rest::access::{readable_image, readable_image_ids};
use crate::rest::body::{lenient, Body};
use crate::rest::caller_for;
use crate::rest::expand::{expand, expand_results, Related};
use crate::rest::filters::{IpFilter, TimeFilter};
use crate::rest::input::wrong;
use crate::rest::params::Params;
use crate::rest::shapes::{self, AccessEntry};
use crate::AppState;

// ---- image access log ----

/// The filters of the image access log.
#[derive(Debug, Deserialize)]
struct AccessFilters {
    #[serde(flatten)]
    time: TimeFilter,
    #[serde(flatten)]
    ip: IpFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    image: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    action: Option<i64>,
}

/// The image access log
#[utoipa::path(get, path = "/annotations/log_image_actions/", responses((status = 200, body = crate::rest::shapes::AccessEntryPage)))]
pub(super) async fn list_access(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: AccessFilters = params.filters()?;
    // The images asked for (one, or all), within those the caller may read: one query.
    let readable = readable_image_ids(&state, &auth).await?;
    let images: Option<Vec<i64>> = match (f.image, readable) {
        (Some(image), Some(r)) => Some(r.into_iter().filter(|i| *i == image).collect()),
        (Some(image), None) => Some(vec![image]),
        (None, readable) => readable.map(|r| r.into_iter().collect()),
    };
    let (user, action) = (f.user, f.action);
    let mut rows = Vec::new();
    for entry in state.read.access_log_of(images.as_deref()).await? {
        if user.is_none_or(|u| u == entry.user_id)
            && action.is_none_or(|a| a == entry.action)
            && f.time.keeps(entry.time)
            && f.ip.keeps(entry.ip.as_deref().unwrap_or_default())
        {
            rows.push(access_json(&entry));
        }
    }
    let mut page = params.page_of(rows)?;
    let expandable = [("image", Related::Image), ("user", Related::User)];
    expand_results(&state, &auth, &params, &mut page, &expandable).await?;
    Ok(Json(page))
}

pub(super) fn access_json(entry: &AccessRow) -> Value {
    shapes::value(&AccessEntry::of(entry))
}

/// One entry of the access log
///
/// One entry of the access log (its id is its log position), if its image is readable.
#[utoipa::path(get, path = "/annotations/log_image_actions/{id}/", responses((status = 200, body = crate::rest::shapes::AccessEntry)))]
pub(super) async fn get_access(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let entry = readable_access(&state, &auth, id).await?;
    let mut body = params.shape(access_json(&entry));
    let expandable = [("image", Related::Image), ("user", Related::User)];
    expand(
        &state,
        &auth,
        &params,
        std::slice::from_mut(&mut body),
        &expandable,
    )
    .await?;
    Ok(Json(body))
}

/// Access log entry `id`, if its image is readable.
pub(super) async fn readable_access(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<AccessRow, ApiError> {
    let entry = state
        .read
        .image_access_entry(id)
        .await?
        .ok_or(DomainError::NotFound("access log entry"))?;
    // Its image as the caller may read it (one image and its set, not every readable image);
    // a superuser reads every entry, of deleted images too.
    if !auth.caller.actor.superuser {
        readable_image(state, auth, entry.image)
            .await
            .map_err(|e| match e.status() {
                StatusCode::NOT_FOUND => DomainError::NotFound("access log entry").into(),
                _ => e,
            })?;
    }
    Ok(entry)
}

/// Correct an entry's action (its user or a superuser)
///
/// EXACT's access log update: the entry's `action`, corrected by its user (or a superuser).
/// The correction is an event; the first record stays in the log.
#[utoipa::path(patch, path = "/annotations/log_image_actions/{id}/", request_body = AccessChange, responses((status = 200, body = crate::rest::shapes::AccessEntry)))]
pub(super) async fn update_access(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<AccessChange>,
) -> Result<Json<Value>, ApiError> {
    let entry = readable_access(&state, &auth, id).await?;
    // Whose entry it is decides first: another user's is refused whatever the body says
    // (an unchanged action would otherwise answer 200 without a check).
    exact_domain::image::may_amend_access(entry.user_id, auth.caller.actor)?;
    for (field, sent, own) in [
        ("image", fields.image, entry.image),
        ("user", fields.user, entry.user_id),
    ] {
        if sent.is_some_and(|s| s != own) {
            return Err(wrong(field, "the entry's own"));
        }
    }
    if let Some(action) = fields.action.filter(|a| *a != entry.action) {
        state
            .commands
            .amend_image_access(&caller_for(&auth, &body), &entry, Some(action))
            .await?;
    }
    Ok(Json(access_json(
        &readable_access(&state, &auth, id).await?,
    )))
}

/// What an access log entry's update reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AccessEntryChange)]
pub(in crate::rest) struct AccessChange {
    #[serde(default, deserialize_with = "lenient::int")]
    image: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    action: Option<i64>,
}

/// Take an entry out of the access log (the events keep it)
///
/// EXACT's access log delete: the entry leaves the access log (its user's or a superuser's
/// call); the log of events keeps it.
#[utoipa::path(delete, path = "/annotations/log_image_actions/{id}/", responses((status = 204)))]
pub(super) async fn delete_access(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let entry = readable_access(&state, &auth, id).await?;
    state
        .commands
        .amend_image_access(&auth.caller, &entry, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the viewer's report of an opened or closed image reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewAccessEntry)]
pub(in crate::rest) struct NewAccessBody {
    #[serde(deserialize_with = "lenient::required_int")]
    image: i64,
    #[serde(deserialize_with = "lenient::required_int")]
    action: i64,
}

/// Report opening (1) or closing (2) an image
///
/// The viewer's report that the caller opened (action 1) or closed (2) an image.
#[utoipa::path(post, path = "/annotations/log_image_actions/", request_body = NewAccessBody, responses((status = 201, body = crate::rest::shapes::AccessEntry)))]
pub(super) async fn create_access(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<NewAccessBody>,
) -> Result<Response, ApiError> {
    let image = fields.image;
    let opened = match fields.action {
        1 => true,
        2 => false,
        _ => return Err(wrong("action", "1 (opened) or 2 (closed)")),
    };
    let position = state
        .commands
        .record_image_access(&caller_for(&auth, &body), image, opened)
        .await?;
    let entry = state
        .read
        .image_access(image)
        .await?
        .into_iter()
        .find(|e| e.position == position)
        .ok_or(DomainError::NotFound("log image action"))?;
    Ok((StatusCode::CREATED, Json(AccessEntry::of(&entry))).into_response())
}
