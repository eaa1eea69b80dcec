//! Dataset versions as EXACT's `set_versions` (a name for image sets as they stood at one log
//! position, made by anyone who may read the sets), and `annotation_versions`: each annotation
//! of such a version as it was then, read from the history, with `has_changes` telling whether
//! it differs now. EXACT copied every annotation into a table to make a version; here a version
//! is a position, and its rows are the history as of it.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use exact_domain::DomainError;
use exact_projections::annotation_query::AnnotationQuery;
use exact_projections::annotations::AnnotationRow;
use exact_projections::catalog_read::DatasetVersionRow;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::body::{lenient, Body};
use super::filters::{
    AnnotationIdFilter, AnnotationTypeIdFilter, IdFilter, ImageIdFilter, NameFilter,
};
use super::params::Params;
use super::shapes::{self, AnnotationVersion};
use super::{caller_for, not_built};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/images/set_versions/",
            get(list_set_versions).post(create_set_version),
        )
        .route("/images/set_versions/{id}/", get(get_set_version))
        // Attaching a file to a version (EXACT's `add`) is not built.
        .route("/images/set_versions/{id}/add/", any(not_built))
        .route(
            "/annotations/annotation_versions/",
            get(list_annotation_versions),
        )
        .route(
            "/annotations/annotation_versions/{id}/",
            get(get_annotation_version),
        )
}

/// A version with the sets it names.
struct SetVersion {
    row: DatasetVersionRow,
    sets: Vec<i64>,
}

fn set_version_json(v: &SetVersion) -> Value {
    shapes::value(&shapes::SetVersion::of(&v.row, &v.sets))
}

/// The versions whose every set the caller may read, by id.
async fn visible_versions(
    state: &AppState,
    auth: &Authenticated,
) -> Result<BTreeMap<i64, SetVersion>, ApiError> {
    let readable = state.read.readable_set_ids(auth.caller.actor).await?;
    let mut sets: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (version, set) in state.read.dataset_version_links().await? {
        sets.entry(version).or_default().push(set);
    }
    let mut visible = BTreeMap::new();
    for row in state.read.dataset_versions().await? {
        let sets = sets.remove(&row.id).unwrap_or_default();
        if auth.caller.actor.superuser || sets.iter().all(|s| readable.contains(s)) {
            visible.insert(row.id, SetVersion { row, sets });
        }
    }
    Ok(visible)
}

async fn visible_version(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<SetVersion, ApiError> {
    visible_versions(state, auth)
        .await?
        .remove(&id)
        .ok_or_else(|| DomainError::NotFound("set version").into())
}

/// The filters of the dataset version list.
#[derive(Debug, Deserialize)]
struct VersionFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    name: NameFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    imagesets: Option<i64>,
}

/// Dataset versions: image sets as they stood at a log position
#[utoipa::path(get, path = "/images/set_versions/", responses((status = 200, body = crate::rest::shapes::SetVersionPage)))]
async fn list_set_versions(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: VersionFilters = params.filters()?;
    let (ids, set) = (f.id.allowed(), f.imagesets);
    let rows = visible_versions(&state, &auth)
        .await?
        .values()
        .filter(|v| ids.as_ref().is_none_or(|ids| ids.contains(&v.row.id)))
        .filter(|v| f.name.keeps(&v.row.name))
        .filter(|v| set.is_none_or(|s| v.sets.contains(&s)))
        .map(set_version_json)
        .collect();
    Ok(Json(params.page_of(rows)?))
}

/// One dataset version
#[utoipa::path(get, path = "/images/set_versions/{id}/", responses((status = 200, body = crate::rest::shapes::SetVersion)))]
async fn get_set_version(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let version = visible_version(&state, &auth, id).await?;
    Ok(Json(params.shape(set_version_json(&version))))
}

/// What a dataset version's creation reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewSetVersion)]
pub(in crate::rest) struct NewVersionBody {
    #[serde(deserialize_with = "lenient::required_string")]
    name: String,
    #[serde(deserialize_with = "lenient::required_ids")]
    imagesets: Vec<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    position: Option<i64>,
}

/// Name image sets as they stand now (or at `position`)
///
/// `name` and `imagesets`, and optionally the log `position` to name (default: now).
#[utoipa::path(post, path = "/images/set_versions/", request_body = NewVersionBody, responses((status = 201, body = crate::rest::shapes::SetVersion)))]
async fn create_set_version(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<NewVersionBody>,
) -> Result<Response, ApiError> {
    let NewVersionBody {
        name,
        imagesets: sets,
        position,
    } = fields;
    let written = state
        .commands
        .create_dataset_version(
            &caller_for(&auth, &body),
            name,
            position,
            sets.into_iter().collect(),
        )
        .await?;
    let version = visible_version(&state, &auth, written.id).await?;
    Ok((StatusCode::CREATED, Json(set_version_json(&version))).into_response())
}

// ---- annotation versions ----

fn annotation_version_json(
    version: i64,
    then: &AnnotationRow,
    now: Option<&AnnotationRow>,
) -> Value {
    shapes::value(&AnnotationVersion::of(version, then, now))
}

