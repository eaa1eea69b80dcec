//! Annotations (with EXACT's filters, `in_bbox` from the spatial index and `as_of` from the
//! history), their history, verdicts and the image access log.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use exact_domain::annotation::{AnnotationChanges, AnnotationCommand};
use exact_domain::DomainError;
use exact_projections::annotation_query::{AnnotationQuery, FloatRange, TimeRange};
use exact_projections::annotations::AnnotationRow;
use exact_projections::catalog_read::AccessRow;
use exact_projections::{Rect, VerificationRow};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::access::{accepted, readable_image_ids};
use super::body::{lenient, typed, Body};
use super::expand::{expand, expand_results, Related};
use super::filters::{self, IdFilter, IpFilter, OpenRange, TimeFilter};
use super::input::{missing, wrong, Input};
use super::params::{parse_time, Params};
use super::shapes::{self, AccessEntry, Annotation, AnnotationHistory, Verification};
use super::{caller_for, if_match, with_etag};
use crate::auth::Authenticated;
use crate::commands::{AnnotationInput, NewAnnotations};
use crate::error::{ApiError, Code};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/annotations/annotations/",
            get(list_annotations).post(create_annotations),
        )
        .route(
            "/annotations/annotations/multiple_delete/",
            delete(multiple_delete),
        )
        .route(
            "/annotations/annotations/{id}/",
            get(get_annotation)
                .patch(update_annotation)
                .put(update_annotation)
                .delete(delete_annotation),
        )
        .route("/annotations/annotations/{id}/history/", get(history))
        .route(
            "/annotations/verifications/",
            get(list_verifications).post(create_verification),
        )
        .route(
            "/annotations/verifications/{id}/",
            get(get_verification)
                .patch(update_verification)
                .put(update_verification)
                .delete(delete_verification),
        )
        .route(
            "/annotations/log_image_actions/",
            get(list_access).post(create_access),
        )
        .route(
            "/annotations/log_image_actions/{id}/",
            get(get_access)
                .patch(update_access)
                .put(update_access)
                .delete(delete_access),
        )
}

pub(super) fn annotation_json(a: &AnnotationRow, verified_by_user: bool) -> Value {
    shapes::value(&Annotation::of(a, verified_by_user))
}

/// `as_of`: a log position, or an RFC 3339 time (the last position recorded by then).
async fn as_of(state: &AppState, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    if let Ok(position) = text.trim().parse::<i64>() {
        if position < 0 {
            return Err(wrong(
                "as_of",
                "a log position (0 or more) or an RFC 3339 time",
            ));
        }
        return Ok(Some(position));
    }
    let micros =
        parse_time(text).ok_or_else(|| wrong("as_of", "a log position or an RFC 3339 time"))?;
    let at = chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| wrong("as_of", "a time within range"))?;
    Ok(Some(state.store.position_at(at).await?))
}

/// What `expand=` may replace in an annotation.
const ANNOTATION_EXPANDS: &[(&str, Related)] = &[
    ("user", Related::User),
    ("last_editor", Related::User),
    ("annotation_type", Related::AnnotationType),
    ("image", Related::Image),
    ("uploaded_media_files", Related::MediaFiles),
    ("annotationversion_set", Related::Empty),
];

