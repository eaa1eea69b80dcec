//! Work over stored envelopes that is the same on every backend: decoding rows, reading the
//! whole log in pages, verifying the chain, exporting and copying.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::plan::Head;
use crate::{Envelope, EventStore, Hash, Result, StoreError, ZERO_HASH};

/// Events per page when the whole log is read.
pub const PAGE: i64 = 5_000;

/// The columns of `events`, in the order [`EventRow`] reads them.
pub(crate) const COLUMNS: &str =
    "position, stream, version, event_id, type, schema, payload, metadata, recorded_at, prev_hash, hash";

/// One row of the `events` table, as both backends store it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    pub position: i64,
    pub stream: String,
    pub version: i64,
    pub event_id: uuid::Uuid,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub schema: i32,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl EventRow {
    pub(crate) fn into_envelope(self) -> Result<Envelope> {
        let position = self.position;
        let corrupt = |reason: &str| StoreError::Corrupt {
            position,
            reason: reason.to_owned(),
        };
        Ok(Envelope {
            position,
            stream: self.stream,
            version: self.version,
            event_id: self.event_id,
            event_type: self.event_type,
            schema: self.schema,
            payload: self.payload,
            metadata: self.metadata,
            recorded_at: from_micros(self.recorded_at)
                .ok_or_else(|| corrupt("recorded_at out of range"))?,
            prev_hash: self
                .prev_hash
                .try_into()
                .map_err(|_| corrupt("prev_hash is not 32 bytes"))?,
            hash: self
                .hash
                .try_into()
                .map_err(|_| corrupt("hash is not 32 bytes"))?,
        })
    }
}

fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

/// The head from `(position, hash, recorded_at)` of the last row, if any.
pub(crate) fn head_from_row(row: Option<(i64, Vec<u8>, i64)>) -> Result<Head> {
    let Some((position, hash, recorded_at)) = row else {
        return Ok(Head::EMPTY);
    };
    let corrupt = |reason: &str| StoreError::Corrupt {
        position,
        reason: reason.to_owned(),
    };
    Ok(Head {
        position,
        hash: hash
            .try_into()
            .map_err(|_| corrupt("hash is not 32 bytes"))?,
        recorded_at: from_micros(recorded_at).ok_or_else(|| corrupt("recorded_at out of range"))?,
    })
}

/// Checks that the rows found for a retried batch are that whole batch, and orders them.
pub(crate) fn stored_batch(rows: Vec<EventRow>, event_ids: &[uuid::Uuid]) -> Result<Vec<Envelope>> {
    let mut by_id: HashMap<uuid::Uuid, Envelope> = HashMap::with_capacity(rows.len());
    for row in rows {
        let envelope = row.into_envelope()?;
        by_id.insert(envelope.event_id, envelope);
    }
    let mut envelopes = Vec::with_capacity(event_ids.len());
    for id in event_ids {
        match by_id.remove(id) {
            Some(e) => envelopes.push(e),
            None => {
                return Err(StoreError::DuplicateEvent {
                    event_id: event_ids[0],
                })
            }
        }
    }
    Ok(envelopes)
}

/// An insert that hits the unique event id: some event of the batch is stored already.
pub(crate) fn map_insert_error(error: sqlx::Error, envelopes: &[Envelope]) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        let on_event_id = db.constraint().is_some_and(|c| c.contains("event_id"))
            || db.message().contains("event_id");
        if db.is_unique_violation() && on_event_id {
            let event_id = envelopes.first().map(|e| e.event_id).unwrap_or_default();
            return StoreError::DuplicateEvent { event_id };
        }
    }
    error.into()
}

/// Imported envelopes must continue the chain exactly where the target's head ends.
pub(crate) fn check_continues(head: &Head, envelopes: &[Envelope]) -> Result<()> {
    let Some(first) = envelopes.first() else {
        return Ok(());
    };
    if first.position != head.position + 1 || first.prev_hash != head.hash {
        return Err(StoreError::InvalidAppend(format!(
            "imported envelopes start at position {} but the store's head is at {}",
            first.position, head.position
        )));
    }
    Ok(())
}

/// Raises the watched position, never lowers it; true if it moved.
pub(crate) fn advance(current: &mut i64, position: i64) -> bool {
    if position > *current {
        *current = position;
        true
    } else {
        false
    }
}

