//! The tiles crate on real files: slides written by the fixture generator, read back through
//! the real OpenSlide, rendered as DeepZoom tiles, and broken in the ways uploads break.

use std::path::{Path, PathBuf};

use exact_tiles::fixture::{self, Breakage, SlideSpec};
use exact_tiles::{render, DeepZoom, Format, TilesError};
use image::RgbImage;

fn slide(dir: &Path, name: &str, spec: &SlideSpec) -> PathBuf {
    let path = dir.join(name);
    fixture::write_slide(&path, spec).unwrap();
    path
}

/// Mean absolute difference per channel between `pixels` at `level` from (x, y) and the
/// fixture's texture there.
fn difference_from_texture(
    pixels: &RgbImage,
    x: i64,
    y: i64,
    downsample: f64,
    size: (u32, u32),
) -> f64 {
    let (w, h) = pixels.dimensions();
    let expected = fixture::draw(
        (x as f64 / downsample) as u32,
        (y as f64 / downsample) as u32,
        w,
        h,
        downsample,
        size,
    );
    let total: u64 = pixels
        .as_raw()
        .iter()
        .zip(&expected)
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    total as f64 / expected.len() as f64
}

#[test]
fn a_generic_tiff_opens_with_its_pyramid_and_its_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SlideSpec::generic(2_000, 1_500);
    let source = exact_tiles::open(&slide(dir.path(), "slide.tif", &spec)).unwrap();
    let p = source.properties();
    assert_eq!(p.vendor, "generic-tiff");
    assert_eq!((p.width(), p.height()), (2_000, 1_500));
    let expected: Vec<(u64, u64)> = spec
        .levels()
        .iter()
        .map(|(w, h)| (u64::from(*w), u64::from(*h)))
        .collect();
    assert_eq!(
        p.levels
            .iter()
            .map(|l| (l.width, l.height))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(p.levels[0].tile_size, Some((256, 256)));
    // Pixels come back as drawn, within JPEG's error.
    let pixels = source.read_region(600, 400, 0, 300, 200).unwrap();
    let diff = difference_from_texture(&pixels, 600, 400, 1.0, (2_000, 1_500));
    assert!(diff < 6.0, "mean difference {diff}");
    // Beyond the edge is white.
    let outside = source.read_region(1_990, 0, 0, 20, 1).unwrap();
    assert_eq!(outside.get_pixel(19, 0).0, [255, 255, 255]);
}

#[test]
fn an_aperio_svs_has_its_vendor_resolution_and_associated_images() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SlideSpec::aperio(3_000, 2_000);
    let source = exact_tiles::open(&slide(dir.path(), "slide.svs", &spec)).unwrap();
    let p = source.properties();
    assert_eq!(p.vendor, "aperio");
    assert_eq!(
        (p.mpp_x, p.mpp_y, p.objective_power),
        (Some(0.499), Some(0.499), Some(20.0))
    );
    assert_eq!(p.levels[0].tile_size, Some((240, 240)));
    assert_eq!(p.levels.len(), spec.levels().len());
    let mut names = p.associated.clone();
    names.sort();
    assert_eq!(names, ["label", "macro", "thumbnail"]);
    let label = source.associated_image("label").unwrap();
    assert_eq!(label.dimensions(), (300, 200));
    // The label is black and white stripes, 20 px each.
    assert!(label.get_pixel(5, 0).0[0] < 60 && label.get_pixel(25, 0).0[0] > 200);
    assert!(matches!(
        source.associated_image("barcode"),
        Err(TilesError::NotFound(_))
    ));
    // Tiles whose JPEG tables live in the TIFF decode to the texture.
    let pixels = source.read_region(1_000, 1_000, 0, 240, 240).unwrap();
    assert!(difference_from_texture(&pixels, 1_000, 1_000, 1.0, (3_000, 2_000)) < 8.0);
}

