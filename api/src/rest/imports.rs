//! Imports: `POST images/image_sets/{id}/import/` (this API's, EXACT's label lines or COCO)
//! and EXACT's own label upload, `POST /images/imageset/{id}/label-upload/`. Both take
//! multipart data with the file and answer the import's report as JSON: 200 when applied, 422
//! `import_refused` with the report when lines were refused and nothing was applied.

use axum::extract::{Multipart, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::body::lenient;
use super::params::Params;
use crate::auth::Authenticated;
use crate::error::{ApiError, Code};
use crate::imports::{import, import_files, ImportKind, ImportOptions};
use crate::{uploads, AppState};

/// The largest file an import reads (it is read whole).
pub const MAX_IMPORT_BYTES: u64 = 1 << 30;

pub(super) fn router() -> Router<AppState> {
    // The file's own limit applies (`uploads::receive`), not the JSON bodies'.
    Router::new().route(
        "/images/image_sets/{id}/import/",
        post(import_into_set).layer(axum::extract::DefaultBodyLimit::disable()),
    )
}

/// EXACT's path, outside `/api/v1`.
pub(super) fn legacy_router() -> Router<AppState> {
    Router::new().route(
        "/images/imageset/{id}/label-upload/",
        post(label_upload).layer(axum::extract::DefaultBodyLimit::disable()),
    )
}

/// The fields beside the file.
#[derive(Debug, Default, Deserialize)]
struct ImportFields {
    #[serde(default, deserialize_with = "lenient::string")]
    format: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    create_types: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    verify: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    apply_valid: Option<bool>,
}

/// What an import sends as multipart form data.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents what `ImportFields` and `uploads::receive` read
pub(in crate::rest) struct ImportUpload {
    /// `exact` (EXACT's label lines, the default), `coco`, `csv` (the CSV export's columns),
    /// `geojson` (QuPath's too), `asap`, `imagescope` (Aperio's XML), `voc` or `yolo` (a zip
    /// with `classes.txt` and the label files); also taken from the query.
    format: Option<String>,
    /// Create the types the file names that the set does not offer.
    create_types: Option<bool>,
    /// Accept every imported annotation in the importer's name.
    verify: Option<bool>,
    /// Apply the valid annotations of a file with refused ones.
    apply_valid: Option<bool>,
    #[schema(inline)]
    file: crate::rest::shapes::Binary,
}

/// Import annotations into an image set
///
/// A file of EXACT's label lines (`format=exact`), COCO JSON (`format=coco`), the CSV export's
/// columns (`format=csv`), one image's GeoJSON (`format=geojson` or `qupath`; the image named
/// by the file, `slide.svs.geojson`), ASAP, ImageScope or VOC XML, or a zip of such files
/// (an export's zip as it is; YOLO's labels with their `classes.txt`, `format=yolo`):
/// images matched by name, types by name (created with `create_types`), each annotation checked first; one
/// append, all or nothing. Refused annotations are listed by line or JSON path (422
/// `import_refused`, nothing applied) unless `apply_valid` is given. Annotations whose UUID or
/// shape is there already change nothing.
#[utoipa::path(
    post,
    path = "/images/image_sets/{id}/import/",
    params(("id" = i64, Path, description = "The image set")),
    request_body(content = ImportUpload, content_type = "multipart/form-data"),
    responses((status = 200, body = crate::imports::ImportReport))
)]
async fn import_into_set(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    params: Params,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let query: ImportFields = params.filters()?;
    receive_and_import(state, auth, id, query, (&headers, multipart)).await
}

/// EXACT's label upload: its line format, with its `verify` field.
async fn label_upload(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let fields = ImportFields {
        format: Some("exact".into()),
        ..ImportFields::default()
    };
    receive_and_import(state, auth, id, fields, (&headers, multipart)).await
}

async fn receive_and_import(
    state: AppState,
    auth: Authenticated,
    image_set: i64,
    query: ImportFields,
    (headers, multipart): (&HeaderMap, Multipart),
) -> Result<Response, ApiError> {
    // Refused before the body is read if the set is not the caller's to read, or if the body
    // says it is larger than an import reads.
    state.commands.set_access(&auth.caller, image_set).await?;
    let limit = MAX_IMPORT_BYTES.min(state.config.max_upload_bytes);
    uploads::declared_within(headers, limit)?;
    let staging = uploads::staging_folder(&state.config.data_dir).await?;
    let report = uploads::to_completion(async move {
        let result = async {
            let (fields, files) = uploads::receive(multipart, &staging, limit).await?;
            let fields: ImportFields = fields.read()?;
            let format = fields
                .format
                .or(query.format)
                .unwrap_or_else(|| "exact".into());
            let kind: ImportKind = format.parse().map_err(|why: String| {
                ApiError::new(Code::InvalidField, why).with_field("format")
            })?;
            let [file] = files.as_slice() else {
                return Err(ApiError::new(
                    Code::Required,
                    format!("send one file (the field `file`), not {}", files.len()),
                )
                .with_field("file"));
            };
            let (path, name) = (file.path.clone(), file.name.clone());
            let unzipped = staging.join("unzipped");
            let files = tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&unzipped)
                    .map_err(|e| ApiError::storing("preparing an import failed", &e))?;
                import_files(&path, &name, kind, &unzipped)
            })
            .await
            .map_err(|e| ApiError::internal("the import task failed", &e))??;
            let options = ImportOptions {
                create_types: fields.create_types.or(query.create_types).unwrap_or(false),
                verify: fields.verify.or(query.verify).unwrap_or(false),
                apply_valid: fields.apply_valid.or(query.apply_valid).unwrap_or(false),
            };
            import(
                &state.commands,
                &auth.caller,
                image_set,
                kind,
                &files,
                options,
            )
            .await
        }
        .await;
        let _ = tokio::fs::remove_dir_all(&staging).await;
        result
    })
    .await?;
    Ok(Json(report).into_response())
}
