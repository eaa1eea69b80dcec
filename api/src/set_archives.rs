//! Zip downloads of image sets, EXACT's `/images/imageset/<id>/download/`: the original files
//! and the annotations in EXACT's default format, with the export's manifest. EXACT's answers:
//! 200 with the archive, 202 while it is built, 204 for a set without images, 404 when zip
//! downloads are off (and for a set the caller may not read).
//!
//! An archive is built in the background, streamed to a file (never whole in memory), and
//! named by the set's content: the set's, its images' and its types' versions, the last
//! change to its annotations and the default format's version. A set that changed has another
//! name, so a stale archive is never served (EXACT's went stale); the older ones of the set are
//! removed when a new one is ready.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sha2::{Digest, Sha256};

use crate::auth::Authenticated;
use crate::error::{ApiError, Code};
use crate::exports::{write_export, ExportKind, ExportRequest, ExportedBy, Original};
use crate::AppState;

/// Archives being built, by the path they will have (unique per data folder, set and
/// content).
static BUILDING: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn building() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    BUILDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn router() -> Router<AppState> {
    Router::new().route("/images/imageset/{id}/download/", get(download))
}

/// EXACT's `zip_state`: 1 ready, 2 being built, 0 neither (or an empty set).
pub async fn zip_state(state: &AppState, set: i64) -> Result<i64, ApiError> {
    // Most sets were never downloaded: no archive, nothing building, nothing to work out.
    let prefix = format!("set-{set}-");
    let of_the_set = |path: &std::path::Path| {
        path.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
    };
    let folder = archives_folder(state);
    let has_archive = std::fs::read_dir(&folder)
        .is_ok_and(|entries| entries.flatten().any(|e| of_the_set(&e.path())));
    let building_any = building()
        .iter()
        .any(|p| p.parent() == Some(folder.as_path()) && of_the_set(p));
    if !has_archive && !building_any {
        return Ok(0);
    }
    let Some(key) = content_key(state, set).await? else {
        return Ok(0);
    };
    let path = archive_path(state, set, &key);
    if path.exists() {
        return Ok(1);
    }
    Ok(if building().contains(&path) { 2 } else { 0 })
}

/// Download an image set as a zip
async fn download(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    request: Request,
) -> Result<Response, ApiError> {
    if !state.config.zip_downloads {
        return Err(ApiError::new(
            Code::NotFound,
            "zip downloads are turned off on this server",
        ));
    }
    let (set, _) = state.commands.set_access(&auth.caller, id).await?;
    let Some(key) = content_key(&state, id).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let path = archive_path(&state, id, &key);
    if path.exists() {
        let name = format!("{}.zip", set.name);
        return crate::uploads::attachment(&path, &name, request).await;
    }
    if building().insert(path) {
        tokio::spawn(build(state.clone(), id, key));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "message": "the image set's archive is being built: ask again shortly",
            "zip_state": 2,
        })),
    )
        .into_response())
}

/// The files a multi-file slide at `path` (named `name` in the archive) needs beside it, so
/// that the archive's copy opens by itself: a `.mrxs`'s data folder (its stem, beside it), a
/// `.vms`'s tiles and maps (the files beside it that start with its stem). None for others.
fn slide_parts(path: &std::path::Path, name: &str) -> Vec<Original> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let (Some(stem), Some(parent)) = (path.file_stem(), path.parent()) else {
        return Vec::new();
    };
    let archive_stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let mut parts = Vec::new();
    match extension.as_deref() {
        Some("mrxs") => {
            let mut folders = vec![(parent.join(stem), archive_stem.to_owned())];
            while let Some((folder, inside)) = folders.pop() {
                let Ok(entries) = std::fs::read_dir(&folder) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let entry_name = entry.file_name().to_string_lossy().into_owned();
                    let named = format!("{inside}/{entry_name}");
                    match entry.file_type() {
                        Ok(t) if t.is_dir() => folders.push((entry.path(), named)),
                        Ok(t) if t.is_file() => parts.push(Original {
                            name: named,
                            path: entry.path(),
                        }),
                        _ => {}
                    }
                }
            }
        }
        Some("vms") => {
            let stem = stem.to_string_lossy();
            for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
                let entry_name = entry.file_name().to_string_lossy().into_owned();
                let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                if is_file && entry_name.starts_with(&*stem) && entry.path() != path {
                    parts.push(Original {
                        name: entry_name,
                        path: entry.path(),
                    });
                }
            }
        }
        _ => {}
    }
    parts.sort_by(|a, b| a.name.cmp(&b.name));
    parts
}

