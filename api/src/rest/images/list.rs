//! Reading images: the list with EXACT's filters (over their annotations too), one image.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use exact_projections::annotation_query::AnnotationQuery;
use exact_projections::catalog_read::ImageRow;
use serde::Deserialize;
use serde_json::Value;

use super::image_json;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::rest::access::readable_image;
use crate::rest::body::lenient;
use crate::rest::filters::{self, FilenameFilter, IdFilter, NameFilter, TimeFilter};
use crate::rest::params::Params;
use crate::rest::with_etag;
use crate::AppState;

/// Whether the response keeps `field` after `fields`/`omit`: costly fields are only computed
/// when they are shown.
pub(super) fn shows(params: &Params, field: &str) -> bool {
    let kept = params
        .str("fields")
        .is_none_or(|f| f.split(',').any(|n| n.trim() == field));
    let omitted = params
        .str("omit")
        .is_some_and(|o| o.split(',').any(|n| n.trim() == field));
    kept && !omitted
}

pub(super) async fn annotation_ids(state: &AppState, image: i64) -> Result<Vec<i64>, ApiError> {
    let rows = state
        .read
        .annotations(&AnnotationQuery {
            image: Some(image),
            deleted: Some(false),
            ..AnnotationQuery::default()
        })
        .await?;
    Ok(rows.iter().map(|r| r.id).collect())
}

/// EXACT's image filters over their annotations (live ones, of active types): `annotation_type`
/// (has one of that type), `num_annotations` (`_min`/`_max`, or `__gte`/`__lte`: how many) and
/// `verified` (true: one is accepted; false: one is not, or there are none). Verdicts count by
/// consensus, as the statistics keep them.
pub(super) struct AnnotationCounts {
    /// image → (total, accepted, annotation types present).
    by_image: BTreeMap<i64, (i64, i64, BTreeSet<i64>)>,
    annotation_type: Option<i64>,
    min: Option<i64>,
    max: Option<i64>,
    verified: Option<bool>,
}

impl AnnotationCounts {
    fn keeps(&self, image: i64) -> bool {
        let (total, accepted, types) = self
            .by_image
            .get(&image)
            .map_or((0, 0, None), |(t, a, types)| (*t, *a, Some(types)));
        self.annotation_type
            .is_none_or(|t| types.is_some_and(|types| types.contains(&t)))
            && self.min.is_none_or(|m| total >= m)
            && self.max.is_none_or(|m| total <= m)
            && self.verified.is_none_or(|v| {
                if v {
                    accepted > 0
                } else {
                    total == 0 || accepted < total
                }
            })
    }
}

/// The filters of the image list.
#[derive(Debug, Deserialize)]
pub(super) struct ImageFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    name: NameFilter,
    #[serde(flatten)]
    filename: FilenameFilter,
    #[serde(flatten)]
    time: TimeFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    image_set: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    image_type: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    width: Option<i64>,
    #[serde(
        rename = "width__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    width_range: Option<(f64, f64)>,
    #[serde(default, deserialize_with = "lenient::int")]
    height: Option<i64>,
    #[serde(
        rename = "height__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    height_range: Option<(f64, f64)>,
    #[serde(default, deserialize_with = "lenient::float")]
    mpp: Option<f64>,
    #[serde(
        rename = "mpp__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    mpp_range: Option<(f64, f64)>,
    #[serde(
        rename = "objectivePower",
        default,
        deserialize_with = "lenient::float"
    )]
    objective_power: Option<f64>,
    #[serde(
        rename = "objectivePower__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    objective_power_range: Option<(f64, f64)>,
    /// `objective_power` is what this server named it before; it stays understood.
    #[serde(
        rename = "objective_power",
        default,
        deserialize_with = "lenient::float"
    )]
    objective_power_old: Option<f64>,
    #[serde(
        rename = "objective_power__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    objective_power_range_old: Option<(f64, f64)>,
    #[serde(default, deserialize_with = "lenient::int")]
    annotation_type: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    num_annotations_min: Option<i64>,
    #[serde(
        rename = "num_annotations__gte",
        default,
        deserialize_with = "lenient::int"
    )]
    num_annotations_gte: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    num_annotations_max: Option<i64>,
    #[serde(
        rename = "num_annotations__lte",
        default,
        deserialize_with = "lenient::int"
    )]
    num_annotations_lte: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    verified: Option<bool>,
}

