//! The embedded backend: one SQLite file in WAL mode.
//!
//! Appends go through one writer connection per process, owned by a thread of its own and
//! driven through rusqlite, each batch in a `BEGIN IMMEDIATE` transaction, so that SQLite's own
//! write lock serializes writers across processes too. The thread matters for speed: an append
//! runs a dozen small statements (the event, counters, every read model's rows and
//! checkpoints), and handing each one to a connection thread and back, as sqlx does, cost more
//! than SQLite's work. Reads use read-only connections of their own (`sqlite_readers`), which
//! WAL lets run beside the writer; migrations run through sqlx when the store opens.
//! `synchronous=FULL`: a committed append survives a power cut, not just a crash.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::str::FromStr;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use rusqlite::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection as _};
use tokio::sync::{oneshot, watch};

use crate::inline::{self, Progress, Projections, RebuildLog, Tx};
use crate::ops::{self, EventRow, COLUMNS};
use crate::plan::BuildAppend;
use crate::sql::{self, SqlValue};
use crate::sqlite_readers::Readers;
use crate::transaction;
use crate::transaction::LogBackend;
use crate::wal_index::{WalIndex, CHECKPOINT_FRAMES};
use crate::{AppendContext, Backend, Clock, Envelope, EventStore, Result, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// Events hashed and then written per step of an append.
const INSERT_CHUNK: usize = 500;
/// Stream names per version lookup.
const LOOKUP_CHUNK: usize = 500;
/// Prepared statements the writer keeps: every statement of the append path and the read
/// models, with a few multi-row shapes each.
const STATEMENT_CACHE: usize = 256;

#[derive(Clone, Debug)]
pub(crate) struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Work for the writer thread; it stops when this is dropped.
    jobs: mpsc::Sender<Job>,
    readers: Readers,
    committed: watch::Sender<i64>,
    projections: Projections,
}

/// What the writer thread is asked to do.
enum Job {
    /// An append; appends queued together share one transaction (group commit).
    Append(Pending),
    /// Anything else that writes (catch-up, rebuild, import), in a transaction of its own.
    Exclusive(Box<dyn FnOnce(&mut Writer) + Send>),
}

/// An append waiting for the writer, and where its outcome goes.
struct Pending {
    context: AppendContext,
    build: BuildAppend,
    reply: transaction::Reply,
}

/// The writer thread's state.
struct Writer {
    conn: Connection,
    /// Runs the append path's async code (written once for both backends) on this thread;
    /// on SQLite nothing in it waits, so every `await` completes at once.
    runtime: tokio::runtime::Runtime,
    /// Set between BEGIN and COMMIT/ROLLBACK; if a job died in between (a panic), the next
    /// one rolls back first.
    in_transaction: bool,
    clock: Arc<dyn Clock>,
    projections: Projections,
    committed: watch::Sender<i64>,
    /// The log's size, when this writer checkpoints it itself (SQLite's automatic checkpoint
    /// is then off on this connection); `None` leaves checkpoints to SQLite.
    wal: Option<WalIndex>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").finish_non_exhaustive()
    }
}

/// The page size of a new database (an existing one keeps its own: SQLite changes it only by a
/// `VACUUM` out of WAL mode; `exact store copy` into a new file gives the new size). With 16 KiB
/// instead of SQLite's 4 KiB, a rebuild of a million annotations ran about a sixth faster and
/// their creation about a fifth, single POSTs won every pair measured; viewports read by 8
/// connections at once lost about a tenth (BENCHMARKS.md, "16 KiB pages").
const PAGE_SIZE: u32 = 16_384;

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
            .page_size(PAGE_SIZE)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .disable_statement_logging();
        let mut migrating = options.connect().await?;
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        crate::check_migration(MIGRATOR.run(&mut migrating).await, known)?;
        migrating.close().await?;

        let conn = writer_connection(path)?;
        let wal = WalIndex::open(path);
        if wal.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        let readers = Readers::new(path);
        let last = readers.last_position().await?;
        let committed = watch::Sender::new(last);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(StoreError::Io)?;
        let writer = Writer {
            conn,
            runtime,
            in_transaction: false,
            clock,
            projections: projections.clone(),
            committed: committed.clone(),
            wal,
        };
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("exact-sqlite-writer".into())
            .spawn(move || writer.run(&queue))?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs,
                readers,
                committed,
                projections,
            }),
        })
    }
}