/// Builds the archive of `set` for `key` into a temporary file, then moves it into place and
/// removes the set's older archives.
async fn build(state: AppState, set: i64, key: String) {
    if let Err(e) = try_build(&state, set, &key).await {
        tracing::error!(set, error = %e.message, "building an image set's archive failed");
    }
    building().remove(&archive_path(&state, set, &key));
}

async fn try_build(state: &AppState, set: i64, key: &str) -> Result<(), ApiError> {
    let folder = archives_folder(state);
    tokio::fs::create_dir_all(&folder)
        .await
        .map_err(|e| ApiError::storing("preparing an archive failed", &e))?;
    let mut originals = Vec::new();
    for image in live_images(state, set).await? {
        let path = crate::uploads::image_file(&state.config.data_dir, set, &image.filename);
        let parts = tokio::task::spawn_blocking({
            let path = path.clone();
            let name = image.name.clone();
            move || slide_parts(&path, &name)
        })
        .await
        .map_err(|e| ApiError::internal("listing a slide's files failed", &e))?;
        originals.push(Original {
            path,
            name: image.name,
        });
        originals.extend(parts);
    }
    let request = ExportRequest {
        image_set: set,
        kind: ExportKind::Exact(None),
        position: state.store.last_position().await?,
        exported_by: ExportedBy {
            id: 0,
            username: "exact (zip download)".into(),
        },
        originals,
    };
    let file = tempfile::NamedTempFile::new_in(&folder)
        .map_err(|e| ApiError::storing("preparing an archive failed", &e))?;
    let out = file
        .reopen()
        .map_err(|e| ApiError::storing("preparing an archive failed", &e))?;
    write_export(state.store.as_ref(), &state.read, request, out).await?;
    let path = archive_path(state, set, key);
    file.persist(&path)
        .map_err(|e| ApiError::storing("keeping an archive failed", &e.error))?;
    // The set's older archives describe what it no longer is.
    let prefix = format!("set-{set}-");
    if let Ok(entries) = std::fs::read_dir(&folder) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && entry.path() != path {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// What the archive of `set` depends on, hashed; `None` for a set without images.
async fn content_key(state: &AppState, set: i64) -> Result<Option<String>, ApiError> {
    let Some(row) = state.read.image_set(set).await? else {
        return Ok(None);
    };
    let mut hash = Sha256::new();
    hash.update(format!("set {} {}\n", row.id, row.version));
    let mut live = Vec::new();
    for image in live_images(state, set).await? {
        hash.update(format!("image {} {}\n", image.id, image.version));
        live.push(image.id);
    }
    if live.is_empty() {
        return Ok(None);
    }
    for t in state.read.offered_types(set).await? {
        hash.update(format!("type {} {}\n", t.id, t.version));
    }
    let last = state.read.last_annotation_change(&live).await?;
    hash.update(format!("annotations {last}\n"));
    // The annotations are written in the default format: a change to it is a change too.
    if let Some(format) = state.read.default_export_format().await? {
        let version = state.read.export_format_version(format).await?;
        hash.update(format!("format {format} {version:?}\n"));
    }
    Ok(Some(hex::encode(&hash.finalize()[..12])))
}

/// The images of `set` that are not deleted, by id.
async fn live_images(
    state: &AppState,
    set: i64,
) -> Result<Vec<exact_projections::catalog_read::ImageRow>, ApiError> {
    let mut images = Vec::new();
    for id in state.read.image_ids_of_sets(&[set]).await? {
        images.extend(state.read.image(id).await?.filter(|i| !i.deleted));
    }
    Ok(images)
}

fn archives_folder(state: &AppState) -> PathBuf {
    state.config.data_dir.join("archives")
}

fn archive_path(state: &AppState, set: i64, key: &str) -> PathBuf {
    archives_folder(state).join(format!("set-{set}-{key}.zip"))
}
