//! The tile routes of `exact tiles`: a tile server for one data folder, for scaling pixels out
//! beside the main server. Files are named by their path under the data folder; every request
//! carries the shared token (`Authorization: Bearer ...`), which the main server holds.
//!
//! - `GET /tiles/{file}.dzi` — the DeepZoom descriptor (`?format=png` for PNG tiles);
//! - `GET /tiles/{file}_files/{level}/{col}_{row}.{jpeg|png}` — a tile;
//! - `GET /slides/{file}/info` — properties, levels and associated images as JSON;
//! - `GET /slides/{file}/thumbnail?size=N` — PNG, longest side N (default 256);
//! - `GET /slides/{file}/associated/{name}` — an associated image as PNG;
//! - `GET /slides/{file}/region?x=&y=&level=&width=&height=` — EXACT's `get_patch`, PNG;
//! - `GET /iiif/{file}/info.json` and `/iiif/{file}/{region}/{size}/{rotation}/{quality}.{jpg|png}`
//!   — IIIF Image API 3.0, level 1.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use exact_tiles::{render, Format, TileService};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Code};

/// What the tile server needs.
#[derive(Clone, Debug)]
pub struct TilesState {
    pub data_dir: PathBuf,
    pub service: TileService,
    /// The bearer token every request must present.
    pub token: Arc<str>,
}

/// The routes of `exact tiles`.
pub fn tile_server(state: TilesState) -> Router {
    Router::new()
        .route("/tiles/{*rest}", get(tiles))
        .route("/slides/{*rest}", get(slides))
        .route("/iiif/{*rest}", get(iiif))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn require_token(State(state): State<TilesState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if crate::auth::constant_time_eq(token.as_bytes(), state.token.as_bytes()) => {
            next.run(request).await
        }
        _ => ApiError::new(
            Code::Unauthorized,
            "this tile server answers requests that carry its token (Authorization: Bearer ...)",
        )
        .into_response(),
    }
}

#[derive(Deserialize)]
struct DziQuery {
    format: Option<String>,
}

async fn tiles(
    State(state): State<TilesState>,
    UrlPath(rest): UrlPath<String>,
    Query(query): Query<DziQuery>,
) -> Result<Response, ApiError> {
    if let Some(file) = rest.strip_suffix(".dzi") {
        let format = Format::from_extension(query.format.as_deref().unwrap_or("jpeg"))?;
        let dzi = state.service.dzi(&state.file(file)?, format).await?;
        return Ok(([(header::CONTENT_TYPE, "application/xml")], dzi).into_response());
    }
    let bad = || {
        ApiError::new(
            Code::NotFound,
            "tiles are FILE.dzi or FILE_files/LEVEL/COL_ROW.jpeg",
        )
    };
    let (file, tile) = rest.rsplit_once("_files/").ok_or_else(bad)?;
    let (level, name) = tile.split_once('/').ok_or_else(bad)?;
    let (address, extension) = name.rsplit_once('.').ok_or_else(bad)?;
    let (col, row) = address.split_once('_').ok_or_else(bad)?;
    let (Ok(level), Ok(col), Ok(row)) = (
        level.parse::<usize>(),
        col.parse::<u64>(),
        row.parse::<u64>(),
    ) else {
        return Err(bad());
    };
    let format = Format::from_extension(extension)?;
    let bytes = state
        .service
        .tile(&state.file(file)?, level, col, row, format)
        .await?;
    Ok(image(bytes, format.content_type()))
}

#[derive(Deserialize)]
struct SlideQuery {
    size: Option<u32>,
    x: Option<i64>,
    y: Option<i64>,
    level: Option<usize>,
    width: Option<u32>,
    height: Option<u32>,
}

/// A level as the info JSON shows it.
#[derive(Serialize)]
struct LevelInfo {
    width: u64,
    height: u64,
    downsample: f64,
    tile_width: Option<u32>,
    tile_height: Option<u32>,
}

