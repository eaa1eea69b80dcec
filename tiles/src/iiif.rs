//! IIIF Image API 3.0 at level 1, so that IIIF viewers (Mirador, OpenSeadragon's IIIF mode)
//! open our slides: `info.json`, regions `full`, `square` and `x,y,w,h`, sizes `max`, `w,`,
//! `,h` and `w,h` (never larger than the region), rotation 0, quality `default`, formats `jpg`
//! and `png`.

use serde_json::{json, Value};

use crate::render::{self, Format, MAX_REGION};
use crate::source::PixelSource;
use crate::TilesError;

/// A parsed image request, in level-0 pixels and output pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageRequest {
    pub x: u64,
    pub y: u64,
    pub width: u64,
    pub height: u64,
    pub out_width: u32,
    pub out_height: u32,
    pub format: Format,
}

/// The `info.json` of a slide served at `id`.
pub fn info(source: &dyn PixelSource, id: &str, tile_size: u32) -> Value {
    let p = source.properties();
    let mut factors = vec![1u64];
    while factors.last().is_some_and(|f| {
        p.width() / f > u64::from(tile_size) || p.height() / f > u64::from(tile_size)
    }) {
        factors.push(factors.last().copied().unwrap_or(1) * 2);
    }
    json!({
        "@context": "http://iiif.io/api/image/3/context.json",
        "id": id,
        "type": "ImageService3",
        "protocol": "http://iiif.io/api/image",
        "profile": "level1",
        "width": p.width(),
        "height": p.height(),
        "maxWidth": MAX_REGION,
        "maxHeight": MAX_REGION,
        "tiles": [{"width": tile_size, "height": tile_size, "scaleFactors": factors}],
        "extraFormats": ["png"],
    })
}

fn bad(message: String) -> TilesError {
    TilesError::OutOfRange(message)
}

/// Parses the four path segments of an image request for a `width` x `height` image.
pub fn parse(
    region: &str,
    size: &str,
    rotation: &str,
    quality_format: &str,
    width: u64,
    height: u64,
) -> Result<ImageRequest, TilesError> {
    let (x, y, w, h) = match region {
        "full" => (0, 0, width, height),
        "square" => {
            let side = width.min(height);
            ((width - side) / 2, (height - side) / 2, side, side)
        }
        other => {
            let numbers: Vec<u64> = other
                .split(',')
                .map(str::parse::<u64>)
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    bad(format!(
                        "region {other:?}: use full, square or x,y,w,h in pixels"
                    ))
                })?;
            let [x, y, w, h] = numbers[..] else {
                return Err(bad(format!(
                    "region {other:?}: use full, square or x,y,w,h in pixels"
                )));
            };
            if w == 0 || h == 0 || x >= width || y >= height {
                return Err(bad(format!(
                    "region {other:?} lies outside the {width} x {height} image"
                )));
            }
            (x, y, w.min(width - x), h.min(height - y))
        }
    };
    let fit = |ow: f64, oh: f64| -> Result<(u32, u32), TilesError> {
        let (ow, oh) = (ow.round().max(1.0), oh.round().max(1.0));
        if ow > w as f64 || oh > h as f64 {
            return Err(bad(format!(
                "size {size:?} would enlarge the region; level 1 serves no upscaling"
            )));
        }
        if ow > f64::from(MAX_REGION) || oh > f64::from(MAX_REGION) {
            return Err(bad(format!(
                "size {size:?}: at most {MAX_REGION} px a side; ask for a smaller size"
            )));
        }
        Ok((ow as u32, oh as u32))
    };
    let (out_width, out_height) = match size {
        "max" => {
            let scale = (f64::from(MAX_REGION) / w.max(h) as f64).min(1.0);
            fit(w as f64 * scale, h as f64 * scale)?
        }
        s if s.starts_with('^') => {
            return Err(bad(format!("size {s:?}: upscaling is not supported")))
        }
        s => match s.split_once(',') {
            Some((sw, "")) => {
                let sw: f64 = sw
                    .parse()
                    .map_err(|_| bad(format!("size {s:?}: use max, w, ,h or w,h")))?;
                fit(sw, sw * h as f64 / w as f64)?
            }
            Some(("", sh)) => {
                let sh: f64 = sh
                    .parse()
                    .map_err(|_| bad(format!("size {s:?}: use max, w, ,h or w,h")))?;
                fit(sh * w as f64 / h as f64, sh)?
            }
            Some((sw, sh)) => {
                let (sw, sh): (f64, f64) = (
                    sw.parse()
                        .map_err(|_| bad(format!("size {s:?}: use max, w, ,h or w,h")))?,
                    sh.parse()
                        .map_err(|_| bad(format!("size {s:?}: use max, w, ,h or w,h")))?,
                );
                fit(sw, sh)?
            }
            None => return Err(bad(format!("size {s:?}: use max, w, ,h or w,h"))),
        },
    };
    if rotation != "0" {
        return Err(bad(format!("rotation {rotation:?}: only 0 is served")));
    }
    let (quality, extension) = quality_format.rsplit_once('.').ok_or_else(|| {
        bad(format!(
            "{quality_format:?}: use default.jpg or default.png"
        ))
    })?;
    if quality != "default" && quality != "color" {
        return Err(bad(format!(
            "quality {quality:?}: only default (colour) is served"
        )));
    }
    let format = match extension {
        "jpg" => Format::Jpeg,
        "png" => Format::Png,
        other => return Err(bad(format!("format {other:?}: jpg or png"))),
    };
    Ok(ImageRequest {
        x,
        y,
        width: w,
        height: h,
        out_width,
        out_height,
        format,
    })
}