/// The filters of the annotation list (the viewer's viewport query among them).
#[derive(Debug, Deserialize)]
struct AnnotationFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    time: TimeFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    image: Option<i64>,
    #[serde(rename = "image__in", default, deserialize_with = "lenient::ids")]
    image_in: Option<Vec<i64>>,
    #[serde(default, deserialize_with = "lenient::int")]
    annotation_type: Option<i64>,
    #[serde(
        rename = "annotation_type__in",
        default,
        deserialize_with = "lenient::ids"
    )]
    annotation_type_in: Option<Vec<i64>>,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    last_editor: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    deleted: Option<bool>,
    #[serde(rename = "vector__isnull", default, deserialize_with = "lenient::bool")]
    vector_is_null: Option<bool>,
    #[serde(
        rename = "meta_data__isnull",
        default,
        deserialize_with = "lenient::bool"
    )]
    meta_data_is_null: Option<bool>,
    #[serde(default, deserialize_with = "lenient::int")]
    verified_by: Option<i64>,
    #[serde(
        rename = "verified_by__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    verified_by_range: Option<(f64, f64)>,
    /// EXACT's range filters `vector_x`/`vector_y` (django-filter's RangeFilter): `FROM,TO`,
    /// or `NAME_min`/`NAME_max`.
    #[serde(default, deserialize_with = "filters::open_range")]
    vector_x: Option<OpenRange>,
    #[serde(default, deserialize_with = "lenient::float")]
    vector_x_min: Option<f64>,
    #[serde(default, deserialize_with = "lenient::float")]
    vector_x_max: Option<f64>,
    #[serde(default, deserialize_with = "filters::open_range")]
    vector_y: Option<OpenRange>,
    #[serde(default, deserialize_with = "lenient::float")]
    vector_y_min: Option<f64>,
    #[serde(default, deserialize_with = "lenient::float")]
    vector_y_max: Option<f64>,
    #[serde(default, deserialize_with = "lenient::int")]
    vector_type: Option<i64>,
    #[serde(default, deserialize_with = "lenient::string")]
    description: Option<String>,
    #[serde(
        rename = "description__contains",
        default,
        deserialize_with = "lenient::string"
    )]
    description_contains: Option<String>,
    #[serde(default, deserialize_with = "lenient::uuid")]
    unique_identifier: Option<uuid::Uuid>,
    #[serde(
        rename = "unique_identifier__contains",
        default,
        deserialize_with = "lenient::string"
    )]
    unique_identifier_contains: Option<String>,
    #[serde(
        rename = "last_edit_time__gte",
        default,
        deserialize_with = "filters::time"
    )]
    last_edit_from: Option<i64>,
    #[serde(
        rename = "last_edit_time__lte",
        default,
        deserialize_with = "filters::time"
    )]
    last_edit_to: Option<i64>,
    #[serde(
        rename = "last_edit_time__range",
        default,
        deserialize_with = "filters::time_range"
    )]
    last_edit_range: Option<(i64, i64)>,
    #[serde(default, deserialize_with = "filters::bbox")]
    in_bbox: Option<[f64; 4]>,
    #[serde(default, deserialize_with = "lenient::int")]
    annotationversion: Option<i64>,
    /// A log position, or an RFC 3339 time: the annotations as they were then.
    #[serde(default, deserialize_with = "lenient::string")]
    as_of: Option<String>,
}

/// A range filter's two forms: `FROM,TO`, then `_min`/`_max` over it.
fn float_range(both: Option<OpenRange>, min: Option<f64>, max: Option<f64>) -> FloatRange {
    let (from, to) = both.unwrap_or_default();
    FloatRange {
        from: min.or(from),
        to: max.or(to),
    }
}

