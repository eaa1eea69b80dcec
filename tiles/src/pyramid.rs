//! Plain images (.png, .jpg, .jpeg, .bmp, .tif/.tiff without a pyramid, .webp) become a tiled
//! pyramidal TIFF beside the original, `NAME.pyramid.tif`, decoded once at ingest; OpenSlide
//! then serves it like any slide, so a tile never decodes the whole image again.
//!
//! Lossless sources keep lossless tiles (Deflate); JPEG and WebP sources, lossy already, get
//! JPEG tiles at quality 95. Memory is bounded: an image over `max_pixels` is refused before
//! it is decoded, with a clear error. The pyramid is written to a temporary name and renamed,
//! so a crash or a concurrent ingest never leaves half a pyramid behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{ImageFormat, ImageReader, RgbImage};

use crate::tiff::{self, Directory, TiffWriter, Value};
use crate::TilesError;

/// The vendor a plain image's pyramid reports, so that callers know what they opened.
pub const VENDOR: &str = "exact-pyramid";

/// Edge of the pyramid's tiles.
pub const TILE: u32 = 256;

/// How large an image may be decoded.
#[derive(Clone, Copy, Debug)]
pub struct PyramidLimits {
    /// Width times height; above it the image is refused. The default (400 Mpx) needs about
    /// 1.2 GB while the pyramid is built.
    pub max_pixels: u64,
}

impl Default for PyramidLimits {
    fn default() -> Self {
        Self {
            max_pixels: 400_000_000,
        }
    }
}

/// Where the pyramid of `original` is kept.
pub fn pyramid_path(original: &Path) -> PathBuf {
    let mut name = original.file_name().unwrap_or_default().to_owned();
    name.push(".pyramid.tif");
    original.with_file_name(name)
}

/// The plain image format of `path`, if the image decoders recognise its content.
pub fn plain_format(path: &Path) -> Option<ImageFormat> {
    let reader = ImageReader::open(path).ok()?.with_guessed_format().ok()?;
    reader.format().filter(|f| {
        matches!(
            f,
            ImageFormat::Png
                | ImageFormat::Jpeg
                | ImageFormat::Bmp
                | ImageFormat::Tiff
                | ImageFormat::WebP
        )
    })
}

/// Builds the pyramid of the plain image at `original` (replacing any earlier one) and returns
/// its path.
pub fn build(original: &Path, limits: PyramidLimits) -> Result<PathBuf, TilesError> {
    let file = original.display().to_string();
    let corrupt = |reason: String| TilesError::Corrupt {
        file: file.clone(),
        reason,
    };
    let Some(format) = plain_format(original) else {
        return Err(TilesError::Unsupported {
            file: file.clone(),
            reason: "not an image the decoders know (png, jpeg, bmp, tiff, webp)".into(),
        });
    };
    let (w, h) = ImageReader::open(original)?
        .with_guessed_format()?
        .into_dimensions()
        .map_err(|e| corrupt(e.to_string()))?;
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(TilesError::TooLarge(format!(
            "{file}: {w} x {h} px is more than the {} pixels an image may have",
            limits.max_pixels
        )));
    }
    let mut reader = ImageReader::open(original)?.with_guessed_format()?;
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(decoder_limits);
    let decoded = reader.decode().map_err(|e| corrupt(e.to_string()))?;
    let lossy = matches!(format, ImageFormat::Jpeg | ImageFormat::WebP);
    let target = pyramid_path(original);
    write_atomically(&target, over_white(decoded), lossy)?;
    Ok(target)
}

/// Writes the pyramid of `rgb` to `target` through a temporary name, so that nothing ever
/// sees half a pyramid.
pub(crate) fn write_atomically(
    target: &Path,
    rgb: RgbImage,
    lossy: bool,
) -> Result<(), TilesError> {
    let partial = target.with_extension(format!("tif.partial-{}", std::process::id()));
    let written = write_pyramid(&partial, rgb, lossy);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, target)?;
    Ok(())
}

/// RGB, with any transparency composited over white.
pub(crate) fn over_white(image: image::DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for p in rgba.pixels() {
        let a = u16::from(p.0[3]);
        for c in &p.0[..3] {
            rgb.push(((u16::from(*c) * a + 255 * (255 - a)) / 255) as u8);
        }
    }
    RgbImage::from_raw(w, h, rgb).expect("w x h pixels")
}

