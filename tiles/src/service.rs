//! Serving tiles to many viewers at once: open slides kept in an LRU of handles, encoded tiles
//! in a cache bounded in bytes, one decode for concurrent requests of the same missing tile, and
//! the decoding itself on tokio's blocking pool with bounded concurrency.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use moka::future::Cache;
use tokio::sync::Semaphore;

use crate::deepzoom::DeepZoom;
use crate::render::{self, Format};
use crate::source::{self, PixelSource};
use crate::TilesError;

/// How the service is sized.
#[derive(Clone, Copy, Debug)]
pub struct TileConfig {
    /// Open slides kept (EXACT kept 10).
    pub open_slides: u64,
    /// Bytes of encoded tiles kept.
    pub cache_bytes: u64,
    /// JPEG quality of rendered tiles (EXACT: 90).
    pub quality: u8,
    /// Tiles decoded at once; the rest wait.
    pub concurrency: usize,
}

impl Default for TileConfig {
    fn default() -> Self {
        Self {
            open_slides: 32,
            cache_bytes: 256 * 1024 * 1024,
            quality: 90,
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get() * 2),
        }
    }
}

/// An open slide and its DeepZoom grid.
#[derive(Debug)]
pub struct Slide {
    pub source: Arc<dyn PixelSource>,
    pub grid: DeepZoom,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TileKey {
    path: Arc<PathBuf>,
    level: usize,
    col: u64,
    row: u64,
    format: Format,
}

/// Tiles for every slide of one data directory.
#[derive(Clone, Debug)]
pub struct TileService {
    slides: Cache<PathBuf, Arc<Slide>>,
    tiles: Cache<TileKey, Bytes>,
    decoding: Arc<Semaphore>,
    config: TileConfig,
}

impl TileService {
    pub fn new(config: TileConfig) -> Self {
        Self {
            slides: Cache::new(config.open_slides),
            tiles: Cache::builder()
                .weigher(|_, tile: &Bytes| u32::try_from(tile.len()).unwrap_or(u32::MAX))
                .max_capacity(config.cache_bytes)
                .build(),
            decoding: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
        }
    }

    /// The open slide at `path`, opened on first use.
    pub async fn slide(&self, path: &Path) -> Result<Arc<Slide>, TilesError> {
        let owned = path.to_owned();
        self.slides
            .try_get_with(path.to_owned(), async move {
                blocking(move || {
                    let source = source::open(&owned)?;
                    let grid = DeepZoom::for_slide(source.properties());
                    Ok(Arc::new(Slide { source, grid }))
                })
                .await
            })
            .await
            .map_err(unwrap_shared)
    }

    /// The `.dzi` descriptor of the slide at `path`.
    pub async fn dzi(&self, path: &Path, format: Format) -> Result<String, TilesError> {
        let slide = self.slide(path).await?;
        Ok(slide.grid.dzi(match format {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
        }))
    }

    /// DeepZoom tile (`col`, `row`) of `level` of the slide at `path`, from the cache or
    /// rendered once however many ask for it at the same time.
    pub async fn tile(
        &self,
        path: &Path,
        level: usize,
        col: u64,
        row: u64,
        format: Format,
    ) -> Result<Bytes, TilesError> {
        let slide = self.slide(path).await?;
        // Out of range is answered before anything is cached or decoded.
        slide.grid.tile(level, col, row)?;
        let key = TileKey {
            path: Arc::new(path.to_owned()),
            level,
            col,
            row,
            format,
        };
        let quality = self.config.quality;
        let decoding = self.decoding.clone();
        let rendering = slide.clone();
        let result = self
            .tiles
            .try_get_with(key, async move {
                let _permit = decoding
                    .acquire_owned()
                    .await
                    .map_err(|e| TilesError::Encode(e.to_string()))?;
                blocking(move || {
                    render::tile(
                        rendering.source.as_ref(),
                        &rendering.grid,
                        level,
                        col,
                        row,
                        format,
                        quality,
                    )
                    .map(Bytes::from)
                })
                .await
            })
            .await
            .map_err(unwrap_shared);
        if let Err(TilesError::Decode { file, reason }) = &result {
            // OpenSlide keeps an error on its handle: the next request opens the slide afresh.
            tracing::warn!(
                file,
                reason,
                level,
                col,
                row,
                "a tile failed to decode; the slide will be reopened"
            );
            self.slides.invalidate(path).await;
        }
        result
    }
}

/// Runs `work` on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TilesError> + Send + 'static,
) -> Result<T, TilesError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(TilesError::Encode(
            "rendering panicked; the error is logged".into(),
        )),
        Err(e) => Err(TilesError::Encode(e.to_string())),
    }
}

/// moka shares one error among the waiters of a failed load; each gets its own copy.
fn unwrap_shared(shared: Arc<TilesError>) -> TilesError {
    Arc::unwrap_or_clone(shared)
}
