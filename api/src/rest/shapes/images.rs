//! An image.

use std::collections::BTreeMap;

use exact_projections::catalog_read::ImageRow;
use serde::Serialize;
use utoipa::ToSchema;

use crate::rest::params::format_time;

/// An image as EXACT's serializer shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Image {
    pub id: i64,
    pub name: String,
    pub filename: String,
    #[schema(format = DateTime)]
    pub time: String,
    pub height: i64,
    pub width: i64,
    pub mpp: Option<f64>,
    /// EXACT's model field, and so its JSON key and filter, is `objectivePower`.
    #[serde(rename = "objectivePower")]
    pub objective_power: Option<f64>,
    pub image_type: i64,
    pub image_set: i64,
    pub depth: i64,
    pub frames: i64,
    pub channels: i64,
    pub checksum: String,
    /// What each frame shows, by frame number (from 1), as users described it.
    #[schema(value_type = BTreeMap<String, String>)] // JSON object keys are text
    pub frame_descriptions: BTreeMap<i64, String>,
    /// The image's annotation ids, only when the answer shows them (they cost a query).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<i64>>,
}

impl Image {
    pub fn of(image: &ImageRow, annotations: Option<Vec<i64>>) -> Self {
        Image {
            id: image.id,
            name: image.name.clone(),
            filename: image.filename.clone(),
            time: format_time(image.time),
            height: image.height,
            width: image.width,
            mpp: image.mpp,
            objective_power: image.objective_power,
            image_type: image.image_type,
            image_set: image.image_set,
            depth: image.depth,
            frames: image.frames,
            channels: image.channels,
            checksum: image.checksum.clone(),
            frame_descriptions: image.described_frames(),
            annotations,
        }
    }
}
