//! EXACT's `annotations/annotation_media_files`: files attached to an annotation. Uploads are
//! multipart (`annotation`, `media_file_type`, one or more files), streamed to disk with a
//! checksum and a size limit like image uploads; a name the annotation already has is left
//! out of the answer, as EXACT does. The bytes are served by `{id}/file/` to those who may
//! read the annotation.

use std::collections::BTreeSet;
use std::path::Path as FsPath;

use axum::extract::{Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use exact_domain::media_file::NewMediaFile;
use exact_domain::DomainError;
use exact_projections::catalog_read::MediaFileRow;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::body::{lenient, Body};
use super::caller_for;
use super::expand::{expand, expand_results, Related};
use super::filters::{IdFilter, NameFilter};
use super::input::{missing, wrong};
use super::params::Params;
use super::shapes::{self, MediaFile};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::uploads;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/annotations/annotation_media_files/",
            get(list_media_files)
                .post(upload_media_files)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/annotations/annotation_media_files/{id}/",
            get(get_media_file)
                .patch(rename_media_file)
                .put(rename_media_file)
                .delete(delete_media_file),
        )
        .route(
            "/annotations/annotation_media_files/{id}/file/",
            get(download_media_file),
        )
}

/// What `expand=` may replace in a media file.
const MEDIA_FILE_EXPANDS: &[(&str, Related)] = &[("annotation", Related::Annotation)];

fn media_file_json(m: &MediaFileRow) -> Value {
    shapes::value(&MediaFile::of(m))
}

