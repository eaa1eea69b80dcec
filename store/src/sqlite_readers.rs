//! Reads of the SQLite backend, on read-only connections stepped on tokio's blocking pool.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every row to the calling
//! task separately, a thread wake-up per row: about 20 µs a row on a small machine, which made
//! reading the log the slowest thing the store did. rusqlite steps rows in the thread that asks,
//! so a page of thousands of events is one hand-over. Both drivers link the same bundled SQLite
//! (`libsqlite3-sys`); writes have a rusqlite connection of their own (`sqlite.rs`), and
//! migrations run through sqlx.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::DateTime;
use rusqlite::{Connection, OpenFlags};

use crate::ops::{EventRow, COLUMNS};
use crate::{Envelope, Hash, Result, StoreError};

/// Idle connections kept for reuse: as many as requests read at once under load, since a new
/// connection parses the schema and maps the file again (perf showed that churn as a good part
/// of a small request's cost with 16 clients).
const KEEP_IDLE: usize = 16;
/// Prepared statements per connection: the catalog's and the annotation lists' queries.
const STATEMENT_CACHE: usize = 64;

/// A small pool of read-only connections: the store reads its log through it, and the read
/// models' hot queries (`exact-projections`) use one of their own.
#[derive(Clone, Debug)]
pub struct Readers {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl Readers {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            idle: Arc::default(),
        }
    }

    /// Runs `read` on a pooled connection on the blocking pool.
    pub async fn with<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = self.clone();
        let joined = tokio::task::spawn_blocking(move || readers.with_here(read)).await;
        match joined {
            Ok(result) => Ok(result?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Io(std::io::Error::other(e))),
        }
    }

    /// Runs `read` on a pooled connection in this thread.
    fn with_here<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < KEEP_IDLE {
            idle.push(conn);
        }
        result
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        /// SQLite's default `SQLITE_MAX_MMAP_SIZE`; a larger request is cut to it.
        const MMAP_SIZE: i64 = 0x7fff_0000;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // Read pages through a memory map: viewport queries touch thousands of pages, and each
        // reader's own page cache is small; the map shares the OS cache without copying. As
        // large as SQLite allows (`SQLITE_MAX_MMAP_SIZE`, 2 GiB by default): a store of a
        // million annotations is 1.4 GB, and pages past the map are read by system calls
        // (viewport p50 4.3 -> 2.9 ms on such a store with 1 GiB mapped and with 2).
        conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    /// Up to `limit` rows of `sql` (with `$n` placeholders, as the append path writes them),
    /// each read by `decode`.
    pub async fn query<T: Send + 'static>(
        &self,
        sql: String,
        args: Vec<crate::SqlValue<'static>>,
        limit: usize,
        decode: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        self.with(move |conn| crate::sql::sqlite_rows(conn, &sql, &args, limit, decode))
            .await
    }

    pub(crate) async fn page(&self, from_position: i64, limit: i64) -> Result<Vec<Envelope>> {
        self.envelopes(
            "WHERE position >= ?1 ORDER BY position LIMIT ?2",
            (from_position, limit),
        )
        .await
    }

    /// Up to `limit` events from `from_position` to `until`, read in this thread (one of the
    /// blocking pool's).
    pub(crate) fn page_now(
        &self,
        from_position: i64,
        until: i64,
        limit: i64,
    ) -> Result<Vec<Envelope>> {
        let rows = self.with_here(|conn| {
            event_rows(
                conn,
                "WHERE position >= ?1 AND position <= ?2 ORDER BY position LIMIT ?3",
                (from_position, until, limit),
            )
        })?;
        into_envelopes(rows)
    }

    pub(crate) async fn stream(&self, stream: &str, from_version: i64) -> Result<Vec<Envelope>> {
        self.envelopes(
            "WHERE stream = ?1 AND version >= ?2 ORDER BY version",
            (stream.to_owned(), from_version),
        )
        .await
    }

    /// The envelopes that `SELECT ... FROM events {condition}` finds.
    async fn envelopes<P>(&self, condition: &'static str, params: P) -> Result<Vec<Envelope>>
    where
        P: rusqlite::Params + Send + 'static,
    {
        let rows = self
            .with(move |conn| event_rows(conn, condition, params))
            .await?;
        into_envelopes(rows)
    }

    pub(crate) async fn last_position(&self) -> Result<i64> {
        self.with(|conn| {
            conn.query_row("SELECT MAX(position) FROM events", [], |row| {
                row.get::<_, Option<i64>>(0)
            })
            .map(|last| last.unwrap_or(0))
        })
        .await
    }

    pub(crate) async fn position_at(&self, micros: i64) -> Result<i64> {
        self.with(move |conn| {
            conn.query_row(
                "SELECT MAX(position) FROM events WHERE recorded_at <= ?1",
                [micros],
                |row| row.get::<_, Option<i64>>(0),
            )
            .map(|last| last.unwrap_or(0))
        })
        .await
    }

    pub(crate) async fn counters(&self) -> Result<BTreeMap<String, i64>> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached("SELECT kind, last_id FROM id_counters")?;
            let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
        .await
    }
}

