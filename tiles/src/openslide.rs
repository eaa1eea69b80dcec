//! Every format OpenSlide reads (.svs, .tif, .ndpi, .mrxs, .vms, .vmu, .scn, .bif, .svslide),
//! through the real library: `libopenslide` 3.4 from the distribution, linked dynamically by
//! `openslide-sys` and wrapped by `openslide-rs` (its safe API; no `unsafe` of ours).
//!
//! OpenSlide hands out premultiplied ARGB; this source turns it into RGB over white, which is
//! what a viewer shows where the scanner saw nothing.

use std::collections::BTreeMap;
use std::path::Path;

use image::RgbImage;
use openslide_rs::{Address, OpenSlide, Region, Size};

use crate::source::{Level, PixelSource, Properties};
use crate::{tiff, TilesError};

pub struct OpenSlideSource {
    slide: OpenSlide,
    properties: Properties,
    file: String,
    /// The slide file, open for positioned reads of stored tiles; `None` when no level is
    /// stored as JPEG tiles.
    tiff_file: Option<std::fs::File>,
    /// Per level: its TIFF directory, where the level is stored as JPEG tiles (passthrough).
    stored: Vec<Option<tiff::StoredDirectory>>,
}

impl std::fmt::Debug for OpenSlideSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSlideSource")
            .field("file", &self.file)
            .field("vendor", &self.properties.vendor)
            .finish()
    }
}

impl OpenSlideSource {
    /// `None` if OpenSlide does not recognise the file; an error if it does but cannot read it.
    pub fn try_open(path: &Path) -> Result<Option<Self>, TilesError> {
        let file = path.display().to_string();
        let Ok(vendor) = OpenSlide::detect_vendor(path) else {
            return Ok(None);
        };
        let corrupt = |e: &dyn std::fmt::Display| TilesError::Corrupt {
            file: file.clone(),
            reason: e.to_string(),
        };
        let slide = OpenSlide::new(path).map_err(|e| corrupt(&e))?;
        let count = slide.get_level_count().map_err(|e| corrupt(&e))?;
        let mut levels = Vec::with_capacity(count as usize);
        let mut all = BTreeMap::new();
        for name in slide.get_property_names() {
            if let Ok(value) = slide.get_property_value(&name) {
                all.insert(name, value);
            }
        }
        for level in 0..count {
            let size = slide.get_level_dimensions(level).map_err(|e| corrupt(&e))?;
            let tile = |axis: &str| {
                all.get(&format!("openslide.level[{level}].tile-{axis}"))
                    .and_then(|v| v.parse::<u32>().ok())
            };
            levels.push(Level {
                width: u64::from(size.w),
                height: u64::from(size.h),
                downsample: slide.get_level_downsample(level).map_err(|e| corrupt(&e))?,
                tile_size: tile("width").zip(tile("height")),
            });
        }
        if levels.is_empty() || levels[0].width == 0 || levels[0].height == 0 {
            return Err(corrupt(&"the slide has no pixels"));
        }
        let number = |name: &str| all.get(name).and_then(|v| v.parse::<f64>().ok());
        let properties = Properties {
            vendor,
            mpp_x: number("openslide.mpp-x"),
            mpp_y: number("openslide.mpp-y"),
            objective_power: number("openslide.objective-power"),
            associated: slide.get_associated_image_names().unwrap_or_default(),
            levels,
            all,
        };
        let stored = stored_levels(path, &properties);
        let tiff_file = if stored.iter().any(Option::is_some) {
            Some(std::fs::File::open(path)?)
        } else {
            None
        };
        Ok(Some(Self {
            slide,
            properties,
            file,
            tiff_file,
            stored,
        }))
    }
}

