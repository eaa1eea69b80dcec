//! The embedded backend: one SQLite file in WAL mode.
//!
//! Appends go through one writer connection per process, each in a `BEGIN IMMEDIATE`
//! transaction, so that SQLite's own write lock serializes writers across processes too. Reads
//! use read-only connections of their own (`sqlite_readers`), which WAL lets run beside the
//! writer.
//! `synchronous=FULL`: a committed append survives a power cut, not just a crash.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, QueryBuilder, Sqlite, SqliteConnection};
use tokio::sync::{watch, Mutex};

use crate::inline::{self, Projections, Tx};
use crate::ops::{self, EventRow};
use crate::plan::{self, BuildAppend, Head, IdAllocator, Planner};
use crate::sqlite_readers::Readers;
use crate::{AppendContext, Backend, Clock, Envelope, EventStore, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

const COLUMNS: &str = "position, stream, version, event_id, type, schema, payload, metadata, recorded_at, prev_hash, hash";
/// Rows per multi-row INSERT: 11 parameters each, well under SQLite's variable limit.
const INSERT_CHUNK: usize = 500;
/// Stream names per version lookup.
const LOOKUP_CHUNK: usize = 500;

#[derive(Clone, Debug)]
pub(crate) struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: Mutex<Writer>,
    readers: Readers,
    clock: Arc<dyn Clock>,
    committed: watch::Sender<i64>,
    projections: Projections,
}

#[derive(Debug)]
struct Writer {
    conn: SqliteConnection,
    /// Set between BEGIN and COMMIT/ROLLBACK; if an append died in between (a panic), the next
    /// one rolls back first.
    in_transaction: bool,
}

/// What an append's transaction found.
enum Outcome {
    Written(Vec<Envelope>),
    /// A retry of an append that is stored already.
    Stored(Vec<Envelope>),
}

impl SqliteStore {
    pub(crate) async fn open(
        path: &Path,
        clock: Arc<dyn Clock>,
        projections: Projections,
    ) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .disable_statement_logging();
        let mut conn = options.connect().await?;
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        crate::check_migration(MIGRATOR.run(&mut conn).await, known)?;
        let readers = Readers::new(path);
        let last = readers.last_position().await?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(Writer {
                    conn,
                    in_transaction: false,
                }),
                readers,
                clock,
                committed: watch::Sender::new(last),
                projections,
            }),
        })
    }
}

impl Inner {
    /// Runs `work` in a write transaction on the writer connection and commits if it succeeds.
    async fn in_write_transaction<T>(
        &self,
        work: impl for<'c> FnOnce(
            &'c mut SqliteConnection,
        ) -> futures_util::future::BoxFuture<'c, Result<(T, bool)>>,
    ) -> Result<T> {
        let mut writer = self.writer.lock().await;
        if writer.in_transaction {
            sqlx::query("ROLLBACK").execute(&mut writer.conn).await?;
            writer.in_transaction = false;
        }
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut writer.conn)
            .await?;
        writer.in_transaction = true;
        let result = work(&mut writer.conn).await;
        let finish = match &result {
            Ok((_, true)) => "COMMIT",
            _ => "ROLLBACK",
        };
        let finished = sqlx::query(finish).execute(&mut writer.conn).await;
        if finished.is_err() && finish == "COMMIT" {
            // The commit failed: make sure nothing half-done stays open.
            let _ = sqlx::query("ROLLBACK").execute(&mut writer.conn).await;
        }
        writer.in_transaction = false;
        let (value, _) = result?;
        finished?;
        Ok(value)
    }

    async fn append(&self, context: AppendContext, build: BuildAppend) -> Result<Vec<Envelope>> {
        let now = self.clock.now();
        let projections = self.projections.clone();
        let outcome = self
            .in_write_transaction(|conn| {
                Box::pin(async move {
                    let outcome =
                        append_in_transaction(conn, &context, build, now, &projections).await?;
                    let commit = matches!(outcome, Outcome::Written(_));
                    Ok((outcome, commit))
                })
            })
            .await?;
        match outcome {
            Outcome::Written(envelopes) => {
                if let Some(last) = envelopes.last() {
                    self.committed
                        .send_if_modified(|p| ops::advance(p, last.position));
                }
                Ok(envelopes)
            }
            Outcome::Stored(envelopes) => Ok(envelopes),
        }
    }
}

