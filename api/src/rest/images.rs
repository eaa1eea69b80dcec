//! Images: upload (multipart, several files, zip archives), lists, the slide routes by image id
//! (thumbnail, slide information, patches, DeepZoom) and the original file's download. Every
//! pixel route checks that the caller may read the image's set, as every other route does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use exact_domain::image::{ImageDescription, ImageFile};
use exact_projections::annotation_query::AnnotationQuery;
use exact_projections::catalog_read::ImageRow;
use exact_tiles::pyramid::PyramidLimits;
use exact_tiles::{render, Format};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

pub(super) use super::access::readable_image;
use super::body::{lenient, Body};
use super::filters::{self, FilenameFilter, IdFilter, NameFilter, TimeFilter};
use super::input::{missing, wrong};
use super::params::{self, Params};
use super::shapes::{self, Image};
use super::{caller_for, if_match, with_etag};
use crate::auth::Authenticated;
use crate::error::{ApiError, Code};
use crate::routes::tiles::{blocking, image as image_response};
use crate::uploads::{self, Received};
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
    set_folder(state, image.image_set).join(&image.filename)
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

/// Whether the response keeps `field` after `fields`/`omit`: costly fields are only computed
/// when they are shown.
fn shows(params: &Params, field: &str) -> bool {
    let kept = params
        .str("fields")
        .is_none_or(|f| f.split(',').any(|n| n.trim() == field));
    let omitted = params
        .str("omit")
        .is_some_and(|o| o.split(',').any(|n| n.trim() == field));
    kept && !omitted
}

async fn annotation_ids(state: &AppState, image: i64) -> Result<Vec<i64>, ApiError> {
    let rows = state
        .read
        .annotations(&AnnotationQuery {
            image: Some(image),
            deleted: Some(false),
            ..AnnotationQuery::default()
        })
        .await?;
    Ok(rows.iter().map(|r| r.id).collect())
}

/// EXACT's image filters over their annotations (live ones, of active types): `annotation_type`
/// (has one of that type), `num_annotations` (`_min`/`_max`, or `__gte`/`__lte`: how many) and
/// `verified` (true: one is accepted; false: one is not, or there are none). Verdicts count by
/// consensus, as the statistics keep them.
struct AnnotationCounts {
    /// image → (total, accepted, annotation types present).
    by_image: BTreeMap<i64, (i64, i64, BTreeSet<i64>)>,
    annotation_type: Option<i64>,
    min: Option<i64>,
    max: Option<i64>,
    verified: Option<bool>,
}

impl AnnotationCounts {
    fn keeps(&self, image: i64) -> bool {
        let (total, accepted, types) = self
            .by_image
            .get(&image)
            .map_or((0, 0, None), |(t, a, types)| (*t, *a, Some(types)));
        self.annotation_type
            .is_none_or(|t| types.is_some_and(|types| types.contains(&t)))
            && self.min.is_none_or(|m| total >= m)
            && self.max.is_none_or(|m| total <= m)
            && self.verified.is_none_or(|v| {
                if v {
                    accepted > 0
                } else {
                    total == 0 || accepted < total
                }
            })
    }
}

