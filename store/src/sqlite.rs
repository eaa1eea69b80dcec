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
use tokio::sync::{oneshot, watch, Mutex};

use crate::StoreError;

use crate::inline::{self, Progress, Projections, Tx};
use crate::ops::{self, EventRow, COLUMNS};
use crate::plan::BuildAppend;
use crate::sqlite_readers::Readers;
use crate::transaction::{self, Outcome};
use crate::{AppendContext, Backend, Clock, Envelope, EventStore, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// Rows per multi-row INSERT: 11 parameters each, well under SQLite's variable limit.
pub(crate) const INSERT_CHUNK: usize = 500;
/// Stream names per version lookup.
const LOOKUP_CHUNK: usize = 500;

#[derive(Clone, Debug)]
pub(crate) struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    writer: Mutex<Writer>,
    /// Appends waiting for the writer; whoever holds it next writes them all in one
    /// transaction (group commit).
    queue: std::sync::Mutex<Vec<Pending>>,
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
            // 64 MiB of page cache for the one writer: bulk appends and rebuilds touch the
            // spatial indexes all over, and SQLite's 2 MiB default spills to disk mid-transaction.
            .pragma("cache_size", "-65536")
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
                queue: std::sync::Mutex::default(),
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

    /// Queues the append, then takes the writer and writes everything queued by then, this
    /// append included unless an earlier holder of the writer took it along.
    ///
    /// Appends that arrive while a transaction commits share the next one: one `fsync` for
    /// many appends. Each runs inside its own savepoint, so one that fails (a version
    /// conflict, a projection's refusal) is rolled back alone and the others still commit;
    /// to each caller the outcome is exactly that of an append of its own.
    async fn append(&self, context: AppendContext, build: BuildAppend) -> Result<Vec<Envelope>> {
        let (reply, answer) = oneshot::channel();
        self.queue.lock().expect("not poisoned").push(Pending {
            context,
            build,
            reply,
        });
        {
            let mut writer = self.writer.lock().await;
            let batch = std::mem::take(&mut *self.queue.lock().expect("not poisoned"));
            if !batch.is_empty() {
                self.write_batch(&mut writer, batch).await;
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Sqlite("the writer stopped mid-append".into())))
    }

    async fn write_batch(&self, writer: &mut Writer, batch: Vec<Pending>) {
        let mut done: Vec<(Reply, Result<Outcome>)> = Vec::with_capacity(batch.len());
        let begun = async {
            if writer.in_transaction {
                sqlx::query("ROLLBACK").execute(&mut writer.conn).await?;
                writer.in_transaction = false;
            }
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut writer.conn)
                .await?;
            writer.in_transaction = true;
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(e) = begun {
            let message = e.to_string();
            for pending in batch {
                let _ = pending.reply.send(Err(StoreError::Sqlite(message.clone())));
            }
            return;
        }
        let mut fatal: Option<String> = None;
        let mut batch = batch.into_iter();
        for Pending {
            context,
            build,
            reply,
        } in batch.by_ref()
        {
            match self
                .append_in_savepoint(&mut writer.conn, &context, build)
                .await
            {
                Ok(outcome) => done.push((reply, outcome)),
                Err(SavepointFailed(e)) => {
                    // The savepoint itself failed: the transaction's state is unknown.
                    fatal = Some(e.to_string());
                    let _ = reply.send(Err(e));
                    break;
                }
            }
        }
        let committed = match fatal {
            Some(reason) => {
                for pending in batch {
                    let _ = pending.reply.send(Err(StoreError::Sqlite(reason.clone())));
                }
                Err(StoreError::Sqlite(reason))
            }
            None => sqlx::query("COMMIT")
                .execute(&mut writer.conn)
                .await
                .map(|_| ())
                .map_err(StoreError::from),
        };
        if committed.is_err() {
            let _ = sqlx::query("ROLLBACK").execute(&mut writer.conn).await;
        }
        writer.in_transaction = false;
        let failure = committed.err().map(|e| e.to_string());
        for (reply, outcome) in done {
            let answer = match (outcome, &failure) {
                (Ok(Outcome::Written(envelopes)), None) => {
                    if let Some(last) = envelopes.last() {
                        self.committed
                            .send_if_modified(|p| ops::advance(p, last.position));
                    }
                    Ok(envelopes)
                }
                (Ok(Outcome::Stored(envelopes)), None) => Ok(envelopes),
                (Ok(_), Some(reason)) => Err(StoreError::Sqlite(format!(
                    "the transaction did not commit: {reason}"
                ))),
                (Err(e), _) => Err(e),
            };
            let _ = reply.send(answer);
        }
    }

    /// One append inside a savepoint of the open transaction: released when it succeeds,
    /// rolled back to when it fails (the failure is the append's own answer).
    async fn append_in_savepoint(
        &self,
        conn: &mut SqliteConnection,
        context: &AppendContext,
        build: BuildAppend,
    ) -> std::result::Result<Result<Outcome>, SavepointFailed> {
        sqlx::query("SAVEPOINT append")
            .execute(&mut *conn)
            .await
            .map_err(|e| SavepointFailed(e.into()))?;
        let outcome = transaction::append(
            &mut Tx::Sqlite(conn),
            context,
            build,
            self.clock.as_ref(),
            &self.projections,
        )
        .await;
        if outcome.is_err() {
            sqlx::query("ROLLBACK TO append")
                .execute(&mut *conn)
                .await
                .map_err(|e| SavepointFailed(e.into()))?;
        }
        sqlx::query("RELEASE append")
            .execute(&mut *conn)
            .await
            .map_err(|e| SavepointFailed(e.into()))?;
        Ok(outcome)
    }
}