fn write_pyramid(path: &Path, mut level: RgbImage, lossy: bool) -> Result<(), TilesError> {
    let mut tiff = TiffWriter::create(path)?;
    let mut index = 0u32;
    loop {
        let (w, h) = level.dimensions();
        let tiles = encode_level(&level, lossy)?;
        let mut offsets = Vec::with_capacity(tiles.len());
        let mut counts = Vec::with_capacity(tiles.len());
        for tile in &tiles {
            offsets.push(tiff.data(tile)?);
            counts.push(tile.len() as u32);
        }
        let (compression, photometric) = if lossy {
            (tiff::JPEG, tiff::YCBCR)
        } else {
            (tiff::DEFLATE, tiff::RGB)
        };
        let mut entries = tiff::base_entries(
            w,
            h,
            "Exact image pyramid",
            u32::from(index > 0),
            compression,
            photometric,
        );
        if lossy {
            entries.push((530, Value::Short(vec![2, 2])));
        }
        entries.extend([
            (322, Value::Long(vec![TILE])),
            (323, Value::Long(vec![TILE])),
            (324, Value::Long(offsets)),
            (325, Value::Long(counts)),
        ]);
        tiff.directory(Directory { entries })?;
        if w <= TILE && h <= TILE {
            break;
        }
        level = half(level)?;
        index += 1;
    }
    tiff.finish()?;
    Ok(())
}

/// The level at half the size (rounded up), each pixel the mean of the ones it covers.
fn half(level: RgbImage) -> Result<RgbImage, TilesError> {
    let (w, h) = level.dimensions();
    let (hw, hh) = (w.div_ceil(2).max(1), h.div_ceil(2).max(1));
    let source = Image::from_vec_u8(w, h, level.into_raw(), PixelType::U8x3)
        .map_err(|e| TilesError::Encode(e.to_string()))?;
    let mut target = Image::new(hw, hh, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box));
    Resizer::new()
        .resize(&source, &mut target, &options)
        .map_err(|e| TilesError::Encode(e.to_string()))?;
    Ok(RgbImage::from_raw(hw, hh, target.into_vec()).expect("hw x hh pixels"))
}

/// Every tile of `level`, row by row, encoded on all cores.
fn encode_level(level: &RgbImage, lossy: bool) -> Result<Vec<Vec<u8>>, TilesError> {
    let (w, h) = level.dimensions();
    let (columns, rows) = (w.div_ceil(TILE), h.div_ceil(TILE));
    let count = (columns * rows) as usize;
    let workers = std::thread::available_parallelism()
        .map_or(2, std::num::NonZero::get)
        .min(count.max(1));
    let per_worker = count.div_ceil(workers);
    let mut tiles: Vec<Vec<u8>> = vec![Vec::new(); count];
    std::thread::scope(|scope| -> Result<(), TilesError> {
        let handles: Vec<_> = tiles
            .chunks_mut(per_worker)
            .enumerate()
            .map(|(worker, chunk)| {
                scope.spawn(move || -> Result<(), TilesError> {
                    for (i, slot) in chunk.iter_mut().enumerate() {
                        let n = (worker * per_worker + i) as u32;
                        *slot = encode_tile(level, n % columns, n / columns, lossy)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| TilesError::Encode("a tile encoder panicked".into()))??;
        }
        Ok(())
    })?;
    Ok(tiles)
}

/// Tile (`col`, `row`): full size, padded with white past the image's edge.
fn encode_tile(level: &RgbImage, col: u32, row: u32, lossy: bool) -> Result<Vec<u8>, TilesError> {
    let (w, h) = level.dimensions();
    let mut pixels = vec![255u8; (TILE * TILE * 3) as usize];
    let (x0, y0) = (col * TILE, row * TILE);
    let width = TILE.min(w - x0) as usize;
    let raw = level.as_raw();
    for y in 0..TILE.min(h - y0) {
        let from = (((y0 + y) * w + x0) * 3) as usize;
        let to = (y * TILE * 3) as usize;
        pixels[to..to + width * 3].copy_from_slice(&raw[from..from + width * 3]);
    }
    if lossy {
        return Ok(tiff::encode_jpeg_tile(&pixels, TILE, TILE, 95)?);
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&pixels)?;
    Ok(encoder.finish()?)
}
