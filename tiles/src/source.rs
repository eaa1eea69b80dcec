//! One trait for every source of pixels, and the ordered registry that picks the first source
//! that accepts a file (OpenSlide's own design, one level up).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use image::RgbImage;

use crate::pyramid::{self, PyramidLimits};
use crate::{openslide, TilesError};

/// One stored resolution of a slide.
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    pub width: u64,
    pub height: u64,
    /// Level-0 pixels per pixel of this level.
    pub downsample: f64,
    /// The stored tile size, where the level is tiled.
    pub tile_size: Option<(u32, u32)>,
}

/// What a slide says about itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Properties {
    /// OpenSlide's vendor name (`aperio`, `generic-tiff`, ...), or the source's own.
    pub vendor: String,
    pub levels: Vec<Level>,
    pub mpp_x: Option<f64>,
    pub mpp_y: Option<f64>,
    pub objective_power: Option<f64>,
    /// Names of the associated images (`label`, `macro`, `thumbnail`).
    pub associated: Vec<String>,
    /// Every property the file has, by name.
    pub all: BTreeMap<String, String>,
}

impl Properties {
    pub fn width(&self) -> u64 {
        self.levels[0].width
    }

    pub fn height(&self) -> u64 {
        self.levels[0].height
    }

    /// The largest level whose downsample is at most `downsample` (OpenSlide's rule).
    pub fn best_level_for_downsample(&self, downsample: f64) -> usize {
        self.levels
            .iter()
            .rposition(|l| l.downsample <= downsample)
            .unwrap_or(0)
    }
}

/// A file that answers pixels.
pub trait PixelSource: Send + Sync + Debug {
    fn properties(&self) -> &Properties;

    /// The `w` x `h` pixels of `level` whose top-left corner is (x, y) in level-0 pixels.
    /// Outside the slide is white.
    fn read_region(
        &self,
        x: i64,
        y: i64,
        level: usize,
        w: u32,
        h: u32,
    ) -> Result<RgbImage, TilesError>;

    /// An associated image by name.
    fn associated_image(&self, name: &str) -> Result<RgbImage, TilesError>;

    /// Stored tile (`col`, `row`) of `level` as a complete JPEG, without decoding it, if the
    /// level is stored as JPEG tiles of `tile_size` px. `None` when the source cannot tell.
    fn stored_jpeg_tile(
        &self,
        level: usize,
        col: u64,
        row: u64,
        tile_size: u32,
    ) -> Result<Option<Vec<u8>>, TilesError> {
        let _ = (level, col, row, tile_size);
        Ok(None)
    }
}

/// Opens `path` with the first source that accepts it.
pub fn open(path: &Path) -> Result<Arc<dyn PixelSource>, TilesError> {
    if !path.is_file() {
        return Err(TilesError::NotFound(path.display().to_string()));
    }
    if let Some(slide) = openslide::OpenSlideSource::try_open(path)? {
        return Ok(Arc::new(slide));
    }
    if pyramid::plain_format(path).is_some() {
        // Built at ingest; built here if it is missing or older than the image.
        let built = pyramid::pyramid_path(path);
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let fresh = matches!((modified(&built), modified(path)), (Some(b), Some(o)) if b >= o);
        let built = if fresh {
            built
        } else {
            pyramid::build(path, PyramidLimits::default())?
        };
        let source =
            openslide::OpenSlideSource::try_open(&built)?.ok_or_else(|| TilesError::Corrupt {
                file: built.display().to_string(),
                reason: "the image's pyramid does not open; delete it to have it rebuilt".into(),
            })?;
        return Ok(Arc::new(source.labelled(pyramid::VENDOR)));
    }
    Err(TilesError::Unsupported {
        file: path.display().to_string(),
        reason: "neither OpenSlide nor the image decoders recognise it".into(),
    })
}