impl Inner {
    /// Brings every projection up to the head, a page per transaction.
    async fn catch_up(&self) -> Result<u64> {
        let mut total = 0;
        for projection in self.projections.iter() {
            loop {
                let projection = projection.clone();
                let applied = self
                    .in_write_transaction(|conn| {
                        Box::pin(async move {
                            let head = read_head(conn).await?;
                            let applied = inline::catch_up_page(
                                projection.as_ref(),
                                &mut Tx::Sqlite(conn),
                                head.position,
                            )
                            .await?;
                            Ok((applied, applied > 0))
                        })
                    })
                    .await?;
                if applied == 0 {
                    break;
                }
                total += applied as u64;
            }
        }
        Ok(total)
    }

    /// Empties one projection and replays the whole log into it, in one transaction: readers
    /// see the old read model until the new one is complete.
    async fn rebuild(&self, name: &str) -> Result<u64> {
        let projection = inline::find(&self.projections, name)?;
        self.in_write_transaction(|conn| {
            Box::pin(async move {
                let head = read_head(conn).await?;
                let mut tx = Tx::Sqlite(conn);
                projection.reset(&mut tx).await?;
                inline::set_checkpoint(&mut tx, projection.name(), 0).await?;
                let mut total = 0;
                loop {
                    let applied =
                        inline::catch_up_page(projection.as_ref(), &mut tx, head.position).await?;
                    if applied == 0 {
                        break;
                    }
                    total += applied as u64;
                }
                Ok((total, true))
            })
        })
        .await
    }
}

async fn append_in_transaction(
    conn: &mut SqliteConnection,
    context: &AppendContext,
    build: BuildAppend,
    now: chrono::DateTime<chrono::Utc>,
    projections: &Projections,
) -> Result<Outcome> {
    let head = read_head(conn).await?;
    let counters: Vec<(String, i64)> = sqlx::query_as("SELECT kind, last_id FROM id_counters")
        .fetch_all(&mut *conn)
        .await?;
    let mut ids = IdAllocator::new(counters.into_iter().collect());
    let appends = build(&mut ids);
    let event_ids: Vec<uuid::Uuid> = appends
        .iter()
        .flat_map(|a| a.events.iter().map(|e| e.event_id))
        .collect();
    let Some(first) = event_ids.first() else {
        return Ok(Outcome::Stored(Vec::new()));
    };
    let seen: Option<i64> = sqlx::query_scalar("SELECT position FROM events WHERE event_id = ?")
        .bind(first)
        .fetch_optional(&mut *conn)
        .await?;
    if seen.is_some() {
        return Ok(Outcome::Stored(stored_batch(conn, &event_ids).await?));
    }
    let mut versions = HashMap::new();
    for names in plan::stream_names(&appends).chunks(LOOKUP_CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT stream, MAX(version) FROM events WHERE stream IN (",
        );
        let mut list = query.separated(", ");
        for name in names {
            list.push_bind(name);
        }
        query.push(") GROUP BY stream");
        let found: Vec<(String, i64)> = query.build_query_as().fetch_all(&mut *conn).await?;
        versions.extend(found);
    }
    let mut planner = Planner::new(&head, versions, appends, context, now)?;
    let mut envelopes = Vec::with_capacity(planner.remaining());
    let mut chunk = planner.next_chunk(INSERT_CHUNK);
    while !chunk.is_empty() {
        // A biased `join!` starts the insert first: the database writes this chunk while the
        // next one is hashed.
        let (inserted, next) =
            tokio::join!(biased; insert(conn, &chunk), async { planner.next_chunk(INSERT_CHUNK) });
        inserted?;
        envelopes.append(&mut chunk);
        chunk = next;
    }
    for (kind, last_id) in ids.changed() {
        sqlx::query(
            "INSERT INTO id_counters (kind, last_id) VALUES (?, ?) \
             ON CONFLICT (kind) DO UPDATE SET last_id = excluded.last_id",
        )
        .bind(kind)
        .bind(last_id)
        .execute(&mut *conn)
        .await?;
    }
    inline::apply_all(projections, &mut Tx::Sqlite(conn), &envelopes).await?;
    Ok(Outcome::Written(envelopes))
}

