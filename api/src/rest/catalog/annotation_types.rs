//! Annotation types: `annotations/annotation_types/`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use exact_domain::annotation_type::{AnnotationTypeCommand, TypeSettings};
use exact_projections::catalog_read::AnnotationTypeRow;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::products::readable_product;
use super::{created, not_found, ok};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::rest::body::{lenient, Body};
use crate::rest::filters::{self, IdFilter, NameFilter, VectorTypeFilter};
use crate::rest::input::{missing, wrong};
use crate::rest::params::Params;
use crate::rest::shapes::{self, AnnotationType};
use crate::rest::{caller_for, if_match};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/annotations/annotation_types/",
            get(list_types).post(create_type),
        )
        .route(
            "/annotations/annotation_types/{id}/",
            get(get_type)
                .patch(update_type)
                .put(update_type)
                .delete(delete_type),
        )
}

fn type_json(t: &AnnotationTypeRow) -> Value {
    shapes::value(&AnnotationType::of(t))
}

/// The filters of the type list.
#[derive(Debug, Deserialize)]
struct TypeFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    name: NameFilter,
    #[serde(flatten)]
    vector_type: VectorTypeFilter,
    #[serde(
        rename = "vector_type__gte",
        default,
        deserialize_with = "lenient::int"
    )]
    vector_type_gte: Option<i64>,
    #[serde(
        rename = "vector_type__lte",
        default,
        deserialize_with = "lenient::int"
    )]
    vector_type_lte: Option<i64>,
    #[serde(
        rename = "vector_type__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    vector_type_range: Option<(f64, f64)>,
    #[serde(default, deserialize_with = "lenient::bool")]
    active: Option<bool>,
    #[serde(default, deserialize_with = "lenient::int")]
    product: Option<i64>,
}

/// Annotation types
#[utoipa::path(get, path = "/annotations/annotation_types/", responses((status = 200, body = crate::rest::shapes::AnnotationTypePage)))]
async fn list_types(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: TypeFilters = params.filters()?;
    let ids = f.id.allowed();
    let vector_types = f.vector_type.allowed();
    let (low, high) = (f.vector_type_gte, f.vector_type_lte);
    let range = f.vector_type_range;
    let (active, product) = (f.active, f.product);
    let rows = state
        .read
        .readable_types(auth.caller.actor)
        .await?
        .iter()
        .filter(|t| ids.as_ref().is_none_or(|ids| ids.contains(&t.id)))
        .filter(|t| f.name.keeps(&t.name))
        .filter(|t| {
            vector_types
                .as_ref()
                .is_none_or(|v| v.contains(&t.vector_type))
        })
        .filter(|t| {
            low.is_none_or(|l| t.vector_type >= l) && high.is_none_or(|h| t.vector_type <= h)
        })
        .filter(|t| {
            range.is_none_or(|(a, b)| (t.vector_type as f64) >= a && (t.vector_type as f64) <= b)
        })
        .filter(|t| active.is_none_or(|a| a == t.active))
        .filter(|t| product.is_none_or(|p| p == t.product))
        .map(type_json)
        .collect();
    Ok(Json(params.page_of(rows)?))
}

async fn readable_type(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<AnnotationTypeRow, ApiError> {
    state
        .read
        .readable_types(auth.caller.actor)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| not_found("annotation type"))
}

/// One type
#[utoipa::path(get, path = "/annotations/annotation_types/{id}/", responses((status = 200, body = crate::rest::shapes::AnnotationType)))]
async fn get_type(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let t = readable_type(&state, &auth, id).await?;
    Ok(ok(params.shape(type_json(&t)), t.version))
}

/// The settings a type's creation or update may send; only what is sent changes.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AnnotationTypeChange)]
pub(in crate::rest) struct TypeFields {
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::int")]
    node_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::string")]
    color_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::int")]
    default_width: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    default_height: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    sort_order: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    closed: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    area_hit_test: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    enable_concealed: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    enable_blurred: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    active: Option<bool>,
    #[serde(default, deserialize_with = "lenient::int")]
    vector_type: Option<i64>,
}

