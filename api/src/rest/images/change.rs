//! Correcting what an image's file claims, and deleting an image.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use exact_domain::image::ImageDescription;
use serde::Deserialize;
use serde_json::Value;
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

/// Correct what the file claims: name, mpp, objectivePower, time, frame_descriptions
///
/// EXACT's image update: users correct what the file claims (name, `mpp`, `objectivePower`,
/// `time`) and describe its frames (EXACT's later `FrameDescription`); each correction is an
/// event with its author, the file untouched. What is measured of the pixels (size, frames,
/// checksum, the stored file) is refused when it would differ.
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
    let mut frame_descriptions = image.described_frames();
    if let Some(changes) = &fields.frame_descriptions {
        let not_a_map = || {
            wrong(
                "frame_descriptions",
                "an object from frame number to text, such as {\"2\": \"t = 30 s\"}",
            )
        };
        for (frame, text) in changes.as_object().ok_or_else(not_a_map)? {
            let frame: i64 = frame.trim().parse().map_err(|_| not_a_map())?;
            match text {
                Value::Null => frame_descriptions.remove(&frame),
                Value::String(t) if t.trim().is_empty() => frame_descriptions.remove(&frame),
                Value::String(t) => frame_descriptions.insert(frame, t.trim().to_owned()),
                _ => return Err(not_a_map()),
            };
        }
    }
    let description = ImageDescription {
        frame_descriptions,
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
    /// Frame number (from 1) to what the frame shows; only the frames named change, and an
    /// empty text or `null` takes a description away.
    #[serde(default, deserialize_with = "lenient::json")]
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>)]
    frame_descriptions: Option<Value>,
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
