//! Answers about the server and the caller rather than a resource: who is signed in, the
//! clock, a slide's own description, what a cache fill did, a pin.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// Who the caller is; `csrf_token` is the session's, which writes through the session send in
/// `X-CSRFToken` (none for other ways in).
#[derive(Debug, Serialize, ToSchema)]
pub struct Caller {
    pub id: i64,
    pub username: String,
    pub is_superuser: bool,
    pub is_staff: bool,
    pub csrf_token: Option<String>,
}

/// The server's clock (EXACT's `/timesync/`).
#[derive(Debug, Serialize, ToSchema)]
pub struct TimeSync {
    #[schema(format = DateTime)]
    pub time: String,
    /// Seconds since 1970.
    pub timestamp: f64,
}

/// A set pinned to the top of the caller's home page.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetPin {
    pub image_set: i64,
    pub pinned: bool,
}

/// What a slide's file says of itself, and the DeepZoom grid its tiles are served on.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlideInformation {
    pub id: i64,
    pub levels: usize,
    pub level_downsamples: Vec<f64>,
    pub level_dimensions: Vec<[u64; 2]>,
    /// Each level's stored tile width, where the level is tiled.
    pub level_tiles: Vec<Option<u32>>,
    /// The image's (corrected) microns per pixel.
    pub mpp: Option<f64>,
    pub mpp_x: Option<f64>,
    pub mpp_y: Option<f64>,
    pub objective_power: Option<f64>,
    pub vendor: String,
    pub associated_images: Vec<String>,
    pub deepzoom: DeepZoomGrid,
    /// Every property the file has, as the slide library reads it.
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeepZoomGrid {
    pub tile_size: u32,
    pub overlap: u32,
    pub levels: usize,
}

/// EXACT's report of `update_image_cache`, per level (by its number as text).
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(transparent)]
pub struct CacheReport(pub BTreeMap<String, CachedLevel>);

/// What one level's cache fill did, in EXACT's keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct CachedLevel {
    #[serde(rename = "Level")]
    pub level: usize,
    #[serde(rename = "Size_MB")]
    pub size_mb: f64,
    /// Columns and rows of tiles.
    #[serde(rename = "Tiles")]
    pub tiles: [u64; 2],
    #[serde(rename = "Total")]
    pub total: u64,
    #[serde(rename = "Sec.")]
    pub seconds: f64,
}