impl OpenSlideSource {
    /// A region of a level stored as JPEG tiles, decoded here rather than by OpenSlide: 3.4
    /// paints every tile through cairo, which costs about ten times the JPEG decode (measured:
    /// 2.9 ms for one aligned 240 px tile). `None` when the region does not start on a whole
    /// pixel of the level (OpenSlide then interpolates, as it should).
    fn read_stored(
        &self,
        directory: &tiff::StoredDirectory,
        level: usize,
        x: i64,
        y: i64,
        w: u32,
        h: u32,
    ) -> Result<Option<RgbImage>, TilesError> {
        let downsample = self.properties.levels[level].downsample;
        let (fx, fy) = (x as f64 / downsample, y as f64 / downsample);
        if (fx - fx.round()).abs() > 1e-6 || (fy - fy.round()).abs() > 1e-6 {
            return Ok(None);
        }
        let (lx, ly) = (fx.round() as i64, fy.round() as i64);
        let (tw, th) = (directory.tile_width as i64, directory.tile_height as i64);
        let (level_w, level_h) = (directory.width as i64, directory.height as i64);
        let mut out = RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
        let (x_end, y_end) = (
            (lx + i64::from(w)).min(level_w),
            (ly + i64::from(h)).min(level_h),
        );
        if lx >= x_end || ly >= y_end {
            return Ok(Some(out));
        }
        let columns = directory.columns() as i64;
        for row in ly.max(0) / th..=(y_end - 1) / th {
            for col in lx.max(0) / tw..=(x_end - 1) / tw {
                let index = (row * columns + col) as usize;
                if directory.tile_byte_counts.get(index).copied().unwrap_or(0) == 0 {
                    continue; // a missing tile is blank, as OpenSlide shows it
                }
                let tile = self.decode_stored(directory, level, index, col, row)?;
                // Copy the part of the tile inside both the region and the level.
                let (tx0, ty0) = (col * tw, row * th);
                for py in ty0.max(ly)..(ty0 + th).min(y_end) {
                    let from_x = tx0.max(lx);
                    let to_x = (tx0 + tw).min(x_end);
                    if from_x >= to_x {
                        continue;
                    }
                    let src = ((py - ty0) * tw + (from_x - tx0)) as usize * 3;
                    let dst = ((py - ly) * i64::from(w) + (from_x - lx)) as usize * 3;
                    let n = (to_x - from_x) as usize * 3;
                    out.as_mut()[dst..dst + n].copy_from_slice(&tile.as_raw()[src..src + n]);
                }
            }
        }
        Ok(Some(out))
    }

    fn decode_stored(
        &self,
        directory: &tiff::StoredDirectory,
        level: usize,
        index: usize,
        col: i64,
        row: i64,
    ) -> Result<RgbImage, TilesError> {
        let broken = |reason: String| TilesError::Decode {
            file: self.file.clone(),
            reason: format!("stored tile {col}_{row} of level {level}: {reason}"),
        };
        let raw = tiff::tile_bytes(self.stored_file()?, directory, index)
            .map_err(|e| broken(e.to_string()))?;
        let jpeg = tiff::complete_jpeg(
            &raw,
            directory.jpeg_tables.as_deref(),
            directory.photometric == 2,
        )
        .map_err(|e| broken(e.to_string()))?;
        let decoded = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
            .map_err(|e| broken(e.to_string()))?
            .into_rgb8();
        if u64::from(decoded.width()) != directory.tile_width
            || u64::from(decoded.height()) != directory.tile_height
        {
            return Err(broken(format!(
                "it decodes to {} x {} px",
                decoded.width(),
                decoded.height()
            )));
        }
        Ok(decoded)
    }

    /// A region as OpenSlide itself renders it (the path for every level not stored as JPEG
    /// tiles, and the reference the stored path is tested against).
    pub fn read_region_openslide(
        &self,
        x: i64,
        y: i64,
        level: usize,
        w: u32,
        h: u32,
    ) -> Result<RgbImage, TilesError> {
        let (Ok(x), Ok(y)) = (u32::try_from(x), u32::try_from(y)) else {
            return Err(TilesError::OutOfRange(format!(
                "region at ({x}, {y}) starts outside the slide"
            )));
        };
        let region = Region {
            size: Size { w, h },
            level: level as u32,
            address: Address { x, y },
        };
        let argb = self
            .slide
            .read_region(&region)
            .map_err(|e| TilesError::Decode {
                file: self.file.clone(),
                reason: e.to_string(),
            })?;
        Ok(argb_to_rgb(&argb, w, h))
    }

