//! The append-only event log that is Exact's single source of truth, on SQLite (the embedded
//! default) or PostgreSQL, behind one trait: [`EventStore`].
//!
//! It stores envelopes, numbers them with a gapless global `position`, checks each stream's
//! expected version, hands out EXACT's integer ids, links every event to the one before it with
//! a SHA-256 hash chain, and wakes subscribers on commit. It knows nothing of what the events
//! mean: no domain types, no read models, no HTTP.
//!
//! # The hash chain
//!
//! Every envelope stores `prev_hash` (the previous envelope's `hash`; 32 zero bytes for
//! position 1) and
//!
//! ```text
//! hash = SHA-256( prev_hash (32 raw bytes) || UTF-8 bytes of canonical_json(body) )
//! body = { "position": int, "stream": str, "version": int, "event_id": str (lowercase hyphenated
//!          UUID), "type": str, "schema": int, "payload": object, "metadata": object }
//! ```
//!
//! `canonical_json` is Python's `json.dumps(body, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False)`; [`canonical`] spells out the rules for other languages. The store
//! keeps `payload` and `metadata` as canonical text, so the export (`exact store export --format
//! jsonl`, one envelope per line with `prev_hash` and `hash` in lowercase hex) gives an auditor
//! everything needed. The complete check, in Python, is `tests/auditor/verify_chain.py`:
//!
//! ```text
//! prev = bytes(32)
//! for each line e of the export, in order:
//!     body = {k: e[k] for k in ("position", "stream", "version", "event_id",
//!                               "type", "schema", "payload", "metadata")}
//!     text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
//!     assert e["position"] == previous position + 1 and bytes.fromhex(e["prev_hash"]) == prev
//!     prev = hashlib.sha256(prev + text.encode()).digest();  assert prev.hex() == e["hash"]
//! ```
//!
//! Worked example (the test `envelope::tests::worked_test_vector_is_stable`): position 1 of
//! stream `$store`, version 1, event id `01936d3c-7a00-7000-8000-000000000001`, type
//! `StoreInitialized`, schema 1, payload `{"binary_version":"0.1.0","store_id":
//! "01936d3c-7a00-7000-8000-0000000000aa","time":"2024-12-01T00:00:00.000000Z"}` and metadata
//! `{"actor":null,"correlation_id":"01936d3c-7a00-7000-8000-0000000000bb","recorded_at":
//! "2024-12-01T00:00:00.000000Z","source":"system"}` hash, after 32 zero bytes, the text
//!
//! ```text
//! {"event_id":"01936d3c-7a00-7000-8000-000000000001","metadata":{"actor":null,"correlation_id":"01936d3c-7a00-7000-8000-0000000000bb","recorded_at":"2024-12-01T00:00:00.000000Z","source":"system"},"payload":{"binary_version":"0.1.0","store_id":"01936d3c-7a00-7000-8000-0000000000aa","time":"2024-12-01T00:00:00.000000Z"},"position":1,"schema":1,"stream":"$store","type":"StoreInitialized","version":1}
//! ```
//!
//! to `3e7e389721f4cea48c634e56156ab8bc9a9313bdd36b899f6c4fa01093360135` ([`WORKED_EXAMPLE_HASH`];
//! Python's `hashlib.sha256(bytes(32) + text.encode()).hexdigest()` gives the same).
//!
//! A chain proves that nothing inside it was edited, removed, inserted or reordered. It cannot
//! tell that events were cut off its end: keep the head hash that `exact store verify` prints
//! somewhere else (a ticket, a signed report) to anchor it.

pub mod canonical;
mod clock;
mod cold;
mod envelope;
mod error;
mod inline;
mod ops;
mod plan;
mod postgres;
mod postgres_writer;
mod sql;
mod sqlite;
mod sqlite_readers;
#[cfg(feature = "testing")]
pub mod testing;
mod transaction;
mod wal_index;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

pub use clock::{Clock, ManualClock, SystemClock};
pub use envelope::{
    micros_rfc3339, AppendContext, Envelope, Expected, Hash, Metadata, NewEvent, Payload,
    PlannedPayload, Source, StreamAppend, ZERO_HASH,
};
pub use error::{is_unavailable, Result, StoreError};