/// The writer's temporary storage but for rebuilds ([`writer_connection`]).
const TEMP_STORE_IN_MEMORY: &str = "PRAGMA temp_store = MEMORY";

/// The writer's connection: WAL, durable commits, foreign keys, a patient lock.
pub(crate) fn writer_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(None, "synchronous", "full")?;
    conn.pragma_update(None, "foreign_keys", "on")?;
    // 64 MiB of page cache for the one writer: bulk appends and rebuilds touch the spatial
    // indexes all over, and SQLite's 2 MiB default spills to disk mid-transaction.
    conn.pragma_update(None, "cache_size", -65_536)?;
    // Sub-journals (each savepoint of a group commit keeps one, as does a statement that may
    // fail halfway) stay in memory instead of spilling to a temporary file past 64 KiB.
    conn.execute_batch(TEMP_STORE_IN_MEMORY)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The memory SQLite's sorter fills before it hands a run to a worker thread when it builds an
/// index in a rebuild ([`create_indexes`]); the writer's page cache is its budget otherwise.
const SORT_RUN_KIB: i64 = 16_384;

/// Creates indexes on the writer's connection. SQLite builds an index by sorting every row's
/// key. By default it sorts them on this thread alone, in one run; with temporary storage in
/// files (a rebuild's, [`Writer::in_transaction_with_temp_files`]) and worker threads allowed,
/// it hands runs of [`SORT_RUN_KIB`] to the workers while it reads on, and merges them in
/// threads too: a million annotations' spatial index took about a second of the writer's
/// thread alone, with the other core idle (BENCHMARKS.md, "the sort of a rebuild's indexes on
/// worker threads"). The page cache's size, which bounds a run, is put back after.
pub(crate) fn create_indexes(conn: &Connection, definitions: &[String]) -> rusqlite::Result<()> {
    let cache_size: i64 = conn.pragma_query_value(None, "cache_size", |row| row.get(0))?;
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let created = conn
        .pragma_update(None, "threads", workers)
        .and_then(|()| conn.pragma_update(None, "cache_size", -SORT_RUN_KIB))
        .and_then(|()| {
            definitions
                .iter()
                .try_for_each(|definition| conn.execute_batch(definition))
        });
    // Both put back whatever happened above.
    let restored = conn
        .pragma_update(None, "threads", 0)
        .and(conn.pragma_update(None, "cache_size", cache_size));
    created.and(restored)
}

impl Inner {
    fn send(&self, job: Job) -> Result<()> {
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Sqlite("the writer thread has stopped".into()))
    }

    /// Runs `work` in a write transaction on the writer thread; commits if it returns
    /// `(value, true)`.
    async fn in_write_transaction<T: Send + 'static>(
        &self,
        work: impl for<'c> FnOnce(&'c mut Connection) -> BoxFuture<'c, Result<(T, bool)>>
            + Send
            + 'static,
    ) -> Result<T> {
        self.on_writer(move |writer| writer.in_transaction(work))
            .await
    }

    /// Runs `job` on the writer thread, between appends.
    async fn on_writer<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Writer) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Exclusive(Box::new(move |writer: &mut Writer| {
            let _ = reply.send(job(writer));
        })))?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Sqlite(
                "the writer stopped mid-transaction".into(),
            ))
        })
    }

    async fn append(&self, context: AppendContext, build: BuildAppend) -> Result<Vec<Envelope>> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Append(Pending {
            context,
            build,
            reply,
        }))?;
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Sqlite("the writer stopped mid-append".into())))
    }
}