async fn read_head(conn: &mut SqliteConnection) -> Result<Head> {
    let row: Option<(i64, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    ops::head_from_row(row)
}

/// The stored envelopes of a retried batch, which must be stored whole.
async fn stored_batch(
    conn: &mut SqliteConnection,
    event_ids: &[uuid::Uuid],
) -> Result<Vec<Envelope>> {
    let mut found = Vec::with_capacity(event_ids.len());
    for ids in event_ids.chunks(LOOKUP_CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {COLUMNS} FROM events WHERE event_id IN ("
        ));
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id);
        }
        query.push(")");
        let rows: Vec<EventRow> = query.build_query_as().fetch_all(&mut *conn).await?;
        found.extend(rows);
    }
    ops::stored_batch(found, event_ids)
}

async fn insert(conn: &mut SqliteConnection, envelopes: &[Envelope]) -> Result<()> {
    for chunk in envelopes.chunks(INSERT_CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(format!("INSERT INTO events ({COLUMNS}) "));
        query.push_values(chunk, |mut row, e| {
            row.push_bind(e.position)
                .push_bind(&e.stream)
                .push_bind(e.version)
                .push_bind(e.event_id)
                .push_bind(&e.event_type)
                .push_bind(e.schema)
                .push_bind(&e.payload)
                .push_bind(&e.metadata)
                .push_bind(e.recorded_at.timestamp_micros())
                .push_bind(e.prev_hash.as_slice())
                .push_bind(e.hash.as_slice());
        });
        query
            .build()
            .execute(&mut *conn)
            .await
            .map_err(|e| ops::map_insert_error(e, envelopes))?;
    }
    Ok(())
}

#[async_trait]
impl EventStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn append_built(
        &self,
        context: AppendContext,
        build: BuildAppend,
    ) -> Result<Vec<Envelope>> {
        // On its own task, so that a caller who gives up (a closed HTTP connection) cannot cut
        // an append off between BEGIN and COMMIT.
        let inner = self.inner.clone();
        ops::join(tokio::spawn(
            async move { inner.append(context, build).await },
        ))
        .await
    }

    async fn read_stream(&self, stream: &str, from_version: i64) -> Result<Vec<Envelope>> {
        self.inner.readers.stream(stream, from_version).await
    }

    async fn read_page(&self, from_position: i64, limit: i64) -> Result<Vec<Envelope>> {
        self.inner.readers.page(from_position, limit).await
    }

    async fn last_position(&self) -> Result<i64> {
        self.inner.readers.last_position().await
    }

    async fn counters(&self) -> Result<BTreeMap<String, i64>> {
        self.inner.readers.counters().await
    }

    fn subscribe(&self) -> watch::Receiver<i64> {
        self.inner.committed.subscribe()
    }

    async fn catch_up(&self) -> Result<u64> {
        let inner = self.inner.clone();
        ops::join(tokio::spawn(async move { inner.catch_up().await })).await
    }

    async fn rebuild(&self, name: &str) -> Result<u64> {
        let inner = self.inner.clone();
        let name = name.to_owned();
        ops::join(tokio::spawn(async move { inner.rebuild(&name).await })).await
    }

    async fn import(&self, envelopes: &[Envelope], counters: &BTreeMap<String, i64>) -> Result<()> {
        let envelopes = envelopes.to_vec();
        let counters = counters.clone();
        let inner = self.inner.clone();
        let last = envelopes.last().map(|e| e.position);
        let projections = self.inner.projections.clone();
        ops::join(tokio::spawn(async move {
            inner
                .in_write_transaction(|conn| {
                    Box::pin(async move {
                        let head = read_head(conn).await?;
                        ops::check_continues(&head, &envelopes)?;
                        insert(conn, &envelopes).await?;
                        inline::apply_all(&projections, &mut Tx::Sqlite(&mut *conn), &envelopes).await?;
                        for (kind, last_id) in &counters {
                            sqlx::query(
                                "INSERT INTO id_counters (kind, last_id) VALUES (?, ?) \
                                 ON CONFLICT (kind) DO UPDATE SET last_id = MAX(last_id, excluded.last_id)",
                            )
                            .bind(kind)
                            .bind(last_id)
                            .execute(&mut *conn)
                            .await?;
                        }
                        Ok(((), true))
                    })
                })
                .await
        }))
        .await?;
        if let Some(last) = last {
            self.inner
                .committed
                .send_if_modified(|p| ops::advance(p, last));
        }
        Ok(())
    }
}