/// How long a request waits for a PostgreSQL connection (every pool of the server: the log's,
/// the read models', the sessions'). While the database is out of reach, connecting fails and
/// is retried until then, and the request is answered that the database is out of reach
/// instead of hanging.
pub const POSTGRES_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
pub use inline::{Decoded, InlineProjection, Progress, Tx};
pub use ops::{copy, export_jsonl, import_jsonl, ChainProblem, ProblemKind, VerifyReport};
pub use plan::{BuildAppend, IdAllocator};
pub use sql::{SqlRow, SqlValue};
pub use sqlite_readers::Readers as SqliteReaders;

/// The hash of the worked example in the crate docs, as lowercase hex.
pub const WORKED_EXAMPLE_HASH: &str =
    "3e7e389721f4cea48c634e56156ab8bc9a9313bdd36b899f6c4fa01093360135";

/// The stream of the genesis event.
pub const STORE_STREAM: &str = "$store";
/// The type of the genesis event, the first of every log.
pub const STORE_INITIALIZED: &str = "StoreInitialized";

/// The version of Exact that writes the genesis event.
pub const BINARY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Which database holds the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The append-only log. Both backends pass the same test suite (`tests/suite.rs`).
#[async_trait]
pub trait EventStore: Send + Sync + std::fmt::Debug {
    fn backend(&self) -> Backend;

    /// Appends atomically: every event of every stream, or none. `build` runs inside the
    /// transaction with the id counters, so that ids it takes travel in the events and are
    /// given out exactly when the events are stored.
    ///
    /// If the first event's id is stored already, the append is taken as a retry: the stored
    /// envelopes of the batch are returned and nothing is written.
    async fn append_built(
        &self,
        context: AppendContext,
        build: BuildAppend,
    ) -> Result<Vec<Envelope>>;

    /// Events of one stream with `version >= from_version`, in order.
    async fn read_stream(&self, stream: &str, from_version: i64) -> Result<Vec<Envelope>>;

    /// At most `limit` events with `position >= from_position`, in order.
    async fn read_page(&self, from_position: i64, limit: i64) -> Result<Vec<Envelope>>;

    /// The position of the last event, 0 for an empty log.
    async fn last_position(&self) -> Result<i64>;

    /// The last position recorded at or before `at` (0 if the log starts later). Times never go
    /// backwards along the log, so this is the log as it stood at that moment: the way to ask
    /// any `as_of` question by time.
    async fn position_at(&self, at: chrono::DateTime<chrono::Utc>) -> Result<i64>;

    /// The last id handed out per kind.
    async fn counters(&self) -> Result<BTreeMap<String, i64>>;

    /// A receiver of the last committed position, woken on every commit: by this process, and on
    /// PostgreSQL by any process (LISTEN/NOTIFY).
    fn subscribe(&self) -> watch::Receiver<i64>;

    /// A number that moves on every commit of an event outside [`OpenOptions::hot_streams`]: by
    /// this process before its caller hears of the commit, and on PostgreSQL by any process as
    /// its announcement arrives. What a process read from read models that only such events
    /// change stays right while this stays the same. `None` where the store cannot tell: on
    /// SQLite (another process, `exact user`, may commit unannounced) and on PostgreSQL while
    /// it is not listening.
    fn cold_version(&self) -> Option<u64> {
        None
    }

    /// Stores envelopes exactly as they are (positions and hashes preserved) after the current
    /// head; for `exact store copy`. They must continue the chain: the first one's position is
    /// the head's plus one and its `prev_hash` the head's hash.
    async fn import(&self, envelopes: &[Envelope], counters: &BTreeMap<String, i64>) -> Result<()>;

    /// Brings every inline projection up to the head of the log; returns the events applied.
    /// `open` does this before anything is appended.
    async fn catch_up(&self) -> Result<u64>;

    /// Empties the inline projection `name` and replays the whole log into it, in one
    /// transaction (readers see the old read model until the new one is complete); returns the
    /// events applied.
    async fn rebuild(&self, name: &str, progress: Progress) -> Result<u64>;
}