impl Writer {
    /// Takes jobs until the store is dropped. Appends waiting together are written in one
    /// transaction; a job that panics loses only itself (its caller hears that the writer
    /// stopped), and the next one starts by rolling back.
    fn run(mut self, queue: &mpsc::Receiver<Job>) {
        let mut held: VecDeque<Job> = VecDeque::new();
        loop {
            let job = match held.pop_front() {
                Some(job) => job,
                None => match queue.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                },
            };
            let work = AssertUnwindSafe(|| match job {
                Job::Exclusive(work) => work(&mut self),
                Job::Append(first) => {
                    let mut batch = vec![first];
                    while let Ok(next) = queue.try_recv() {
                        match next {
                            Job::Append(pending) => batch.push(pending),
                            other => {
                                held.push_back(other);
                                break;
                            }
                        }
                    }
                    self.write_batch(batch);
                }
            });
            if std::panic::catch_unwind(work).is_err() {
                tracing::error!("a write on the SQLite writer thread panicked; it was rolled back");
            }
        }
    }

    fn statement(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql)?;
        Ok(())
    }

    fn begin(&mut self) -> Result<()> {
        if self.in_transaction {
            self.statement("ROLLBACK")?;
            self.in_transaction = false;
            // The job that died may have been a rebuild, which keeps temporary storage in files.
            self.statement(TEMP_STORE_IN_MEMORY)?;
        }
        self.statement("BEGIN IMMEDIATE")?;
        self.in_transaction = true;
        Ok(())
    }

    /// Commits (`commit` true and the statement succeeds) or rolls back.
    fn finish(&mut self, commit: bool) -> Result<()> {
        let finished = if commit {
            self.statement("COMMIT")
        } else {
            self.statement("ROLLBACK")
        };
        if finished.is_err() && commit {
            // The commit failed: make sure nothing half-done stays open.
            let _ = self.statement("ROLLBACK");
        }
        self.in_transaction = false;
        finished
    }

    fn in_transaction<T>(
        &mut self,
        work: impl for<'c> FnOnce(&'c mut Connection) -> BoxFuture<'c, Result<(T, bool)>>,
    ) -> Result<T> {
        self.begin()?;
        let result = self.runtime.block_on(work(&mut self.conn));
        let finished = self.finish(matches!(result, Ok((_, true))));
        // Before the answer, as SQLite's automatic checkpoint would: a rebuild's or an
        // import's time includes copying what it wrote into the database.
        self.checkpoint_if_due();
        let (value, _) = result?;
        finished?;
        Ok(value)
    }

    /// [`Self::in_transaction`] with SQLite's temporary storage in files instead of memory, for
    /// a rebuild: there SQLite's sorter may hand runs to worker threads ([`create_indexes`]),
    /// which it never does while temporary storage is in memory. Only around a whole
    /// transaction: SQLite refuses to change the setting inside one.
    fn in_transaction_with_temp_files<T>(
        &mut self,
        work: impl for<'c> FnOnce(&'c mut Connection) -> BoxFuture<'c, Result<(T, bool)>>,
    ) -> Result<T> {
        self.statement("PRAGMA temp_store = FILE")?;
        let result = self.in_transaction(work);
        let restored = self.statement(TEMP_STORE_IN_MEMORY);
        let value = result?;
        restored?;
        Ok(value)
    }

    /// Writes a batch of appends in one transaction (`transaction::append_group`): one that
    /// fails (a version conflict, a read model's refusal) fails alone and the others still
    /// commit; to each caller the outcome is exactly that of an append of its own. One `fsync`
    /// serves them all.
    fn write_batch(&mut self, batch: Vec<Pending>) {
        let (parts, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|p| ((p.context, p.build), p.reply))
            .unzip();
        if let Err(e) = self.begin() {
            return transaction::refuse_all(replies, &e);
        }
        let outcomes = if let [(context, build)] = parts.as_slice() {
            // An append alone in its transaction needs no savepoint: its failure rolls back
            // the whole, and SQLite then keeps no statement journal of the pages it changes.
            Ok(vec![self.runtime.block_on(transaction::append(
                &mut Tx::Sqlite(&mut self.conn),
                context,
                build,
                self.clock.as_ref(),
                &self.projections,
            ))])
        } else {
            self.runtime.block_on(transaction::append_group(
                &mut Tx::Sqlite(&mut self.conn),
                &parts,
                self.clock.as_ref(),
                &self.projections,
            ))
        };
        let outcomes = match outcomes {
            Ok(outcomes) => {
                let alone_failed = outcomes.len() == 1 && outcomes[0].is_err();
                self.finish(!alone_failed).map(|()| outcomes)
            }
            Err(e) => {
                let _ = self.finish(false);
                Err(e)
            }
        };
        // Before the answers: what the appends were built from (a bulk creation's shapes as
        // JSON) is shared with their callers, which then free it on their own threads, not
        // this one.
        drop(parts);
        match outcomes {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(transaction::answer(outcome, &self.committed));
                }
            }
            Err(e) => transaction::refuse_all(replies, &e),
        }
        self.checkpoint_if_due();
    }

    /// Copies the log into the database once it holds `CHECKPOINT_FRAMES` frames, as SQLite
    /// would inside the commit that crossed the line; here after that commit's callers have
    /// their answer. Passive: readers are never waited for (what they still read stays in
    /// the log for a later checkpoint), and the next job waits only for this one.
    fn checkpoint_if_due(&self) {
        let Some(wal) = &self.wal else { return };
        // A header that cannot be read now: checkpoint, rather than let the log grow unseen.
        if wal.unchecked_frames().unwrap_or(u32::MAX) < CHECKPOINT_FRAMES {
            return;
        }
        if let Err(e) = self.statement("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::warn!("a checkpoint of the SQLite log failed (the next one retries): {e}");
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
        let log = RebuildLog::Readers(self.readers.clone());
        self.on_writer(move |writer| {
            writer.in_transaction_with_temp_files(|conn| {
                Box::pin(async move {
                    let mut tx = Tx::Sqlite(conn);
                    let head = transaction::read_head(&mut tx).await?;
                    let total =
                        inline::rebuild(projection, &mut tx, head.position, log, &progress).await?;
                    Ok((total, true))
                })
            })
        })
        .await
    }
}

