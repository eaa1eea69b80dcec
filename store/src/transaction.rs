//! The steps of an append and of an import, written once. The caller has opened the
//! transaction and holds the append lock (SQLite's write lock; PostgreSQL's advisory lock);
//! each step runs SQL both backends speak through [`Tx`], and what each does its own way
//! through [`LogBackend`], implemented in `sqlite.rs` and `postgres.rs`.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use crate::inline::{self, Decoding, Projections, Tx};
use crate::ops::{self, EventRow};
use crate::plan::{self, BuildAppend, Head, IdAllocator, Planner};
use crate::{AppendContext, Clock, Envelope, Result, StoreError, StreamAppend};

/// What an append does on each backend its own way: looking up streams and events, inserting
/// the log's rows, telling other processes.
#[async_trait]
pub(crate) trait LogBackend: Send {
    /// Envelopes hashed at a time, written while the next are hashed.
    fn chunk_size(&self) -> usize;
    /// SQL for the larger of `id_counters.last_id` and `excluded.last_id`.
    fn greater_counter(&self) -> &'static str;
    /// The current version of each named stream that exists.
    async fn stream_versions(&mut self, names: &[String]) -> Result<HashMap<String, i64>>;
    /// Whether a transaction may still read after one of its inserts was refused: on SQLite
    /// (whose inserts are `INSERT OR FAIL`) it may; PostgreSQL refuses every statement of a
    /// transaction after an error.
    fn reads_after_refusal(&self) -> bool;
    /// The stored rows with these event ids.
    async fn events_by_id(&mut self, event_ids: &[uuid::Uuid]) -> Result<Vec<EventRow>>;
    async fn insert(&mut self, envelopes: &[Envelope]) -> Result<()>;
}

impl Tx<'_> {
    /// The backend this transaction runs on.
    fn backend(&mut self) -> &mut dyn LogBackend {
        match self {
            Tx::Sqlite(conn) => &mut **conn,
            Tx::Postgres(conn) => &mut **conn,
        }
    }
}

/// Events from which an append hashes and decodes on the blocking pool beside the writer: for
/// fewer, handing the work over costs more than doing it.
const OFFLOAD_EVENTS: usize = 64;
/// Events of a large append applied to the read models at a time, as its log rows are
/// written: the pages a projection catches up in.
const APPLY_EVENTS: usize = inline::CATCH_UP_PAGE as usize;
/// Chunks a large append plans (hashes and decodes) ahead of its writer, at most.
const PLANNED_AHEAD: usize = 16;
/// Events in the first chunk a large append plans: the writer waits for it, then writes while
/// the next are planned.
const FIRST_CHUNK: usize = 100;
/// Stream names per read of [`versions_before`].
const VERSIONS_PER_READ: usize = 500;
/// Events of a group written as one at most: they are hashed in line, without the overlap of
/// hashing and writing that a large append gets (a millisecond or two for this many).
const TOGETHER_EVENTS: usize = 1_000;

/// What an append's transaction found.
pub(crate) enum Outcome {
    /// New envelopes, to be committed.
    Written(Vec<Envelope>),
    /// A retry of an append that is stored already: nothing to commit.
    Stored(Vec<Envelope>),
}

/// Where the outcome of a queued append goes.
pub(crate) type Reply = tokio::sync::oneshot::Sender<Result<Vec<Envelope>>>;

/// Tells every caller of a group that its transaction did not commit, and why: a database out
/// of reach is said so (the caller may try again).
pub(crate) fn refuse_all(replies: Vec<Reply>, error: &StoreError) {
    for reply in replies {
        let refusal = if error.is_unavailable() {
            StoreError::Unavailable(error.to_string())
        } else {
            StoreError::NotCommitted(error.to_string())
        };
        let _ = reply.send(Err(refusal));
    }
}

