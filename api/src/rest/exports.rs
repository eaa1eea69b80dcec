//! `images/image_sets/{id}/export/`: a set's annotations in a format, as of now, a log
//! position or time (`as_of`) or a dataset version (`version`), as a zip with its manifest.

use axum::extract::{Path, Request, State};
use axum::response::Response;
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

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/images/image_sets/{id}/export/", get(export_set))
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
/// `coco`, `csv`, `geojson`, `qupath`, `voc`, `yolo`), read at one log position: now, `as_of` (a position or
/// an RFC 3339 time) or a dataset `version`'s. A zip with `manifest.json` (the position, its
/// chain hash and the SHA-256 of every file); the same request gives the same bytes.
#[utoipa::path(
    get,
    path = "/images/image_sets/{id}/export/",
    params(
        ("id" = i64, Path, description = "The image set"),
        ("format" = String, Query, description = "exact, exact:FORMAT_ID, coco, csv, geojson, qupath, voc or yolo"),
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
    // A form sends its empty fields: empty is absent.
    let given = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let version = match given(p.version) {
        Some(text) => Some(
            text.trim()
                .parse::<i64>()
                .map_err(|_| wrong("version", "a dataset version's id"))?,
        ),
        None => None,
    };
    let position = match (given(p.as_of).as_deref(), version) {
        (Some(_), Some(_)) => {
            return Err(
                ApiError::new(Code::InvalidQuery, "give as_of or version, not both")
                    .with_field("version"),
            )
        }
        (_, Some(version)) => {
            let (position, sets) = state
                .read
                .dataset_version(version)
                .await?
                .ok_or_else(|| wrong("version", "a dataset version that names this set"))?;
            if !sets.contains(&id) {
                return Err(wrong("version", "a dataset version that names this set"));
            }
            position
        }
        (text, None) => match as_of(&state, text).await? {
            Some(position) => position,
            None => state.store.last_position().await?,
        },
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
    let name = format!(
        "{}-{}-{}.zip",
        manifest.image_set.name,
        kind.name().replace(':', "-"),
        manifest.position
    );
    // Served from the open file: the name is gone once the answer is on its way.
    crate::uploads::attachment(file.path(), &name, request).await
}