#[async_trait]
impl LogBackend for Connection {
    fn chunk_size(&self) -> usize {
        INSERT_CHUNK
    }

    fn greater_counter(&self) -> &'static str {
        "MAX(id_counters.last_id, excluded.last_id)"
    }

    async fn stream_versions(&mut self, names: &[String]) -> Result<HashMap<String, i64>> {
        stream_versions(self, names)
    }

    fn reads_after_refusal(&self) -> bool {
        true
    }

    async fn events_by_id(&mut self, event_ids: &[uuid::Uuid]) -> Result<Vec<EventRow>> {
        events_by_id(self, event_ids)
    }

    async fn insert(&mut self, envelopes: &[Envelope]) -> Result<()> {
        insert(self, envelopes)
    }
}

/// The current version of each named stream that exists.
fn stream_versions(conn: &Connection, names: &[String]) -> Result<HashMap<String, i64>> {
    let mut versions = HashMap::with_capacity(names.len());
    for names in names.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT stream, MAX(version) FROM events WHERE stream IN ({}) GROUP BY stream",
            placeholders(names.len())
        );
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(names), |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (name, version) = row?;
            versions.insert(name, version);
        }
    }
    Ok(versions)
}

/// `?, ?, ...`, `n` times.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The stored rows with these event ids.
fn events_by_id(conn: &Connection, event_ids: &[uuid::Uuid]) -> Result<Vec<EventRow>> {
    let mut found = Vec::with_capacity(event_ids.len());
    for ids in event_ids.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE event_id IN ({})",
            placeholders(ids.len())
        );
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement.query_map(
            rusqlite::params_from_iter(ids.iter().map(uuid::Uuid::as_bytes)),
            <EventRow as sql::SqlRow>::from_sqlite,
        )?;
        for row in rows {
            found.push(row?);
        }
    }
    Ok(found)
}

fn insert(conn: &Connection, envelopes: &[Envelope]) -> Result<()> {
    let head = format!("INSERT INTO events ({COLUMNS}) ");
    for chunk in envelopes.chunks(INSERT_CHUNK) {
        let mut values: Vec<SqlValue<'_>> = Vec::with_capacity(chunk.len() * 11);
        for e in chunk {
            values.extend([
                e.position.into(),
                e.stream.as_str().into(),
                e.version.into(),
                e.event_id.into(),
                e.event_type.as_str().into(),
                e.schema.into(),
                e.payload.as_str().into(),
                e.metadata.as_str().into(),
                e.recorded_at.timestamp_micros().into(),
                e.prev_hash.as_slice().into(),
                e.hash.as_slice().into(),
            ]);
        }
        sql::sqlite_insert_rows(conn, &head, 11, "", &values)
            .map_err(|e| map_insert_error(&e, envelopes))?;
    }
    Ok(())
}

/// An insert that hits the unique event id: some event of the batch is stored already.
fn map_insert_error(error: &rusqlite::Error, envelopes: &[Envelope]) -> StoreError {
    if let rusqlite::Error::SqliteFailure(code, Some(message)) = error {
        if code.code == rusqlite::ErrorCode::ConstraintViolation && message.contains("event_id") {
            let event_id = envelopes.first().map(|e| e.event_id).unwrap_or_default();
            return StoreError::DuplicateEvent { event_id };
        }
    }
    StoreError::Sqlite(error.to_string())
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
        // The writer thread finishes an append whose caller gave up (a closed HTTP
        // connection): nothing is cut off between BEGIN and COMMIT.
        self.inner.append(context, build).await
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
