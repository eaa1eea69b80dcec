//! Annotation types: `annotations/annotation_types/`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use exact_domain::annotation_type::{AnnotationTypeCommand, TypeSettings};
use exact_projections::catalog_read::AnnotationTypeRow;
use serde_json::{json, Value};

use super::products::readable_product;
use super::{created, not_found, ok};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::rest::input::{wrong, Fields, Input};
use crate::rest::params::Params;
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

pub(in crate::rest) fn type_json(t: &AnnotationTypeRow) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "vector_type": t.vector_type,
        "node_count": t.node_count,
        "enable_concealed": t.enable_concealed,
        "enable_blurred": t.enable_blurred,
        "color_code": t.color_code,
        "default_width": t.default_width,
        "default_height": t.default_height,
        "sort_order": t.sort_order,
        "closed": t.closed,
        "area_hit_test": t.area_hit_test,
        "product": t.product,
        "active": t.active,
    })
}

async fn list_types(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let ids = params.id_filter("id")?;
    let vector_types = params.id_filter("vector_type")?;
    let (low, high) = (
        params.int("vector_type__gte")?,
        params.int("vector_type__lte")?,
    );
    let range = params.float_range("vector_type")?;
    let (active, product) = (params.bool("active")?, params.int("product")?);
    let rows = state
        .read
        .readable_types(auth.caller.actor)
        .await?
        .iter()
        .filter(|t| ids.as_ref().is_none_or(|ids| ids.contains(&t.id)))
        .filter(|t| params.text_matches("name", &t.name))
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

async fn get_type(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let t = readable_type(&state, &auth, id).await?;
    Ok(ok(params.shape(type_json(&t)), t.version))
}

/// `settings` with every field the body names replaced.
fn type_settings(
    fields: &Fields<'_>,
    mut settings: TypeSettings,
) -> Result<TypeSettings, ApiError> {
    if let Some(v) = fields.string("name")? {
        settings.name = v;
    }
    if let Some(v) = fields.int("node_count")? {
        settings.node_count = u32::try_from(v).map_err(|_| wrong("node_count", "0 or more"))?;
    }
    if let Some(v) = fields.string("color_code")? {
        settings.color_code = v;
    }
    macro_rules! take {
        ($($field:ident: $kind:ident),*) => {$(
            if let Some(v) = fields.$kind(stringify!($field))? {
                settings.$field = v;
            }
        )*};
    }
    take!(default_width: int, default_height: int, sort_order: int, closed: bool,
          area_hit_test: bool, enable_concealed: bool, enable_blurred: bool, active: bool);
    Ok(settings)
}

async fn create_type(
    State(state): State<AppState>,
    auth: Authenticated,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let product = fields.required_int("product")?;
    let vector_type = fields.required_int("vector_type")?;
    fields.required_string("name")?;
    readable_product(&state, &auth, product).await?;
    let settings = type_settings(&fields, TypeSettings::default())?;
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

async fn update_type(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let current = readable_type(&state, &auth, id).await?;
    let settings = type_settings(&fields, settings_of(&current))?;
    let caller = caller_for(&auth, &body);
    let mut expected = if_match(&headers)?;
    // A new vector type first: refused (409, naming the annotations) while live annotations
    // of the type would not fit it, and then nothing else changes either.
    if let Some(code) = fields.int("vector_type")? {
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

/// EXACT's type delete: the type leaves lists and retrieves, and its live annotations are
/// deleted with it (EXACT's cascade); the log keeps all of it for reads as of earlier moments.
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