/// An append waiting for the writer, and where its outcome goes.
struct Pending {
    context: AppendContext,
    build: BuildAppend,
    reply: Reply,
}

type Reply = oneshot::Sender<Result<Vec<Envelope>>>;

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

/// A savepoint statement failed: the whole batch is rolled back.
struct SavepointFailed(StoreError);

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
                            let mut tx = Tx::Sqlite(conn);
                            let head = transaction::read_head(&mut tx).await?;
                            let applied =
                                inline::catch_up_page(projection.as_ref(), &mut tx, head.position)
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

    /// Empties one projection and replays the whole log into it, in one transaction.
    async fn rebuild(&self, name: &str, progress: Progress) -> Result<u64> {
        let projection = inline::find(&self.projections, name)?;
        self.in_write_transaction(|conn| {
            Box::pin(async move {
                let mut tx = Tx::Sqlite(conn);
                let head = transaction::read_head(&mut tx).await?;
                let total =
                    inline::rebuild(projection.as_ref(), &mut tx, head.position, &progress).await?;
                Ok((total, true))
            })
        })
        .await
    }
}

/// The current version of each named stream that exists.
pub(crate) async fn stream_versions(
    conn: &mut SqliteConnection,
    names: &[String],
) -> Result<HashMap<String, i64>> {
    let mut versions = HashMap::with_capacity(names.len());
    for names in names.chunks(LOOKUP_CHUNK) {
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
    Ok(versions)
}

/// The stored rows with these event ids.
pub(crate) async fn events_by_id(
    conn: &mut SqliteConnection,
    event_ids: &[uuid::Uuid],
) -> Result<Vec<EventRow>> {
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
    Ok(found)
}

pub(crate) async fn insert(conn: &mut SqliteConnection, envelopes: &[Envelope]) -> Result<()> {
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

    async fn position_at(&self, at: chrono::DateTime<chrono::Utc>) -> Result<i64> {
        self.inner.readers.position_at(at.timestamp_micros()).await
    }

    fn subscribe(&self) -> watch::Receiver<i64> {
        self.inner.committed.subscribe()
    }

    async fn catch_up(&self) -> Result<u64> {
        let inner = self.inner.clone();
        ops::join(tokio::spawn(async move { inner.catch_up().await })).await
    }

    async fn rebuild(&self, name: &str, progress: Progress) -> Result<u64> {
        let inner = self.inner.clone();
        let name = name.to_owned();
        ops::join(tokio::spawn(
            async move { inner.rebuild(&name, progress).await },
        ))
        .await
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
                        transaction::import(
                            &mut Tx::Sqlite(conn),
                            &envelopes,
                            &counters,
                            &projections,
                        )
                        .await?;
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
