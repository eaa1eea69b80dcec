//! Multi-frame images: a plain multi-page TIFF (a time series, a z-stack exported page by
//! page) is one image with one frame per full-resolution page, as EXACT has them. Frame 1 is
//! served like any plain image; each further frame gets its own pyramid beside the original,
//! `NAME.frame-N.pyramid.tif`, built at ingest, which OpenSlide then serves like any slide.
//!
//! Pages marked reduced-resolution (NewSubfileType bit 0) are levels of a pyramid, not frames.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageBuffer, ImageFormat};
use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::tags::Tag;
use tiff::ColorType;

use crate::pyramid::{self, PyramidLimits};
use crate::TilesError;

/// More frames than this are refused: each is a pyramid on disk.
pub const MAX_FRAMES: usize = 1_000;

/// Where frame `frame` (1-based) of `original` is served from: frame 1 is the image itself,
/// every other frame its own pyramid.
pub fn frame_path(original: &Path, frame: u32) -> PathBuf {
    if frame <= 1 {
        return original.to_path_buf();
    }
    let mut name = original.file_name().unwrap_or_default().to_owned();
    name.push(format!(".frame-{frame}.pyramid.tif"));
    original.with_file_name(name)
}

/// The directory index of each full-resolution page of the TIFF at `path`; empty for a file
/// that is not a TIFF the decoders read.
pub fn tiff_pages(path: &Path) -> Result<Vec<usize>, TilesError> {
    if pyramid::plain_format(path) != Some(ImageFormat::Tiff) {
        return Ok(Vec::new());
    }
    let mut decoder = open(path)?;
    let mut pages = Vec::new();
    let mut index = 0;
    loop {
        let subfile = decoder
            .find_tag_unsigned::<u32>(Tag::NewSubfileType)
            .map_err(|e| corrupt(path, &e))?
            .unwrap_or(0);
        if subfile & 1 == 0 {
            pages.push(index);
            if pages.len() > MAX_FRAMES {
                return Err(TilesError::TooLarge(format!(
                    "{}: more than {MAX_FRAMES} frames",
                    path.display()
                )));
            }
        }
        if !decoder.more_images() {
            return Ok(pages);
        }
        decoder.next_image().map_err(|e| corrupt(path, &e))?;
        index += 1;
    }
}

/// Builds the pyramids of frames 2 and on of a plain multi-page TIFF and answers how many
/// frames `original` has (1 for every other image, which needs nothing built).
pub fn build_frames(original: &Path, limits: PyramidLimits) -> Result<u32, TilesError> {
    let pages = tiff_pages(original)?;
    for (n, page) in pages.iter().enumerate().skip(1) {
        let built = decode_page(original, *page, limits).and_then(|decoded| {
            let target = frame_path(original, n as u32 + 1);
            pyramid::write_atomically(&target, pyramid::over_white(decoded), false)
        });
        if let Err(e) = built {
            // All or nothing: no frame stays behind an image that is refused.
            for built in 2..=n as u32 {
                let _ = std::fs::remove_file(frame_path(original, built));
            }
            return Err(e);
        }
    }
    Ok(pages.len().max(1) as u32)
}

fn open(path: &Path) -> Result<Decoder<BufReader<File>>, TilesError> {
    Decoder::new(BufReader::new(File::open(path)?)).map_err(|e| corrupt(path, &e))
}

fn corrupt(path: &Path, error: &dyn std::fmt::Display) -> TilesError {
    TilesError::Corrupt {
        file: path.display().to_string(),
        reason: error.to_string(),
    }
}

/// Page `index` of the TIFF at `path`, within the pixel limit.
fn decode_page(
    path: &Path,
    index: usize,
    limits: PyramidLimits,
) -> Result<DynamicImage, TilesError> {
    let mut decoder = open(path)?;
    decoder
        .seek_to_image(index)
        .map_err(|e| corrupt(path, &e))?;
    let (w, h) = decoder.dimensions().map_err(|e| corrupt(path, &e))?;
    if u64::from(w) * u64::from(h) > limits.max_pixels {
        return Err(TilesError::TooLarge(format!(
            "{}: page {} is {w} x {h} px, more than the {} pixels an image may have",
            path.display(),
            index + 1,
            limits.max_pixels
        )));
    }
    let mut decoder_limits = Limits::default();
    decoder_limits.decoding_buffer_size =
        usize::try_from(limits.max_pixels.saturating_mul(8)).unwrap_or(usize::MAX);
    let mut decoder = decoder.with_limits(decoder_limits);
    let colour = decoder.colortype().map_err(|e| corrupt(path, &e))?;
    let pixels = decoder.read_image().map_err(|e| corrupt(path, &e))?;
    let unsupported = || {
        TilesError::Unsupported {
        file: path.display().to_string(),
        reason: format!("page {} has {colour:?} pixels; frames may be grey or RGB, with or without alpha, 8 or 16 bits", index + 1),
    }
    };
    let image = match (colour, pixels) {
        (ColorType::Gray(8), DecodingResult::U8(p)) => {
            ImageBuffer::from_raw(w, h, p).map(DynamicImage::ImageLuma8)
        }
        (ColorType::GrayA(8), DecodingResult::U8(p)) => {
            ImageBuffer::from_raw(w, h, p).map(DynamicImage::ImageLumaA8)
        }
        (ColorType::RGB(8), DecodingResult::U8(p)) => {
            ImageBuffer::from_raw(w, h, p).map(DynamicImage::ImageRgb8)
        }
        (ColorType::RGBA(8), DecodingResult::U8(p)) => {
            ImageBuffer::from_raw(w, h, p).map(DynamicImage::ImageRgba8)
        }
        (ColorType::Gray(16), DecodingResult::U16(p)) => {
            ImageBuffer::from_raw(w, h, p).map(DynamicImage::ImageLuma16)
        }
        (ColorType::GrayA(16), DecodingResult::U16(p)) => {
            ImageBuffer::from_raw(w, h, p).map(DynamicImage::ImageLumaA16)
        }
        (ColorType::RGB(16), DecodingResult::U16(p)) => {
            ImageBuffer::from_raw(w, h, p).map(DynamicImage::ImageRgb16)
        }
        (ColorType::RGBA(16), DecodingResult::U16(p)) => {
            ImageBuffer::from_raw(w, h, p).map(DynamicImage::ImageRgba16)
        }
        _ => return Err(unsupported()),
    };
    image.ok_or_else(|| corrupt(path, &"the page holds fewer pixels than its size says"))
}
