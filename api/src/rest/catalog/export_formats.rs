//! Teams' export formats in EXACT's language (EXACT edits them on its own pages only; these
//! routes are what the format editor page calls), and the preview of a format, saved or not,
//! on a real image set.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use exact_domain::export_format::{ExportFormatCommand, FormatSettings};
use exact_projections::catalog_read::ExportFormatRow;
use exact_projections::export::{exact_template, read_dataset_for, rfc3339};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{created, not_found, ok};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::exports::visible_formats;
use crate::rest::annotations::list::as_of;
use crate::rest::body::{lenient, Body};
use crate::rest::params::Params;
use crate::rest::{caller_for, if_match};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/administration/export_formats/",
            get(list_formats).post(create_format),
        )
        .route(
            "/administration/export_formats/preview/",
            post(preview_format),
        )
        .route(
            "/administration/export_formats/{id}/",
            get(get_format).patch(update_format).delete(delete_format),
        )
}

/// The most of a preview's text sent back; the rest is counted, not shown.
const PREVIEW_CHARS: usize = 100_000;

fn format_json(row: &ExportFormatRow, settings: &FormatSettings) -> Value {
    let mut body = json!({
        "id": row.id,
        "team": row.team,
        "creator": row.creator,
        "last_change_time": rfc3339(row.last_change_time),
        "version": row.version,
    });
    if let (Value::Object(fields), Ok(Value::Object(more))) =
        (&mut body, serde_json::to_value(settings))
    {
        fields.extend(more);
    }
    body
}