async fn query_from(
    state: &AppState,
    auth: &Authenticated,
    params: &Params,
) -> Result<AnnotationQuery, ApiError> {
    let f: AnnotationFilters = params.filters()?;
    let ids = f.id.allowed();
    let (created_from, created_to) = f.time.bounds();
    let edited = match f.last_edit_range {
        Some((from, to)) => TimeRange {
            from: Some(from),
            to: Some(to),
        },
        None => TimeRange {
            from: f.last_edit_from,
            to: f.last_edit_to,
        },
    };
    let mut query = AnnotationQuery {
        ids: ids.clone().unwrap_or_default(),
        annotation_types: filters::one_or_many(f.annotation_type, f.annotation_type_in)
            .unwrap_or_default(),
        user: f.user,
        last_editor: f.last_editor,
        deleted: f.deleted,
        vector_is_null: f.vector_is_null,
        meta_data_is_null: f.meta_data_is_null,
        verified_by: match (f.verified_by, f.verified_by_range) {
            (Some(user), _) => Some((user, user)),
            (None, Some((first, last))) => Some((first.ceil() as i64, last.floor() as i64)),
            (None, None) => None,
        },
        vector_x1: float_range(f.vector_x, f.vector_x_min, f.vector_x_max),
        vector_y1: float_range(f.vector_y, f.vector_y_min, f.vector_y_max),
        vector_type: f.vector_type,
        description: f.description,
        description_contains: f.description_contains,
        unique_identifier: f.unique_identifier,
        unique_identifier_contains: f.unique_identifier_contains,
        created: TimeRange {
            from: created_from,
            to: created_to,
        },
        edited,
        rect: f.in_bbox.map(|[min_x, min_y, max_x, max_y]| Rect {
            min_x,
            min_y,
            max_x,
            max_y,
        }),
        as_of: as_of(state, f.as_of.as_deref()).await?,
        ..AnnotationQuery::default()
    };
    // `id=1&id__in=2,3` asks for nothing; an empty id list would otherwise mean "any".
    let mut no_ids = ids.is_some_and(|ids| ids.is_empty());
    // An annotation version row names one annotation of one dataset version.
    if let Some(row) = f.annotationversion {
        match super::versions::annotation_of_version_row(state, auth, row).await? {
            Some(id) if query.ids.is_empty() || query.ids.contains(&id) => query.ids = vec![id],
            _ => no_ids = true,
        }
    }
    // Images: the filter given, within those the caller may read.
    let wanted = filters::one_or_many(f.image, f.image_in);
    let readable = readable_image_ids(state, auth).await?;
    query.images = match (wanted, readable) {
        (Some(w), Some(r)) => Some(w.into_iter().filter(|id| r.contains(id)).collect()),
        (w, r) => w.or(r),
    };
    if no_ids {
        query.images = Some(Vec::new());
    }
    if let Some([one]) = query.images.as_deref() {
        query.image = Some(*one);
    }
    Ok(query)
}