/// The attached files of annotations the caller may read (of one annotation, if given).
async fn visible_media_files(
    state: &AppState,
    auth: &Authenticated,
    annotation: Option<i64>,
) -> Result<Vec<MediaFileRow>, ApiError> {
    let rows = state.read.media_files(annotation).await?;
    let mut readable = BTreeSet::new();
    for a in rows.iter().map(|m| m.annotation).collect::<BTreeSet<_>>() {
        match state.commands.readable_annotation(&auth.caller, a).await {
            Ok(_) => {
                readable.insert(a);
            }
            Err(e) if e.status() == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    Ok(rows
        .into_iter()
        .filter(|m| readable.contains(&m.annotation))
        .collect())
}

async fn visible_media_file(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<MediaFileRow, ApiError> {
    visible_media_files(state, auth, None)
        .await?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| DomainError::NotFound("media file").into())
}

/// The filters of the media file list.
#[derive(Debug, Deserialize)]
struct MediaFileFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    name: NameFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    annotation: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    media_file_type: Option<i64>,
}

/// Files attached to annotations
#[utoipa::path(get, path = "/annotations/annotation_media_files/", responses((status = 200, body = crate::rest::shapes::MediaFilePage)))]
async fn list_media_files(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: MediaFileFilters = params.filters()?;
    let (ids, kind) = (f.id.allowed(), f.media_file_type);
    let rows = visible_media_files(&state, &auth, f.annotation)
        .await?
        .iter()
        .filter(|m| ids.as_ref().is_none_or(|ids| ids.contains(&m.id)))
        .filter(|m| kind.is_none_or(|k| k == m.media_file_type))
        .filter(|m| f.name.keeps(&m.name))
        .map(media_file_json)
        .collect();
    let mut page = params.page_of(rows)?;
    expand_results(&state, &auth, &params, &mut page, MEDIA_FILE_EXPANDS).await?;
    Ok(Json(page))
}

/// One attached file
#[utoipa::path(get, path = "/annotations/annotation_media_files/{id}/", responses((status = 200, body = crate::rest::shapes::MediaFile)))]
async fn get_media_file(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let row = visible_media_file(&state, &auth, id).await?;
    let mut body = params.shape(media_file_json(&row));
    expand(
        &state,
        &auth,
        &params,
        std::slice::from_mut(&mut body),
        MEDIA_FILE_EXPANDS,
    )
    .await?;
    Ok(Json(body))
}

/// Attach files (multipart: annotation, media_file_type, files)
#[utoipa::path(post, path = "/annotations/annotation_media_files/", request_body(content = MediaUpload, content_type = "multipart/form-data"), responses((status = 201, body = crate::rest::shapes::MediaFilePage)))]
async fn upload_media_files(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let staging = uploads::staging_folder(&state.config.data_dir).await?;
    // On a task of its own, as image uploads (`images/receive.rs`).
    let rows = uploads::to_completion(async move {
        let result = attach(&state, &auth, multipart, &staging).await;
        let _ = tokio::fs::remove_dir_all(&staging).await;
        result
    })
    .await?;
    let count = rows.len() as i64;
    let results = rows.iter().map(media_file_json).collect();
    let page = params.paginated(count, count.max(1), 0, results);
    Ok((StatusCode::CREATED, Json(page)).into_response())
}

/// What attaching files sends as multipart form data: the annotation, the file type, and one
/// or more files (every part with a file name is one).
#[derive(ToSchema)]
#[allow(dead_code)] // documents what `MediaUploadFields` and `uploads::receive` read
pub(in crate::rest) struct MediaUpload {
    annotation: i64,
    media_file_type: Option<i64>,
    #[schema(inline)]
    file: Vec<crate::rest::shapes::Binary>,
}

/// The text fields of a media file upload, beside its files.
#[derive(Debug, Deserialize)]
struct MediaUploadFields {
    #[serde(deserialize_with = "lenient::required_int")]
    annotation: i64,
    #[serde(default, deserialize_with = "lenient::int")]
    media_file_type: Option<i64>,
}

async fn attach(
    state: &AppState,
    auth: &Authenticated,
    multipart: Multipart,
    staging: &FsPath,
) -> Result<Vec<MediaFileRow>, ApiError> {
    let (fields, files) =
        uploads::receive(multipart, staging, state.config.max_upload_bytes).await?;
    let MediaUploadFields {
        annotation,
        media_file_type,
    } = fields.read()?;
    let media_file_type = media_file_type.unwrap_or(1);
    state.commands.may_attach(&auth.caller, annotation).await?;
    if files.is_empty() {
        return Err(missing("file"));
    }
    let taken: BTreeSet<String> = state
        .read
        .media_files(Some(annotation))
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();
    let relative_folder = format!("media/{annotation}");
    let folder = uploads::inside(&state.config.data_dir, &["media", &annotation.to_string()]);
    tokio::fs::create_dir_all(&folder)
        .await
        .map_err(|e| ApiError::storing("preparing the media folder failed", &e))?;
    let mut moved = Vec::new();
    let mut new = Vec::new();
    for received in files {
        if taken.contains(&received.name)
            || new.iter().any(|n: &NewMediaFile| n.name == received.name)
        {
            continue;
        }
        let size = tokio::fs::metadata(&received.path)
            .await
            .map_err(|e| ApiError::internal("reading an upload failed", &e))?
            .len();
        // The client's name is kept for people; the file on disk gets a safe name of its own.
        let target = uploads::unused_path(&folder, &received.name);
        tokio::fs::rename(&received.path, &target)
            .await
            .map_err(|e| ApiError::storing("storing an upload failed", &e))?;
        let stored = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        moved.push(target);
        new.push(NewMediaFile {
            annotation,
            name: received.name,
            media_file_type,
            file: format!("{relative_folder}/{stored}"),
            checksum: received.checksum,
            size: i64::try_from(size).unwrap_or(i64::MAX),
        });
    }
    let written = match state
        .commands
        .add_media_files(&caller_for(auth, &Value::Null), new)
        .await
    {
        Ok(written) => written,
        Err(e) => {
            // Refused: nothing of the request stays.
            for path in moved {
                let _ = tokio::fs::remove_file(path).await;
            }
            return Err(e);
        }
    };
    let created: BTreeSet<i64> = written.iter().map(|w| w.id).collect();
    Ok(state
        .read
        .media_files(Some(annotation))
        .await?
        .into_iter()
        .filter(|m| created.contains(&m.id))
        .collect())
}

/// Detach a file
#[utoipa::path(delete, path = "/annotations/annotation_media_files/{id}/", responses((status = 204)))]
async fn delete_media_file(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let row = visible_media_file(&state, &auth, id).await?;
    state
        .commands
        .delete_media_file(&caller_for(&auth, &Value::Null), &row)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a media file's update reads.
#[derive(Debug, Deserialize, ToSchema)]
pub(in crate::rest) struct MediaFileChange {
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::int")]
    annotation: Option<i64>,
}

/// Rename an attached file
///
/// EXACT's update of a media file: its name. The bytes and the annotation stay.
#[utoipa::path(patch, path = "/annotations/annotation_media_files/{id}/", request_body = MediaFileChange, responses((status = 200, body = crate::rest::shapes::MediaFile)))]
async fn rename_media_file(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<MediaFileChange>,
) -> Result<Response, ApiError> {
    let row = visible_media_file(&state, &auth, id).await?;
    if fields.annotation.is_some_and(|a| a != row.annotation) {
        return Err(wrong(
            "annotation",
            "the file's own: attach a new file instead",
        ));
    }
    if let Some(name) = fields.name {
        state
            .commands
            .rename_media_file(&caller_for(&auth, &body), &row, &name)
            .await?;
    }
    let row = visible_media_file(&state, &auth, id).await?;
    Ok(Json(media_file_json(&row)).into_response())
}

/// The attached file's bytes
#[utoipa::path(get, path = "/annotations/annotation_media_files/{id}/file/", responses((status = 200, body = inline(crate::rest::shapes::Binary), content_type = "application/octet-stream")))]
async fn download_media_file(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    request: Request,
) -> Result<Response, ApiError> {
    let row = visible_media_file(&state, &auth, id).await?;
    uploads::attachment(&state.config.data_dir.join(&row.file), &row.name, request).await
}
