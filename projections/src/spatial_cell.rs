//! The cells of SQLite's spatial index: a loose grid, one R*Tree entry per cell.
//!
//! Each annotation belongs to one cell: of the smallest level whose cell edge (256 px at level
//! 0, doubling per level) is at least the annotation's longer side, the cell holding the
//! centre of its box. A cell's *loose* box reaches half an edge beyond the cell on every side,
//! so it contains every annotation that belongs to it. The R*Tree (`annotation_cells_rtree`)
//! holds these loose boxes, one per cell that was ever used, and `annotations.cell` (and
//! `annotation_history.cell`) an index over the rows: a viewport query asks the tree for the
//! cells its window meets, then reads their rows and tests their exact boxes.
//!
//! Why not one R*Tree entry per annotation: an insert into SQLite's R*Tree costs tens of
//! microseconds (node reads through blob handles, a node rewrite per level), more than the
//! whole rest of a creation; a new annotation here costs an index entry, and the tree only
//! grows when a cell is used for the first time. The cells of a cluster of annotations are
//! found once for all of them.

use exact_domain::vector::Bounds;

/// The cell edge at level 0, in level-0 pixels: a little larger than a cell nucleus
/// annotation, so that most annotations land at level 0 with a few dozen per cell.
const BASE_EDGE: f64 = 256.0;
/// Column and row numbers take 13 bits each (a slide of two million pixels at level 0);
/// a box beyond that goes up a level until it fits.
const INDEX_BITS: u32 = 13;
const INDEX_LIMIT: i64 = 1 << INDEX_BITS;
/// Levels that are tried; above them, a box (far outside any image) takes the image's
/// one cell that covers everything.
const MAX_LEVEL: i64 = 40;
const EVERYWHERE_LEVEL: i64 = 63;
/// Images ids up to this fit in a cell id (ids are counters from 1).
const IMAGE_LIMIT: i64 = 1 << 31;
/// Beyond any pixel coordinate, within single precision (the R*Tree stores `f32`).
const FAR: f64 = 1.0e38;

/// A cell of the grid, for one image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpatialCell {
    /// image · 2³² + level · 2²⁶ + (row + 1) · 2¹³ + (column + 1): stable, so that a rebuild
    /// and the incremental writes agree.
    pub id: i64,
    pub image: i64,
    /// The loose box: every annotation of the cell lies inside it.
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

/// The cell an annotation of `image` with box `bounds` belongs to; `None` if the image id is
/// beyond what a cell id holds (2³¹).
pub fn cell_of(image: i64, bounds: &Bounds) -> Option<SpatialCell> {
    if !(0..IMAGE_LIMIT).contains(&image) {
        return None;
    }
    let size = (bounds.max_x - bounds.min_x).max(bounds.max_y - bounds.min_y);
    let centre_x = (bounds.min_x + bounds.max_x) / 2.0;
    let centre_y = (bounds.min_y + bounds.max_y) / 2.0;
    let mut level = 0;
    let mut edge = BASE_EDGE;
    while edge < size && level < MAX_LEVEL {
        level += 1;
        edge *= 2.0;
    }
    while level <= MAX_LEVEL && edge >= size {
        // One column and row of room below zero: boxes may reach a little past the image.
        let column = (centre_x / edge).floor() + 1.0;
        let row = (centre_y / edge).floor() + 1.0;
        let fits = |i: f64| i >= 0.0 && i < INDEX_LIMIT as f64;
        if fits(column) && fits(row) {
            let (column, row) = (column as i64, row as i64);
            // Half an edge of slack on every side, and a pixel more against rounding.
            let slack = edge / 2.0 + 1.0;
            let left = (column - 1) as f64 * edge;
            let top = (row - 1) as f64 * edge;
            return Some(SpatialCell {
                id: (image << 32) | (level << 26) | (row << INDEX_BITS) | column,
                image,
                min_x: left - slack,
                min_y: top - slack,
                max_x: left + edge + slack,
                max_y: top + edge + slack,
            });
        }
        level += 1;
        edge *= 2.0;
    }
    Some(SpatialCell {
        id: (image << 32) | (EVERYWHERE_LEVEL << 26),
        image,
        min_x: -FAR,
        min_y: -FAR,
        max_x: FAR,
        max_y: FAR,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bounds(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Bounds {
        Bounds {
            min_x,
            min_y,
            max_x,
            max_y,
        }
    }

    #[test]
    fn a_small_box_takes_the_level_0_cell_of_its_centre() {
        let cell = cell_of(7, &bounds(300.0, 10.0, 340.0, 46.0)).unwrap();
        assert_eq!(cell.id, (7 << 32) | (1 << 13) | 2);
        assert_eq!(
            (cell.min_x, cell.min_y, cell.max_x, cell.max_y),
            (127.0, -129.0, 641.0, 385.0)
        );
    }

    #[test]
    fn a_larger_box_goes_up_levels_and_images_never_share_a_cell() {
        let big = cell_of(7, &bounds(0.0, 0.0, 1000.0, 10.0)).unwrap();
        assert_eq!(big.id >> 26 & 63, 2, "1,000 px fits a 1,024 px cell");
        let other = cell_of(8, &bounds(0.0, 0.0, 1000.0, 10.0)).unwrap();
        assert_ne!(big.id, other.id);
        assert_eq!(other.id >> 32, 8);
    }

    #[test]
    fn boxes_far_away_or_of_huge_images_are_still_placed() {
        let far = cell_of(1, &bounds(-1e300, 0.0, 1e300, 1.0)).unwrap();
        assert_eq!(far.id >> 26 & 63, EVERYWHERE_LEVEL);
        assert!(cell_of(IMAGE_LIMIT, &bounds(0.0, 0.0, 1.0, 1.0)).is_none());
    }

    proptest! {
        /// The property the viewport query rests on: an annotation lies inside its cell's
        /// loose box, wherever it is and whatever its size.
        #[test]
        fn every_box_lies_inside_its_cells_loose_box(
            x in -600.0f64..3.0e6, y in -600.0f64..3.0e6,
            w in 0.0f64..5.0e5, h in 0.0f64..5.0e5, image in 0i64..(1 << 31),
        ) {
            let b = bounds(x, y, x + w, y + h);
            let cell = cell_of(image, &b).unwrap();
            prop_assert!(cell.min_x <= b.min_x && b.max_x <= cell.max_x);
            prop_assert!(cell.min_y <= b.min_y && b.max_y <= cell.max_y);
            prop_assert_eq!(cell.id >> 32, image);
        }

        /// Small boxes whose centres fall in one 256 px square share its cell; boxes whose
        /// centres do not, never do.
        #[test]
        fn small_boxes_share_a_cell_exactly_when_their_centres_share_a_square(
            x in 0.0f64..1.0e5, y in 0.0f64..1.0e5, dx in -600.0f64..600.0, dy in -600.0f64..600.0,
        ) {
            let a = cell_of(3, &bounds(x, y, x + 10.0, y + 10.0)).unwrap();
            let b = cell_of(3, &bounds(x + dx, y + dy, x + dx + 10.0, y + dy + 10.0)).unwrap();
            let square = |v: f64| ((v + 5.0) / BASE_EDGE).floor();
            let same = square(x) == square(x + dx) && square(y) == square(y + dy);
            prop_assert_eq!(a.id == b.id, same);
        }
    }
}