async fn list_annotations(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Response, ApiError> {
    let mut query = query_from(&state, &auth, &params).await?;
    let (limit, offset) = params.page()?;
    query.limit = Some(limit);
    query.offset = offset;
    let rows = state.read.annotations(&query).await?;
    // A page that is not full is the last one: its count is known without counting again
    // (the viewer's viewport lists are such pages).
    let count = if !rows.is_empty() && (rows.len() as i64) < limit {
        offset + rows.len() as i64
    } else {
        state.read.count_annotations(&query).await?
    };
    let mine = accepted(&state, &auth, &rows).await?;
    if params.reshapes() || params.str("expand").is_some() {
        let results = rows
            .iter()
            .map(|a| annotation_json(a, mine.contains(&a.id)))
            .collect();
        let mut page = params.paginated(count, limit, offset, results);
        expand_results(&state, &auth, &params, &mut page, ANNOTATION_EXPANDS).await?;
        return Ok(Json(page).into_response());
    }
    let results: Vec<Annotation<'_>> = rows
        .iter()
        .map(|a| Annotation::of(a, mine.contains(&a.id)))
        .collect();
    Ok(Json(params.typed_page(count, limit, offset, results)).into_response())
}

/// Annotation `id` if the caller may read its image (deleted ones included, as EXACT).
async fn readable_annotation(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<AnnotationRow, ApiError> {
    let (row, ..) = state.commands.readable_annotation(&auth.caller, id).await?;
    Ok(row)
}

async fn get_annotation(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let row = readable_annotation(&state, &auth, id).await?;
    let mine = accepted(&state, &auth, std::slice::from_ref(&row)).await?;
    let mut body = params.shape(annotation_json(&row, mine.contains(&id)));
    expand(
        &state,
        &auth,
        &params,
        std::slice::from_mut(&mut body),
        ANNOTATION_EXPANDS,
    )
    .await?;
    Ok(with_etag(StatusCode::OK, body, row.version))
}

/// What an annotation's creation reads (one object, or each item of a list).
#[derive(Debug, Deserialize, ToSchema)]
pub(in crate::rest) struct NewAnnotationBody {
    #[serde(default, deserialize_with = "lenient::int")]
    image: Option<i64>,
    #[serde(deserialize_with = "lenient::required_int")]
    annotation_type: i64,
    #[serde(default, deserialize_with = "lenient::json")]
    vector: Option<Value>,
    #[serde(default, deserialize_with = "lenient::string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "lenient::json")]
    meta_data: Option<Value>,
    #[serde(default, deserialize_with = "lenient::bool")]
    concealed: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    blurred: Option<bool>,
    #[serde(default, deserialize_with = "lenient::uuid")]
    #[schema(value_type = Option<String>)]
    unique_identifier: Option<uuid::Uuid>,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
}

impl From<NewAnnotationBody> for AnnotationInput {
    fn from(body: NewAnnotationBody) -> Self {
        AnnotationInput {
            image: body.image,
            annotation_type: body.annotation_type,
            vector: body.vector.unwrap_or(Value::Null),
            description: body.description.unwrap_or_default(),
            meta_data: body.meta_data.unwrap_or(Value::Null),
            concealed: body.concealed.unwrap_or(false),
            blurred: body.blurred.unwrap_or(false),
            unique_identifier: body.unique_identifier,
            user: body.user,
        }
    }
}

/// What an annotation's update reads: only what is sent changes.
#[derive(Debug, Deserialize, ToSchema)]
pub(in crate::rest) struct AnnotationChangeBody {
    #[serde(default, deserialize_with = "lenient::int")]
    image: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    annotation_type: Option<i64>,
    #[serde(default, deserialize_with = "lenient::json")]
    vector: Option<Value>,
    #[serde(default, deserialize_with = "lenient::string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "lenient::json")]
    meta_data: Option<Value>,
    #[serde(default, deserialize_with = "lenient::bool")]
    concealed: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    blurred: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    deleted: Option<bool>,
}

/// One annotation (an object) or many (a list, in one append). A list answers a list.
async fn create_annotations(
    State(state): State<AppState>,
    auth: Authenticated,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let (items, is_list) = match &body {
        Value::Array(items) => (items.iter().collect::<Vec<_>>(), true),
        single => (vec![single], false),
    };
    if items.is_empty() {
        return Ok((StatusCode::CREATED, Json(json!([]))).into_response());
    }
    let mut inputs = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let mut input: AnnotationInput = typed::<NewAnnotationBody>(item)
            .map_err(|mut e| {
                if is_list {
                    e.message = format!("item {index}: {}", e.message);
                }
                e
            })?
            .into();
        let image = input.image.ok_or_else(|| missing("image"))?;
        // The creator is the caller unless a superuser names another.
        if input.user == Some(auth.caller.actor.id) {
            input.user = None;
        }
        input.image = Some(image);
        inputs.push(input);
    }
    let first_image = inputs[0].image.unwrap_or_default();
    let caller = caller_for(&auth, if is_list { &Value::Null } else { &body });
    let written = state
        .commands
        .create_annotations(
            &caller,
            NewAnnotations {
                image: first_image,
                annotations: inputs,
            },
        )
        .await?;
    let ids: Vec<i64> = written.iter().map(|w| w.id).collect();
    let rows = state
        .read
        .annotations(&AnnotationQuery {
            ids: ids.clone(),
            ..AnnotationQuery::default()
        })
        .await?;
    // A new annotation has no verdicts; a retried creation (no position: nothing written)
    // answers the annotation as it is, verdicts and all.
    let retried: Vec<AnnotationRow> = written
        .iter()
        .filter(|w| w.position.is_none())
        .filter_map(|w| rows.iter().find(|r| r.id == w.id).cloned())
        .collect();
    let mine = accepted(&state, &auth, &retried).await?;
    let by_id = |id: i64| {
        rows.iter()
            .find(|r| r.id == id)
            .map(|r| annotation_json(r, mine.contains(&r.id)))
    };
    if is_list {
        let list: Vec<Value> = ids.iter().filter_map(|id| by_id(*id)).collect();
        return Ok((StatusCode::CREATED, Json(Value::Array(list))).into_response());
    }
    let row = by_id(ids[0]).ok_or(DomainError::NotFound("annotation"))?;
    let version = row["version"].as_i64().unwrap_or_default();
    Ok(with_etag(StatusCode::CREATED, row, version))
}

async fn update_annotation(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<AnnotationChangeBody>,
) -> Result<Response, ApiError> {
    let current = readable_annotation(&state, &auth, id).await?;
    if fields.image.is_some_and(|image| image != current.image) {
        return Err(wrong(
            "image",
            "the annotation's own: annotations do not move between images",
        ));
    }
    let changes = AnnotationChanges {
        annotation_type: fields.annotation_type,
        vector: fields.vector,
        description: fields.description,
        meta_data: fields.meta_data,
        concealed: fields.concealed,
        blurred: fields.blurred,
    };
    let caller = caller_for(&auth, &body);
    let mut expected = if_match(&headers)?;
    if changes != AnnotationChanges::default() {
        let written = state
            .commands
            .annotation_command(&caller, id, expected, &AnnotationCommand::Change(changes))
            .await?;
        expected = expected.map(|_| written.version);
    }
    match fields.deleted {
        Some(true) if !current.deleted => {
            state
                .commands
                .annotation_command(&caller, id, expected, &AnnotationCommand::Delete)
                .await?;
        }
        Some(false) if current.deleted => {
            state
                .commands
                .annotation_command(&caller, id, expected, &AnnotationCommand::Restore)
                .await?;
        }
        _ => {}
    }
    let row = readable_annotation(&state, &auth, id).await?;
    let mine = accepted(&state, &auth, std::slice::from_ref(&row)).await?;
    Ok(with_etag(
        StatusCode::OK,
        annotation_json(&row, mine.contains(&id)),
        row.version,
    ))
}

/// A soft delete, as EXACT's viewer does: the annotation stays in the history and can be
/// restored (`PATCH deleted=false`).
async fn delete_annotation(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    readable_annotation(&state, &auth, id).await?;
    state
        .commands
        .annotation_command(
            &auth.caller,
            id,
            if_match(&headers)?,
            &AnnotationCommand::Delete,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What `multiple_delete` reads.
#[derive(Debug, Deserialize)]
struct MultipleDeleteQuery {
    #[serde(rename = "id__in", deserialize_with = "lenient::required_ids")]
    ids: Vec<i64>,
}

/// `DELETE multiple_delete/?id__in=1,2`: one append for the whole list, or nothing.
async fn multiple_delete(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<StatusCode, ApiError> {
    let MultipleDeleteQuery { ids } = params.filters()?;
    let ids: BTreeSet<i64> = ids.into_iter().collect();
    let ids: Vec<i64> = ids.into_iter().collect();
    state
        .commands
        .delete_annotations(&auth.caller, &ids)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of an annotation: who, when, why, what the state was and which fields changed.
async fn history(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<AnnotationHistory>, ApiError> {
    readable_annotation(&state, &auth, id).await?;
    let versions = state.read.history(id).await?;
    Ok(Json(AnnotationHistory::of(id, &versions)))
}

// ---- verifications ----

fn verification_json(v: &VerificationRow) -> Value {
    shapes::value(&Verification::of(v))
}

async fn visible_verifications(
    state: &AppState,
    auth: &Authenticated,
    annotation: i64,
    user: i64,
) -> Result<Vec<VerificationRow>, ApiError> {
    let readable = readable_image_ids(state, auth).await?;
    let rows = state.read.verification_rows(annotation, user).await?;
    Ok(rows
        .into_iter()
        .filter(|v| readable.as_ref().is_none_or(|r| r.contains(&v.image)))
        .collect())
}

/// The filters of the verdict list.
#[derive(Debug, Deserialize)]
struct VerdictFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    time: TimeFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    annotation: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    verified: Option<bool>,
}

async fn list_verifications(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: VerdictFilters = params.filters()?;
    let (verified, ids) = (f.verified, f.id.allowed());
    let rows = visible_verifications(
        &state,
        &auth,
        f.annotation.unwrap_or(0),
        f.user.unwrap_or(0),
    )
    .await?
    .iter()
    .filter(|v| verified.is_none_or(|b| b == v.verified))
    .filter(|v| ids.as_ref().is_none_or(|ids| ids.contains(&v.position)))
    .filter(|v| f.time.keeps(v.time))
    .map(verification_json)
    .collect();
    let mut page = params.page_of(rows)?;
    expand_results(&state, &auth, &params, &mut page, VERIFICATION_EXPANDS).await?;
    Ok(Json(page))
}

/// What `expand=` may replace in a verdict.
const VERIFICATION_EXPANDS: &[(&str, Related)] =
    &[("annotation", Related::Annotation), ("user", Related::User)];

async fn get_verification(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let rows = visible_verifications(&state, &auth, 0, 0).await?;
    let row = rows
        .iter()
        .find(|v| v.position == id)
        .ok_or(DomainError::NotFound("verification"))?;
    let mut body = params.shape(verification_json(row));
    expand(
        &state,
        &auth,
        &params,
        std::slice::from_mut(&mut body),
        VERIFICATION_EXPANDS,
    )
    .await?;
    Ok(Json(body))
}

/// What a verdict's creation reads.
#[derive(Debug, Deserialize, ToSchema)]
pub(in crate::rest) struct NewVerdictBody {
    #[serde(deserialize_with = "lenient::required_int")]
    annotation: i64,
    #[serde(deserialize_with = "lenient::required_bool")]
    verified: bool,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
}

/// The caller's verdict (JSON or form fields): `annotation`, `verified`. A later verdict of
/// the same user replaces the earlier one; both stay in the log.
async fn create_verification(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<NewVerdictBody>,
) -> Result<Response, ApiError> {
    let NewVerdictBody {
        annotation,
        verified,
        user,
    } = fields;
    if user.is_some_and(|u| u != auth.caller.actor.id) {
        return Err(wrong("user", "the caller: a verdict is the caller's own"));
    }
    readable_annotation(&state, &auth, annotation).await?;
    state
        .commands
        .annotation_command(
            &caller_for(&auth, &body),
            annotation,
            None,
            &AnnotationCommand::Verify { verified },
        )
        .await?;
    let rows = state
        .read
        .verification_rows(annotation, auth.caller.actor.id)
        .await?;
    let row = rows.first().ok_or(DomainError::NotFound("verification"))?;
    Ok((StatusCode::CREATED, Json(verification_json(row))).into_response())
}

/// Verdict `id` if the caller may see it and it is the caller's own: a verdict is changed or
/// taken back only by whoever gave it.
async fn own_verification(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<VerificationRow, ApiError> {
    let rows = visible_verifications(state, auth, 0, 0).await?;
    let row = rows
        .into_iter()
        .find(|v| v.position == id)
        .ok_or(DomainError::NotFound("verification"))?;
    if row.user_id != auth.caller.actor.id {
        return Err(ApiError::new(
            Code::Forbidden,
            "a verdict is changed or taken back only by the user who gave it",
        ));
    }
    Ok(row)
}

/// EXACT's verification update: the caller changes their verdict (`verified`). The new verdict
/// is a new event, so it answers with its own id (the log position that gave it).
async fn update_verification(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<VerdictChange>,
) -> Result<Response, ApiError> {
    let row = own_verification(&state, &auth, id).await?;
    if fields.annotation.is_some_and(|a| a != row.annotation) {
        return Err(wrong(
            "annotation",
            "the verdict's own: give a new verdict instead",
        ));
    }
    if fields.user.is_some_and(|u| u != row.user_id) {
        return Err(wrong("user", "the caller: a verdict is the caller's own"));
    }
    if let Some(verified) = fields.verified {
        state
            .commands
            .annotation_command(
                &caller_for(&auth, &body),
                row.annotation,
                None,
                &AnnotationCommand::Verify { verified },
            )
            .await?;
    }
    let rows = state
        .read
        .verification_rows(row.annotation, auth.caller.actor.id)
        .await?;
    let row = rows.first().ok_or(DomainError::NotFound("verification"))?;
    Ok(Json(verification_json(row)).into_response())
}

/// What a verdict's update reads.
#[derive(Debug, Deserialize, ToSchema)]
pub(in crate::rest) struct VerdictChange {
    #[serde(default, deserialize_with = "lenient::int")]
    annotation: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    verified: Option<bool>,
}

/// EXACT's verification delete: the caller takes their verdict back; the log keeps it.
async fn delete_verification(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let row = own_verification(&state, &auth, id).await?;
    state
        .commands
        .annotation_command(
            &auth.caller,
            row.annotation,
            None,
            &AnnotationCommand::WithdrawVerdict,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

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

async fn list_access(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: AccessFilters = params.filters()?;
    let images = match f.image {
        Some(image) => vec![image],
        None => state
            .read
            .readable_images(auth.caller.actor, None)
            .await?
            .iter()
            .map(|i| i.id)
            .collect(),
    };
    let (user, action) = (f.user, f.action);
    let readable = readable_image_ids(&state, &auth).await?;
    let mut rows = Vec::new();
    for image in images {
        if readable.as_ref().is_some_and(|r| !r.contains(&image)) {
            continue;
        }
        for entry in state.read.image_access(image).await? {
            if user.is_none_or(|u| u == entry.user_id)
                && action.is_none_or(|a| a == entry.action)
                && f.time.keeps(entry.time)
                && f.ip.keeps(entry.ip.as_deref().unwrap_or_default())
            {
                rows.push(access_json(&entry));
            }
        }
    }
    rows.sort_by_key(|r| r["id"].as_i64());
    let mut page = params.page_of(rows)?;
    let expandable = [("image", Related::Image), ("user", Related::User)];
    expand_results(&state, &auth, &params, &mut page, &expandable).await?;
    Ok(Json(page))
}

fn access_json(entry: &AccessRow) -> Value {
    shapes::value(&AccessEntry::of(entry))
}

/// One entry of the access log (its id is its log position), if its image is readable.
async fn get_access(
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
async fn readable_access(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<AccessRow, ApiError> {
    let entry = state
        .read
        .image_access_entry(id)
        .await?
        .ok_or(DomainError::NotFound("access log entry"))?;
    if readable_image_ids(state, auth)
        .await?
        .is_some_and(|readable| !readable.contains(&entry.image))
    {
        return Err(DomainError::NotFound("access log entry").into());
    }
    Ok(entry)
}

/// EXACT's access log update: the entry's `action`, corrected by its user (or a superuser).
/// The correction is an event; the first record stays in the log.
async fn update_access(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<AccessChange>,
) -> Result<Json<Value>, ApiError> {
    let entry = readable_access(&state, &auth, id).await?;
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
pub(in crate::rest) struct AccessChange {
    #[serde(default, deserialize_with = "lenient::int")]
    image: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    action: Option<i64>,
}

/// EXACT's access log delete: the entry leaves the access log (its user's or a superuser's
/// call); the log of events keeps it.
async fn delete_access(
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
pub(in crate::rest) struct NewAccessBody {
    #[serde(deserialize_with = "lenient::required_int")]
    image: i64,
    #[serde(deserialize_with = "lenient::required_int")]
    action: i64,
}

/// The viewer's report that the caller opened (action 1) or closed (2) an image.
async fn create_access(
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