/// The image a request asks for, encoded.
pub fn render(
    source: &dyn PixelSource,
    request: &ImageRequest,
    quality: u8,
) -> Result<Vec<u8>, TilesError> {
    let p = source.properties();
    let downsample = (request.width as f64 / f64::from(request.out_width))
        .min(request.height as f64 / f64::from(request.out_height));
    let level = p.best_level_for_downsample(downsample.max(1.0));
    let level_downsample = p.levels[level].downsample;
    let read_w = ((request.width as f64 / level_downsample).ceil() as u32).max(1);
    let read_h = ((request.height as f64 / level_downsample).ceil() as u32).max(1);
    let pixels = source.read_region(request.x as i64, request.y as i64, level, read_w, read_h)?;
    let pixels = render::resize(pixels, request.out_width, request.out_height)?;
    render::encode(&pixels, request.format, quality)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(region: &str, size: &str) -> Result<ImageRequest, TilesError> {
        parse(region, size, "0", "default.jpg", 10_000, 8_000)
    }

    #[test]
    fn regions_and_sizes_follow_the_image_api() {
        let full = parsed("full", "max").unwrap();
        assert_eq!(
            (full.width, full.height, full.out_width, full.out_height),
            (10_000, 8_000, 2_048, 1_638)
        );
        let square = parsed("square", "256,").unwrap();
        assert_eq!(
            (
                square.x,
                square.y,
                square.width,
                square.out_width,
                square.out_height
            ),
            (1_000, 0, 8_000, 256, 256)
        );
        let part = parsed("9000,7000,2000,2000", ",100").unwrap();
        assert_eq!(
            (part.width, part.height, part.out_width, part.out_height),
            (1_000, 1_000, 100, 100)
        );
        let exact = parsed("0,0,512,256", "512,256").unwrap();
        assert_eq!((exact.out_width, exact.out_height), (512, 256));
        assert_eq!(
            parse("full", "100,", "0", "default.png", 10_000, 8_000)
                .unwrap()
                .format,
            Format::Png
        );
    }

    #[test]
    fn what_level_1_does_not_serve_is_refused() {
        for (region, size, rotation, quality) in [
            ("full", "max", "90", "default.jpg"),
            ("full", "max", "0", "gray.jpg"),
            ("full", "max", "0", "default.gif"),
            ("0,0,100,100", "200,", "0", "default.jpg"),
            ("full", "^max", "0", "default.jpg"),
            ("20000,0,10,10", "max", "0", "default.jpg"),
            ("pct:10,10,10,10", "max", "0", "default.jpg"),
            ("full", "4096,", "0", "default.jpg"),
        ] {
            assert!(
                matches!(
                    parse(region, size, rotation, quality, 10_000, 8_000),
                    Err(TilesError::OutOfRange(_))
                ),
                "{region} {size} {rotation} {quality}"
            );
        }
    }
}