/// What a caller of an append hears once its transaction committed; a written append moves the
/// committed position its subscribers watch.
pub(crate) fn answer(
    outcome: Result<Outcome>,
    committed: &tokio::sync::watch::Sender<i64>,
) -> Result<Vec<Envelope>> {
    outcome.map(|outcome| match outcome {
        Outcome::Written(envelopes) => {
            if let Some(last) = envelopes.last() {
                committed.send_if_modified(|p| ops::advance(p, last.position));
            }
            envelopes
        }
        Outcome::Stored(envelopes) => envelopes,
    })
}

pub(crate) async fn append(
    tx: &mut Tx<'_>,
    context: &AppendContext,
    build: &BuildAppend,
    clock: &dyn Clock,
    projections: &Projections,
) -> Result<Outcome> {
    // Read under the lock, so that time follows position across processes too.
    let now = clock.now();
    let (head, counters) = head_and_counters(tx).await?;
    let mut ids = IdAllocator::new(counters);
    let appends = build(&mut ids);
    let outcome = write_built(tx, context, appends, &head, now, projections).await?;
    if matches!(outcome, Outcome::Written(_)) {
        write_counters(tx, &ids.changed(), false).await?;
    }
    Ok(outcome)
}

/// Several appends that waited together, written in the caller's transaction, each outcome
/// exactly that of an append of its own: a conflict, a retry or a refusal concerns its append
/// only, and ids stay gapless. Small ones are first tried as one: one insert of the log's rows,
/// one pass of each read model, a few statements in all instead of a dozen per append. If any
/// of them would fail (or they are not small), that try is rolled back and each is written
/// alone in a savepoint of its own, built again. The error is a failure of the transaction
/// itself (a savepoint statement, a lost connection): then nothing of the group may commit.
pub(crate) async fn append_group(
    tx: &mut Tx<'_>,
    parts: &[(AppendContext, BuildAppend)],
    clock: &dyn Clock,
    projections: &Projections,
) -> Result<Vec<Result<Outcome>>> {
    tx.execute("SAVEPOINT group_append", &[]).await?;
    match append_together(tx, parts, clock, projections).await {
        Ok(written) => {
            // The transaction's commit releases the savepoint: no round trip for it.
            return Ok(written
                .into_iter()
                .map(|w| Ok(Outcome::Written(w)))
                .collect());
        }
        Err(NotTogether) => {
            tx.execute("ROLLBACK TO SAVEPOINT group_append", &[])
                .await?;
            tx.execute("RELEASE SAVEPOINT group_append", &[]).await?;
        }
    }
    let mut outcomes = Vec::with_capacity(parts.len());
    for (context, build) in parts {
        tx.execute("SAVEPOINT one_append", &[]).await?;
        let outcome = append(tx, context, build, clock, projections).await;
        if outcome.is_err() {
            tx.execute("ROLLBACK TO SAVEPOINT one_append", &[]).await?;
        }
        tx.execute("RELEASE SAVEPOINT one_append", &[]).await?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Why the parts of a group are not written together (the caller writes them one by one).
#[derive(Debug)]
struct NotTogether;

impl From<StoreError> for NotTogether {
    fn from(_: StoreError) -> Self {
        NotTogether
    }
}

/// Small appends written as one, each chained on the one before: one lookup of what is stored
/// and of the streams' versions, one insert, one pass of the read models. Nothing may differ
/// from writing them one after the other, so any part that would not simply be written (a
/// conflict, a retry, a refusal) makes the whole give up.
async fn append_together(
    tx: &mut Tx<'_>,
    parts: &[(AppendContext, BuildAppend)],
    clock: &dyn Clock,
    projections: &Projections,
) -> std::result::Result<Vec<Vec<Envelope>>, NotTogether> {
    let now = clock.now();
    let (mut head, counters) = head_and_counters(tx).await?;
    let mut ids = IdAllocator::new(counters);
    let mut built = Vec::with_capacity(parts.len());
    let mut events = 0;
    for (context, build) in parts {
        let appends = build(&mut ids);
        events += appends.iter().map(|a| a.events.len()).sum::<usize>();
        if events > TOGETHER_EVENTS {
            // Large appends are hashed beside their writes, one by one.
            return Err(NotTogether);
        }
        built.push((context, appends));
    }
    let event_ids: Vec<uuid::Uuid> = built
        .iter()
        .flat_map(|(_, appends)| appends.iter().flat_map(|a| &a.events))
        .map(|e| e.event_id)
        .collect();
    if !tx.backend().events_by_id(&event_ids).await?.is_empty() {
        // A retry of an append that is stored already.
        return Err(NotTogether);
    }
    let all: Vec<StreamAppend> = built.iter().flat_map(|(_, a)| a.iter().cloned()).collect();
    let mut versions = tx
        .backend()
        .stream_versions(&plan::stream_names(&all))
        .await?;
    let mut written = Vec::with_capacity(built.len());
    let mut envelopes: Vec<Envelope> = Vec::with_capacity(all.len());
    for (context, appends) in built {
        if appends.iter().all(|a| a.events.is_empty()) {
            return Err(NotTogether);
        }
        let mut planner = Planner::new(&head, versions.clone(), appends, context, now)?;
        versions.extend(planner.versions_after().clone());
        let part = planner.next_chunk(usize::MAX);
        if let Some(last) = part.last() {
            head = Head {
                position: last.position,
                hash: last.hash,
                recorded_at: last.recorded_at,
            };
        }
        envelopes.extend(part.iter().cloned());
        written.push(part);
    }
    tx.backend().insert(&envelopes).await?;
    write_counters(tx, &ids.changed(), false).await?;
    inline::apply_all(projections, tx, &envelopes, Vec::new()).await?;
    Ok(written)
}

/// Appends already built (their ids handed out), chained on `head`.
async fn write_built(
    tx: &mut Tx<'_>,
    context: &AppendContext,
    appends: Vec<StreamAppend>,
    head: &Head,
    now: chrono::DateTime<chrono::Utc>,
    projections: &Projections,
) -> Result<Outcome> {
    let event_ids: Vec<uuid::Uuid> = appends
        .iter()
        .flat_map(|a| a.events.iter().map(|e| e.event_id))
        .collect();
    let Some(first) = event_ids.first() else {
        return Ok(Outcome::Stored(Vec::new()));
    };
    if is_stored(tx, *first).await? {
        let rows = tx.backend().events_by_id(&event_ids).await?;
        return Ok(Outcome::Stored(ops::stored_batch(rows, &event_ids)?));
    }
    let total: usize = appends.iter().map(|a| a.events.len()).sum();
    if total >= OFFLOAD_EVENTS {
        if let Some(assumed) = plan::Assumed::of(&appends) {
            let versions = assumed.versions();
            if let Ok(after) = plan::check(&appends, &versions) {
                let planner = Planner::checked(head, versions, after, appends, context, now);
                return write_assumed(tx, planner, &assumed, head, total, projections).await;
            }
        }
    }
    let names = plan::stream_names(&appends);
    let versions = tx.backend().stream_versions(&names).await?;
    let mut planner = Planner::new(head, versions, appends, context, now)?;
    if total < OFFLOAD_EVENTS {
        let envelopes = planner.next_chunk(usize::MAX);
        tx.backend().insert(&envelopes).await?;
        inline::apply_all(projections, tx, &envelopes, Vec::new()).await?;
        return Ok(Outcome::Written(envelopes));
    }
    let (planning, planned) = plan_ahead(planner, tx.backend().chunk_size(), projections);
    write_planned(tx, planning, planned, total, projections).await
}

/// A large append planned on the versions its expectations name ([`plan::Assumed`]) while the
/// writer reads the stored ones: reading 5,000 streams' versions took as long as planning the
/// first chunk, and both came before the writer could write a row. On SQLite, an append of
/// new streams only reads none unless the log refuses a row: the log's unique
/// `(stream, version)` refuses the first event of a stream that exists. Either way a stream
/// that is not as expected is the conflict a read before any write would have named.
async fn write_assumed(
    tx: &mut Tx<'_>,
    planner: Planner,
    assumed: &plan::Assumed,
    head: &Head,
    total: usize,
    projections: &Projections,
) -> Result<Outcome> {
    let (planning, planned) = plan_ahead(planner, tx.backend().chunk_size(), projections);
    if assumed.all_new() && tx.backend().reads_after_refusal() {
        let written = write_planned(tx, planning, planned, total, projections).await;
        if written.is_err() {
            if let Ok(stored) = versions_before(tx, &assumed.streams(), head.position).await {
                if let Some(conflict) = assumed.conflict(&stored) {
                    return Err(conflict);
                }
            }
        }
        return written;
    }
    let stored = tx.backend().stream_versions(&assumed.streams()).await?;
    if let Some(conflict) = assumed.conflict(&stored) {
        drop(planned);
        planning.await?;
        return Err(conflict);
    }
    write_planned(tx, planning, planned, total, projections).await
}

/// The version of each named stream that exists in the log up to `position`: what an append
/// chained on that position found, whatever it has written since in its transaction.
async fn versions_before(
    tx: &mut Tx<'_>,
    names: &[String],
    position: i64,
) -> Result<HashMap<String, i64>> {
    let mut versions = HashMap::new();
    for names in names.chunks(VERSIONS_PER_READ) {
        let mut args: Vec<crate::sql::SqlValue<'_>> = vec![position.into()];
        args.extend(names.iter().map(crate::sql::SqlValue::from));
        let list: Vec<String> = (2..=args.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT stream, MAX(version) FROM events WHERE position <= $1 AND stream IN ({}) \
             GROUP BY stream",
            list.join(", ")
        );
        let rows: Vec<(String, i64)> = tx.fetch_all(&sql, &args).await?;
        versions.extend(rows);
    }
    Ok(versions)
}

/// Writes the `total` envelopes of a large append as `planning` sends them: the log's rows as
/// they come and the read models' every `APPLY_EVENTS`, or sooner whenever no chunk is
/// waiting, so that both cores stay busy to the end of the append and what is held between
/// stays small.
async fn write_planned(
    tx: &mut Tx<'_>,
    planning: tokio::task::JoinHandle<()>,
    mut planned: tokio::sync::mpsc::Receiver<PlannedChunk>,
    total: usize,
    projections: &Projections,
) -> Result<Outcome> {
    let mut envelopes: Vec<Envelope> = Vec::with_capacity(total);
    let mut decoding = Vec::new();
    let mut carries = inline::Carries::new(projections);
    let mut applied = 0;
    while let Some(next) = planned.recv().await {
        let (mut chunk, decoded) = next?;
        tx.backend().insert(&chunk).await?;
        envelopes.append(&mut chunk);
        decoding.push(decoded);
        // A full page, or the planner behind: what has come is applied instead of waiting.
        if envelopes.len() - applied >= APPLY_EVENTS || planned.is_empty() {
            let page = &envelopes[applied..];
            let decoding = std::mem::take(&mut decoding);
            inline::apply_pages(projections, tx, page, decoding, &mut carries).await?;
            applied = envelopes.len();
        }
    }
    // A planner that stopped early (it panicked) must not pass for the end of the append.
    planning.await?;
    debug_assert_eq!(envelopes.len(), total);
    let tail = &envelopes[applied..];
    inline::apply_pages(projections, tx, tail, decoding, &mut carries).await?;
    carries.finish(projections, tx).await?;
    Ok(Outcome::Written(envelopes))
}

/// A chunk of planned envelopes and what the projections made of it.
type PlannedChunk = Result<(Vec<Envelope>, Decoding)>;

/// Plans `planner`'s envelopes in chunks of `chunk_size` on the blocking pool, each decoded for
/// the projections, at most `PLANNED_AHEAD` chunks ahead of the receiver.
fn plan_ahead(
    mut planner: Planner,
    chunk_size: usize,
    projections: &Projections,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::Receiver<PlannedChunk>,
) {
    let (sender, receiver) = tokio::sync::mpsc::channel(PLANNED_AHEAD);
    let projections = projections.clone();
    let mut size = chunk_size.min(FIRST_CHUNK);
    let planning = tokio::task::spawn_blocking(move || loop {
        let chunk = planner.next_chunk(size);
        size = chunk_size;
        if chunk.is_empty() {
            return;
        }
        let planned = Decoding::of(&projections, &chunk).map(|decoded| (chunk, decoded));
        let failed = planned.is_err();
        // A closed channel: the writer gave the append up.
        if sender.blocking_send(planned).is_err() || failed {
            return;
        }
    });
    (planning, receiver)
}

/// Stores envelopes as they are (for `store copy`), after checking that they continue the chain.
pub(crate) async fn import(
    tx: &mut Tx<'_>,
    envelopes: &[Envelope],
    counters: &BTreeMap<String, i64>,
    projections: &Projections,
) -> Result<()> {
    let head = read_head(tx).await?;
    ops::check_continues(&head, envelopes)?;
    tx.backend().insert(envelopes).await?;
    let counters: Vec<(String, i64)> = counters.iter().map(|(k, v)| (k.clone(), *v)).collect();
    write_counters(tx, &counters, true).await?;
    inline::apply_all(projections, tx, envelopes, Vec::new()).await
}

pub(crate) async fn read_head(tx: &mut Tx<'_>) -> Result<Head> {
    const SQL: &str =
        "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1";
    let row: Option<(i64, Vec<u8>, i64)> = tx.fetch_optional(SQL, &[]).await?;
    ops::head_from_row(row)
}

/// The head of the log and the id counters, in one statement (on PostgreSQL each is a round
/// trip of the writer, which every append waits for): the head is the row without a kind.
async fn head_and_counters(tx: &mut Tx<'_>) -> Result<(Head, BTreeMap<String, i64>)> {
    const SQL: &str = "SELECT NULL, position, hash, recorded_at FROM \
         (SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1) h \
         UNION ALL SELECT kind, last_id, NULL, NULL FROM id_counters";
    type Row = (Option<String>, i64, Option<Vec<u8>>, Option<i64>);
    let rows: Vec<Row> = tx.fetch_all(SQL, &[]).await?;
    let mut head = None;
    let mut counters = BTreeMap::new();
    for (kind, value, hash, recorded_at) in rows {
        match (kind, hash, recorded_at) {
            (Some(kind), _, _) => {
                counters.insert(kind, value);
            }
            (None, Some(hash), Some(recorded_at)) => head = Some((value, hash, recorded_at)),
            (None, ..) => {
                return Err(StoreError::Corrupt {
                    position: value,
                    reason: "hash or recorded_at is missing".into(),
                })
            }
        }
    }
    Ok((ops::head_from_row(head)?, counters))
}

async fn is_stored(tx: &mut Tx<'_>, event_id: uuid::Uuid) -> Result<bool> {
    const SQL: &str = "SELECT position FROM events WHERE event_id = $1";
    let found: Option<(i64,)> = tx.fetch_optional(SQL, &[event_id.into()]).await?;
    Ok(found.is_some())
}

/// Writes counters back; `keep_higher` for imports, which must never lower a counter.
async fn write_counters(
    tx: &mut Tx<'_>,
    counters: &[(String, i64)],
    keep_higher: bool,
) -> Result<()> {
    let update = if keep_higher {
        tx.backend().greater_counter()
    } else {
        "excluded.last_id"
    };
    let sql = format!(
        "INSERT INTO id_counters (kind, last_id) VALUES ($1, $2) ON CONFLICT (kind) DO UPDATE SET last_id = {update}"
    );
    for (kind, last_id) in counters {
        tx.execute(&sql, &[kind.into(), last_id.into()]).await?;
    }
    Ok(())
}
