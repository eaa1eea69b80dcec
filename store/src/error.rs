use crate::Expected;

/// Everything that can go wrong in the event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream's version is not the one the caller expected: someone else wrote first.
    #[error("version conflict on stream {stream}: expected {expected}, found {}", actual.map_or("no stream".to_string(), |v| format!("version {v}")))]
    Conflict {
        stream: String,
        expected: Expected,
        actual: Option<i64>,
    },
    /// Some, but not all, of a batch's event ids are stored already: not a retry of one append.
    #[error("event {event_id} is already stored as part of another append")]
    DuplicateEvent { event_id: uuid::Uuid },
    /// An append request that cannot be stored as it is (an empty stream name, a bad payload).
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// The database was migrated by a newer Exact than this binary.
    #[error("the database schema is at migration {found}, newer than this binary knows (up to {known}); run a newer exact")]
    SchemaTooNew { found: i64, known: i64 },
    /// `store copy` only writes into a store that holds nothing yet.
    #[error("the target store is not empty: it holds {events} events")]
    TargetNotEmpty { events: i64 },
    /// A database URL this build cannot open.
    #[error("unsupported database URL {0:?}: use postgres://... or sqlite://PATH")]
    UnsupportedUrl(String),
    /// A stored row that does not decode (a tampered or foreign database).
    #[error("stored event at position {position} is unreadable: {reason}")]
    Corrupt { position: i64, reason: String },
    /// An inline projection refused or failed; the append was rolled back.
    #[error("read model {name} failed: {reason}")]
    Projection { name: String, reason: String },
    /// The transaction holding this append did not commit (the database went away, or another
    /// step of its group broke the transaction): nothing of it is stored.
    #[error("the transaction did not commit: {0}")]
    NotCommitted(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("sqlite error: {0}")]
    Sqlite(String),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A step the store ran on tokio's blocking pool (hashing, decoding) panicked or was
    /// cancelled; the write it belonged to was rolled back.
    #[error("a background step of the store failed: {0}")]
    Background(#[from] tokio::task::JoinError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