/// The counts the filters need, if any of them is asked for.
pub(super) async fn annotation_counts(
    state: &AppState,
    auth: &Authenticated,
    f: &ImageFilters,
) -> Result<Option<AnnotationCounts>, ApiError> {
    let mut counts = AnnotationCounts {
        by_image: BTreeMap::new(),
        annotation_type: f.annotation_type,
        min: f.num_annotations_min.or(f.num_annotations_gte),
        max: f.num_annotations_max.or(f.num_annotations_lte),
        verified: f.verified,
    };
    if counts.annotation_type.is_none()
        && counts.min.is_none()
        && counts.max.is_none()
        && counts.verified.is_none()
    {
        return Ok(None);
    }
    let active: BTreeSet<i64> = state
        .read
        .readable_types(auth.caller.actor)
        .await?
        .iter()
        .filter(|t| t.active)
        .map(|t| t.id)
        .collect();
    for (image, kind, total, accepted) in state.read.all_image_type_counts().await? {
        if active.contains(&kind) {
            let entry = counts.by_image.entry(image).or_default();
            entry.0 += total;
            entry.1 += accepted;
            entry.2.insert(kind);
        }
    }
    Ok(Some(counts))
}

/// Images the caller may read
#[utoipa::path(get, path = "/images/images/", responses((status = 200, body = crate::rest::shapes::ImagePage)))]
pub(super) async fn list_images(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: ImageFilters = params.filters()?;
    let ids = f.id.allowed();
    let (set, image_type) = (f.image_set, f.image_type);
    let ranges = [
        ("width", f.width_range, f.width.map(|v| v as f64)),
        ("height", f.height_range, f.height.map(|v| v as f64)),
        ("mpp", f.mpp_range, f.mpp),
        (
            "objectivePower",
            f.objective_power_range.or(f.objective_power_range_old),
            f.objective_power.or(f.objective_power_old),
        ),
    ];
    let value_of = |image: &ImageRow, name: &str| match name {
        "width" => Some(image.width as f64),
        "height" => Some(image.height as f64),
        "mpp" => image.mpp,
        _ => image.objective_power,
    };
    let counts = annotation_counts(&state, &auth, &f).await?;
    let images: Vec<ImageRow> = state
        .read
        .readable_images(auth.caller.actor, set)
        .await?
        .into_iter()
        .filter(|i| f.time.keeps(i.time))
        .filter(|i| counts.as_ref().is_none_or(|c| c.keeps(i.id)))
        .filter(|i| ids.as_ref().is_none_or(|ids| ids.contains(&i.id)))
        .filter(|i| f.name.keeps(&i.name))
        .filter(|i| f.filename.keeps(&i.filename))
        .filter(|i| image_type.is_none_or(|t| t == i.image_type))
        .filter(|i| {
            ranges.iter().all(|(name, range, exact)| {
                let v = value_of(i, name);
                range.is_none_or(|(a, b)| v.is_some_and(|v| v >= a && v <= b))
                    && exact.is_none_or(|e| v == Some(e))
            })
        })
        .collect();
    let (limit, offset) = params.page()?;
    let count = images.len() as i64;
    let mut results = Vec::new();
    for image in images.iter().skip(offset as usize).take(limit as usize) {
        let annotations = if shows(&params, "annotations") {
            Some(annotation_ids(&state, image.id).await?)
        } else {
            None
        };
        results.push(image_json(image, annotations));
    }
    Ok(Json(params.paginated(count, limit, offset, results)))
}

/// One image
#[utoipa::path(get, path = "/images/images/{id}/", responses((status = 200, body = crate::rest::shapes::Image)))]
pub(super) async fn get_image(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    let annotations = if shows(&params, "annotations") {
        Some(annotation_ids(&state, id).await?)
    } else {
        None
    };
    Ok(with_etag(
        StatusCode::OK,
        params.shape(image_json(&image, annotations)),
        image.version,
    ))
}