async fn visible_format(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<(ExportFormatRow, FormatSettings), ApiError> {
    visible_formats(state, auth.caller.actor)
        .await?
        .into_iter()
        .find(|(f, _)| f.id == id)
        .ok_or_else(|| not_found("export format"))
}

#[derive(Debug, Deserialize)]
struct FormatFilters {
    #[serde(default, deserialize_with = "lenient::int")]
    team: Option<i64>,
}

/// Export formats
///
/// The live formats of the caller's teams and the public ones, by name.
#[utoipa::path(get, path = "/administration/export_formats/", responses((status = 200, body = Object)))]
async fn list_formats(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: FormatFilters = params.filters()?;
    let rows = visible_formats(&state, auth.caller.actor)
        .await?
        .iter()
        .filter(|(row, _)| f.team.is_none_or(|t| Some(t) == row.team))
        .map(|(row, settings)| format_json(row, settings))
        .collect();
    Ok(Json(params.page_of(rows)?))
}

/// One export format
#[utoipa::path(get, path = "/administration/export_formats/{id}/", responses((status = 200, body = Object)))]
async fn get_format(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (row, settings) = visible_format(&state, &auth, id).await?;
    Ok(ok(format_json(&row, &settings), row.version))
}

/// A format's fields; on a change only what is sent changes, on a creation what is not sent
/// is EXACT's default format's.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = ExportFormatFields)]
pub(in crate::rest) struct FormatFields {
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    public: Option<bool>,
    #[serde(default, deserialize_with = "lenient::ids")]
    annotations_types: Option<Vec<i64>>,
    #[serde(default, deserialize_with = "lenient::string")]
    base_format: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    image_format: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    annotation_format: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    vector_format: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    not_in_image_format: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    name_format: Option<String>,
    #[serde(default, deserialize_with = "lenient::int")]
    min_verifications: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    image_aggregation: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    include_blurred: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    include_concealed: Option<bool>,
}

impl FormatFields {
    /// `base` with what was sent put over it.
    fn over(self, base: FormatSettings) -> FormatSettings {
        FormatSettings {
            name: self.name.unwrap_or(base.name),
            public: self.public.unwrap_or(base.public),
            annotations_types: self
                .annotations_types
                .map_or(base.annotations_types, |t| t.into_iter().collect()),
            base_format: self.base_format.unwrap_or(base.base_format),
            image_format: self.image_format.unwrap_or(base.image_format),
            annotation_format: self.annotation_format.unwrap_or(base.annotation_format),
            vector_format: self.vector_format.unwrap_or(base.vector_format),
            not_in_image_format: self.not_in_image_format.unwrap_or(base.not_in_image_format),
            name_format: self.name_format.unwrap_or(base.name_format),
            min_verifications: self.min_verifications.unwrap_or(base.min_verifications),
            image_aggregation: self.image_aggregation.unwrap_or(base.image_aggregation),
            include_blurred: self.include_blurred.unwrap_or(base.include_blurred),
            include_concealed: self.include_concealed.unwrap_or(base.include_concealed),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewExportFormat)]
pub(in crate::rest) struct NewFormatBody {
    #[serde(deserialize_with = "lenient::required_int")]
    team: i64,
    #[serde(deserialize_with = "lenient::required_string")]
    name: String,
    #[serde(flatten)]
    fields: FormatFields,
}

/// Create an export format
///
/// Any member of the team may (EXACT's `manage_export_formats`); names are unique among live
/// formats, as EXACT's.
#[utoipa::path(post, path = "/administration/export_formats/", request_body = NewFormatBody, responses((status = 201, body = Object)))]
async fn create_format(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw }: Body<NewFormatBody>,
) -> Result<Response, ApiError> {
    let NewFormatBody { team, name, fields } = fields;
    let settings = FormatFields {
        name: Some(name),
        ..fields
    }
    .over(FormatSettings::default());
    let written = state
        .commands
        .create_export_format(&caller_for(&auth, &raw), team, settings)
        .await?;
    let (row, settings) = visible_format(&state, &auth, written.id).await?;
    Ok(created(format_json(&row, &settings), written.version))
}

/// Change an export format
#[utoipa::path(patch, path = "/administration/export_formats/{id}/", request_body = FormatFields, responses((status = 200, body = Object)))]
async fn update_format(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Body { fields, raw }: Body<FormatFields>,
) -> Result<Response, ApiError> {
    let (_, current) = visible_format(&state, &auth, id).await?;
    let command = ExportFormatCommand::Change(fields.over(current));
    state
        .commands
        .export_format_command(&caller_for(&auth, &raw), id, if_match(&headers)?, &command)
        .await?;
    let (row, settings) = visible_format(&state, &auth, id).await?;
    Ok(ok(format_json(&row, &settings), row.version))
}

/// Delete an export format (the log keeps it, and exports made with it name it)
#[utoipa::path(delete, path = "/administration/export_formats/{id}/", responses((status = 204)))]
async fn delete_format(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    visible_format(&state, &auth, id).await?;
    state
        .commands
        .export_format_command(
            &auth.caller,
            id,
            if_match(&headers)?,
            &ExportFormatCommand::Delete,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ExportFormatPreview)]
pub(in crate::rest) struct PreviewBody {
    /// The set to render (read permission).
    #[serde(deserialize_with = "lenient::required_int")]
    image_set: i64,
    /// A saved format to start from; the fields sent are put over it.
    #[serde(default, deserialize_with = "lenient::int")]
    format: Option<i64>,
    /// A log position or an RFC 3339 time (default: now).
    #[serde(default, deserialize_with = "lenient::string")]
    as_of: Option<String>,
    #[serde(flatten)]
    fields: FormatFields,
}

/// Preview an export format on a set
///
/// Renders the fields sent (over a saved `format`, else over EXACT's default format) on
/// `image_set` as it stands now or `as_of`; nothing is stored. The text is cut at 100,000
/// characters (`truncated`).
#[utoipa::path(post, path = "/administration/export_formats/preview/", request_body = PreviewBody, responses((status = 200, body = Object)))]
async fn preview_format(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, .. }: Body<PreviewBody>,
) -> Result<Json<Value>, ApiError> {
    let PreviewBody {
        image_set,
        format,
        as_of: moment,
        fields,
    } = fields;
    state.commands.set_access(&auth.caller, image_set).await?;
    let base = match format {
        Some(id) => {
            visible_format(&state, &auth, id)
                .await
                .map_err(|e| e.with_field("format"))?
                .1
        }
        None => FormatSettings::default(),
    };
    let settings = fields.over(base);
    let moment = moment.filter(|m| !m.trim().is_empty());
    let position = match as_of(&state, moment.as_deref()).await? {
        Some(position) => position,
        None => state.store.last_position().await?,
    };
    let dataset = read_dataset_for(
        state.store.as_ref(),
        &state.read,
        image_set,
        position,
        Some(&settings),
    )
    .await
    .map_err(|e| ApiError::from(e).with_field("as_of"))?;
    let rendered = tokio::task::spawn_blocking(move || {
        exact_template::render(&dataset, &settings, dataset.position)
    })
    .await
    .map_err(|e| ApiError::internal("the preview task failed", &e))?;
    let chars = rendered.text.chars().count();
    let text: String = rendered.text.chars().take(PREVIEW_CHARS).collect();
    Ok(Json(json!({
        "image_set": image_set,
        "position": position,
        "file_name": rendered.file_name,
        "text": text,
        "characters": chars,
        "bytes": rendered.text.len(),
        "truncated": chars > PREVIEW_CHARS,
        "annotations": rendered.annotations,
    })))
}