/// What `GET /slides/{file}/info` answers.
#[derive(Serialize)]
struct SlideInfo {
    vendor: String,
    width: u64,
    height: u64,
    mpp_x: Option<f64>,
    mpp_y: Option<f64>,
    objective_power: Option<f64>,
    levels: Vec<LevelInfo>,
    associated_images: Vec<String>,
    deepzoom: DeepZoomInfo,
    properties: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
struct DeepZoomInfo {
    tile_size: u32,
    overlap: u32,
    levels: usize,
}

async fn slides(
    State(state): State<TilesState>,
    UrlPath(rest): UrlPath<String>,
    Query(query): Query<SlideQuery>,
) -> Result<Response, ApiError> {
    let unknown = || {
        ApiError::new(
            Code::NotFound,
            "ask for FILE/info, FILE/thumbnail, FILE/region or FILE/associated/NAME",
        )
    };
    if let Some(file) = rest.strip_suffix("/info") {
        let slide = state.service.slide(&state.file(file)?).await?;
        let p = slide.source.properties();
        let info = SlideInfo {
            vendor: p.vendor.clone(),
            width: p.width(),
            height: p.height(),
            mpp_x: p.mpp_x,
            mpp_y: p.mpp_y,
            objective_power: p.objective_power,
            levels: p
                .levels
                .iter()
                .map(|l| LevelInfo {
                    width: l.width,
                    height: l.height,
                    downsample: l.downsample,
                    tile_width: l.tile_size.map(|t| t.0),
                    tile_height: l.tile_size.map(|t| t.1),
                })
                .collect(),
            associated_images: p.associated.clone(),
            deepzoom: DeepZoomInfo {
                tile_size: slide.grid.tile_size,
                overlap: slide.grid.overlap,
                levels: slide.grid.level_count(),
            },
            properties: p.all.clone(),
        };
        return Ok(Json(info).into_response());
    }
    let pixels = if let Some(file) = rest.strip_suffix("/thumbnail") {
        let slide = state.service.slide(&state.file(file)?).await?;
        let size = query.size.unwrap_or(256);
        blocking(move || render::thumbnail(slide.source.as_ref(), size)).await?
    } else if let Some(file) = rest.strip_suffix("/region") {
        let slide = state.service.slide(&state.file(file)?).await?;
        let missing = |name| {
            ApiError::new(Code::InvalidQuery, format!("{name} is required")).with_field(name)
        };
        let x = query.x.ok_or_else(|| missing("x"))?;
        let y = query.y.ok_or_else(|| missing("y"))?;
        let (level, w, h) = (
            query.level.unwrap_or(0),
            query.width.unwrap_or(256),
            query.height.unwrap_or(256),
        );
        blocking(move || render::region(slide.source.as_ref(), x, y, level, w, h)).await?
    } else if let Some((file, name)) = rest.rsplit_once("/associated/") {
        let slide = state.service.slide(&state.file(file)?).await?;
        let name = name.to_owned();
        blocking(move || slide.source.associated_image(&name)).await?
    } else {
        return Err(unknown());
    };
    let png = blocking(move || render::encode(&pixels, Format::Png, 90)).await?;
    Ok(image(Bytes::from(png), "image/png"))
}

async fn iiif(
    State(state): State<TilesState>,
    UrlPath(rest): UrlPath<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(file) = rest.strip_suffix("/info.json") {
        let slide = state.service.slide(&state.file(file)?).await?;
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = match headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
        {
            Some("https") => "https",
            _ => "http",
        };
        let id = format!("{scheme}://{host}/iiif/{file}");
        let info = exact_tiles::iiif::info(slide.source.as_ref(), &id, slide.grid.tile_size);
        let mut response = Json(info).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(
                "application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\"",
            ),
        );
        return Ok(response);
    }
    let mut parts = rest.rsplitn(5, '/');
    let (Some(quality_format), Some(rotation), Some(size), Some(region), Some(file)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(ApiError::new(
            Code::NotFound,
            "IIIF requests are FILE/info.json or FILE/REGION/SIZE/ROTATION/QUALITY.FORMAT",
        ));
    };
    let slide = state.service.slide(&state.file(file)?).await?;
    let p = slide.source.properties();
    let request = exact_tiles::iiif::parse(
        region,
        size,
        rotation,
        quality_format,
        p.width(),
        p.height(),
    )?;
    let quality = 90;
    let bytes =
        blocking(move || exact_tiles::iiif::render(slide.source.as_ref(), &request, quality))
            .await?;
    Ok(image(Bytes::from(bytes), request.format.content_type()))
}

impl TilesState {
    /// The file `relative` names under the data folder: a relative path of plain components
    /// that stays inside the folder once links are resolved.
    fn file(&self, relative: &str) -> Result<PathBuf, ApiError> {
        let refused = || {
            ApiError::new(
                Code::InvalidPath,
                format!("{relative:?} is not a file under the data folder"),
            )
        };
        let path = Path::new(relative);
        if relative.is_empty() || relative.contains('\\') || relative.contains('\0') {
            return Err(refused());
        }
        if !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(refused());
        }
        let joined = self.data_dir.join(path);
        let (Ok(real), Ok(root)) = (joined.canonicalize(), self.data_dir.canonicalize()) else {
            return Err(ApiError::new(
                Code::NotFound,
                format!("no file {relative:?}"),
            ));
        };
        if !real.starts_with(&root) || !real.is_file() {
            return Err(refused());
        }
        Ok(real)
    }
}

/// Pixels, with the cache headers every pixel route sends.
pub(crate) fn image(bytes: Bytes, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // A slide's pixels never change under its name; browsers may keep them a day.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=86400"),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// Runs pixel work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, exact_tiles::TilesError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(ApiError::new(Code::InternalError, e.to_string())),
    }
}
