//! Just enough of TIFF to find a stored tile's bytes: the directories of a (Big)TIFF file, their
//! tile offsets, byte counts, JPEG tables and colour space. OpenSlide reads the pixels; this
//! reads the container, so that a stored JPEG tile can be sent as it is.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// One image directory, as far as passthrough needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredDirectory {
    pub width: u64,
    pub height: u64,
    pub tile_width: u64,
    pub tile_height: u64,
    pub compression: u16,
    pub photometric: u16,
    pub tile_offsets: Vec<u64>,
    pub tile_byte_counts: Vec<u64>,
    pub jpeg_tables: Option<Vec<u8>>,
}

impl StoredDirectory {
    pub fn is_tiled(&self) -> bool {
        self.tile_width > 0 && self.tile_height > 0 && !self.tile_offsets.is_empty()
    }

    pub fn columns(&self) -> u64 {
        self.width.div_ceil(self.tile_width.max(1))
    }
}

/// Most directories read from one file: a guard against loops in a damaged file.
const MAX_DIRECTORIES: usize = 1_000;
/// Most entries in one directory, and most values in one array, read.
const MAX_ENTRIES: u64 = 10_000;
const MAX_VALUES: u64 = 50_000_000;

struct Reader {
    file: File,
    little: bool,
    big: bool,
}