/// How the store is shared: cheap to clone, one per process.
pub type Store = Arc<dyn EventStore>;

impl dyn EventStore + '_ {
    /// Appends `events` to one stream.
    pub async fn append(
        &self,
        stream: &str,
        expected: Expected,
        events: Vec<NewEvent>,
        context: AppendContext,
    ) -> Result<Vec<Envelope>> {
        let append = StreamAppend::new(stream, expected, events);
        self.append_built(context, Box::new(move |_| vec![append.clone()]))
            .await
    }

    /// Appends to several streams in one transaction.
    pub async fn append_many(
        &self,
        appends: Vec<StreamAppend>,
        context: AppendContext,
    ) -> Result<Vec<Envelope>> {
        self.append_built(context, Box::new(move |_| appends.clone()))
            .await
    }
}

/// Where the log lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl StoreUrl {
    /// `postgres://...` or `postgresql://...`, `sqlite://PATH`, `sqlite:PATH`, or a plain path
    /// to an SQLite file.
    pub fn parse(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::UnsupportedUrl(url.to_owned()));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.contains("://") || url.is_empty() {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        Ok(Self::Sqlite(PathBuf::from(url)))
    }

    /// The embedded default: `DATA_DIR/exact.db`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::Sqlite(data_dir.join("exact.db"))
    }

    pub fn backend(&self) -> Backend {
        match self {
            StoreUrl::Sqlite(_) => Backend::Sqlite,
            StoreUrl::Postgres(_) => Backend::Postgres,
        }
    }
}

/// How to open a store.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub clock: Arc<dyn Clock>,
    /// Append the genesis event to an empty log (off only for `store copy` targets).
    pub initialize: bool,
    /// Read models kept in each append's transaction, in this order.
    pub projections: Vec<Arc<dyn InlineProjection>>,
    /// Prefixes of the streams whose events change nothing a process caches: commits to them
    /// alone leave [`EventStore::cold_version`] as it is.
    pub hot_streams: Vec<String>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            initialize: true,
            projections: Vec::new(),
            hot_streams: Vec::new(),
        }
    }
}

/// Opens (creating and migrating if needed) the store at `url`.
pub async fn open(url: &StoreUrl, options: OpenOptions) -> Result<Store> {
    let projections: inline::Projections = options.projections.into();
    let clock = options.clock;
    let hot_streams = options.hot_streams;
    let store: Store = match url {
        StoreUrl::Sqlite(path) => {
            Arc::new(sqlite::SqliteStore::open(path, clock.clone(), projections).await?)
        }
        StoreUrl::Postgres(url) => {
            Arc::new(postgres::PgStore::open(url, clock.clone(), projections, hot_streams).await?)
        }
    };
    // Read models first catch up with what was appended without them, a page per transaction.
    store.catch_up().await?;
    if options.initialize {
        initialize(store.as_ref(), clock.as_ref()).await?;
    }
    Ok(store)
}

/// Writes the genesis event if the log is empty, so that every chain starts from an anchor that
/// names the store and the binary that created it.
async fn initialize(store: &dyn EventStore, clock: &dyn Clock) -> Result<()> {
    if store.last_position().await? > 0 {
        return Ok(());
    }
    let payload = serde_json::json!({
        "store_id": uuid::Uuid::now_v7(),
        "time": micros_rfc3339::format(&clock::to_micros(clock.now())),
        "binary_version": BINARY_VERSION,
    });
    let genesis = NewEvent::new(STORE_INITIALIZED, payload);
    match store
        .append(
            STORE_STREAM,
            Expected::NoStream,
            vec![genesis],
            AppendContext::system(),
        )
        .await
    {
        // Another process initialized it first: that is fine.
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Maps sqlx's "the database has a migration this binary lacks" to a clear refusal.
fn check_migration(
    result: std::result::Result<(), sqlx::migrate::MigrateError>,
    known: i64,
) -> Result<()> {
    match result {
        Err(sqlx::migrate::MigrateError::VersionMissing(found)) if found > known => {
            Err(StoreError::SchemaTooNew { found, known })
        }
        other => Ok(other?),
    }
}
