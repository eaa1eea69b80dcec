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
    /// The database cannot be reached now (refused or lost connections, a server shutting
    /// down, no connection free in time): nothing of the request was stored; it may be tried
    /// again.
    #[error("the database cannot be reached: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
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

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Database(e)
        }
    }
}

impl StoreError {
    /// Whether the database could not be reached: the request may succeed if tried again.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(e) => is_unavailable(e),
            _ => false,
        }
    }
}

/// Whether a database error means the database cannot be reached now (rather than that the
/// request was wrong): refused, broken or timed-out connections, and PostgreSQL's connection
/// exceptions (SQLSTATE class 08), shutdowns (57P01-57P03) and full connection slots (53300).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}
