//! Slides made on the spot, for tests and benchmarks: pyramidal tiled JPEG TIFFs that OpenSlide
//! reads as `generic-tiff`, Aperio-style SVS files it reads as `aperio` (JPEG tables shared in
//! the `JPEGTables` tag, a thumbnail, a label and a macro image), and broken variants. Nothing
//! is held whole in memory: tiles are drawn from a procedural texture one at a time, so a
//! 50,000 px slide costs a tile's worth of memory.
//!
//! The texture is tissue-like: blobs of pink stroma with purple nuclei over a near-white
//! background, so JPEG tiles have realistic sizes.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::tiff::{self, Directory, TiffWriter, Value};

/// Which vendor's layout to write.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Flavor {
    /// Tiled levels only, each tile a complete JPEG: OpenSlide's `generic-tiff`.
    GenericTiff,
    /// Aperio's layout: level 0, a stripped thumbnail, the other levels, a label and a macro;
    /// tiles share their JPEG tables; `ImageDescription` carries `AppMag` and `MPP`.
    Aperio { app_mag: u32, mpp: f64 },
}

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlideSpec {
    pub width: u32,
    pub height: u32,
    /// Edge of the square tiles (a multiple of 16, as TIFF demands).
    pub tile: u32,
    /// Each level is this many times smaller than the one before.
    pub level_factor: u32,
    pub quality: u8,
    pub flavor: Flavor,
}

impl SlideSpec {
    /// OpenSlide's test-slide habits: 4x levels down to about one tile.
    pub fn generic(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            tile: 256,
            level_factor: 4,
            quality: 80,
            flavor: Flavor::GenericTiff,
        }
    }

    /// Aperio's habits: 240 px tiles, 4x levels, 20x at 0.499 µm/px.
    pub fn aperio(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            tile: 240,
            level_factor: 4,
            quality: 70,
            flavor: Flavor::Aperio {
                app_mag: 20,
                mpp: 0.499,
            },
        }
    }

    /// Width and height of each level, largest first: down to the first level that fits in
    /// one tile (at least level 0).
    pub fn levels(&self) -> Vec<(u32, u32)> {
        let mut levels = vec![(self.width, self.height)];
        let mut factor = 1u32;
        loop {
            let (w, h) = *levels.last().expect("level 0 is there");
            if w <= self.tile && h <= self.tile {
                return levels;
            }
            factor *= self.level_factor;
            levels.push((
                self.width.div_ceil(factor).max(1),
                self.height.div_ceil(factor).max(1),
            ));
        }
    }
}

/// The slide's colour at level-0 coordinates (x, y): a pure function, so every level and every
/// test can recompute it.
pub fn texture(x: f64, y: f64, width: f64) -> [u8; 3] {
    let tissue_scale = (width / 5.0).max(200.0);
    let tissue = value_noise(x / tissue_scale, y / tissue_scale, 1);
    if tissue < 0.5 {
        let grain = (value_noise(x / 3.0, y / 3.0, 2) * 6.0) as u8;
        return [242 + grain, 242 + grain, 244 + grain.min(4)];
    }
    let stroma = value_noise(x / 40.0, y / 40.0, 3);
    let nucleus = value_noise(x / 9.0, y / 9.0, 4);
    if nucleus > 0.72 {
        let d = (nucleus * 60.0) as u8;
        [110 - d / 2, 50 + d / 3, 150 - d / 3]
    } else {
        let s = (stroma * 50.0) as u8;
        [225 - s / 2, 150 + s / 2, 195 - s / 4]
    }
}

/// Smooth noise in [0, 1): hashed lattice values, bilinearly blended with a smoothstep.
fn value_noise(x: f64, y: f64, seed: u64) -> f64 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let corner = |dx: f64, dy: f64| lattice((x0 + dx) as i64, (y0 + dy) as i64, seed);
    let top = corner(0.0, 0.0) + (corner(1.0, 0.0) - corner(0.0, 0.0)) * sx;
    let bottom = corner(0.0, 1.0) + (corner(1.0, 1.0) - corner(0.0, 1.0)) * sx;
    top + (bottom - top) * sy
}

