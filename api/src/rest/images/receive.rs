//! Uploading images: streamed to disk, zip archives extracted, all or nothing.

use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use exact_domain::image::ImageFile;
use exact_projections::catalog_read::ImageRow;
use exact_tiles::pyramid::PyramidLimits;
use serde::Deserialize;

use super::{image_json, set_folder};
use crate::auth::Authenticated;
use crate::error::{ApiError, Code};
use crate::rest::body::lenient;
use crate::rest::input::missing;
use crate::rest::params::Params;
use crate::uploads::{self, Received};
use crate::AppState;

/// Upload images (multipart: image_set, image_type, files, zip archives)
///
/// `POST /api/v1/images/images/`: `image_set`, `image_type` and one or more files (zip
/// archives are extracted). Answers the paginated list of the images created, as exact-sync
/// expects. Nothing is registered unless every file can be read.
#[utoipa::path(post, path = "/images/images/", request_body(content = ImageUpload, content_type = "multipart/form-data"), responses((status = 201, body = crate::rest::shapes::ImagePage)))]
pub(super) async fn upload(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let staging = uploads::staging_folder(&state.config.data_dir).await?;
    // On a task of its own: a client that goes away mid-request cannot cut the work off
    // between placing files and registering them, nor leave the staging folder behind (the
    // body then stops, and the upload is refused and cleaned up like any other).
    let images = uploads::to_completion(async move {
        let result = upload_into(&state, &auth, multipart, &staging).await;
        let _ = tokio::fs::remove_dir_all(&staging).await;
        result
    })
    .await?;
    let count = images.len() as i64;
    let results = images
        .iter()
        .map(|i| image_json(i, Some(Vec::new())))
        .collect();
    let page = params.paginated(count, count.max(1), 0, results);
    Ok((StatusCode::CREATED, Json(page)).into_response())
}

/// The text fields of an image upload, beside its files.
#[derive(Debug, Deserialize)]
pub(super) struct UploadFields {
    #[serde(deserialize_with = "lenient::required_int")]
    image_set: i64,
    #[serde(default, deserialize_with = "lenient::int")]
    image_type: Option<i64>,
}

/// What an image upload sends as multipart form data: the set, the image type, and one or more
/// files (every part with a file name is one; exact-sync names them `file_path`), zip archives
/// among them.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents what `UploadFields` and `uploads::receive` read
pub(in crate::rest) struct ImageUpload {
    image_set: i64,
    image_type: Option<i64>,
    #[schema(inline)]
    file_path: Vec<crate::rest::shapes::Binary>,
}

pub(super) async fn upload_into(
    state: &AppState,
    auth: &Authenticated,
    multipart: Multipart,
    staging: &FsPath,
) -> Result<Vec<ImageRow>, ApiError> {
    let (fields, files) =
        uploads::receive(multipart, staging, state.config.max_upload_bytes).await?;
    let UploadFields {
        image_set,
        image_type,
    } = fields.read()?;
    let image_type = image_type.unwrap_or(0);
    state.commands.set_access(&auth.caller, image_set).await?;
    if files.is_empty() {
        return Err(missing("file_path"));
    }
    let folder = set_folder(state, image_set);
    tokio::fs::create_dir_all(&folder)
        .await
        .map_err(|e| ApiError::storing("preparing the set's folder failed", &e))?;

    // Everything is placed and read first; only then registered, so that one unreadable file
    // leaves nothing behind.
    let mut placed: Vec<PathBuf> = Vec::new();
    let prepared = prepare(state, files, &folder, image_type, &mut placed).await;
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => {
            remove_all(&placed).await;
            return Err(e);
        }
    };
    for file in &prepared {
        let duplicate = state
            .read
            .duplicate_image(image_set, &file.name, &file.checksum)
            .await?;
        if duplicate.is_some() {
            remove_all(&placed).await;
            return Err(ApiError::new(
                Code::DuplicateImage,
                format!(
                    "{} is already in this image set (same name or same content)",
                    file.name
                ),
            )
            .with_field("file_path"));
        }
    }
    let mut created = Vec::new();
    for file in prepared {
        let written = state
            .commands
            .add_image(&auth.caller, image_set, file)
            .await?;
        if let Some(image) = state.read.image(written.id).await? {
            created.push(image);
        }
    }
    Ok(created)
}

