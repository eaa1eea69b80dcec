//! How long a plain PNG of 10,000 x 8,000 px takes to become a served pyramid: decode, build
//! every level, write the tiled TIFF, open it and serve its first DeepZoom tile. Floor: 3 s.
//!
//! `cargo bench -p exact-tiles --bench pyramid`

use std::time::Instant;

use exact_tiles::{fixture, pyramid, render, DeepZoom, Format};

fn main() {
    let (w, h) = (10_000, 8_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.png");
    let pixels = fixture::draw(0, 0, w, h, 1.0, (w, h));
    image::save_buffer(&path, &pixels, w, h, image::ExtendedColorType::Rgb8).unwrap();
    drop(pixels);
    let size = std::fs::metadata(&path).unwrap().len();
    for run in 1..=3 {
        let _ = std::fs::remove_file(pyramid::pyramid_path(&path));
        let start = Instant::now();
        let built = pyramid::build(&path, pyramid::PyramidLimits::default()).unwrap();
        let source = exact_tiles::open(&path).unwrap();
        let grid = DeepZoom::for_slide(source.properties());
        let top = grid.level_count() - 1;
        render::tile(source.as_ref(), &grid, top, 3, 3, Format::Jpeg, 90).unwrap();
        let took = start.elapsed();
        println!(
            "| run {run} | PNG {w} x {h} ({:.0} MB) to a served pyramid ({:.0} MB) | {:.2} s | floor 3 s |",
            size as f64 / 1e6,
            std::fs::metadata(&built).unwrap().len() as f64 / 1e6,
            took.as_secs_f64()
        );
    }
}