/// The filters of the image list.
#[derive(Debug, Deserialize)]
struct ImageFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    name: NameFilter,
    #[serde(flatten)]
    filename: FilenameFilter,
    #[serde(flatten)]
    time: TimeFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    image_set: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    image_type: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    width: Option<i64>,
    #[serde(
        rename = "width__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    width_range: Option<(f64, f64)>,
    #[serde(default, deserialize_with = "lenient::int")]
    height: Option<i64>,
    #[serde(
        rename = "height__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    height_range: Option<(f64, f64)>,
    #[serde(default, deserialize_with = "lenient::float")]
    mpp: Option<f64>,
    #[serde(
        rename = "mpp__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    mpp_range: Option<(f64, f64)>,
    #[serde(
        rename = "objectivePower",
        default,
        deserialize_with = "lenient::float"
    )]
    objective_power: Option<f64>,
    #[serde(
        rename = "objectivePower__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    objective_power_range: Option<(f64, f64)>,
    /// `objective_power` is what this server named it before; it stays understood.
    #[serde(
        rename = "objective_power",
        default,
        deserialize_with = "lenient::float"
    )]
    objective_power_old: Option<f64>,
    #[serde(
        rename = "objective_power__range",
        default,
        deserialize_with = "filters::float_range"
    )]
    objective_power_range_old: Option<(f64, f64)>,
    #[serde(default, deserialize_with = "lenient::int")]
    annotation_type: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    num_annotations_min: Option<i64>,
    #[serde(
        rename = "num_annotations__gte",
        default,
        deserialize_with = "lenient::int"
    )]
    num_annotations_gte: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    num_annotations_max: Option<i64>,
    #[serde(
        rename = "num_annotations__lte",
        default,
        deserialize_with = "lenient::int"
    )]
    num_annotations_lte: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    verified: Option<bool>,
}

/// The counts the filters need, if any of them is asked for.
async fn annotation_counts(
    state: &AppState,
    auth: &Authenticated,
    f: &ImageFilters,
) -> Result<Option<AnnotationCounts>, ApiError> {
    let mut counts = AnnotationCounts {
        by_image: BTreeMap::new(),
        annotation_type: f.annotation_type,
        min: f.num_annotations_min.or(f.num_annotations_gte),
        max: f.num_annotations_max.or(f.num_annotations_lte),
        verified: f.verified,
    };
    if counts.annotation_type.is_none()
        && counts.min.is_none()
        && counts.max.is_none()
        && counts.verified.is_none()
    {
        return Ok(None);
    }
    let active: BTreeSet<i64> = state
        .read
        .readable_types(auth.caller.actor)
        .await?
        .iter()
        .filter(|t| t.active)
        .map(|t| t.id)
        .collect();
    for (image, kind, total, accepted) in state.read.all_image_type_counts().await? {
        if active.contains(&kind) {
            let entry = counts.by_image.entry(image).or_default();
            entry.0 += total;
            entry.1 += accepted;
            entry.2.insert(kind);
        }
    }
    Ok(Some(counts))
}

async fn list_images(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: ImageFilters = params.filters()?;
    let ids = f.id.allowed();
    let (set, image_type) = (f.image_set, f.image_type);
    let ranges = [
        ("width", f.width_range, f.width.map(|v| v as f64)),
        ("height", f.height_range, f.height.map(|v| v as f64)),
        ("mpp", f.mpp_range, f.mpp),
        (
            "objectivePower",
            f.objective_power_range.or(f.objective_power_range_old),
            f.objective_power.or(f.objective_power_old),
        ),
    ];
    let value_of = |image: &ImageRow, name: &str| match name {
        "width" => Some(image.width as f64),
        "height" => Some(image.height as f64),
        "mpp" => image.mpp,
        _ => image.objective_power,
    };
    let counts = annotation_counts(&state, &auth, &f).await?;
    let images: Vec<ImageRow> = state
        .read
        .readable_images(auth.caller.actor, set)
        .await?
        .into_iter()
        .filter(|i| f.time.keeps(i.time))
        .filter(|i| counts.as_ref().is_none_or(|c| c.keeps(i.id)))
        .filter(|i| ids.as_ref().is_none_or(|ids| ids.contains(&i.id)))
        .filter(|i| f.name.keeps(&i.name))
        .filter(|i| f.filename.keeps(&i.filename))
        .filter(|i| image_type.is_none_or(|t| t == i.image_type))
        .filter(|i| {
            ranges.iter().all(|(name, range, exact)| {
                let v = value_of(i, name);
                range.is_none_or(|(a, b)| v.is_some_and(|v| v >= a && v <= b))
                    && exact.is_none_or(|e| v == Some(e))
            })
        })
        .collect();
    let (limit, offset) = params.page()?;
    let count = images.len() as i64;
    let mut results = Vec::new();
    for image in images.iter().skip(offset as usize).take(limit as usize) {
        let annotations = if shows(&params, "annotations") {
            Some(annotation_ids(&state, image.id).await?)
        } else {
            None
        };
        results.push(image_json(image, annotations));
    }
    Ok(Json(params.paginated(count, limit, offset, results)))
}