impl TypeFields {
    /// `settings` with every field sent replaced.
    fn applied_to(self, mut settings: TypeSettings) -> Result<TypeSettings, ApiError> {
        if let Some(v) = self.node_count {
            settings.node_count = u32::try_from(v).map_err(|_| wrong("node_count", "0 or more"))?;
        }
        settings.name = self.name.unwrap_or(settings.name);
        settings.color_code = self.color_code.unwrap_or(settings.color_code);
        settings.default_width = self.default_width.unwrap_or(settings.default_width);
        settings.default_height = self.default_height.unwrap_or(settings.default_height);
        settings.sort_order = self.sort_order.unwrap_or(settings.sort_order);
        settings.closed = self.closed.unwrap_or(settings.closed);
        settings.area_hit_test = self.area_hit_test.unwrap_or(settings.area_hit_test);
        settings.enable_concealed = self.enable_concealed.unwrap_or(settings.enable_concealed);
        settings.enable_blurred = self.enable_blurred.unwrap_or(settings.enable_blurred);
        settings.active = self.active.unwrap_or(settings.active);
        Ok(settings)
    }
}

/// What a type's creation reads: its product, its vector type and name, and any settings.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewAnnotationType)]
pub(in crate::rest) struct NewTypeBody {
    #[serde(deserialize_with = "lenient::required_int")]
    product: i64,
    #[serde(flatten)]
    settings: TypeFields,
}

/// Create a type
#[utoipa::path(post, path = "/annotations/annotation_types/", request_body = NewTypeBody, responses((status = 201, body = crate::rest::shapes::AnnotationType)))]
async fn create_type(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<NewTypeBody>,
) -> Result<Response, ApiError> {
    let NewTypeBody { product, settings } = fields;
    let vector_type = settings.vector_type.ok_or_else(|| missing("vector_type"))?;
    if settings.name.is_none() {
        return Err(missing("name"));
    }
    readable_product(&state, &auth, product).await?;
    let settings = settings.applied_to(TypeSettings::default())?;
    let caller = caller_for(&auth, &body);
    let written = state
        .commands
        .create_annotation_type(&caller, product, vector_type, settings)
        .await?;
    let t = readable_type(&state, &auth, written.id).await?;
    Ok(created(type_json(&t), written.version))
}

fn settings_of(t: &AnnotationTypeRow) -> TypeSettings {
    TypeSettings {
        name: t.name.clone(),
        node_count: u32::try_from(t.node_count).unwrap_or(0),
        color_code: t.color_code.clone(),
        default_width: t.default_width,
        default_height: t.default_height,
        sort_order: t.sort_order,
        closed: t.closed,
        area_hit_test: t.area_hit_test,
        enable_concealed: t.enable_concealed,
        enable_blurred: t.enable_blurred,
        active: t.active,
    }
}

/// Change a type; a new vector_type only while its live annotations fit it
#[utoipa::path(patch, path = "/annotations/annotation_types/{id}/", request_body = TypeFields, responses((status = 200, body = crate::rest::shapes::AnnotationType)))]
async fn update_type(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<TypeFields>,
) -> Result<Response, ApiError> {
    let current = readable_type(&state, &auth, id).await?;
    let vector_type = fields.vector_type;
    let settings = fields.applied_to(settings_of(&current))?;
    let caller = caller_for(&auth, &body);
    let mut expected = if_match(&headers)?;
    // A new vector type first: refused (409, naming the annotations) while live annotations
    // of the type would not fit it, and then nothing else changes either.
    if let Some(code) = vector_type {
        let written = state
            .commands
            .annotation_type_command(
                &caller,
                id,
                expected,
                &AnnotationTypeCommand::ChangeVectorType(code),
            )
            .await?;
        expected = expected.map(|_| written.version);
    }
    state
        .commands
        .change_annotation_type(&caller, id, expected, settings)
        .await?;
    let t = readable_type(&state, &auth, id).await?;
    Ok(ok(type_json(&t), t.version))
}

/// Delete a type and its live annotations (the log keeps them)
///
/// EXACT's type delete: the type leaves lists and retrieves, and its live annotations are
/// deleted with it (EXACT's cascade); the log keeps all of it for reads as of earlier moments.
#[utoipa::path(delete, path = "/annotations/annotation_types/{id}/", responses((status = 204)))]
async fn delete_type(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    readable_type(&state, &auth, id).await?;
    state
        .commands
        .annotation_type_command(
            &auth.caller,
            id,
            if_match(&headers)?,
            &AnnotationTypeCommand::Delete,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
