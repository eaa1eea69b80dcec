//! An image's pixels: thumbnail, region, DeepZoom descriptor and tiles, the file itself,
//! what the slide says of itself, and filling the tile cache.

use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use exact_tiles::{render, Format};
use serde::Deserialize;

use super::{frame_path, image_path};
use crate::auth::Authenticated;
use crate::error::{ApiError, Code};
use crate::rest::access::readable_image;
use crate::rest::body::{lenient, Body};
use crate::rest::input::wrong;
use crate::rest::params::Params;
use crate::rest::shapes::{CacheReport, CachedLevel, DeepZoomGrid, SlideInformation};
use crate::routes::tiles::{blocking, image as image_response};
use crate::uploads;
use crate::AppState;
use utoipa::ToSchema;

/// What a thumbnail's query reads.
#[derive(Debug, Deserialize)]
pub(super) struct ThumbnailQuery {
    #[serde(default, deserialize_with = "lenient::int")]
    size: Option<i64>,
}

/// Thumbnail (PNG)
///
/// EXACT's thumbnail: PNG, longest side 128 unless `size` says otherwise.
#[utoipa::path(get, path = "/images/images/{id}/thumbnail/", responses((status = 200, body = inline(crate::rest::shapes::Binary), content_type = "image/png")))]
pub(super) async fn thumbnail(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    let ThumbnailQuery { size } = params.filters()?;
    let size = size.unwrap_or(128);
    if !(1..=2048).contains(&size) {
        return Err(wrong("size", "1 to 2048"));
    }
    let slide = state.tiles.slide(&image_path(&state, &image)).await?;
    let pixels = blocking(move || render::thumbnail(slide.source.as_ref(), size as u32)).await?;
    let bytes = blocking(move || render::encode(&pixels, Format::Png, 90)).await?;
    Ok(image_response(Bytes::from(bytes), "image/png"))
}

/// What `update_image_cache` reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = CacheRequest)]
pub(super) struct CacheBody {
    /// How much JPEG to render, in MB (5 unless given).
    #[serde(default, deserialize_with = "lenient::float")]
    mem_size_mb: Option<f64>,
    #[serde(default, deserialize_with = "lenient::int")]
    /// The frame to render (1 unless given).
    frame: Option<i64>,
}

/// Render a frame's tiles into the server's cache, up to mem_size_mb
///
/// EXACT's `update_image_cache`: renders the tiles of one frame, smallest levels first, into
/// the server's tile cache until `mem_size_mb` (5 by default) of JPEG is there, so that the
/// first viewer finds them ready. Answers per level what was cached, in EXACT's shape.
#[utoipa::path(patch, path = "/images/images/{id}/update_image_cache/", request_body = CacheBody, responses((status = 200, body = crate::rest::shapes::CacheReport)))]
pub(super) async fn update_image_cache(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Body { fields, .. }: Body<CacheBody>,
) -> Result<Json<CacheReport>, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    let budget = fields.mem_size_mb.unwrap_or(5.0).max(0.0) * 1024.0 * 1024.0;
    let frame = fields.frame.unwrap_or(1);
    let path = frame_path(&state, &image, frame)?;
    let slide = state.tiles.slide(&path).await?;
    let (mut bytes, mut total) = (0.0, 0u64);
    let mut results = CacheReport::default();
    for (level, &(columns, rows)) in slide.grid.tile_counts.iter().enumerate() {
        let started = std::time::Instant::now();
        'level: for col in 0..columns {
            for row in 0..rows {
                if bytes > budget {
                    break 'level;
                }
                let tile = state
                    .tiles
                    .tile(&path, level, col, row, Format::Jpeg)
                    .await?;
                bytes += tile.len() as f64;
                total += 1;
            }
        }
        results.0.insert(
            level.to_string(),
            CachedLevel {
                level,
                size_mb: bytes / (1024.0 * 1024.0),
                tiles: [columns, rows],
                total,
                seconds: started.elapsed().as_secs_f64(),
            },
        );
        if bytes > budget {
            break;
        }
    }
    Ok(Json(results))
}