/// The filters of the annotation version list: which version, and the scope within it.
#[derive(Debug, Deserialize)]
struct AnnotationVersionFilters {
    #[serde(deserialize_with = "lenient::required_int")]
    version: i64,
    #[serde(default, deserialize_with = "lenient::bool")]
    has_changes: Option<bool>,
    #[serde(flatten)]
    scope: VersionScope,
}

/// Which of a version's annotations a list or a retrieve reads.
#[derive(Debug, Deserialize)]
struct VersionScope {
    #[serde(flatten)]
    image: ImageIdFilter,
    #[serde(flatten)]
    annotation: AnnotationIdFilter,
    #[serde(flatten)]
    annotation_type: AnnotationTypeIdFilter,
    #[serde(default, deserialize_with = "lenient::bool")]
    deleted: Option<bool>,
}

/// The annotations of `version` as they were, with the filters `f`.
async fn version_query(
    state: &AppState,
    version: &SetVersion,
    f: &VersionScope,
) -> Result<AnnotationQuery, ApiError> {
    let mut images = state.read.image_ids_of_sets(&version.sets).await?;
    if let Some(wanted) = f.image.allowed() {
        images.retain(|i| wanted.contains(i));
    }
    let annotations = f.annotation.allowed();
    if annotations.as_ref().is_some_and(Vec::is_empty) {
        images.clear();
    }
    Ok(AnnotationQuery {
        images: Some(images),
        ids: annotations.unwrap_or_default(),
        annotation_types: f.annotation_type.allowed().unwrap_or_default(),
        deleted: f.deleted,
        as_of: Some(version.row.position),
        ..AnnotationQuery::default()
    })
}

/// The current rows of `then`'s annotations, by id.
async fn current_rows(
    state: &AppState,
    then: &[AnnotationRow],
) -> Result<BTreeMap<i64, AnnotationRow>, ApiError> {
    if then.is_empty() {
        return Ok(BTreeMap::new());
    }
    let query = AnnotationQuery {
        ids: then.iter().map(|a| a.id).collect(),
        ..AnnotationQuery::default()
    };
    let rows = state.read.annotations(&query).await?;
    Ok(rows.into_iter().map(|a| (a.id, a)).collect())
}

/// The annotations of a version (`version=`) as they were then
///
/// `version` is required: a version's rows are the history as of its position.
/// `has_changes` is answered after reading the whole version.
#[utoipa::path(get, path = "/annotations/annotation_versions/", responses((status = 200, body = crate::rest::shapes::AnnotationVersionPage)))]
async fn list_annotation_versions(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: AnnotationVersionFilters = params.filters()?;
    let version_id = f.version;
    let version = visible_version(&state, &auth, version_id).await?;
    let mut query = version_query(&state, &version, &f.scope).await?;
    let (limit, offset) = params.page()?;
    let Some(has_changes) = f.has_changes else {
        query.limit = Some(limit);
        query.offset = offset;
        let then = state.read.annotations(&query).await?;
        let now = current_rows(&state, &then).await?;
        query.limit = None;
        query.offset = 0;
        let count = state.read.count_annotations(&query).await?;
        let results = then
            .iter()
            .map(|a| annotation_version_json(version_id, a, now.get(&a.id)))
            .collect();
        return Ok(Json(params.paginated(count, limit, offset, results)));
    };
    let then = state.read.annotations(&query).await?;
    let now = current_rows(&state, &then).await?;
    let rows = then
        .iter()
        .map(|a| annotation_version_json(version_id, a, now.get(&a.id)))
        .filter(|row| row["has_changes"] == has_changes)
        .collect();
    Ok(Json(params.page_of(rows)?))
}

/// The annotation an annotation version row (`id`) is of, if the caller may read the version
/// and the annotation was in it: EXACT's `annotationversion` filter on annotations.
pub(super) async fn annotation_of_version_row(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<Option<i64>, ApiError> {
    let (version_id, annotation) = shapes::version_row_parts(id);
    let Some(version) = visible_versions(state, auth).await?.remove(&version_id) else {
        return Ok(None);
    };
    let query = AnnotationQuery {
        images: Some(state.read.image_ids_of_sets(&version.sets).await?),
        ids: vec![annotation],
        as_of: Some(version.row.position),
        ..AnnotationQuery::default()
    };
    let found = state.read.count_annotations(&query).await?;
    Ok((found > 0).then_some(annotation))
}

/// One annotation as a version holds it
#[utoipa::path(get, path = "/annotations/annotation_versions/{id}/", responses((status = 200, body = crate::rest::shapes::AnnotationVersion)))]
async fn get_annotation_version(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let (version_id, annotation) = shapes::version_row_parts(id);
    let version = visible_version(&state, &auth, version_id)
        .await
        .map_err(|_| ApiError::from(DomainError::NotFound("annotation version")))?;
    let mut query = version_query(&state, &version, &params.filters()?).await?;
    query.ids = vec![annotation];
    let then = state.read.annotations(&query).await?;
    let row = then
        .first()
        .ok_or(DomainError::NotFound("annotation version"))?;
    let now = current_rows(&state, &then).await?;
    Ok(Json(params.shape(annotation_version_json(
        version_id,
        row,
        now.get(&row.id),
    ))))
}
