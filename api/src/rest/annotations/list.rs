//! Reading annotations: the list with EXACT's filters (the viewer's viewport query among
//! them), one annotation, and its history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use exact_projections::annotation_query::{AnnotationQuery, FloatRange, TimeRange};
use exact_projections::Rect;
use serde::Deserialize;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::rest::access::{accepted, readable_image_ids};
use crate::rest::body::lenient;
use crate::rest::expand::{expand, expand_results, Related};
use crate::rest::filters::{
    self, AnnotationTypeIdFilter, IdFilter, ImageIdFilter, OpenRange, TimeFilter,
};
use crate::rest::input::wrong;
use crate::rest::params::{parse_time, Params};
use crate::rest::shapes::{Annotation, AnnotationHistory};
use crate::rest::with_etag;
use crate::AppState;

use super::{annotation_json, readable_annotation};

/// `as_of`: a log position, or an RFC 3339 time (the last position recorded by then).
pub(in crate::rest) async fn as_of(
    state: &AppState,
    text: Option<&str>,
) -> Result<Option<i64>, ApiError> {
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
pub(super) const ANNOTATION_EXPANDS: &[(&str, Related)] = &[
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
    #[serde(flatten)]
    image: ImageIdFilter,
    #[serde(flatten)]
    annotation_type: AnnotationTypeIdFilter,
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
pub(super) fn float_range(
    both: Option<OpenRange>,
    min: Option<f64>,
    max: Option<f64>,
) -> FloatRange {
    let (from, to) = both.unwrap_or_default();
    FloatRange {
        from: min.or(from),
        to: max.or(to),
    }
}

pub(super) async fn query_from(
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
        annotation_types: f.annotation_type.allowed().unwrap_or_default(),
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
        match crate::rest::versions::annotation_of_version_row(state, auth, row).await? {
            Some(id) if query.ids.is_empty() || query.ids.contains(&id) => query.ids = vec![id],
            _ => no_ids = true,
        }
    }
    // Images: the filter given, within those the caller may read.
    let wanted = f.image.allowed();
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

/// Annotations: EXACT's filters, in_bbox, as_of
#[utoipa::path(get, path = "/annotations/annotations/", responses((status = 200, body = crate::rest::shapes::AnnotationPage)))]
pub(super) async fn list_annotations(
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

/// One annotation (ETag: its version)
#[utoipa::path(get, path = "/annotations/annotations/{id}/", responses((status = 200, body = crate::rest::shapes::Annotation)))]
pub(super) async fn get_annotation(
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

/// Every version: who, when, why, what changed
///
/// Every version of an annotation: who, when, why, what the state was and which fields changed.
#[utoipa::path(get, path = "/annotations/annotations/{id}/history/", responses((status = 200, body = crate::rest::shapes::AnnotationHistory)))]
pub(super) async fn history(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<AnnotationHistory>, ApiError> {
    readable_annotation(&state, &auth, id).await?;
    let versions = state.read.history(id).await?;
    Ok(Json(AnnotationHistory::of(id, &versions)))
}