fn lattice(x: i64, y: i64, seed: u64) -> f64 {
    let mut h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ seed.wrapping_mul(0x1656_67B1_9E37_79F9);
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Draws a `w` x `h` patch of level `downsample` whose top-left pixel is (x, y) in that level;
/// pixels beyond the slide's `size` are white, as a TIFF pads its edge tiles.
pub fn draw(x: u32, y: u32, w: u32, h: u32, downsample: f64, size: (u32, u32)) -> Vec<u8> {
    let level_w = (f64::from(size.0) / downsample).ceil() as u32;
    let level_h = (f64::from(size.1) / downsample).ceil() as u32;
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for py in y..y + h {
        for px in x..x + w {
            let colour = if px < level_w && py < level_h {
                texture(
                    (f64::from(px) + 0.5) * downsample,
                    (f64::from(py) + 0.5) * downsample,
                    f64::from(size.0),
                )
            } else {
                [255, 255, 255]
            };
            rgb.extend_from_slice(&colour);
        }
    }
    rgb
}

/// Splits a complete JPEG into its tables (an SOI, the DQT and DHT segments, an EOI: what
/// Aperio keeps in `JPEGTables`) and the abbreviated stream without them.
pub fn split_tables(jpeg: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut tables = vec![0xFF, 0xD8];
    let mut stream = vec![0xFF, 0xD8];
    let mut at = 2;
    while at + 4 <= jpeg.len() {
        let marker = jpeg[at + 1];
        if marker == 0xDA {
            // Start of scan: the rest is entropy-coded data and the EOI.
            stream.extend_from_slice(&jpeg[at..]);
            break;
        }
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        let segment = &jpeg[at..at + 2 + length];
        if marker == 0xDB || marker == 0xC4 {
            tables.extend_from_slice(segment);
        } else if marker != 0xE0 {
            // APP0 (JFIF) goes: TIFF says the colour space, and Aperio tiles carry none.
            stream.extend_from_slice(segment);
        }
        at += 2 + length;
    }
    tables.extend_from_slice(&[0xFF, 0xD9]);
    (tables, stream)
}

/// The entries of a directory of JPEG-compressed YCbCr 4:2:0 pixels.
fn image_entries(w: u32, h: u32, description: &str, subfile: u32) -> Vec<(u16, Value)> {
    let mut entries = tiff::base_entries(w, h, description, subfile, tiff::JPEG, tiff::YCBCR);
    entries.push((530, Value::Short(vec![2, 2])));
    entries
}

/// Writes the slide `spec` describes to `path`.
pub fn write_slide(path: &Path, spec: &SlideSpec) -> io::Result<()> {
    let mut tiff = TiffWriter::create(path)?;
    let levels = spec.levels();
    let size = (spec.width, spec.height);
    let aperio = match spec.flavor {
        Flavor::Aperio { app_mag, mpp } => Some((app_mag, mpp)),
        Flavor::GenericTiff => None,
    };
    for (index, (w, h)) in levels.iter().copied().enumerate() {
        let downsample = f64::from(spec.width) / f64::from(w);
        let (columns, rows) = (w.div_ceil(spec.tile), h.div_ceil(spec.tile));
        let mut offsets = Vec::with_capacity((columns * rows) as usize);
        let mut counts = Vec::with_capacity(offsets.capacity());
        let mut tables = None;
        for row in 0..rows {
            for column in 0..columns {
                let rgb = draw(
                    column * spec.tile,
                    row * spec.tile,
                    spec.tile,
                    spec.tile,
                    downsample,
                    size,
                );
                let jpeg = tiff::encode_jpeg_tile(&rgb, spec.tile, spec.tile, spec.quality)?;
                let bytes = if aperio.is_some() {
                    let (t, stream) = split_tables(&jpeg);
                    tables.get_or_insert(t);
                    stream
                } else {
                    jpeg
                };
                offsets.push(tiff.data(&bytes)?);
                counts.push(bytes.len() as u32);
            }
        }
        let description = match aperio {
            Some((app_mag, mpp)) => format!(
                "Aperio Image Library v10.0.50\r\n{}x{} [0,0 {}x{}] ({}x{}) JPEG/RGB Q={}|AppMag = {app_mag}|MPP = {mpp}|Filename = exact-fixture",
                spec.width, spec.height, w, h, spec.tile, spec.tile, spec.quality
            ),
            None => format!("Exact test slide, level {index}"),
        };
        // Generic TIFF marks the smaller levels as reduced-resolution images; Aperio does not.
        let subfile = u32::from(aperio.is_none() && index > 0);
        let mut entries = image_entries(w, h, &description, subfile);
        entries.extend([
            (322, Value::Long(vec![spec.tile])),
            (323, Value::Long(vec![spec.tile])),
            (324, Value::Long(offsets)),
            (325, Value::Long(counts)),
        ]);
        if let Some(tables) = tables {
            entries.push((347, Value::Undefined(tables)));
        }
        tiff.directory(Directory { entries })?;
        if index == 0 {
            if let Some((app_mag, mpp)) = aperio {
                let (tw, th) = fit(spec.width, spec.height, 1024);
                let description = format!(
                    "Aperio Image Library v10.0.50\r\n{}x{} -> {tw}x{th} - |AppMag = {app_mag}|MPP = {mpp}",
                    spec.width, spec.height
                );
                let ds = f64::from(spec.width) / f64::from(tw);
                strip_image(
                    &mut tiff,
                    &draw(0, 0, tw, th, ds, size),
                    tw,
                    th,
                    &description,
                    0,
                )?;
            }
        }
    }
    if aperio.is_some() {
        let label: Vec<u8> = (0..300 * 200)
            .flat_map(|i| {
                if (i / 20) % 2 == 0 {
                    [20, 20, 20]
                } else {
                    [250, 250, 250]
                }
            })
            .collect();
        strip_image(
            &mut tiff,
            &label,
            300,
            200,
            "Aperio Image Library v10.0.50\nlabel 300x200",
            1,
        )?;
        let (mw, mh) = fit(spec.width, spec.height, 600);
        let ds = f64::from(spec.width) / f64::from(mw);
        strip_image(
            &mut tiff,
            &draw(0, 0, mw, mh, ds, size),
            mw,
            mh,
            "Aperio Image Library v10.0.50\nmacro 600x400",
            9,
        )?;
    }
    tiff.finish()
}

/// The size of `w` x `h` scaled to fit `longest` on its longer side.
fn fit(w: u32, h: u32, longest: u32) -> (u32, u32) {
    let scale = f64::from(longest) / f64::from(w.max(h));
    (
        ((f64::from(w) * scale).round() as u32).max(1),
        ((f64::from(h) * scale).round() as u32).max(1),
    )
}

/// An associated image: one JPEG strip.
fn strip_image(
    tiff: &mut TiffWriter,
    rgb: &[u8],
    w: u32,
    h: u32,
    description: &str,
    subfile: u32,
) -> io::Result<()> {
    let jpeg = tiff::encode_jpeg_tile(rgb, w, h, 85)?;
    let offset = tiff.data(&jpeg)?;
    let mut entries = image_entries(w, h, description, subfile);
    entries.extend([
        (273, Value::Long(vec![offset])),
        (278, Value::Long(vec![h])),
        (279, Value::Long(vec![jpeg.len() as u32])),
    ]);
    tiff.directory(Directory { entries })
}

/// Broken files, each as a slide upload might arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breakage {
    /// The file ends halfway.
    Truncated,
    /// Not an image at all.
    Garbage,
    /// Zero bytes.
    Empty,
}