async fn get_image(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    let annotations = if shows(&params, "annotations") {
        Some(annotation_ids(&state, id).await?)
    } else {
        None
    };
    Ok(with_etag(
        StatusCode::OK,
        params.shape(image_json(&image, annotations)),
        image.version,
    ))
}

/// EXACT's image update: users correct what the file claims (name, `mpp`, `objectivePower`,
/// `time`); each correction is an event with its author, the file untouched. What is measured
/// of the pixels (size, frames, checksum, the stored file) is refused when it would differ.
async fn update_image(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<ImageChange>,
) -> Result<Response, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    let measured: [(&str, Option<i64>, i64); 4] = [
        ("width", fields.width, image.width),
        ("height", fields.height, image.height),
        ("frames", fields.frames, image.frames),
        ("image_set", fields.image_set, image.image_set),
    ];
    for (field, sent, current) in measured {
        if sent.is_some_and(|s| s != current) {
            return Err(wrong(field, "the image's own: it is read from the file"));
        }
    }
    if fields.filename.is_some_and(|f| f != image.filename) {
        return Err(wrong("filename", "the stored file's name, which stays"));
    }
    let time = match fields.time {
        Some(text) => Some(
            params::parse_time(&text)
                .ok_or_else(|| wrong("time", "a time like 2024-05-01T12:00:00Z"))?,
        ),
        None => None,
    }
    .filter(|t| *t != image.time);
    let description = ImageDescription {
        name: fields.name.unwrap_or_else(|| image.name.clone()),
        mpp: fields.mpp.or(image.mpp),
        objective_power: fields.objective_power.or(image.objective_power),
        time,
    };
    state
        .commands
        .describe_image(
            &caller_for(&auth, &body),
            id,
            if_match(&headers)?,
            description,
        )
        .await?;
    let image = readable_image(&state, &auth, id).await?;
    Ok(with_etag(
        StatusCode::OK,
        image_json(&image, None),
        image.version,
    ))
}

/// What an image's update reads: what the file claims may be corrected; what is measured of
/// the pixels is read to refuse a change.
#[derive(Debug, Deserialize, ToSchema)]
pub(in crate::rest) struct ImageChange {
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::float")]
    mpp: Option<f64>,
    /// EXACT's key; `objective_power` (this server's old one) is read too.
    #[serde(
        default,
        rename = "objectivePower",
        alias = "objective_power",
        deserialize_with = "lenient::float"
    )]
    objective_power: Option<f64>,
    #[serde(default, deserialize_with = "lenient::string")]
    time: Option<String>,
    #[serde(default, deserialize_with = "lenient::int")]
    width: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    height: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    frames: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    image_set: Option<i64>,
    #[serde(default, deserialize_with = "lenient::string")]
    filename: Option<String>,
}

