use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use exact_projections::ReadDb;
use exact_store::{Store, StoreUrl};
use exact_tiles::{TileConfig, TileService};

use crate::auth::sessions::Sessions;
use crate::auth::Credentials;
use crate::commands::Commands;

/// How the server is set up, beyond its store.
#[derive(Clone, Debug)]
pub struct Config {
    /// Uploaded and extracted files live under `DATA_DIR/images/`.
    pub data_dir: PathBuf,
    /// The largest upload accepted, in bytes (one request, all files together).
    pub max_upload_bytes: u64,
    /// Limits on what a zip archive may expand to.
    pub zip: crate::uploads::ZipLimits,
    /// Whether browsers reach the server over https (its public URL): session cookies are then
    /// marked `Secure`.
    pub https: bool,
    /// The address browsers and clients use (`--public-url`, without a trailing `/`): links
    /// in answers are built on it, and it is the one origin logins are taken from. Without
    /// it, the request's `Host` stands in.
    pub public_url: Option<String>,
    /// Whether image sets may be downloaded as zip archives (EXACT's `ENABLE_ZIP_DOWNLOAD`).
    pub zip_downloads: bool,
}

impl Config {
    /// Sets the public URL (and with it whether cookies are `Secure`).
    pub fn set_public_url(&mut self, url: Option<&str>) {
        let url = url.map(|u| u.trim().trim_end_matches('/').to_owned());
        self.https = url.as_deref().is_some_and(|u| u.starts_with("https://"));
        self.public_url = url.filter(|u| !u.is_empty());
    }

    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            max_upload_bytes: 20 << 30,
            zip: crate::uploads::ZipLimits::default(),
            https: false,
            public_url: None,
            zip_downloads: true,
        }
    }
}

/// Everything a request handler may need, shared by all of them.
#[derive(Debug)]
pub struct App {
    pub store: Store,
    pub read: ReadDb,
    pub commands: Commands,
    pub tiles: TileService,
    pub credentials: Credentials,
    pub sessions: Sessions,
    pub config: Config,
}

/// Cheap to clone: one `Arc` around the [`App`].
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<App>);

impl AppState {
    /// Connects the read models and the session table of the store at `url`.
    pub async fn open(store: Store, url: &StoreUrl, config: Config) -> Result<Self, sqlx::Error> {
        let read = ReadDb::connect(url).await?;
        let sessions = Sessions::open(url).await?;
        Ok(Self::new(store, read, sessions, config))
    }

    pub fn new(store: Store, read: ReadDb, sessions: Sessions, config: Config) -> Self {
        Self(Arc::new(App {
            commands: Commands::new(store.clone(), read.clone()),
            store,
            read,
            tiles: TileService::new(TileConfig::default()),
            credentials: Credentials::default(),
            sessions,
            config,
        }))
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