/// Writes a good slide to `path` and breaks it.
pub fn write_broken(path: &Path, spec: &SlideSpec, breakage: Breakage) -> io::Result<()> {
    match breakage {
        Breakage::Truncated => {
            write_slide(path, spec)?;
            let length = std::fs::metadata(path)?.len();
            File::options().write(true).open(path)?.set_len(length / 2)
        }
        Breakage::Garbage => std::fs::write(
            path,
            b"PK\x03\x04 this is not a slide, it only pretends to be".repeat(100),
        ),
        Breakage::Empty => std::fs::write(path, b""),
    }
}

/// Overwrites the start of level 0's first tile with zeros: a slide that opens but has one tile
/// that is not a JPEG any more. Returns the offset of the tile.
pub fn corrupt_first_tile(path: &Path) -> io::Result<u64> {
    // The writer puts the first tile's data right after the 8-byte header.
    let mut bytes = std::fs::read(path)?;
    if bytes.get(8..10) != Some(&[0xFF, 0xD8]) {
        return Err(io::Error::other(
            "the first tile does not start after the header",
        ));
    }
    for b in &mut bytes[8..72] {
        *b = 0;
    }
    std::fs::write(path, bytes)?;
    Ok(8)
}

/// The colour of every pixel of page `page` (0-based) of [`write_multi_page_tiff`].
pub fn page_colour(page: u32) -> [u8; 3] {
    [
        (40 + page * 60 % 200) as u8,
        (220 - page * 45 % 200) as u8,
        90,
    ]
}

/// A plain (striped, LZW) multi-page TIFF of `pages` pages of `w` x `h` px, each one flat
/// colour ([`page_colour`]), with a reduced-resolution page after the first, which is a level
/// and not a frame: what microscopes export as a time series or a z-stack.
pub fn write_multi_page_tiff(path: &Path, w: u32, h: u32, pages: u32) -> io::Result<()> {
    use ::tiff::encoder::{colortype::RGB8, Compression, TiffEncoder};
    let fail = |e: ::tiff::TiffError| io::Error::other(e.to_string());
    let mut encoder = TiffEncoder::new(File::create(path)?)
        .map_err(fail)?
        .with_compression(Compression::Lzw);
    for page in 0..pages {
        let pixels = page_colour(page).repeat((w * h) as usize);
        encoder.write_image::<RGB8>(w, h, &pixels).map_err(fail)?;
        if page == 0 {
            let (rw, rh) = (w.div_ceil(2), h.div_ceil(2));
            let mut reduced = encoder.new_image::<RGB8>(rw, rh).map_err(fail)?;
            reduced
                .encoder()
                .write_tag(::tiff::tags::Tag::NewSubfileType, 1u32)
                .map_err(fail)?;
            reduced
                .write_data(&[0u8; 3].repeat((rw * rh) as usize))
                .map_err(fail)?;
        }
    }
    Ok(())
}
