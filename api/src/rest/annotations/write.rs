//! Creating, changing and deleting annotations (one, a list, or `multiple_delete`).

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use exact_domain::annotation::{AnnotationChanges, AnnotationCommand};
use exact_domain::DomainError;
use exact_projections::annotation_query::AnnotationQuery;
use exact_projections::annotations::AnnotationRow;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::commands::{AnnotationInput, NewAnnotations};
use crate::error::ApiError;
use crate::rest::access::accepted;
use crate::rest::body::{lenient, typed, Body};
use crate::rest::input::{missing, wrong, Input};
use crate::rest::params::Params;
use crate::rest::{caller_for, if_match, with_etag};
use crate::AppState;

use super::{annotation_json, readable_annotation};

/// What an annotation's creation reads (one object, or each item of a list).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewAnnotation)]
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
#[schema(as = AnnotationChange)]
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

/// What an annotation creation reads: one object, or a list of them for one append.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documents what `create_annotations` reads item by item
pub(in crate::rest) enum NewAnnotationOrList {
    One(NewAnnotationBody),
    List(Vec<NewAnnotationBody>),
}

/// Create one annotation, or a list in one append
///
/// One annotation (an object) or many (a list, in one append). A list answers a list.
#[utoipa::path(post, path = "/annotations/annotations/", request_body = NewAnnotationOrList, responses((status = 201, body = crate::rest::shapes::AnnotationOrList)))]
pub(super) async fn create_annotations(
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
    let created = state
        .commands
        .create_annotations_with_rows(
            &caller,
            NewAnnotations {
                image: first_image,
                annotations: inputs,
            },
        )
        .await?;
    let ids: Vec<i64> = created.iter().map(|(w, _)| w.id).collect();
    // A new annotation is answered as the append wrote it, with no verdicts; a retried
    // creation (nothing written) as it is now, verdicts and all.
    let retried: Vec<i64> = created
        .iter()
        .filter(|(_, row)| row.is_none())
        .map(|(w, _)| w.id)
        .collect();
    let mut rows: std::collections::HashMap<i64, AnnotationRow> = created
        .into_iter()
        .filter_map(|(_, row)| row.map(|r| (r.id, r)))
        .collect();
    let mut mine = std::collections::BTreeSet::new();
    if !retried.is_empty() {
        let read = state
            .read
            .annotations(&AnnotationQuery {
                ids: retried,
                ..AnnotationQuery::default()
            })
            .await?;
        mine = accepted(&state, &auth, &read).await?;
        rows.extend(read.into_iter().map(|r| (r.id, r)));
    }
    let by_id = |id: i64| {
        rows.get(&id)
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

/// Change an annotation (If-Match)
#[utoipa::path(patch, path = "/annotations/annotations/{id}/", request_body = AnnotationChangeBody, responses((status = 200, body = crate::rest::shapes::Annotation)))]
pub(super) async fn update_annotation(
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

/// Delete an annotation (soft)
///
/// A soft delete, as EXACT's viewer does: the annotation stays in the history and can be
/// restored (`PATCH deleted=false`).
#[utoipa::path(delete, path = "/annotations/annotations/{id}/", responses((status = 204)))]
pub(super) async fn delete_annotation(
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

/// Delete the annotations of id__in
///
/// `DELETE multiple_delete/?id__in=1,2`: one append for the whole list, or nothing.
#[utoipa::path(delete, path = "/annotations/annotations/multiple_delete/", responses((status = 204)))]
pub(super) async fn multiple_delete(
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
