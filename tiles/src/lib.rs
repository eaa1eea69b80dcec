//! Pixels for the viewer: OpenSlide and image pyramids behind one trait, served as
//! DeepZoom tiles, thumbnails and regions.
//!
//! Given a file, it answers pixels. It knows nothing of events, users, permissions or
//! annotations: the API checks who may ask before it asks here.
//!
//! - [`source`]: the [`PixelSource`] trait, slide properties, and [`open`], which picks the
//!   first source that accepts a file;
//! - [`openslide`]: every format OpenSlide reads, through the real library;
//! - [`pyramid`]: plain images, turned once into a tiled pyramid OpenSlide serves;
//! - [`deepzoom`]: the `.dzi` descriptor and OpenSlide's DeepZoom grid;
//! - [`render`]: tiles, thumbnails and regions, resized and encoded;
//! - [`iiif`]: IIIF Image API 3.0, level 1;
//! - [`fixture`]: test slides written on the spot (generic TIFF, Aperio SVS, broken files);
//! - [`synthetic`]: a slide with no file, whose every pixel is known.

pub mod deepzoom;
pub mod fixture;
pub mod frames;
pub mod iiif;
pub mod openslide;
pub mod pyramid;
pub mod render;
pub mod service;
pub mod source;
pub mod synthetic;
pub mod tiff;

pub use deepzoom::DeepZoom;
pub use render::Format;
pub use service::{Slide, TileConfig, TileService};
pub use source::{open, Level, PixelSource, Properties};

/// What can go wrong between a file and its pixels. `Clone`, so that every viewer waiting on
/// one failed render gets the error.
#[derive(Clone, Debug, thiserror::Error)]
pub enum TilesError {
    /// No such file, level, tile or associated image.
    #[error("not found: {0}")]
    NotFound(String),
    /// A file no source reads.
    #[error("{file}: unsupported: {reason}")]
    Unsupported { file: String, reason: String },
    /// A file a source recognised but cannot read (truncated, damaged).
    #[error("{file}: cannot be read: {reason}")]
    Corrupt { file: String, reason: String },
    /// Reading pixels failed inside a slide that opened: one tile may be damaged. The handle
    /// should be reopened (OpenSlide keeps an error once it has one).
    #[error("{file}: pixels could not be decoded: {reason}")]
    Decode { file: String, reason: String },
    /// A level, tile, region or size beyond what the slide has or what is served at once.
    #[error("{0}")]
    OutOfRange(String),
    /// More pixels than allowed at once.
    #[error("{0}")]
    TooLarge(String),
    #[error("encoding failed: {0}")]
    Encode(String),
    #[error("i/o error: {0}")]
    Io(std::sync::Arc<std::io::Error>),
}

impl From<std::io::Error> for TilesError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(std::sync::Arc::new(e))
    }
}