/// Awaits a spawned store task, passing its panic on.
pub(crate) async fn join<T>(handle: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    match handle.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StoreError::Io(std::io::Error::other(e))),
    }
}

impl dyn EventStore + '_ {
    /// Every event from `from_position` on, read page by page: memory stays bounded however
    /// long the log is.
    pub fn read_all(&self, from_position: i64) -> BoxStream<'_, Result<Envelope>> {
        stream::try_unfold(from_position.max(1), move |next| async move {
            let page = self.read_page(next, PAGE).await?;
            let Some(last) = page.last() else {
                return Ok::<_, StoreError>(None);
            };
            let following = last.position + 1;
            Ok(Some((
                stream::iter(page.into_iter().map(Ok::<_, StoreError>)),
                following,
            )))
        })
        .try_flatten()
        .boxed()
    }

    /// Recomputes the chain from `from` to `to` (inclusive; `None` for the head) and reports the
    /// first position where it breaks.
    ///
    /// Every row stores its `prev_hash`, so each event can be checked on its own: a page is
    /// checked on all cores while the next page is read.
    pub async fn verify(&self, from: i64, to: Option<i64>) -> Result<VerifyReport> {
        let from = from.max(1);
        let mut report = VerifyReport::default();
        let mut link = Link {
            position: from,
            hash: ZERO_HASH,
        };
        if from > 1 {
            match self.read_page(from - 1, 1).await?.pop() {
                Some(e) if e.position == from - 1 => link.hash = e.hash,
                _ => {
                    report.problem = Some(ChainProblem::new(
                        from - 1,
                        ProblemKind::Gap,
                        "the event before the range is missing",
                    ));
                    return Ok(report);
                }
            }
        }
        let mut page = self.read_page(from, PAGE).await;
        loop {
            let mut events = match page {
                Ok(events) => events,
                Err(StoreError::Corrupt { position, reason }) => {
                    report.problem =
                        Some(ChainProblem::new(position, ProblemKind::Unreadable, reason));
                    return Ok(report);
                }
                Err(e) => return Err(e),
            };
            if let Some(to) = to {
                events.retain(|e| e.position <= to);
            }
            let Some(last) = events.last() else { break };
            let following = last.position + 1;
            let checking = tokio::task::spawn_blocking(move || check_page(&events, link));
            let (checked, next) = tokio::join!(checking, self.read_page(following, PAGE));
            let checked = checked.map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
            report.checked += checked.good as u64;
            if checked.good > 0 {
                report.first.get_or_insert(link.position);
                report.last = Some(checked.end.position - 1);
                report.head_hash = Some(checked.end.hash);
            }
            if checked.problem.is_some() {
                report.problem = checked.problem;
                return Ok(report);
            }
            link = checked.end;
            page = next;
        }
        Ok(report)
    }
}

/// Where the next event must attach: its position and the `prev_hash` it must carry.
#[derive(Clone, Copy, Debug)]
struct Link {
    position: i64,
    hash: Hash,
}

/// The outcome of checking one page.
struct PageCheck {
    /// Events that are good, from the start of the page up to the first problem.
    good: usize,
    /// Where the event after the last good one must attach.
    end: Link,
    problem: Option<ChainProblem>,
}

/// Checks a page that must attach at `start`, spreading the hashing over the machine's cores.
fn check_page(events: &[Envelope], start: Link) -> PageCheck {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let chunk = events.len().div_ceil(threads).max(1);
    let first_bad: Option<(usize, ChainProblem)> = std::thread::scope(|scope| {
        let workers: Vec<_> = events
            .chunks(chunk)
            .enumerate()
            .map(|(i, slice)| {
                let offset = i * chunk;
                scope.spawn(move || {
                    let mut link = match offset.checked_sub(1) {
                        Some(before) => Link {
                            position: events[before].position + 1,
                            hash: events[before].hash,
                        },
                        None => start,
                    };
                    for (j, envelope) in slice.iter().enumerate() {
                        if let Some(problem) = check_link(envelope, link.position, &link.hash) {
                            return Some((offset + j, problem));
                        }
                        link = Link {
                            position: envelope.position + 1,
                            hash: envelope.hash,
                        };
                    }
                    None
                })
            })
            .collect();
        // The first problem in log order is the one to report.
        workers
            .into_iter()
            .find_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
    });
    let good = first_bad.as_ref().map_or(events.len(), |(index, _)| *index);
    let end = match good.checked_sub(1) {
        Some(last) => Link {
            position: events[last].position + 1,
            hash: events[last].hash,
        },
        None => start,
    };
    PageCheck {
        good,
        end,
        problem: first_bad.map(|(_, problem)| problem),
    }
}