/// Levels, resolution, properties
#[utoipa::path(get, path = "/images/images/{id}/slide_information/", responses((status = 200, body = crate::rest::shapes::SlideInformation)))]
pub(super) async fn slide_information(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<SlideInformation>, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    let slide = state.tiles.slide(&image_path(&state, &image)).await?;
    let p = slide.source.properties();
    Ok(Json(SlideInformation {
        id: image.id,
        levels: p.levels.len(),
        level_downsamples: p.levels.iter().map(|l| l.downsample).collect(),
        level_dimensions: p.levels.iter().map(|l| [l.width, l.height]).collect(),
        level_tiles: p.levels.iter().map(|l| l.tile_size.map(|t| t.0)).collect(),
        mpp: image.mpp,
        mpp_x: p.mpp_x,
        mpp_y: p.mpp_y,
        objective_power: p.objective_power,
        vendor: p.vendor.clone(),
        associated_images: p.associated.clone(),
        deepzoom: DeepZoomGrid {
            tile_size: slide.grid.tile_size,
            overlap: slide.grid.overlap,
            levels: slide.grid.level_count(),
        },
        properties: p.all.clone(),
    }))
}

/// What a region's query reads: its corner at level 0, the level and the size.
#[derive(Debug, Deserialize)]
pub(super) struct PatchQuery {
    #[serde(deserialize_with = "lenient::required_int")]
    x: i64,
    #[serde(deserialize_with = "lenient::required_int")]
    y: i64,
    #[serde(default, deserialize_with = "lenient::int")]
    level: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    width: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    height: Option<i64>,
}

/// A region at a level (PNG, at most 2048 x 2048)
///
/// EXACT's `get_patch`: a region of at most 2048 × 2048 at a level, as PNG.
#[utoipa::path(get, path = "/images/images/{id}/get_patch/", responses((status = 200, body = inline(crate::rest::shapes::Binary), content_type = "image/png")))]
pub(super) async fn get_patch(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    let PatchQuery {
        x,
        y,
        level,
        width,
        height,
    } = params.filters()?;
    let (level, width, height) = (
        level.unwrap_or(0),
        width.unwrap_or(256),
        height.unwrap_or(256),
    );
    let level = usize::try_from(level).map_err(|_| wrong("level", "0 or more"))?;
    let (Ok(width), Ok(height)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(wrong("width", "a positive size"));
    };
    let slide = state.tiles.slide(&image_path(&state, &image)).await?;
    let pixels =
        blocking(move || render::region(slide.source.as_ref(), x, y, level, width, height)).await?;
    let bytes = blocking(move || render::encode(&pixels, Format::Png, 90)).await?;
    Ok(image_response(Bytes::from(bytes), "image/png"))
}

/// DeepZoom descriptor
#[utoipa::path(get, path = "/images/images/{id}/{z}/{frame}/tile/", responses((status = 200, body = String, content_type = "application/xml")))]
pub(super) async fn dzi(
    State(state): State<AppState>,
    auth: Authenticated,
    Path((id, _z, frame)): Path<(i64, i64, i64)>,
) -> Result<Response, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    let xml = state
        .tiles
        .dzi(&frame_path(&state, &image, frame)?, Format::Jpeg)
        .await?;
    // A file never changes under its name: the viewer's preloading fetches descriptors ahead
    // and the browser keeps them, as it keeps the tiles.
    Ok((
        [
            (header::CONTENT_TYPE, "application/xml"),
            (header::CACHE_CONTROL, "private, max-age=86400"),
        ],
        xml,
    )
        .into_response())
}

/// A DeepZoom tile (COL_ROW.jpeg)
#[utoipa::path(get, path = "/images/images/{id}/{z}/{frame}/tile_files/{level}/{tile}", responses((status = 200, body = inline(crate::rest::shapes::Binary), content_type = "image/jpeg")))]
pub(super) async fn tile(
    State(state): State<AppState>,
    auth: Authenticated,
    Path((id, _z, frame, level, tile)): Path<(i64, i64, i64, usize, String)>,
) -> Result<Response, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    let bad = || ApiError::new(Code::NotFound, "a tile is LEVEL/COL_ROW.jpeg or .png");
    let (address, extension) = tile.rsplit_once('.').ok_or_else(bad)?;
    let (col, row) = address.split_once('_').ok_or_else(bad)?;
    let (Ok(col), Ok(row)) = (col.parse::<u64>(), row.parse::<u64>()) else {
        return Err(bad());
    };
    let format = Format::from_extension(extension)?;
    let bytes = state
        .tiles
        .tile(&frame_path(&state, &image, frame)?, level, col, row, format)
        .await?;
    Ok(image_response(bytes, format.content_type()))
}

/// The original file as uploaded (`?original_image=true`, what exact-sync asks for), streamed
/// from disk with range support. A multi-file slide downloads its index file.
pub(super) async fn download(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    request: Request,
) -> Result<Response, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    uploads::attachment(&image_path(&state, &image), &image.name, request).await
}
