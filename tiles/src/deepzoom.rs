//! DeepZoom: the `.dzi` descriptor and the tile grid, numbered exactly as OpenSlide's
//! `DeepZoomGenerator` numbers them (level 0 is 1 x 1 px, each level doubles, the last is the
//! slide at full resolution), so that EXACT's routes and OpenSeadragon work unchanged.

use crate::source::Properties;
use crate::TilesError;

/// The tile grid of one slide.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepZoom {
    pub tile_size: u32,
    pub overlap: u32,
    /// Pixel size of each DeepZoom level, smallest (1 x 1) first.
    pub level_sizes: Vec<(u64, u64)>,
    /// Columns and rows of tiles of each level.
    pub tile_counts: Vec<(u64, u64)>,
    /// The slide level each DeepZoom level is read from, and its downsample relative to it.
    slide_level: Vec<usize>,
    level_downsample: Vec<f64>,
    slide_levels: Vec<(u64, u64, f64)>,
}

/// Where a DeepZoom tile comes from: a region of one slide level, and the size it ends up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TileSource {
    /// Top-left corner in level-0 pixels.
    pub x: i64,
    pub y: i64,
    pub slide_level: usize,
    /// Pixels to read at `slide_level`.
    pub read_width: u32,
    pub read_height: u32,
    /// Pixels of the finished tile.
    pub width: u32,
    pub height: u32,
}

impl DeepZoom {
    /// The grid for a slide. EXACT's default is 254 px with 1 px overlap.
    pub fn new(properties: &Properties, tile_size: u32, overlap: u32) -> Self {
        let (mut w, mut h) = (properties.width(), properties.height());
        let mut level_sizes = vec![(w, h)];
        while w > 1 || h > 1 {
            w = w.div_ceil(2).max(1);
            h = h.div_ceil(2).max(1);
            level_sizes.push((w, h));
        }
        level_sizes.reverse();
        let count = level_sizes.len();
        let tile = u64::from(tile_size);
        let tile_counts = level_sizes
            .iter()
            .map(|(w, h)| (w.div_ceil(tile), h.div_ceil(tile)))
            .collect();
        let mut slide_level = Vec::with_capacity(count);
        let mut level_downsample = Vec::with_capacity(count);
        for z in 0..count {
            let l0_downsample = f64::from(1u32 << (count - z - 1).min(31));
            let best = properties.best_level_for_downsample(l0_downsample);
            slide_level.push(best);
            level_downsample.push(l0_downsample / properties.levels[best].downsample);
        }
        Self {
            tile_size,
            overlap,
            level_sizes,
            tile_counts,
            slide_level,
            level_downsample,
            slide_levels: properties
                .levels
                .iter()
                .map(|l| (l.width, l.height, l.downsample))
                .collect(),
        }
    }

    /// The default grid: the stored tile size without overlap where level 0 is tiled (tiles
    /// can then pass through untouched), else EXACT's 254 px with 1 px overlap.
    pub fn for_slide(properties: &Properties) -> Self {
        match properties.levels[0].tile_size {
            Some((w, h)) if w == h && (128..=1024).contains(&w) => Self::new(properties, w, 0),
            _ => Self::new(properties, 254, 1),
        }
    }

    pub fn level_count(&self) -> usize {
        self.level_sizes.len()
    }

