//! Images: upload (multipart, several files, zip archives), lists, the slide routes by image id
//! (thumbnail, slide information, patches, DeepZoom) and the original file's download. Every
//! pixel route checks that the caller may read the image's set, as every other route does.

pub(in crate::rest) mod change;
pub(in crate::rest) mod list;
pub(in crate::rest) mod pixels;
pub(in crate::rest) mod receive;

use change::{delete_image, update_image};
use list::{get_image, list_images};
use pixels::{download, dzi, get_patch, slide_information, thumbnail, tile, update_image_cache};
use receive::upload;

use std::path::PathBuf;

use axum::routing::get;
use axum::Router;
use exact_projections::catalog_read::ImageRow;
use serde_json::Value;

use super::shapes::{self, Image};
use crate::error::{ApiError, Code};
use crate::uploads;
use crate::AppState;

pub fn api_router() -> Router<AppState> {
    Router::new()
        .route(
            "/images/images/",
            get(list_images)
                .post(upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/images/images/{id}/",
            get(get_image)
                .patch(update_image)
                .put(update_image)
                .delete(delete_image),
        )
        .route("/images/images/{id}/thumbnail/", get(thumbnail))
        .route(
            "/images/images/{id}/slide_information/",
            get(slide_information),
        )
        .route(
            "/images/images/{id}/update_image_cache/",
            axum::routing::patch(update_image_cache),
        )
        .route("/images/images/{id}/get_patch", get(get_patch))
        .route("/images/images/{id}/get_patch/", get(get_patch))
        .route("/images/images/{id}/{z}/{frame}/tile/", get(dzi))
        .route(
            "/images/images/{id}/{z}/{frame}/tile_files/{level}/{tile}",
            get(tile),
        )
}

/// EXACT's routes outside the API: the viewer's DeepZoom and the download `exact-sync` uses.
pub fn legacy_router() -> Router<AppState> {
    Router::new()
        .route("/images/image/{id}/{z}/{frame}/tile/", get(dzi))
        .route(
            "/images/image/{id}/{z}/{frame}/tile_files/{level}/{tile}",
            get(tile),
        )
        .route("/images/api/image/download/{id}/", get(download))
}

/// Where the files of set `image_set` are kept.
fn set_folder(state: &AppState, image_set: i64) -> PathBuf {
    uploads::inside(&state.config.data_dir, &["images", &image_set.to_string()])
}

fn image_path(state: &AppState, image: &ImageRow) -> PathBuf {
    uploads::image_file(&state.config.data_dir, image.image_set, &image.filename)
}

/// The file that serves `frame` of `image`. Frames count from 1, as in EXACT; 0 is frame 1
/// too, since clients written for single-frame images send `0/0/`. The depth (`z`) is not
/// kept apart from frames: EXACT's uploads make frames, never depth.
fn frame_path(state: &AppState, image: &ImageRow, frame: i64) -> Result<PathBuf, ApiError> {
    if frame > image.frames || frame < 0 {
        return Err(ApiError::new(
            Code::NotFound,
            format!(
                "image {} has frames 1 to {}, not {frame}",
                image.id, image.frames
            ),
        )
        .with_field("frame"));
    }
    let frame = u32::try_from(frame.max(1)).unwrap_or(1);
    Ok(exact_tiles::frames::frame_path(
        &image_path(state, image),
        frame,
    ))
}

fn image_json(image: &ImageRow, annotations: Option<Vec<i64>>) -> Value {
    shapes::value(&Image::of(image, annotations))
}
