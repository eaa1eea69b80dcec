//! `images/image_sets/{id}/export/`: a set's annotations in a format, as of now, a log
//! position or time (`as_of`) or a dataset version (`version`), as a zip with its manifest.

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::annotations::list::as_of;
use super::body::lenient;
use super::input::wrong;
use super::params::Params;
use crate::auth::Authenticated;
use crate::error::{ApiError, Code};
use crate::exports::{write_export, ExportKind, ExportRequest, ExportedBy};
use crate::AppState;
use exact_domain::export_format::SetExportEvent;
use exact_projections::export::diff::Diff;
use exact_projections::export::read_dataset_or_empty;

use crate::commands::Caller;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/images/image_sets/{id}/export/", get(export_set))
        .route("/images/image_sets/{id}/diff/", get(diff_set))
}

/// The two moments of a diff, as the REST route and the diff page read them.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DiffParams {
    #[serde(default, deserialize_with = "lenient::string")]
    pub from: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub to: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub from_version: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub to_version: Option<String>,
}

/// What changed in an image set between two moments
///
/// `from` and `to` are log positions or RFC 3339 times (`to` defaults to now), or
/// `from_version` and `to_version` dataset versions naming the set. Added, removed and changed
/// annotations, with counts per type and image, and their ids (1,000 of each at most).
#[utoipa::path(
    get,
    path = "/images/image_sets/{id}/diff/",
    params(
        ("id" = i64, Path, description = "The image set"),
        ("from" = Option<String>, Query, description = "A log position or an RFC 3339 time"),
        ("to" = Option<String>, Query, description = "A log position or an RFC 3339 time (default: now)"),
        ("from_version" = Option<i64>, Query, description = "A dataset version naming the set"),
        ("to_version" = Option<i64>, Query, description = "A dataset version naming the set"),
    ),
    responses((status = 200, body = Object, description = "The difference"))
)]
async fn diff_set(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    params: Params,
) -> Result<Response, ApiError> {
    let p: DiffParams = params.filters()?;
    let diff = set_diff(&state, &auth.caller, id, p).await?;
    Ok(axum::Json(diff).into_response())
}

/// The set's difference between the two moments of `p`, for a caller who may read the set;
/// the REST route's and the diff page's.
pub(crate) async fn set_diff(
    state: &AppState,
    caller: &Caller,
    id: i64,
    p: DiffParams,
) -> Result<Diff, ApiError> {
    state.commands.set_access(caller, id).await?;
    let from = moment(
        state,
        id,
        ("from", p.from),
        ("from_version", p.from_version),
    )
    .await?
    .ok_or_else(|| super::input::missing("from"))?;
    let to = match moment(state, id, ("to", p.to), ("to_version", p.to_version)).await? {
        Some(position) => position,
        None => state.store.last_position().await?,
    };
    let at = |position: i64, field: &'static str| async move {
        read_dataset_or_empty(state.store.as_ref(), &state.read, id, position)
            .await
            .map_err(|e| ApiError::from(e).with_field(field))
    };
    let before = at(from, "from").await?;
    let after = at(to, "to").await?;
    Ok(exact_projections::export::diff::diff(&before, &after))
}

/// A moment given as a position or time (`text`), or as a dataset version naming the set.
async fn moment(
    state: &AppState,
    set: i64,
    text: (&str, Option<String>),
    version: (&str, Option<String>),
) -> Result<Option<i64>, ApiError> {
    let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    match (given(text.1), given(version.1)) {
        (Some(_), Some(_)) => Err(ApiError::new(
            Code::InvalidQuery,
            format!("give {} or {}, not both", text.0, version.0),
        )
        .with_field(version.0)),
        (Some(text_value), None) => {
            let position = as_of(state, Some(&text_value))
                .await
                .map_err(|e| e.with_field(text.0))?;
            Ok(position)
        }
        (None, Some(v)) => {
            let version_id: i64 = v
                .trim()
                .parse()
                .map_err(|_| wrong(version.0, "a dataset version's id"))?;
            match state.read.dataset_version(version_id).await? {
                Some((position, sets)) if sets.contains(&set) => Ok(Some(position)),
                _ => Err(wrong(version.0, "a dataset version that names this set")),
            }
        }
        (None, None) => Ok(None),
    }
}

