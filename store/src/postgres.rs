//! The production backend: PostgreSQL.
//!
//! Every append takes one transaction-scoped advisory lock before it reads the head, so that
//! appenders in any number of processes line up: positions stay gapless and the chain stays one
//! line. Within a process, appends waiting together share that lock and one commit (group
//! commit, `postgres_writer.rs`). Every insert into the log sends `NOTIFY exact_events` with its
//! last position (a trigger, migration 0023), which at commit wakes subscribers in every
//! process; one that stored an event outside the hot streams also sends
//! `NOTIFY exact_cold`, which tells every process that what it cached may have changed
//! (`cold.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, PgConnection};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::cold::ColdCommits;
use crate::inline::{self, Progress, Projections, RebuildLog, Tx};
use crate::ops::{self, EventRow, COLUMNS};
use crate::plan::BuildAppend;
use crate::postgres_writer::{locked_transaction, Pending, Writer};
use crate::transaction::{self, LogBackend};
use crate::{AppendContext, Backend, Clock, Envelope, EventStore, Result, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The channel that announces committed positions.
const CHANNEL: &str = "exact_events";
/// The channel that announces commits of events outside the hot streams.
pub(crate) const COLD_CHANNEL: &str = "exact_cold";
/// Rows per `INSERT ... SELECT FROM UNNEST(...)`.
const INSERT_CHUNK: usize = 10_000;
/// Events hashed while the previous chunk is written.
const PLAN_CHUNK: usize = 2_000;

#[derive(Clone, Debug)]
pub(crate) struct PgStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    /// Appends for the writer task (`postgres_writer.rs`); it stops when this is dropped.
    appends: mpsc::UnboundedSender<Pending>,
    projections: Projections,
    committed: watch::Sender<i64>,
    cold: Arc<ColdCommits>,
    listener: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.listener.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

impl PgStore {
    pub(crate) async fn open(
        url: &str,
        clock: Arc<dyn Clock>,
        projections: Projections,
        hot_streams: Vec<String>,
    ) -> Result<Self> {
        let options: PgConnectOptions =
            url.parse::<PgConnectOptions>()?.disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(crate::POSTGRES_ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        crate::check_migration(MIGRATOR.run(&pool).await, known)?;
        let last = last_position(&pool).await?;
        let committed = watch::Sender::new(last);
        let cold = Arc::new(ColdCommits::new(hot_streams));
        // The writer's own connection, opened on the writer's thread.
        let writer_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(crate::POSTGRES_ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone());
        let appends = Writer {
            pool: writer_pool,
            clock,
            projections: projections.clone(),
            committed: committed.clone(),
            cold: cold.clone(),
        }
        .start()
        .map_err(StoreError::Io)?;
        let inner = Arc::new(Inner {
            pool,
            appends,
            committed,
            cold,
            projections,
            listener: std::sync::Mutex::new(None),
        });
        let task = tokio::spawn(listen(Arc::downgrade(&inner)));
        *inner
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
        Ok(Self { inner })
    }
}

/// Follows `NOTIFY exact_events` from every process and raises the watched position, and
/// `NOTIFY exact_cold`, moving the cold version. After a lost connection it re-reads the last
/// position, since notifications may have been missed; while it is lost, nothing is cached.
async fn listen(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(pool) = inner.upgrade().map(|i| i.pool.clone()) else {
            return;
        };
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for new events; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen_all([CHANNEL, COLD_CHANNEL]).await {
            tracing::warn!(error = %e, "cannot listen for new events; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        if let (Some(inner), Ok(last)) = (inner.upgrade(), last_position(&pool).await) {
            inner.committed.send_if_modified(|p| ops::advance(p, last));
            inner.cold.set_listening(true);
        }
        drop(pool);
        loop {
            // Not `recv`, which reconnects by itself after a lost connection and so hides that
            // notifications were missed: `None` says so, and the listener starts over.
            match listener.try_recv().await {
                Ok(Some(note)) => {
                    let Some(inner) = inner.upgrade() else { return };
                    if note.channel() == COLD_CHANNEL {
                        inner.cold.moved();
                    } else if let Ok(position) = note.payload().parse::<i64>() {
                        inner
                            .committed
                            .send_if_modified(|p| ops::advance(p, position));
                    }
                }
                lost => {
                    if let Some(inner) = inner.upgrade() {
                        inner.cold.set_listening(false);
                    }
                    let error = lost.err().map(|e| e.to_string()).unwrap_or_default();
                    tracing::warn!(%error, "lost the event notification connection; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn last_position(pool: &PgPool) -> Result<i64> {
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM events")
        .fetch_one(pool)
        .await?;
    Ok(last.unwrap_or(0))
}

/// The current version of each named stream that exists.
#[async_trait]
impl LogBackend for PgConnection {
    fn chunk_size(&self) -> usize {
        PLAN_CHUNK
    }

    fn greater_counter(&self) -> &'static str {
        "GREATEST(id_counters.last_id, excluded.last_id)"
    }

    async fn stream_versions(&mut self, names: &[String]) -> Result<HashMap<String, i64>> {
        stream_versions(self, names).await
    }

    fn reads_after_refusal(&self) -> bool {
        false
    }

    async fn events_by_id(&mut self, event_ids: &[uuid::Uuid]) -> Result<Vec<EventRow>> {
        events_by_id(self, event_ids).await
    }

    async fn insert(&mut self, envelopes: &[Envelope]) -> Result<()> {
        insert(self, envelopes).await
    }
}

async fn stream_versions(
    conn: &mut PgConnection,
    names: &[String],
) -> Result<HashMap<String, i64>> {
    // One index probe per name. (`stream = ANY($1) GROUP BY stream` let the planner's generic
    // plan fall back to scanning the table, which made bulk appends slower with every event.)
    let found: Vec<(String, i64)> = sqlx::query_as(
        "SELECT name, version FROM UNNEST($1::text[]) AS n(name) \
         CROSS JOIN LATERAL (SELECT MAX(version) AS version FROM events WHERE stream = n.name) v \
         WHERE version IS NOT NULL",
    )
    .bind(names)
    .fetch_all(&mut *conn)
    .await?;
    Ok(found.into_iter().collect())
}

/// The stored rows with these event ids.
async fn events_by_id(conn: &mut PgConnection, event_ids: &[uuid::Uuid]) -> Result<Vec<EventRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events WHERE event_id = ANY($1)"
    ))
    .bind(event_ids)
    .fetch_all(&mut *conn)
    .await?)
}

/// Tells every process, once the transaction commits, that what it cached may have changed.
pub(crate) async fn announce_cold(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(COLD_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert(conn: &mut PgConnection, envelopes: &[Envelope]) -> Result<()> {
    for chunk in envelopes.chunks(INSERT_CHUNK) {
        let mut positions = Vec::with_capacity(chunk.len());
        let mut streams = Vec::with_capacity(chunk.len());
        let mut versions = Vec::with_capacity(chunk.len());
        let mut event_ids = Vec::with_capacity(chunk.len());
        let mut types = Vec::with_capacity(chunk.len());
        let mut schemas = Vec::with_capacity(chunk.len());
        let mut payloads = Vec::with_capacity(chunk.len());
        let mut metadata = Vec::with_capacity(chunk.len());
        let mut recorded = Vec::with_capacity(chunk.len());
        let mut prev_hashes = Vec::with_capacity(chunk.len());
        let mut hashes = Vec::with_capacity(chunk.len());
        for e in chunk {
            positions.push(e.position);
            streams.push(e.stream.as_str());
            versions.push(e.version);
            event_ids.push(e.event_id);
            types.push(e.event_type.as_str());
            schemas.push(e.schema);
            payloads.push(e.payload.as_str());
            metadata.push(e.metadata.as_str());
            recorded.push(e.recorded_at.timestamp_micros());
            prev_hashes.push(e.prev_hash.as_slice());
            hashes.push(e.hash.as_slice());
        }
        sqlx::query(&format!(
            "INSERT INTO events ({COLUMNS}) SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[], \
             $4::uuid[], $5::text[], $6::int4[], $7::text[], $8::text[], $9::int8[], $10::bytea[], $11::bytea[])"
        ))
        .bind(positions)
        .bind(streams)
        .bind(versions)
        .bind(event_ids)
        .bind(types)
        .bind(schemas)
        .bind(payloads)
        .bind(metadata)
        .bind(recorded)
        .bind(prev_hashes)
        .bind(hashes)
        .execute(&mut *conn)
        .await
        .map_err(|e| ops::map_insert_error(e, envelopes))?;
    }
    Ok(())
}

impl Inner {
    /// Queues an append for the writer task, which writes it with the others waiting beside it
    /// (group commit); the writer finishes it even if the caller gives up.
    async fn append(&self, context: AppendContext, build: BuildAppend) -> Result<Vec<Envelope>> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::NotCommitted("the PostgreSQL writer has stopped".into());
        self.appends
            .send(Pending {
                context,
                build,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// A transaction holding the append lock, so that nothing is appended meanwhile.
    async fn locked_transaction(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        locked_transaction(&self.pool).await
    }

    /// Brings every projection up to the head, a page per transaction.
    async fn catch_up(&self) -> Result<u64> {
        let mut total = 0;
        for projection in self.projections.iter() {
            loop {
                let mut tx = self.locked_transaction().await?;
                let head = transaction::read_head(&mut Tx::Postgres(&mut tx)).await?;
                let applied = inline::catch_up_page(
                    projection.as_ref(),
                    &mut Tx::Postgres(&mut tx),
                    head.position,
                )
                .await?;
                if applied == 0 {
                    break;
                }
                tx.commit().await?;
                total += applied as u64;
            }
        }
        Ok(total)
    }

    /// Empties one projection and replays the whole log into it, in one transaction.
    async fn rebuild(&self, name: &str, progress: Progress) -> Result<u64> {
        let projection = inline::find(&self.projections, name)?;
        let mut tx = self.locked_transaction().await?;
        let head = transaction::read_head(&mut Tx::Postgres(&mut tx)).await?;
        let total = inline::rebuild(
            projection,
            &mut Tx::Postgres(&mut tx),
            head.position,
            RebuildLog::Transaction,
            &progress,
        )
        .await?;
        announce_cold(&mut tx).await?;
        tx.commit().await?;
        self.cold.moved();
        Ok(total)
    }

    async fn import(&self, envelopes: &[Envelope], counters: &BTreeMap<String, i64>) -> Result<()> {
        let mut tx = self.locked_transaction().await?;
        transaction::import(
            &mut Tx::Postgres(&mut tx),
            envelopes,
            counters,
            &self.projections,
        )
        .await?;
        announce_cold(&mut tx).await?;
        tx.commit().await?;
        self.cold.moved();
        if let Some(last) = envelopes.last() {
            self.committed
                .send_if_modified(|p| ops::advance(p, last.position));
        }
        Ok(())
    }
}

#[async_trait]
impl EventStore for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn append_built(
        &self,
        context: AppendContext,
        build: BuildAppend,
    ) -> Result<Vec<Envelope>> {
        self.inner.append(context, build).await
    }

    async fn read_stream(&self, stream: &str, from_version: i64) -> Result<Vec<Envelope>> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE stream = $1 AND version >= $2 ORDER BY version"
        ))
        .bind(stream)
        .bind(from_version)
        .fetch_all(&self.inner.pool)
        .await?;
        rows.into_iter().map(EventRow::into_envelope).collect()
    }

    async fn read_page(&self, from_position: i64, limit: i64) -> Result<Vec<Envelope>> {
        let rows: Vec<EventRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE position >= $1 ORDER BY position LIMIT $2"
        ))
        .bind(from_position)
        .bind(limit)
        .fetch_all(&self.inner.pool)
        .await?;
        rows.into_iter().map(EventRow::into_envelope).collect()
    }

    async fn last_position(&self) -> Result<i64> {
        last_position(&self.inner.pool).await
    }

    async fn counters(&self) -> Result<BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT kind, last_id FROM id_counters")
            .fetch_all(&self.inner.pool)
            .await?;
        Ok(rows.into_iter().collect())
    }

    async fn position_at(&self, at: chrono::DateTime<chrono::Utc>) -> Result<i64> {
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(position) FROM events WHERE recorded_at <= $1")
                .bind(at.timestamp_micros())
                .fetch_one(&self.inner.pool)
                .await?;
        Ok(last.unwrap_or(0))
    }

    fn subscribe(&self) -> watch::Receiver<i64> {
        self.inner.committed.subscribe()
    }

    fn cold_version(&self) -> Option<u64> {
        self.inner.cold.version()
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
        let inner = self.inner.clone();
        let envelopes = envelopes.to_vec();
        let counters = counters.clone();
        ops::join(tokio::spawn(async move {
            inner.import(&envelopes, &counters).await
        }))
        .await
    }
}