#[test]
fn deepzoom_tiles_are_cut_as_openslide_cuts_them() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SlideSpec::aperio(3_000, 2_000);
    let source = exact_tiles::open(&slide(dir.path(), "slide.svs", &spec)).unwrap();
    let grid = DeepZoom::new(source.properties(), 254, 1);
    let top = grid.level_count() - 1;
    for (level, col, row) in [
        (top, 0, 0),
        (top, 11, 7),
        (top - 1, 2, 1),
        (top - 3, 0, 0),
        (0, 0, 0),
    ] {
        let at = grid.tile(level, col, row).unwrap();
        let jpeg = render::tile(source.as_ref(), &grid, level, col, row, Format::Jpeg, 90).unwrap();
        let decoded = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        assert_eq!(
            decoded.dimensions(),
            (at.width, at.height),
            "tile {level}/{col}_{row}"
        );
        if level == top {
            let diff = difference_from_texture(&decoded, at.x, at.y, 1.0, (3_000, 2_000));
            assert!(diff < 8.0, "tile {level}/{col}_{row}: {diff}");
        }
    }
    let png = render::tile(source.as_ref(), &grid, top, 1, 1, Format::Png, 90).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(matches!(
        grid.tile(top, 12, 0),
        Err(TilesError::OutOfRange(_))
    ));
    let thumbnail = render::thumbnail(source.as_ref(), 300).unwrap();
    assert_eq!(thumbnail.dimensions(), (300, 200));
    assert!(matches!(
        render::region(source.as_ref(), 0, 0, 0, 4_096, 10),
        Err(TilesError::OutOfRange(_))
    ));
    assert!(matches!(
        render::region(source.as_ref(), 5_000, 0, 0, 10, 10),
        Err(TilesError::OutOfRange(_))
    ));
    assert_eq!(
        render::region(source.as_ref(), 10, 10, 1, 64, 32)
            .unwrap()
            .dimensions(),
        (64, 32)
    );
}

#[test]
fn broken_files_are_typed_errors_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SlideSpec::aperio(1_200, 900);
    for (breakage, name) in [
        (Breakage::Garbage, "g.svs"),
        (Breakage::Empty, "e.svs"),
        (Breakage::Truncated, "t.svs"),
    ] {
        let path = dir.path().join(name);
        fixture::write_broken(&path, &spec, breakage).unwrap();
        let opened = exact_tiles::open(&path);
        match (breakage, &opened) {
            (
                Breakage::Truncated,
                Err(TilesError::Corrupt { .. } | TilesError::Unsupported { .. }),
            ) => {}
            // A truncated slide may open; then its missing tiles fail to decode.
            (Breakage::Truncated, Ok(source)) => {
                let l = &source.properties().levels[0];
                let read = source.read_region(0, l.height as i64 - 240, 0, 240, 240);
                assert!(matches!(read, Err(TilesError::Decode { .. })), "{read:?}");
            }
            (_, Err(TilesError::Unsupported { file, .. })) => assert!(file.ends_with(name)),
            other => panic!("{breakage:?}: {:?}", other.1),
        }
    }
    assert!(matches!(
        exact_tiles::open(&dir.path().join("missing.svs")),
        Err(TilesError::NotFound(_))
    ));
    // One damaged tile inside a good slide fails alone.
    let path = slide(dir.path(), "damaged.tif", &SlideSpec::generic(1_024, 1_024));
    fixture::corrupt_first_tile(&path).unwrap();
    let source = exact_tiles::open(&path).unwrap();
    assert!(matches!(
        source.read_region(0, 0, 0, 256, 256),
        Err(TilesError::Decode { .. })
    ));
}