/// The rows that `SELECT ... FROM events {condition}` finds, each still to be checked.
fn event_rows(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<Result<Envelope>>> {
    let mut statement =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM events {condition}"))?;
    let rows = statement.query_map(params, envelope_row)?;
    rows.collect()
}

/// The envelopes of `rows`; the first row that is corrupt fails the read.
fn into_envelopes(rows: Vec<Result<Envelope>>) -> Result<Vec<Envelope>> {
    rows.into_iter().collect()
}

/// Decodes one row into its envelope, as [`EventRow::into_envelope`] would, reading the ids and
/// hashes in place instead of copying each into a vector first: a rebuild reads a million rows
/// on a thread that is as busy as the writer. A row that does not decode is reported as
/// corrupt, not as an error of the whole read.
fn envelope_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Envelope>> {
    let position: i64 = row.get(0)?;
    let blob = |index: usize| -> rusqlite::Result<Option<&[u8]>> {
        Ok(row.get_ref(index)?.as_blob().ok())
    };
    let corrupt = |reason: &str| {
        Ok(Err(StoreError::Corrupt {
            position,
            reason: reason.to_owned(),
        }))
    };
    let Some(event_id) = blob(3)?.and_then(|b| uuid::Uuid::from_slice(b).ok()) else {
        return corrupt("event_id is not 16 bytes");
    };
    let Some(prev_hash) = blob(9)?.and_then(|b| Hash::try_from(b).ok()) else {
        return corrupt("prev_hash is not 32 bytes");
    };
    let Some(hash) = blob(10)?.and_then(|b| Hash::try_from(b).ok()) else {
        return corrupt("hash is not 32 bytes");
    };
    let Some(recorded_at) = DateTime::from_timestamp_micros(row.get(8)?) else {
        return corrupt("recorded_at out of range");
    };
    Ok(Ok(Envelope {
        position,
        stream: row.get(1)?,
        version: row.get(2)?,
        event_id,
        event_type: row.get(4)?,
        schema: row.get(5)?,
        payload: row.get(6)?,
        metadata: row.get(7)?,
        recorded_at,
        prev_hash,
        hash,
    }))
}

/// Decodes one row; an event id that is not 16 bytes is reported as corrupt, not as an error of
/// the whole read.
fn event_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<EventRow>> {
    let position: i64 = row.get(0)?;
    let event_id: Vec<u8> = row.get(3)?;
    let Ok(event_id) = uuid::Uuid::from_slice(&event_id) else {
        return Ok(Err(StoreError::Corrupt {
            position,
            reason: "event_id is not 16 bytes".into(),
        }));
    };
    Ok(Ok(EventRow {
        position,
        stream: row.get(1)?,
        version: row.get(2)?,
        event_id,
        event_type: row.get(4)?,
        schema: row.get(5)?,
        payload: row.get(6)?,
        metadata: row.get(7)?,
        recorded_at: row.get(8)?,
        prev_hash: row.get(9)?,
        hash: row.get(10)?,
    }))
}

impl crate::sql::SqlRow for EventRow {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        event_row(row)?.map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Blob, Box::new(e))
        })
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e.to_string())
    }
}