#[derive(Debug, Deserialize)]
struct ExportParams {
    #[serde(default, deserialize_with = "lenient::string")]
    format: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    as_of: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    version: Option<String>,
}

/// Export an image set
///
/// The set's annotations in `format` (`exact`, EXACT's default; `exact:ID`, a team's format;
/// `coco`, `csv`, `geojson`, `qupath`, `voc`, `yolo`, `asap`), read at one log position: now, `as_of` (a position or
/// an RFC 3339 time) or a dataset `version`'s. A zip with `manifest.json` (the position, its
/// chain hash and the SHA-256 of every file); the same request gives the same bytes. Each
/// export handed out is recorded in the log (`SetExported`): the set page lists them.
#[utoipa::path(
    get,
    path = "/images/image_sets/{id}/export/",
    params(
        ("id" = i64, Path, description = "The image set"),
        ("format" = String, Query, description = "exact, exact:FORMAT_ID, coco, csv, geojson, qupath, voc, yolo or asap"),
        ("as_of" = Option<String>, Query, description = "A log position or an RFC 3339 time"),
        ("version" = Option<i64>, Query, description = "A dataset version naming the set"),
    ),
    responses((status = 200, content_type = "application/zip", description = "The export"))
)]
async fn export_set(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    params: Params,
    request: Request,
) -> Result<Response, ApiError> {
    state.commands.set_access(&auth.caller, id).await?;
    let p: ExportParams = params.filters()?;
    let kind: ExportKind = p
        .format
        .as_deref()
        .ok_or_else(|| super::input::missing("format"))?
        .parse()
        .map_err(|why: String| ApiError::new(Code::InvalidQuery, why).with_field("format"))?;
    if let ExportKind::Exact(Some(format)) = kind {
        let usable = state
            .read
            .usable_export_formats(auth.caller.actor.id)
            .await?;
        if !auth.caller.actor.superuser && !usable.iter().any(|(id, _, _)| *id == format) {
            return Err(ApiError::new(
                Code::NotFound,
                format!("no export format {format} of your teams or public"),
            )
            .with_field("format"));
        }
    }
    // A form sends its empty fields: `moment` reads empty as absent (now).
    let position = match moment(&state, id, ("as_of", p.as_of), ("version", p.version)).await? {
        Some(position) => position,
        None => state.store.last_position().await?,
    };
    let user = state.read.user(auth.caller.actor.id).await?;
    let request_for = ExportRequest {
        image_set: id,
        kind,
        position,
        exported_by: ExportedBy {
            id: auth.caller.actor.id,
            username: user.map(|u| u.username).unwrap_or_default(),
        },
        originals: Vec::new(),
    };
    let folder = state.config.data_dir.join("uploads");
    tokio::fs::create_dir_all(&folder)
        .await
        .map_err(|e| ApiError::storing("preparing an export failed", &e))?;
    let file = tempfile::NamedTempFile::new_in(&folder)
        .map_err(|e| ApiError::storing("preparing an export failed", &e))?;
    let out = file
        .reopen()
        .map_err(|e| ApiError::storing("preparing an export failed", &e))?;
    let manifest = write_export(state.store.as_ref(), &state.read, request_for, out).await?;
    // Recorded before it is handed out: an export the set page does not list was never sent.
    let record = SetExportEvent::SetExported {
        image_set: id,
        format: manifest.format.clone(),
        format_name: manifest.format_name.clone(),
        format_version: manifest.format_version,
        position: manifest.position,
        chain_hash: manifest.chain_hash.clone(),
        annotations: manifest.annotations as u64,
    };
    state.commands.record_export(&auth.caller, record).await?;
    let name = format!(
        "{}-{}-{}.zip",
        manifest.image_set.name,
        kind.name().replace(':', "-"),
        manifest.position
    );
    // Served from the open file: the name is gone once the answer is on its way.
    crate::uploads::attachment(file.path(), &name, request).await
}