#[test]
fn stored_jpeg_tiles_pass_through_untouched_and_match_what_openslide_renders() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SlideSpec::aperio(3_000, 2_000);
    let path = slide(dir.path(), "slide.svs", &spec);
    let source = exact_tiles::open(&path).unwrap();
    let grid = DeepZoom::for_slide(source.properties());
    assert_eq!((grid.tile_size, grid.overlap), (240, 0));
    let top = grid.level_count() - 1;
    let jpeg = render::tile(source.as_ref(), &grid, top, 3, 2, Format::Jpeg, 90).unwrap();
    // The stored tile's scan data, as it is in the file.
    let directories = exact_tiles::tiff::directories(&path).unwrap();
    let level0 = &directories[0];
    let raw = exact_tiles::tiff::tile_bytes(
        &std::fs::File::open(&path).unwrap(),
        level0,
        (2 * level0.columns() + 3) as usize,
    )
    .unwrap();
    assert!(
        jpeg.ends_with(&raw[2..]),
        "the tile is the stored bytes with the tables merged in"
    );
    let passed = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    // Against OpenSlide's own rendering of the same area, not our decoder's.
    let openslide = exact_tiles::openslide::OpenSlideSource::try_open(&path)
        .unwrap()
        .unwrap();
    let rendered = openslide
        .read_region_openslide(3 * 240, 2 * 240, 0, 240, 240)
        .unwrap();
    let diff: u64 = passed
        .as_raw()
        .iter()
        .zip(rendered.as_raw())
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    let mean = diff as f64 / rendered.as_raw().len() as f64;
    assert!(
        mean < 2.0,
        "passthrough and OpenSlide disagree by {mean} per channel"
    );
    // An edge tile is narrower than the stored one: rendered, not passed through.
    let last = grid.tile_counts[top].0 - 1;
    let edge = render::tile(source.as_ref(), &grid, top, last, 0, Format::Jpeg, 90).unwrap();
    assert_eq!(
        image::load_from_memory(&edge).unwrap().width(),
        3_000 - 240 * last as u32
    );
}

#[test]
fn rgb_coded_tiles_get_the_adobe_marker() {
    let tables = [0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x03, 0x00, 0xFF, 0xD9];
    let tile = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x11, 0xFF, 0xD9];
    let rgb = exact_tiles::tiff::complete_jpeg(&tile, Some(&tables), true).unwrap();
    assert_eq!(&rgb[2..4], &[0xFF, 0xEE]);
    assert_eq!(&rgb[4 + 2..4 + 7], b"Adobe");
    let ycc = exact_tiles::tiff::complete_jpeg(&tile, Some(&tables), false).unwrap();
    assert_eq!(
        ycc,
        [0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x03, 0x00, 0xFF, 0xDA, 0x00, 0x02, 0x11, 0xFF, 0xD9]
    );
    assert!(exact_tiles::tiff::complete_jpeg(b"not a jpeg", None, false).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_renders_a_tile_once_for_many_viewers_and_survives_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = slide(dir.path(), "slide.tif", &SlideSpec::generic(2_000, 1_500));
    let service = exact_tiles::TileService::new(exact_tiles::TileConfig::default());
    let dzi = service.dzi(&path, Format::Jpeg).await.unwrap();
    assert!(
        dzi.contains("TileSize=\"256\"") && dzi.contains("Width=\"2000\""),
        "{dzi}"
    );
    let top = service.slide(&path).await.unwrap().grid.level_count() - 1;
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (service, path) = (service.clone(), path.clone());
            tokio::spawn(async move { service.tile(&path, top, 2, 1, Format::Png).await.unwrap() })
        })
        .collect();
    let mut tiles = Vec::new();
    for r in requests {
        tiles.push(r.await.unwrap());
    }
    // One render: every viewer holds the same cached buffer.
    assert!(tiles.iter().all(|t| t.as_ptr() == tiles[0].as_ptr()));
    assert!(matches!(
        service.tile(&path, top, 99, 0, Format::Jpeg).await,
        Err(TilesError::OutOfRange(_))
    ));
    assert!(matches!(
        service
            .tile(&dir.path().join("nope.svs"), 0, 0, 0, Format::Jpeg)
            .await,
        Err(TilesError::NotFound(_))
    ));
    // A damaged tile fails alone; its neighbours are still served.
    let damaged = slide(dir.path(), "damaged.tif", &SlideSpec::generic(1_024, 1_024));
    fixture::corrupt_first_tile(&damaged).unwrap();
    let top = service.slide(&damaged).await.unwrap().grid.level_count() - 1;
    assert!(matches!(
        service.tile(&damaged, top, 0, 0, Format::Png).await,
        Err(TilesError::Decode { .. })
    ));
    assert!(service.tile(&damaged, top, 3, 3, Format::Png).await.is_ok());
}

