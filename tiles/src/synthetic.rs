//! A slide with no file behind it: the fixture texture at any size, for tests that need pixels
//! whose every value is known (and for trying the render path without OpenSlide).

use image::RgbImage;

use crate::fixture;
use crate::source::{Level, PixelSource, Properties};
use crate::TilesError;

/// `width` x `height` px of the fixture texture, with levels 4x apart and a `label` image.
#[derive(Debug)]
pub struct SyntheticSource {
    properties: Properties,
}

impl SyntheticSource {
    pub fn new(width: u32, height: u32) -> Self {
        let spec = fixture::SlideSpec::generic(width, height);
        let levels = spec
            .levels()
            .into_iter()
            .map(|(w, h)| Level {
                width: u64::from(w),
                height: u64::from(h),
                downsample: f64::from(width) / f64::from(w),
                tile_size: Some((spec.tile, spec.tile)),
            })
            .collect();
        Self {
            properties: Properties {
                vendor: "synthetic".into(),
                levels,
                mpp_x: Some(0.25),
                mpp_y: Some(0.25),
                objective_power: Some(40.0),
                associated: vec!["label".into()],
                all: Default::default(),
            },
        }
    }
}

impl PixelSource for SyntheticSource {
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
        let l = self
            .properties
            .levels
            .get(level)
            .ok_or_else(|| TilesError::OutOfRange(format!("level {level} does not exist")))?;
        if x < 0 || y < 0 {
            return Err(TilesError::OutOfRange(format!(
                "region at ({x}, {y}) starts outside the slide"
            )));
        }
        let size = (
            self.properties.width() as u32,
            self.properties.height() as u32,
        );
        let (lx, ly) = (
            (x as f64 / l.downsample) as u32,
            (y as f64 / l.downsample) as u32,
        );
        let rgb = fixture::draw(lx, ly, w, h, l.downsample, size);
        Ok(RgbImage::from_raw(w, h, rgb).expect("draw makes w x h pixels"))
    }

    fn associated_image(&self, name: &str) -> Result<RgbImage, TilesError> {
        match name {
            "label" => Ok(RgbImage::from_fn(200, 100, |x, _| {
                if (x / 10) % 2 == 0 {
                    image::Rgb([0, 0, 0])
                } else {
                    image::Rgb([255, 255, 255])
                }
            })),
            other => Err(TilesError::NotFound(format!("associated image {other:?}"))),
        }
    }
}
