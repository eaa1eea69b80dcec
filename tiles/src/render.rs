//! From a source to encoded bytes: DeepZoom tiles, thumbnails and regions, resized with
//! fast_image_resize (Lanczos, as OpenSlide's Python generator) and encoded as JPEG
//! (jpeg-encoder) or PNG.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

use crate::deepzoom::DeepZoom;
use crate::source::PixelSource;
use crate::TilesError;

/// The encodings a tile can be asked in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
}

impl Format {
    /// `jpeg`/`jpg` or `png`, as in a tile's file name.
    pub fn from_extension(extension: &str) -> Result<Self, TilesError> {
        match extension {
            "jpeg" | "jpg" => Ok(Format::Jpeg),
            "png" => Ok(Format::Png),
            other => Err(TilesError::OutOfRange(format!(
                "tiles come as jpeg or png, not {other:?}"
            ))),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }
}

/// The largest region or patch served at once (EXACT's `get_patch` limit).
pub const MAX_REGION: u32 = 2048;

/// DeepZoom tile (`col`, `row`) of `level`, encoded.
pub fn tile(
    source: &dyn PixelSource,
    grid: &DeepZoom,
    level: usize,
    col: u64,
    row: u64,
    format: Format,
    quality: u8,
) -> Result<Vec<u8>, TilesError> {
    let at = grid.tile(level, col, row)?;
    if let Some(jpeg) = passthrough(source, grid, &at, format)? {
        return Ok(jpeg);
    }
    let pixels = source.read_region(at.x, at.y, at.slide_level, at.read_width, at.read_height)?;
    let pixels = resize(pixels, at.width, at.height)?;
    encode(&pixels, format, quality)
}

/// The stored JPEG tile, when a DeepZoom tile is exactly one: a JPEG asked for, no overlap, a
/// full tile read 1:1 from a level stored in tiles of the grid's size. Edge tiles (smaller than
/// a stored tile, which is padded) are rendered.
fn passthrough(
    source: &dyn PixelSource,
    grid: &DeepZoom,
    at: &crate::deepzoom::TileSource,
    format: Format,
) -> Result<Option<Vec<u8>>, TilesError> {
    let full = (grid.tile_size, grid.tile_size);
    if format != Format::Jpeg
        || grid.overlap != 0
        || (at.read_width, at.read_height) != full
        || (at.width, at.height) != full
    {
        return Ok(None);
    }
    let downsample = source.properties().levels[at.slide_level].downsample;
    let tile = u64::from(grid.tile_size);
    let (x, y) = (
        (at.x as f64 / downsample).round() as u64,
        (at.y as f64 / downsample).round() as u64,
    );
    if x % tile != 0 || y % tile != 0 {
        return Ok(None);
    }
    source.stored_jpeg_tile(at.slide_level, x / tile, y / tile, grid.tile_size)
}

/// The whole slide with its longer side `longest` pixels, read from the smallest level that is
/// still at least that large.
pub fn thumbnail(source: &dyn PixelSource, longest: u32) -> Result<RgbImage, TilesError> {
    if longest == 0 || longest > MAX_REGION {
        return Err(TilesError::OutOfRange(format!(
            "a thumbnail is 1 to {MAX_REGION} px, not {longest}"
        )));
    }
    let p = source.properties();
    let (w, h) = (p.width() as f64, p.height() as f64);
    let scale = f64::from(longest) / w.max(h);
    let (tw, th) = (
        ((w * scale).round() as u32).max(1),
        ((h * scale).round() as u32).max(1),
    );
    let level = p.best_level_for_downsample(1.0 / scale);
    let l = &p.levels[level];
    if l.width * l.height > 64 * 1024 * 1024 {
        return Err(TilesError::TooLarge(format!(
            "the smallest level that fits is {} x {} px; the slide has no overview level",
            l.width, l.height
        )));
    }
    let pixels = source.read_region(0, 0, level, l.width as u32, l.height as u32)?;
    resize(pixels, tw, th)
}

/// EXACT's `get_patch`: `w` x `h` pixels of `level` from (x, y) in level-0 pixels.
pub fn region(
    source: &dyn PixelSource,
    x: i64,
    y: i64,
    level: usize,
    w: u32,
    h: u32,
) -> Result<RgbImage, TilesError> {
    let p = source.properties();
    if level >= p.levels.len() {
        return Err(TilesError::OutOfRange(format!(
            "level {level} does not exist: the slide has {}",
            p.levels.len()
        )));
    }
    if w == 0 || h == 0 || w > MAX_REGION || h > MAX_REGION {
        return Err(TilesError::OutOfRange(format!(
            "a region is 1 to {MAX_REGION} px on each side, not {w} x {h}"
        )));
    }
    if x < 0 || y < 0 || x as u64 >= p.width() || y as u64 >= p.height() {
        return Err(TilesError::OutOfRange(format!(
            "({x}, {y}) is outside the slide"
        )));
    }
    source.read_region(x, y, level, w, h)
}

/// `pixels` resized to `w` x `h` (returned as they are if they are that size already).
pub fn resize(pixels: RgbImage, w: u32, h: u32) -> Result<RgbImage, TilesError> {
    if pixels.dimensions() == (w, h) {
        return Ok(pixels);
    }
    let (sw, sh) = pixels.dimensions();
    let source = Image::from_vec_u8(sw, sh, pixels.into_raw(), PixelType::U8x3)
        .map_err(|e| TilesError::Encode(e.to_string()))?;
    let mut target = Image::new(w, h, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(&source, &mut target, &options)
        .map_err(|e| TilesError::Encode(e.to_string()))?;
    Ok(RgbImage::from_raw(w, h, target.into_vec()).expect("the resizer fills w x h pixels"))
}

pub fn encode(pixels: &RgbImage, format: Format, quality: u8) -> Result<Vec<u8>, TilesError> {
    let (w, h) = pixels.dimensions();
    let mut out = Vec::with_capacity((w * h) as usize / 4);
    match format {
        Format::Jpeg => {
            let encoder = jpeg_encoder::Encoder::new(&mut out, quality);
            encoder
                .encode(
                    pixels.as_raw(),
                    w as u16,
                    h as u16,
                    jpeg_encoder::ColorType::Rgb,
                )
                .map_err(|e| TilesError::Encode(e.to_string()))?;
        }
        Format::Png => {
            use image::ImageEncoder;
            let encoder = image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            );
            encoder
                .write_image(pixels.as_raw(), w, h, image::ExtendedColorType::Rgb8)
                .map_err(|e| TilesError::Encode(e.to_string()))?;
        }
    }
    Ok(out)
}