/// A plain RGBA image of the fixture texture, with a transparent band at the top.
fn plain_image(w: u32, h: u32) -> image::RgbaImage {
    let rgb = fixture::draw(0, 0, w, h, 1.0, (w, h));
    image::RgbaImage::from_fn(w, h, |x, y| {
        let i = ((y * w + x) * 3) as usize;
        let alpha = if y < 10 { 0 } else { 255 };
        image::Rgba([rgb[i], rgb[i + 1], rgb[i + 2], alpha])
    })
}

#[test]
fn a_png_becomes_a_lossless_pyramid_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.png");
    let original = plain_image(1_500, 1_000);
    original.save(&path).unwrap();
    let source = exact_tiles::open(&path).unwrap();
    let p = source.properties();
    assert_eq!(
        (p.vendor.as_str(), p.width(), p.height()),
        ("exact-pyramid", 1_500, 1_000)
    );
    assert_eq!(
        p.levels.iter().map(|l| l.width).collect::<Vec<_>>(),
        [1_500, 750, 375, 188]
    );
    let pyramid = exact_tiles::pyramid::pyramid_path(&path);
    let built_at = std::fs::metadata(&pyramid).unwrap().modified().unwrap();
    // Lossless: every pixel as in the PNG; transparency is white.
    let pixels = source.read_region(700, 0, 0, 300, 300).unwrap();
    for (x, y, pixel) in pixels.enumerate_pixels() {
        let expected = if y < 10 {
            [255, 255, 255]
        } else {
            let o = original.get_pixel(700 + x, y).0;
            [o[0], o[1], o[2]]
        };
        assert_eq!(pixel.0, expected, "pixel ({x}, {y})");
    }
    // Opened again, the pyramid is used as it is.
    drop(source);
    let again = exact_tiles::open(&path).unwrap();
    assert_eq!(again.properties().vendor, "exact-pyramid");
    assert_eq!(
        std::fs::metadata(&pyramid).unwrap().modified().unwrap(),
        built_at
    );
}

#[test]
fn a_jpeg_becomes_a_jpeg_pyramid_whose_tiles_pass_through() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.jpg");
    let rgb = fixture::draw(0, 0, 2_000, 1_200, 1.0, (2_000, 1_200));
    std::fs::write(
        &path,
        exact_tiles::tiff::encode_jpeg_tile(&rgb, 2_000, 1_200, 95).unwrap(),
    )
    .unwrap();
    let source = exact_tiles::open(&path).unwrap();
    let grid = DeepZoom::for_slide(source.properties());
    assert_eq!((grid.tile_size, grid.overlap), (256, 0));
    let top = grid.level_count() - 1;
    let jpeg = render::tile(source.as_ref(), &grid, top, 1, 1, Format::Jpeg, 90).unwrap();
    let decoded = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    assert!(difference_from_texture(&decoded, 256, 256, 1.0, (2_000, 1_200)) < 6.0);
}

#[test]
fn images_too_large_or_broken_are_refused_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.png");
    plain_image(600, 400).save(&path).unwrap();
    let limits = exact_tiles::pyramid::PyramidLimits {
        max_pixels: 100_000,
    };
    let refused = exact_tiles::pyramid::build(&path, limits);
    assert!(
        matches!(&refused, Err(TilesError::TooLarge(m)) if m.contains("600 x 400")),
        "{refused:?}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["big.png"]);
    let bytes = std::fs::read(&path).unwrap();
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    assert!(matches!(
        exact_tiles::open(&broken),
        Err(TilesError::Corrupt { .. })
    ));
    // Named like a PNG but not one: the PNG decoder says why.
    let fake = dir.path().join("notes.png");
    std::fs::write(&fake, "hello").unwrap();
    assert!(
        matches!(exact_tiles::open(&fake), Err(TilesError::Corrupt { file, .. }) if file.ends_with("notes.png"))
    );
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    assert!(matches!(
        exact_tiles::open(&text),
        Err(TilesError::Unsupported { .. })
    ));
}