impl Reader {
    fn bytes(&mut self, at: u64, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.file.seek(SeekFrom::Start(at))?;
        self.file.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn uint(&self, b: &[u8]) -> u64 {
        let mut v = 0u64;
        if self.little {
            for (i, byte) in b.iter().enumerate() {
                v |= u64::from(*byte) << (8 * i);
            }
        } else {
            for byte in b {
                v = (v << 8) | u64::from(*byte);
            }
        }
        v
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// Every directory of the TIFF at `path`, in file order.
pub fn directories(path: &Path) -> io::Result<Vec<StoredDirectory>> {
    let mut file = File::open(path)?;
    let mut header = [0u8; 16];
    file.read_exact(&mut header[..8])?;
    let little = match &header[..2] {
        b"II" => true,
        b"MM" => false,
        _ => return Err(invalid("not a TIFF file")),
    };
    let mut r = Reader {
        file,
        little,
        big: false,
    };
    let version = r.uint(&header[2..4]);
    let mut next = match version {
        42 => r.uint(&header[4..8]),
        43 => {
            r.big = true;
            let rest = r.bytes(8, 8)?;
            r.uint(&rest)
        }
        _ => return Err(invalid("not a TIFF file")),
    };
    let mut found = Vec::new();
    while next != 0 && found.len() < MAX_DIRECTORIES {
        let (directory, after) = read_directory(&mut r, next)?;
        found.push(directory);
        next = after;
    }
    Ok(found)
}

fn read_directory(r: &mut Reader, at: u64) -> io::Result<(StoredDirectory, u64)> {
    let (count_size, entry_size, pointer_size) = if r.big { (8, 20, 8) } else { (2, 12, 4) };
    let count_bytes = r.bytes(at, count_size)?;
    let count = r.uint(&count_bytes);
    if count > MAX_ENTRIES {
        return Err(invalid("a TIFF directory with implausibly many entries"));
    }
    let table = r.bytes(
        at + count_size as u64,
        (count as usize) * entry_size + pointer_size,
    )?;
    let mut d = StoredDirectory::default();
    for e in 0..count as usize {
        let entry = &table[e * entry_size..(e + 1) * entry_size];
        let tag = r.uint(&entry[0..2]) as u16;
        let kind = r.uint(&entry[2..4]) as u16;
        let (n, value) = if r.big {
            (r.uint(&entry[4..12]), &entry[12..20])
        } else {
            (r.uint(&entry[4..8]), &entry[8..12])
        };
        let size = match kind {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            16..=18 => 8,
            _ => continue,
        };
        if n > MAX_VALUES {
            return Err(invalid("a TIFF array with implausibly many values"));
        }
        let total = (n as usize) * size;
        let data = if total <= value.len() {
            value[..total].to_vec()
        } else {
            let offset = r.uint(value);
            r.bytes(offset, total)?
        };
        let numbers = || -> Vec<u64> { data.chunks(size).map(|c| r.uint(c)).collect() };
        match tag {
            256 => d.width = numbers().first().copied().unwrap_or(0),
            257 => d.height = numbers().first().copied().unwrap_or(0),
            259 => d.compression = numbers().first().copied().unwrap_or(0) as u16,
            262 => d.photometric = numbers().first().copied().unwrap_or(0) as u16,
            322 => d.tile_width = numbers().first().copied().unwrap_or(0),
            323 => d.tile_height = numbers().first().copied().unwrap_or(0),
            324 => d.tile_offsets = numbers(),
            325 => d.tile_byte_counts = numbers(),
            347 => d.jpeg_tables = Some(data.clone()),
            _ => {}
        }
    }
    let next = r.uint(&table[(count as usize) * entry_size..]);
    Ok((d, next))
}

/// The bytes of stored tile `index` of `directory`, read at their offset from an open `file`
/// (a positioned read: many threads may share one handle).
pub fn tile_bytes(file: &File, directory: &StoredDirectory, index: usize) -> io::Result<Vec<u8>> {
    let (Some(offset), Some(length)) = (
        directory.tile_offsets.get(index),
        directory.tile_byte_counts.get(index),
    ) else {
        return Err(invalid("no such tile"));
    };
    if *length == 0 || *length > 64 * 1024 * 1024 {
        return Err(invalid("a tile of implausible size"));
    }
    let mut buf = vec![0; *length as usize];
    std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, *offset)?;
    Ok(buf)
}

/// A stored JPEG tile as a complete JPEG a browser shows: the shared tables merged in, and for
/// tiles coded in RGB rather than YCbCr (Aperio's "RGB" JPEGs, Photometric 2) an Adobe marker
/// that tells decoders not to convert colours.
pub fn complete_jpeg(tile: &[u8], tables: Option<&[u8]>, rgb_coded: bool) -> io::Result<Vec<u8>> {
    if tile.len() < 4 || tile[..2] != [0xFF, 0xD8] {
        return Err(invalid("a stored tile that is not a JPEG stream"));
    }
    let mut out = Vec::with_capacity(tile.len() + 1024);
    out.extend_from_slice(&[0xFF, 0xD8]);
    if rgb_coded {
        // APP14 "Adobe", version 100, flags 0, 0, transform 0 (no colour conversion).
        out.extend_from_slice(&[
            0xFF, 0xEE, 0x00, 0x0E, b'A', b'd', b'o', b'b', b'e', 0x00, 0x64, 0, 0, 0, 0, 0,
        ]);
    }
    if let Some(tables) = tables {
        // Between the tables' SOI and EOI.
        if tables.len() >= 4
            && tables[..2] == [0xFF, 0xD8]
            && tables[tables.len() - 2..] == [0xFF, 0xD9]
        {
            out.extend_from_slice(&tables[2..tables.len() - 2]);
        } else {
            return Err(invalid("JPEG tables that are not an SOI ... EOI block"));
        }
    }
    out.extend_from_slice(&tile[2..]);
    Ok(out)
}

/// Compression 7 (JPEG) and 8 (Deflate); photometric 2 (RGB) and 6 (YCbCr).
pub(crate) const JPEG: u16 = 7;
pub(crate) const DEFLATE: u16 = 8;
pub(crate) const RGB: u16 = 2;
pub(crate) const YCBCR: u16 = 6;

/// The entries every image directory has (8-bit RGB, chunky).
pub(crate) fn base_entries(
    w: u32,
    h: u32,
    description: &str,
    subfile: u32,
    compression: u16,
    photometric: u16,
) -> Vec<(u16, Value)> {
    vec![
        (254, Value::Long(vec![subfile])),
        (256, Value::Long(vec![w])),
        (257, Value::Long(vec![h])),
        (258, Value::Short(vec![8, 8, 8])),
        (259, Value::Short(vec![compression])),
        (262, Value::Short(vec![photometric])),
        (270, Value::Ascii(description.to_owned())),
        (277, Value::Short(vec![3])),
        (284, Value::Short(vec![1])),
    ]
}

/// One directory to write: its entries, by tag.
pub(crate) struct Directory {
    pub(crate) entries: Vec<(u16, Value)>,
}

pub(crate) enum Value {
    Short(Vec<u16>),
    Long(Vec<u32>),
    Ascii(String),
    Undefined(Vec<u8>),
}

impl Value {
    /// (field type, count, bytes).
    fn encode(&self) -> (u16, u32, Vec<u8>) {
        match self {
            Value::Short(v) => (
                3,
                v.len() as u32,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Value::Long(v) => (
                4,
                v.len() as u32,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Value::Ascii(s) => {
                let mut bytes = s.as_bytes().to_vec();
                bytes.push(0);
                (2, bytes.len() as u32, bytes)
            }
            Value::Undefined(v) => (7, v.len() as u32, v.clone()),
        }
    }
}

/// Writes a little-endian classic TIFF one directory at a time: its image data first, then the
/// directory, then the link from the previous one.
pub(crate) struct TiffWriter {
    out: BufWriter<File>,
    at: u64,
    /// Where the previous directory's "next" pointer sits.
    link: u64,
}

impl TiffWriter {
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(b"II\x2A\x00\x00\x00\x00\x00")?;
        Ok(Self {
            out,
            at: 8,
            link: 4,
        })
    }

    pub(crate) fn data(&mut self, bytes: &[u8]) -> io::Result<u32> {
        let offset = self.at;
        self.out.write_all(bytes)?;
        self.at += bytes.len() as u64;
        u32::try_from(offset)
            .map_err(|_| io::Error::other("the slide outgrew a classic TIFF (4 GiB)"))
    }

    pub(crate) fn directory(&mut self, mut directory: Directory) -> io::Result<()> {
        if self.at % 2 == 1 {
            self.data(&[0])?;
        }
        directory.entries.sort_by_key(|(tag, _)| *tag);
        let start = self.at;
        let count = directory.entries.len() as u64;
        let mut overflow_at = start + 2 + count * 12 + 4;
        let mut table = Vec::new();
        let mut overflow = Vec::new();
        table.extend_from_slice(&(count as u16).to_le_bytes());
        for (tag, value) in &directory.entries {
            let (kind, n, mut bytes) = value.encode();
            table.extend_from_slice(&tag.to_le_bytes());
            table.extend_from_slice(&kind.to_le_bytes());
            table.extend_from_slice(&n.to_le_bytes());
            if bytes.len() <= 4 {
                bytes.resize(4, 0);
                table.extend_from_slice(&bytes);
            } else {
                table.extend_from_slice(&(overflow_at as u32).to_le_bytes());
                if bytes.len() % 2 == 1 {
                    bytes.push(0);
                }
                overflow_at += bytes.len() as u64;
                overflow.extend_from_slice(&bytes);
            }
        }
        let next_pointer = self.at + 2 + count * 12;
        table.extend_from_slice(&0u32.to_le_bytes());
        self.data(&table)?;
        self.data(&overflow)?;
        // Link the previous directory (or the header) to this one.
        self.out.seek(SeekFrom::Start(self.link))?;
        self.out.write_all(&(start as u32).to_le_bytes())?;
        self.out.seek(SeekFrom::Start(self.at))?;
        self.link = next_pointer;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

/// A complete baseline JPEG of an RGB tile, YCbCr 4:2:0: what slide scanners write, and what a
/// directory's `YCbCrSubsampling` of 2, 2 says.
pub fn encode_jpeg_tile(rgb: &[u8], w: u32, h: u32, quality: u8) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder
        .encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(out)
}