async fn delete_image(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    readable_image(&state, &auth, id).await?;
    state
        .commands
        .delete_image(&auth.caller, id, if_match(&headers)?)
        .await?;
    // The file stays: the log keeps the image's record, and an as-of export may still need
    // the pixels. Its events say it is deleted; it is served to nobody.
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/images/images/`: `image_set`, `image_type` and one or more files (zip
/// archives are extracted). Answers the paginated list of the images created, as exact-sync
/// expects. Nothing is registered unless every file can be read.
async fn upload(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let staging = uploads::staging_folder(&state.config.data_dir).await?;
    let result = upload_into(&state, &auth, multipart, &staging).await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    let images = result?;
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
struct UploadFields {
    #[serde(deserialize_with = "lenient::required_int")]
    image_set: i64,
    #[serde(default, deserialize_with = "lenient::int")]
    image_type: Option<i64>,
}

async fn upload_into(
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
        return Err(missing("file_path").with_field("file_path"));
    }
    let folder = set_folder(state, image_set);
    tokio::fs::create_dir_all(&folder)
        .await
        .map_err(|e| ApiError::internal("preparing the set's folder failed", &e))?;

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
async fn prepare(
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
                .map_err(|e| ApiError::internal("extracting an upload failed", &e))?;
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
                .map_err(|e| ApiError::internal("storing an upload failed", &e))?;
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

async fn remove_all(paths: &[PathBuf]) {
    for path in paths.iter().rev() {
        if path.is_dir() {
            let _ = tokio::fs::remove_dir_all(path).await;
        } else {
            let _ = tokio::fs::remove_file(path).await;
        }
    }
}

/// What a thumbnail's query reads.
#[derive(Debug, Deserialize)]
struct ThumbnailQuery {
    #[serde(default, deserialize_with = "lenient::int")]
    size: Option<i64>,
}

/// EXACT's thumbnail: PNG, longest side 128 unless `size` says otherwise.
async fn thumbnail(
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
#[derive(Debug, Deserialize)]
struct CacheBody {
    #[serde(default, deserialize_with = "lenient::float")]
    mem_size_mb: Option<f64>,
    #[serde(default, deserialize_with = "lenient::int")]
    frame: Option<i64>,
}

/// EXACT's `update_image_cache`: renders the tiles of one frame, smallest levels first, into
/// the server's tile cache until `mem_size_mb` (5 by default) of JPEG is there, so that the
/// first viewer finds them ready. Answers per level what was cached, in EXACT's shape.
async fn update_image_cache(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Body { fields, .. }: Body<CacheBody>,
) -> Result<Json<Value>, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    let budget = fields.mem_size_mb.unwrap_or(5.0).max(0.0) * 1024.0 * 1024.0;
    let frame = fields.frame.unwrap_or(1);
    let path = frame_path(&state, &image, frame)?;
    let slide = state.tiles.slide(&path).await?;
    let (mut bytes, mut total) = (0.0, 0u64);
    let mut results = serde_json::Map::new();
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
        results.insert(
            level.to_string(),
            json!({"Level": level, "Size_MB": bytes / (1024.0 * 1024.0), "Tiles": [columns, rows],
                   "Total": total, "Sec.": started.elapsed().as_secs_f64()}),
        );
        if bytes > budget {
            break;
        }
    }
    Ok(Json(Value::Object(results)))
}

async fn slide_information(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    let slide = state.tiles.slide(&image_path(&state, &image)).await?;
    let p = slide.source.properties();
    Ok(Json(json!({
        "id": image.id,
        "levels": p.levels.len(),
        "level_downsamples": p.levels.iter().map(|l| l.downsample).collect::<Vec<_>>(),
        "level_dimensions": p.levels.iter().map(|l| [l.width, l.height]).collect::<Vec<_>>(),
        "level_tiles": p.levels.iter().map(|l| l.tile_size.map(|t| t.0)).collect::<Vec<_>>(),
        "mpp": image.mpp,
        "mpp_x": p.mpp_x,
        "mpp_y": p.mpp_y,
        "objective_power": p.objective_power,
        "vendor": p.vendor,
        "associated_images": p.associated,
        "deepzoom": {"tile_size": slide.grid.tile_size, "overlap": slide.grid.overlap,
                     "levels": slide.grid.level_count()},
        "properties": p.all,
    })))
}

/// What a region's query reads: its corner at level 0, the level and the size.
#[derive(Debug, Deserialize)]
struct PatchQuery {
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

/// EXACT's `get_patch`: a region of at most 2048 × 2048 at a level, as PNG.
async fn get_patch(
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

async fn dzi(
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

async fn tile(
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
async fn download(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    request: Request,
) -> Result<Response, ApiError> {
    let image = readable_image(&state, &auth, id).await?;
    uploads::attachment(&image_path(&state, &image), &image.name, request).await
}