#[test]
fn stored_tiles_decoded_here_match_what_openslide_renders() {
    let dir = tempfile::tempdir().unwrap();
    let path = slide(dir.path(), "slide.svs", &SlideSpec::aperio(3_000, 2_000));
    let source = exact_tiles::openslide::OpenSlideSource::try_open(&path)
        .unwrap()
        .unwrap();
    use exact_tiles::PixelSource;
    // Aligned and not, across tile edges, past the slide's edge, and on a smaller level.
    for (x, y, level, w, h) in [
        (0, 0, 0, 240, 240),
        (100, 130, 0, 500, 300),
        (2_900, 1_950, 0, 200, 100),
        (40, 80, 1, 300, 200),
    ] {
        let ours = source.read_region(x, y, level, w, h).unwrap();
        let theirs = source.read_region_openslide(x, y, level, w, h).unwrap();
        let diff: u64 = ours
            .as_raw()
            .iter()
            .zip(theirs.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = diff as f64 / ours.as_raw().len() as f64;
        assert!(
            mean < 1.5,
            "region ({x}, {y}) level {level}: {mean} per channel"
        );
    }
}

#[test]
fn a_synthetic_slide_renders_through_the_same_grid() {
    use exact_tiles::PixelSource;
    let source = exact_tiles::synthetic::SyntheticSource::new(5_000, 3_000);
    let grid = DeepZoom::new(source.properties(), 254, 1);
    let top = grid.level_count() - 1;
    let at = grid.tile(top, 3, 2).unwrap();
    let png = render::tile(&source, &grid, top, 3, 2, Format::Png, 90).unwrap();
    let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
    // PNG is lossless: the tile is the texture, exactly.
    assert_eq!(
        difference_from_texture(&decoded, at.x, at.y, 1.0, (5_000, 3_000)),
        0.0
    );
    assert_eq!(source.associated_image("label").unwrap().width(), 200);
    assert!(matches!(
        source.read_region(0, 0, 9, 10, 10),
        Err(TilesError::OutOfRange(_))
    ));
}

#[test]
fn a_multi_page_tiff_is_one_frame_per_full_resolution_page() {
    use exact_tiles::frames;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("series.tif");
    fixture::write_multi_page_tiff(&path, 600, 400, 3).unwrap();
    // Four directories; the reduced-resolution one is not a frame.
    assert_eq!(frames::tiff_pages(&path).unwrap(), vec![0, 2, 3]);
    let first = exact_tiles::open(&path).unwrap();
    assert_eq!(first.properties().vendor, "exact-pyramid");
    assert_eq!(
        frames::build_frames(&path, exact_tiles::pyramid::PyramidLimits::default()).unwrap(),
        3
    );
    for frame in 1..=3u32 {
        let source = exact_tiles::open(&frames::frame_path(&path, frame)).unwrap();
        let p = source.properties();
        assert_eq!((p.width(), p.height()), (600, 400), "frame {frame}");
        let pixels = source.read_region(250, 150, 0, 4, 4).unwrap();
        assert_eq!(
            pixels.get_pixel(2, 2).0,
            fixture::page_colour(frame - 1),
            "frame {frame} shows its own page"
        );
    }
    assert_eq!(frames::frame_path(&path, 1), path);
    assert!(!frames::frame_path(&path, 4).exists());

    // Any other image is one frame and gets nothing built.
    let png = dir.path().join("one.png");
    plain_image(300, 200).save(&png).unwrap();
    assert_eq!(
        frames::build_frames(&png, exact_tiles::pyramid::PyramidLimits::default()).unwrap(),
        1
    );
    assert!(frames::tiff_pages(&png).unwrap().is_empty());
    assert!(!frames::frame_path(&png, 2).exists());
    // A page over the pixel limit is refused by name, before it is decoded.
    let small = exact_tiles::pyramid::PyramidLimits { max_pixels: 1_000 };
    let refused = frames::build_frames(&path, small).unwrap_err();
    assert!(
        matches!(&refused, exact_tiles::TilesError::TooLarge(m) if m.contains("page")),
        "{refused:?}"
    );
}