/// What is wrong with `envelope` as the successor of a chain ending in `prev_hash`, if anything.
fn check_link(
    envelope: &Envelope,
    expected_position: i64,
    prev_hash: &Hash,
) -> Option<ChainProblem> {
    let position = envelope.position;
    if position != expected_position {
        return Some(ChainProblem::new(
            expected_position,
            ProblemKind::Gap,
            format!(
                "position {expected_position} is missing; the next stored event is at {position}"
            ),
        ));
    }
    if envelope.prev_hash != *prev_hash {
        return Some(ChainProblem::new(
            position,
            ProblemKind::BrokenLink,
            format!(
                "prev_hash {} is not the hash of position {}",
                hex::encode(envelope.prev_hash),
                position - 1
            ),
        ));
    }
    let recomputed = envelope.compute_hash();
    if recomputed != envelope.hash {
        return Some(ChainProblem::new(
            position,
            ProblemKind::HashMismatch,
            format!(
                "stored hash {} but the content hashes to {}",
                hex::encode(envelope.hash),
                hex::encode(recomputed)
            ),
        ));
    }
    match serde_json::from_str::<RecordedAt>(&envelope.metadata) {
        Ok(metadata) if metadata.recorded_at == envelope.recorded_at => None,
        Ok(_) => Some(ChainProblem::new(
            position,
            ProblemKind::ColumnMismatch,
            "the recorded_at column differs from the hashed metadata",
        )),
        Err(e) => Some(ChainProblem::new(
            position,
            ProblemKind::Unreadable,
            format!("metadata: {e}"),
        )),
    }
}

/// The one metadata field `verify` compares with its column.
#[derive(serde::Deserialize)]
struct RecordedAt {
    #[serde(with = "crate::micros_rfc3339")]
    recorded_at: DateTime<Utc>,
}

/// What `verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events whose link and hash were checked and found good.
    pub checked: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// The hash of the last good event: anchor it elsewhere to detect a cut-off tail.
    pub head_hash: Option<Hash>,
    /// The first place where the chain breaks, if it does.
    pub problem: Option<ChainProblem>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Where and how a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainProblem {
    pub position: i64,
    pub kind: ProblemKind,
    pub detail: String,
}

impl ChainProblem {
    fn new(position: i64, kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            position,
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "position {}: {}: {}",
            self.position, self.kind, self.detail
        )
    }
}

/// The ways a chain can break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The content does not hash to the stored hash: something was edited.
    HashMismatch,
    /// `prev_hash` is not the previous event's hash: something was inserted, removed or moved.
    BrokenLink,
    /// A position is missing.
    Gap,
    /// A stored column that repeats hashed content disagrees with it.
    ColumnMismatch,
    /// The row cannot be decoded.
    Unreadable,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProblemKind::HashMismatch => "hash mismatch",
            ProblemKind::BrokenLink => "broken link",
            ProblemKind::Gap => "gap",
            ProblemKind::ColumnMismatch => "column mismatch",
            ProblemKind::Unreadable => "unreadable",
        })
    }
}

/// Writes the whole log as JSON lines, one envelope per line; returns how many.
pub async fn export_jsonl<W: AsyncWrite + Unpin + Send>(
    store: &dyn EventStore,
    out: &mut W,
) -> Result<u64> {
    let mut count = 0;
    let mut buffer = String::with_capacity(1 << 20);
    let mut events = store.read_all(1);
    while let Some(envelope) = events.next().await {
        buffer.push_str(&envelope?.to_json_line());
        buffer.push('\n');
        count += 1;
        if buffer.len() >= 1 << 20 {
            out.write_all(buffer.as_bytes()).await?;
            buffer.clear();
        }
    }
    out.write_all(buffer.as_bytes()).await?;
    out.flush().await?;
    Ok(count)
}