/// Moves each received file (or each image inside a zip) into the set's folder and reads its
/// size and resolution; `placed` collects what was written, for cleaning up on failure.
pub(super) async fn prepare(
    state: &AppState,
    files: Vec<Received>,
    folder: &FsPath,
    image_type: i64,
    placed: &mut Vec<PathBuf>,
) -> Result<Vec<ImageFile>, ApiError> {
    let mut prepared = Vec::new();
    for file in files {
        let mut images: Vec<(String, PathBuf, String)> = Vec::new();
        if uploads::is_zip(&file.path) {
            let stem = uploads::safe_name(file.name.trim_end_matches(".zip"));
            let into = uploads::unused_path(folder, &stem);
            std::fs::create_dir_all(&into)
                .map_err(|e| ApiError::storing("extracting an upload failed", &e))?;
            placed.push(into.clone());
            let (archive, target, limits) = (file.path.clone(), into.clone(), state.config.zip);
            let inside = tokio::task::spawn_blocking(move || {
                uploads::extract_zip(&archive, &target, limits)
            })
            .await
            .map_err(|e| ApiError::internal("extracting an upload failed", &e))??;
            if inside.is_empty() {
                return Err(ApiError::new(
                    Code::UnsupportedFile,
                    format!("{} holds no image or slide file", file.name),
                )
                .with_field("file_path"));
            }
            for entry in inside {
                images.push((entry.name, into.join(&entry.path), entry.checksum));
            }
        } else {
            let target = uploads::unused_path(folder, &file.name);
            tokio::fs::rename(&file.path, &target)
                .await
                .map_err(|e| ApiError::storing("storing an upload failed", &e))?;
            placed.push(target.clone());
            images.push((file.name, target, file.checksum));
        }
        for (name, path, checksum) in images {
            placed.push(exact_tiles::pyramid::pyramid_path(&path));
            let opened = path.clone();
            let properties = tokio::task::spawn_blocking(move || {
                exact_tiles::open(&opened).map(|source| source.properties().clone())
            })
            .await
            .map_err(|e| ApiError::internal("reading an upload failed", &e))?
            .map_err(|e| ApiError::from_tiles(&e, Some(&name)).with_field("file_path"))?;
            // A plain multi-page TIFF is one image with a frame per page (slides OpenSlide
            // reads are one frame).
            let frames = if properties.vendor == exact_tiles::pyramid::VENDOR {
                let (original, limits) = (path.clone(), PyramidLimits::default());
                tokio::task::spawn_blocking(move || {
                    exact_tiles::frames::build_frames(&original, limits)
                })
                .await
                .map_err(|e| ApiError::internal("reading an upload failed", &e))?
                .map_err(|e| ApiError::from_tiles(&e, Some(&name)).with_field("file_path"))?
            } else {
                1
            };
            placed.extend((2..=frames).map(|f| exact_tiles::frames::frame_path(&path, f)));
            let filename = path
                .strip_prefix(folder)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let mpp = match (properties.mpp_x, properties.mpp_y) {
                (Some(x), Some(y)) => Some((x + y) / 2.0),
                (x, y) => x.or(y),
            };
            prepared.push(ImageFile {
                name: uploads::safe_name(&name),
                filename,
                checksum,
                width: properties.width() as i64,
                height: properties.height() as i64,
                mpp,
                objective_power: properties.objective_power,
                depth: 1,
                frames: i64::from(frames),
                channels: 3,
                image_type,
            });
        }
    }
    Ok(prepared)
}

pub(super) async fn remove_all(paths: &[PathBuf]) {
    for path in paths.iter().rev() {
        if path.is_dir() {
            let _ = tokio::fs::remove_dir_all(path).await;
        } else {
            let _ = tokio::fs::remove_file(path).await;
        }
    }
}