    /// The `.dzi` XML, as OpenSlide writes it.
    pub fn dzi(&self, format: &str) -> String {
        let (w, h) = self.level_sizes[self.level_count() - 1];
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" \
             Format=\"{format}\" Overlap=\"{}\" TileSize=\"{}\"><Size Height=\"{h}\" Width=\"{w}\"/></Image>",
            self.overlap, self.tile_size
        )
    }

    /// Where tile (`col`, `row`) of `level` comes from; 404-worthy if there is no such tile.
    pub fn tile(&self, level: usize, col: u64, row: u64) -> Result<TileSource, TilesError> {
        let Some(&(columns, rows)) = self.tile_counts.get(level) else {
            return Err(TilesError::OutOfRange(format!(
                "level {level} does not exist: levels are 0 to {}",
                self.level_count() - 1
            )));
        };
        if col >= columns || row >= rows {
            return Err(TilesError::OutOfRange(format!(
                "tile {col}_{row} is outside level {level}, which has {columns} x {rows} tiles"
            )));
        }
        let (tile, overlap) = (u64::from(self.tile_size), u64::from(self.overlap));
        let (z_width, z_height) = self.level_sizes[level];
        let slide_level = self.slide_level[level];
        let downsample = self.level_downsample[level];
        let (l_width, l_height, l0_downsample) = self.slide_levels[slide_level];
        // Per axis: overlap on the sides that have a neighbour, as OpenSlide.
        let axis = |t: u64, count: u64, z_limit: u64, l_limit: u64| {
            let before = if t == 0 { 0 } else { overlap };
            let after = if t + 1 == count { 0 } else { overlap };
            let z_size = tile.min(z_limit - tile * t) + before + after;
            let l_location = downsample * (tile * t - before) as f64;
            let l0_location = (l0_downsample * l_location) as i64;
            let l_size = (downsample * z_size as f64)
                .ceil()
                .min(l_limit as f64 - l_location.ceil()) as u32;
            (l0_location, l_size, z_size as u32)
        };
        let (x, read_width, width) = axis(col, columns, z_width, l_width);
        let (y, read_height, height) = axis(row, rows, z_height, l_height);
        Ok(TileSource {
            x,
            y,
            slide_level,
            read_width: read_width.max(1),
            read_height: read_height.max(1),
            width,
            height,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Level;

    fn slide(width: u64, height: u64, downsamples: &[f64]) -> Properties {
        Properties {
            levels: downsamples
                .iter()
                .map(|d| Level {
                    width: (width as f64 / d).ceil() as u64,
                    height: (height as f64 / d).ceil() as u64,
                    downsample: *d,
                    tile_size: Some((240, 240)),
                })
                .collect(),
            ..Properties::default()
        }
    }

    /// Numbers computed with OpenSlide Python's DeepZoomGenerator(tile_size=254, overlap=1) for a
    /// 10,000 x 8,000 slide with levels at 1, 4 and 16.
    #[test]
    fn the_grid_matches_openslides_deepzoom_generator() {
        let dz = DeepZoom::new(&slide(10_000, 8_000, &[1.0, 4.0, 16.0]), 254, 1);
        assert_eq!(dz.level_count(), 15);
        assert_eq!(dz.level_sizes[0], (1, 1));
        assert_eq!(dz.level_sizes[14], (10_000, 8_000));
        assert_eq!(dz.level_sizes[13], (5_000, 4_000));
        assert_eq!(dz.tile_counts[14], (40, 32));
        // The first tile has no left or top neighbour: 254 + 1 overlap.
        let first = dz.tile(14, 0, 0).unwrap();
        assert_eq!(
            (first.x, first.y, first.width, first.height),
            (0, 0, 255, 255)
        );
        // An inner tile starts one pixel early and is 256 wide.
        let inner = dz.tile(14, 1, 1).unwrap();
        assert_eq!(
            (inner.x, inner.y, inner.width, inner.height),
            (253, 253, 256, 256)
        );
        // The last column: 10,000 - 39 * 254 = 94 px plus the left overlap.
        let last = dz.tile(14, 39, 31).unwrap();
        assert_eq!(
            (last.x, last.width, last.y, last.height),
            (9_905, 95, 7_873, 127)
        );
        // Level 12 (downsample 4) reads slide level 1 at its own scale.
        let quarter = dz.tile(12, 1, 0).unwrap();
        assert_eq!(
            (
                quarter.slide_level,
                quarter.x,
                quarter.read_width,
                quarter.width
            ),
            (1, 1_012, 256, 256)
        );
        // Level 11 (downsample 8) reads slide level 1 and halves it.
        let eighth = dz.tile(11, 0, 0).unwrap();
        assert_eq!(
            (eighth.slide_level, eighth.read_width, eighth.width),
            (1, 510, 255)
        );
    }

    #[test]
    fn tiles_outside_the_grid_are_refused() {
        let dz = DeepZoom::new(&slide(1_000, 800, &[1.0]), 254, 1);
        assert!(matches!(dz.tile(99, 0, 0), Err(TilesError::OutOfRange(_))));
        assert!(matches!(
            dz.tile(dz.level_count() - 1, 4, 0),
            Err(TilesError::OutOfRange(_))
        ));
        assert!(dz.tile(dz.level_count() - 1, 3, 3).is_ok());
    }

    #[test]
    fn stored_jpeg_tiles_set_the_grid() {
        let dz = DeepZoom::for_slide(&slide(10_000, 8_000, &[1.0, 4.0]));
        assert_eq!((dz.tile_size, dz.overlap), (240, 0));
        assert!(dz
            .dzi("jpeg")
            .contains("Overlap=\"0\" TileSize=\"240\"><Size Height=\"8000\" Width=\"10000\"/>"));
    }
}