/// Restores a log written by [`export_jsonl`] into the empty store `to`, or nothing of it. The
/// file is read twice: first every line is checked (an envelope, the next position, linked to
/// the one before, its hash its own), so a bad line is named by its number before anything is
/// stored; then every envelope is stored as it was (positions and hashes unchanged), with the
/// id counters recomputed from the streams (`kind-ID`: the highest ID of each kind, so that no
/// id is handed out twice), and the whole chain verified.
pub async fn import_jsonl(path: &std::path::Path, to: &dyn EventStore) -> Result<VerifyReport> {
    let existing = to.last_position().await?;
    if existing > 0 {
        return Err(StoreError::TargetNotEmpty { events: existing });
    }
    let refused = |number: u64, why: String| {
        StoreError::InvalidAppend(format!("line {number} of {}: {why}", path.display()))
    };
    // First pass: the whole file checked, and the counters it implies.
    let mut counters: BTreeMap<String, i64> = BTreeMap::new();
    let (mut position, mut hash) = (0, ZERO_HASH);
    let mut envelopes = envelopes_of(path).await?;
    while let Some(read) = envelopes.next().await {
        let (number, envelope) = read?;
        if envelope.position != position + 1 || envelope.prev_hash != hash {
            return Err(refused(
                number,
                format!(
                    "position {} does not follow position {position} of the chain",
                    envelope.position
                ),
            ));
        }
        if envelope.compute_hash() != envelope.hash {
            return Err(refused(
                number,
                format!("the hash of position {} is not its own", envelope.position),
            ));
        }
        (position, hash) = (envelope.position, envelope.hash);
        if let Some((kind, id)) = envelope.stream.split_once('-') {
            if let Ok(id) = id.parse::<i64>() {
                let highest = counters.entry(kind.to_owned()).or_default();
                *highest = (*highest).max(id);
            }
        }
    }
    // Second pass: stored page by page, each page checked to continue the chain.
    let empty = BTreeMap::new();
    let mut page = Vec::with_capacity(PAGE as usize);
    let mut envelopes = envelopes_of(path).await?;
    while let Some(read) = envelopes.next().await {
        page.push(read?.1);
        if page.len() as i64 >= PAGE {
            to.import(&page, &empty).await?;
            page.clear();
        }
    }
    to.import(&page, &counters).await?;
    to.verify(1, None).await
}

/// The envelopes of a file of JSON lines with their line numbers, blank lines passed over; a
/// line that is not an envelope is an error naming it.
async fn envelopes_of(
    path: &std::path::Path,
) -> Result<BoxStream<'static, Result<(u64, Envelope)>>> {
    use tokio::io::AsyncBufReadExt;
    let file = tokio::fs::File::open(path).await?;
    let lines = tokio::io::BufReader::new(file).lines();
    let shown = path.display().to_string();
    Ok(
        stream::unfold((lines, 0u64), move |(mut lines, mut number)| {
            let shown = shown.clone();
            async move {
                loop {
                    number += 1;
                    let line = match lines.next_line().await {
                        Ok(Some(line)) => line,
                        Ok(None) => return None,
                        Err(e) => return Some((Err(e.into()), (lines, number))),
                    };
                    if line.trim().is_empty() {
                        continue;
                    }
                    let read = Envelope::from_json_line(&line)
                        .map(|envelope| (number, envelope))
                        .map_err(|why| {
                            StoreError::InvalidAppend(format!("line {number} of {shown}: {why}"))
                        });
                    return Some((read, (lines, number)));
                }
            }
        })
        .boxed(),
    )
}

/// Copies the whole log and the id counters from `from` into the empty store `to`, positions
/// and hashes unchanged, then verifies the copy and checks that it ends on the same hash.
pub async fn copy(from: &dyn EventStore, to: &dyn EventStore) -> Result<VerifyReport> {
    let existing = to.last_position().await?;
    if existing > 0 {
        return Err(StoreError::TargetNotEmpty { events: existing });
    }
    let empty = BTreeMap::new();
    let mut next = 1;
    loop {
        let page = from.read_page(next, PAGE).await?;
        let Some(last) = page.last() else { break };
        next = last.position + 1;
        to.import(&page, &empty).await?;
    }
    to.import(&[], &from.counters().await?).await?;
    let source = from.verify(1, Some(next - 1)).await?;
    let copied = to.verify(1, None).await?;
    if copied.is_intact() && copied.head_hash != source.head_hash {
        return Err(StoreError::InvalidAppend(
            "the copy's chain ends on another hash than the source's".into(),
        ));
    }
    Ok(copied)
}