    /// The open slide file (there is one whenever a level is stored as JPEG tiles).
    fn stored_file(&self) -> Result<&std::fs::File, TilesError> {
        self.tiff_file.as_ref().ok_or_else(|| TilesError::Decode {
            file: self.file.clone(),
            reason: "no stored tiles to read".into(),
        })
    }

    /// The same source under another vendor name (a pyramid Exact built from a plain image).
    #[must_use]
    pub fn labelled(mut self, vendor: &str) -> Self {
        self.properties.vendor = vendor.to_owned();
        self
    }
}

impl PixelSource for OpenSlideSource {
    fn properties(&self) -> &Properties {
        &self.properties
    }

    fn read_region(
        &self,
        x: i64,
        y: i64,
        level: usize,
        w: u32,
        h: u32,
    ) -> Result<RgbImage, TilesError> {
        if let Some(Some(directory)) = self.stored.get(level) {
            if let Some(pixels) = self.read_stored(directory, level, x, y, w, h)? {
                return Ok(pixels);
            }
        }
        self.read_region_openslide(x, y, level, w, h)
    }

    fn stored_jpeg_tile(
        &self,
        level: usize,
        col: u64,
        row: u64,
        tile_size: u32,
    ) -> Result<Option<Vec<u8>>, TilesError> {
        let Some(Some(directory)) = self.stored.get(level) else {
            return Ok(None);
        };
        if directory.tile_width != u64::from(tile_size) || col >= directory.columns() {
            return Ok(None);
        }
        let index = (row * directory.columns() + col) as usize;
        let corrupt = |e: std::io::Error| TilesError::Decode {
            file: self.file.clone(),
            reason: format!("stored tile {col}_{row} of level {level}: {e}"),
        };
        let raw = tiff::tile_bytes(self.stored_file()?, directory, index).map_err(corrupt)?;
        let jpeg = tiff::complete_jpeg(
            &raw,
            directory.jpeg_tables.as_deref(),
            directory.photometric == 2,
        )
        .map_err(corrupt)?;
        Ok(Some(jpeg))
    }

    fn associated_image(&self, name: &str) -> Result<RgbImage, TilesError> {
        if !self.properties.associated.iter().any(|n| n == name) {
            return Err(TilesError::NotFound(format!("associated image {name:?}")));
        }
        let (size, argb) =
            self.slide
                .read_associated_buffer(name)
                .map_err(|e| TilesError::Decode {
                    file: self.file.clone(),
                    reason: e.to_string(),
                })?;
        Ok(argb_to_rgb(&argb, size.w, size.h))
    }
}

/// The TIFF directory of each level whose tiles are JPEG and can be sent as they are: for the
/// TIFF-based vendors whose levels are whole directories.
fn stored_levels(path: &Path, properties: &Properties) -> Vec<Option<tiff::StoredDirectory>> {
    let none = vec![None; properties.levels.len()];
    if !matches!(properties.vendor.as_str(), "aperio" | "generic-tiff") {
        return none;
    }
    let Ok(directories) = tiff::directories(path) else {
        return none;
    };
    properties
        .levels
        .iter()
        .map(|level| {
            let (tw, th) = level.tile_size?;
            directories
                .iter()
                .find(|d| {
                    d.is_tiled()
                        && d.compression == 7
                        && (d.width, d.height) == (level.width, level.height)
                        && (d.tile_width, d.tile_height) == (u64::from(tw), u64::from(th))
                })
                .cloned()
        })
        .collect()
}

/// OpenSlide's premultiplied ARGB (native-endian u32 per pixel) as RGB composited over white.
fn argb_to_rgb(argb: &[u8], w: u32, h: u32) -> RgbImage {
    let mut rgb = Vec::with_capacity((w as usize) * (h as usize) * 3);
    for pixel in argb.chunks_exact(4) {
        let value = u32::from_ne_bytes([pixel[0], pixel[1], pixel[2], pixel[3]]);
        let a = value >> 24;
        let channel = |shift: u32| {
            let c = (value >> shift) & 0xFF;
            // Premultiplied: over white, c + (255 - a).
            (c + (255 - a)).min(255) as u8
        };
        rgb.extend_from_slice(&[channel(16), channel(8), channel(0)]);
    }
    RgbImage::from_raw(w, h, rgb).expect("OpenSlide returns w x h pixels")
}
