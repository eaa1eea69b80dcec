//! Correcting what an image's file claims, and deleting an image.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use exact_domain::image::ImageDescription;
use serde::Deserialize;
use utoipa::ToSchema;

use super::image_json;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::rest::access::readable_image;
use crate::rest::body::{lenient, Body};
use crate::rest::input::wrong;
use crate::rest::params;
use crate::rest::{caller_for, if_match, with_etag};
use crate::AppState;

/// Correct what the file claims: name, mpp, objectivePower, time
///
/// EXACT's image update: users correct what the file claims (name, `mpp`, `objectivePower`,
/// `time`); each correction is an event with its author, the file untouched. What is measured
/// of the pixels (size, frames, checksum, the stored file) is refused when it would differ.
#[utoipa::path(patch, path = "/images/images/{id}/", request_body = ImageChange, responses((status = 200, body = crate::rest::shapes::Image)))]
pub(super) async fn update_image(
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

/// Delete an image
#[utoipa::path(delete, path = "/images/images/{id}/", responses((status = 204)))]
pub(super) async fn delete_image(
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
