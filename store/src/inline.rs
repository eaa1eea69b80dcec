//! Read models kept in the append's own transaction.
//!
//! An inline projection sees every appended event before the append commits, in the same
//! transaction: a client that appended reads its own writes from the read model at once, and a
//! read model never runs ahead of or behind the log. If a projection fails, the append fails
//! with it and nothing is stored. Each projection's checkpoint (the last position it applied) is
//! kept in `projection_checkpoints`; a store opened with a projection whose checkpoint is behind
//! the log catches it up first, so a new or rebuilt read model fills itself.
//!
//! The store knows nothing of what a projection stores: it hands over envelopes and a
//! transaction, and keeps the checkpoint.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::PgConnection;

use crate::ops::{EventRow, COLUMNS};
use crate::sqlite_readers::Readers;
use crate::{Envelope, Result, SqlValue, StoreError};

/// The open transaction a projection writes in, on the store's backend. Statements are
/// written once and run on either through [`Tx::execute`] and its siblings (`sql.rs`).
#[derive(Debug)]
pub enum Tx<'c> {
    /// The SQLite writer's connection, on the writer's own thread.
    Sqlite(&'c mut rusqlite::Connection),
    Postgres(&'c mut PgConnection),
}

/// What a projection made of a page of events before it needed the database (decoded
/// payloads, rows worked out); its own type, boxed.
pub type Decoded = Box<dyn std::any::Any + Send>;

/// A read model updated in the append's transaction.
#[async_trait]
pub trait InlineProjection: Send + Sync + std::fmt::Debug {
    /// A stable name: the checkpoint is kept under it.
    fn name(&self) -> &'static str;

    /// Applies `events`, in position order, within `tx`. An error rolls the append back.
    async fn apply(&self, tx: &mut Tx<'_>, events: &[Envelope]) -> Result<()>;

    /// The part of applying `events` that needs no database. Rebuilds and bulk appends run it
    /// on the blocking pool, ahead of the writer, and hand the result to
    /// [`InlineProjection::apply_decoded`]. By default there is no such part.
    fn decode(&self, _events: &[Envelope]) -> Result<Option<Decoded>> {
        Ok(None)
    }

    /// [`InlineProjection::apply`] with what [`InlineProjection::decode`] made of `events`.
    async fn apply_decoded(
        &self,
        tx: &mut Tx<'_>,
        events: &[Envelope],
        _decoded: Option<Decoded>,
    ) -> Result<()> {
        self.apply(tx, events).await
    }

    /// [`InlineProjection::apply_decoded`] for one page of several in one transaction (a large
    /// append, a rebuild): sums the projection would write for each page go into `carry`, and
    /// [`InlineProjection::finish_pages`] writes them once. On PostgreSQL each update of a row
    /// leaves a version that the next update in the same transaction steps over, so a row
    /// updated on every page of a million events costs quadratically. By default each page is
    /// applied whole.
    async fn apply_page(
        &self,
        tx: &mut Tx<'_>,
        events: &[Envelope],
        decoded: Option<Decoded>,
        _carry: &mut Option<Decoded>,
    ) -> Result<()> {
        self.apply_decoded(tx, events, decoded).await
    }

    /// Writes what [`InlineProjection::apply_page`] left in `carry` over a transaction's pages.
    async fn finish_pages(&self, _tx: &mut Tx<'_>, _carry: Option<Decoded>) -> Result<()> {
        Ok(())
    }

    /// Empties the read model, for a rebuild from position 0.
    async fn reset(&self, tx: &mut Tx<'_>) -> Result<()>;

    /// Called once a rebuild has replayed the whole log, in its transaction: for what is
    /// cheaper to build once at the end than row by row (an index).
    async fn finish_rebuild(&self, _tx: &mut Tx<'_>) -> Result<()> {
        Ok(())
    }
}

/// The projections of a store, applied in order.
pub(crate) type Projections = std::sync::Arc<[std::sync::Arc<dyn InlineProjection>]>;

/// The projection called `name`.
pub(crate) fn find(
    projections: &Projections,
    name: &str,
) -> Result<std::sync::Arc<dyn InlineProjection>> {
    projections
        .iter()
        .find(|p| p.name() == name)
        .cloned()
        .ok_or_else(|| StoreError::Projection {
            name: name.to_owned(),
            reason: "no read model of that name is registered".into(),
        })
}

/// Told, after each page of a rebuild, how many events were applied and where the log ends.
pub type Progress = std::sync::Arc<dyn Fn(u64, i64) + Send + Sync>;

/// Where a rebuild reads the log.
pub(crate) enum RebuildLog {
    /// Through the rebuild's own transaction.
    Transaction,
    /// Through read-only connections beside the writer's (SQLite), which see the log the
    /// rebuild sees: its transaction holds the write lock and writes no events.
    Readers(Readers),
}

/// A page of events and what the projection made of it, on the way from the blocking pool.
type PageTask = tokio::task::JoinHandle<Result<(Vec<Envelope>, Option<Decoded>)>>;

/// Pages of the log a rebuild has on the way while it writes one.
const PAGES_AHEAD: usize = 2;

/// Empties `projection` and replays the log up to `head` into it, inside `tx`.
///
/// Each page is decoded on a thread of the blocking pool (and with [`RebuildLog::Readers`]
/// also read there) while the pages before are written: the writer's thread does little but
/// write rows. Pages are cut by position (the log has no gaps; a page that shows one is
/// refused), so the next ones start before this one is back: decoding a page takes about as
/// long as writing it, and with one on the way the writer waited for it (0.6-0.9 s of 10 at the
/// million), with two 0.2 s.
pub(crate) async fn rebuild(
    projection: Arc<dyn InlineProjection>,
    tx: &mut Tx<'_>,
    head: i64,
    log: RebuildLog,
    progress: &Progress,
) -> Result<u64> {
    let mut pages = Pages::with_capacity(PAGES_AHEAD + 1);
    let mut requested = 0;
    // The first pages are read and decoded while the read model is emptied: they are of the
    // log, which the reset leaves alone.
    request_pages(&projection, tx, &log, &mut pages, &mut requested, head).await?;
    projection.reset(tx).await?;
    set_checkpoint(tx, projection.name(), 0).await?;
    let mut total = 0;
    let mut carry = None;
    loop {
        request_pages(&projection, tx, &log, &mut pages, &mut requested, head).await?;
        let Some((last, page)) = pages.pop_front() else {
            projection.finish_pages(tx, carry).await?;
            projection.finish_rebuild(tx).await?;
            return Ok(total);
        };
        let (events, decoded) = page.await??;
        // `next_page` refuses a gap inside a page; one at its end shows here.
        if events.last().map(|e| e.position) != Some(last) {
            return Err(StoreError::Projection {
                name: projection.name().into(),
                reason: format!(
                    "the log has a gap before position {last}; run `exact store verify`"
                ),
            });
        }
        projection
            .apply_page(tx, &events, decoded, &mut carry)
            .await?;
        set_checkpoint(tx, projection.name(), last).await?;
        total += events.len() as u64;
        progress(total, head);
    }
}

/// Pages on the way, each with the position it ends at.
type Pages = std::collections::VecDeque<(i64, PageTask)>;

/// Starts getting pages after position `requested` ready, up to [`PAGES_AHEAD`] besides the
/// next one, and not past `head`.
async fn request_pages(
    projection: &Arc<dyn InlineProjection>,
    tx: &mut Tx<'_>,
    log: &RebuildLog,
    pages: &mut Pages,
    requested: &mut i64,
    head: i64,
) -> Result<()> {
    while pages.len() <= PAGES_AHEAD && *requested < head {
        let until = (*requested + CATCH_UP_PAGE).min(head);
        let page = next_page(projection, tx, log, *requested, until).await?;
        pages.push_back((until, page));
        *requested = until;
    }
    Ok(())
}

/// Starts getting the page of the log after position `from` (up to `until`) ready for
/// `projection`.
async fn next_page(
    projection: &Arc<dyn InlineProjection>,
    tx: &mut Tx<'_>,
    log: &RebuildLog,
    from: i64,
    until: i64,
) -> Result<PageTask> {
    let projection = projection.clone();
    Ok(match log {
        RebuildLog::Transaction => {
            let events = read_page(projection.name(), tx, from, until).await?;
            tokio::task::spawn_blocking(move || {
                let decoded = projection.decode(&events)?;
                Ok((events, decoded))
            })
        }
        RebuildLog::Readers(readers) => {
            let readers = readers.clone();
            tokio::task::spawn_blocking(move || {
                let events = if from < until {
                    readers.page_now(from + 1, until, CATCH_UP_PAGE)?
                } else {
                    Vec::new()
                };
                check_page(projection.name(), from, &events)?;
                let decoded = projection.decode(&events)?;
                Ok((events, decoded))
            })
        }
    })
}

/// Events a projection is handed at once while it catches up.
pub(crate) const CATCH_UP_PAGE: i64 = 5_000;

/// Applies `events` (just written in `tx`) to every projection and moves their checkpoints.
/// A projection that is behind (another process appended without it) first gets what it
/// missed, so that no projection ever skips an event. `decoding` holds what each projection made
/// of consecutive chunks of `events` (see [`Decoding`]); when empty, `events` are applied whole.
pub(crate) async fn apply_all(
    projections: &Projections,
    tx: &mut Tx<'_>,
    events: &[Envelope],
    decoding: Vec<Decoding>,
) -> Result<()> {
    let mut carries = Carries::new(projections);
    apply_pages(projections, tx, events, decoding, &mut carries).await?;
    carries.finish(projections, tx).await
}

/// [`apply_all`] for one page of several in a transaction: what the projections carry over
/// the pages (see [`InlineProjection::apply_page`]) stays in `carries` until
/// [`Carries::finish`].
pub(crate) async fn apply_pages(
    projections: &Projections,
    tx: &mut Tx<'_>,
    events: &[Envelope],
    decoding: Vec<Decoding>,
    carries: &mut Carries,
) -> Result<()> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(());
    };
    let mut chunks: Vec<(usize, Vec<Option<Decoded>>)> =
        decoding.into_iter().map(|d| (d.len, d.decoded)).collect();
    // Every checkpoint read in one statement and written in one: on PostgreSQL each is a
    // round trip, and a single annotation's append is a handful of statements in all.
    let applied = checkpoints(tx).await?;
    for (index, projection) in projections.iter().enumerate() {
        let behind = applied.get(projection.name()).copied().unwrap_or(0) < first.position - 1;
        if behind {
            while catch_up_page(projection.as_ref(), tx, first.position - 1).await? > 0 {}
        }
        if chunks.is_empty() {
            projection.apply(tx, events).await?;
        }
        let mut start = 0;
        for (len, decoded) in &mut chunks {
            let chunk = &events[start..start + *len];
            projection
                .apply_page(tx, chunk, decoded[index].take(), &mut carries.0[index])
                .await?;
            start += *len;
        }
    }
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    set_checkpoints(tx, &names, last.position).await
}

/// What each projection carries over the pages of one transaction, in the projections' order.
pub(crate) struct Carries(Vec<Option<Decoded>>);

impl Carries {
    pub(crate) fn new(projections: &Projections) -> Self {
        Self(projections.iter().map(|_| None).collect())
    }

    /// Writes what the pages left (see [`InlineProjection::finish_pages`]).
    pub(crate) async fn finish(self, projections: &Projections, tx: &mut Tx<'_>) -> Result<()> {
        for (projection, carry) in projections.iter().zip(self.0) {
            projection.finish_pages(tx, carry).await?;
        }
        Ok(())
    }
}

/// What every projection made of a chunk of new events, in the projections' order: worked out
/// on the blocking pool ahead of the writer (see `transaction::write_built`).
pub(crate) struct Decoding {
    len: usize,
    decoded: Vec<Option<Decoded>>,
}

impl Decoding {
    pub(crate) fn of(projections: &Projections, chunk: &[Envelope]) -> Result<Self> {
        Ok(Self {
            len: chunk.len(),
            decoded: projections
                .iter()
                .map(|p| p.decode(chunk))
                .collect::<Result<_>>()?,
        })
    }
}

/// Applies to `projection` up to one page of the events after its checkpoint and up to
/// `until`, read through `tx`; returns how many.
pub(crate) async fn catch_up_page(
    projection: &dyn InlineProjection,
    tx: &mut Tx<'_>,
    until: i64,
) -> Result<usize> {
    let from = checkpoint(tx, projection.name()).await?;
    let events = read_page(projection.name(), tx, from, until).await?;
    let Some(last) = events.last() else {
        return Ok(0);
    };
    projection.apply(tx, &events).await?;
    set_checkpoint(tx, projection.name(), last.position).await?;
    Ok(events.len())
}

/// Up to a page of the events after position `from` and up to `until`, for projection `name`;
/// refuses a page with a gap.
async fn read_page(name: &str, tx: &mut Tx<'_>, from: i64, until: i64) -> Result<Vec<Envelope>> {
    if from >= until {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {COLUMNS} FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3");
    let rows: Vec<EventRow> = tx
        .fetch_all(&sql, &[from.into(), until.into(), CATCH_UP_PAGE.into()])
        .await?;
    let events = rows
        .into_iter()
        .map(EventRow::into_envelope)
        .collect::<Result<Vec<_>>>()?;
    check_page(name, from, &events)?;
    Ok(events)
}

/// Refuses a page of events that does not follow position `from` without a gap.
fn check_page(name: &str, from: i64, events: &[Envelope]) -> Result<()> {
    let Some(last) = events.last() else {
        return Ok(());
    };
    if events[0].position != from + 1 || last.position - from != events.len() as i64 {
        return Err(StoreError::Projection {
            name: name.into(),
            reason: format!("the log has a gap after position {from}; run `exact store verify`"),
        });
    }
    Ok(())
}

/// Records that projection `name` has applied the log up to `position`.
pub(crate) async fn set_checkpoint(tx: &mut Tx<'_>, name: &str, position: i64) -> Result<()> {
    set_checkpoints(tx, &[name], position).await
}

/// [`set_checkpoint`] of every projection in `names`: one statement on PostgreSQL.
async fn set_checkpoints(tx: &mut Tx<'_>, names: &[&str], position: i64) -> Result<()> {
    let values: Vec<SqlValue<'_>> = names
        .iter()
        .flat_map(|name| [(*name).into(), position.into()])
        .collect();
    tx.insert_rows(
        "INSERT INTO projection_checkpoints (name, position) ",
        2,
        " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        &values,
    )
    .await?;
    Ok(())
}

/// The last position each projection has applied, by name (none for one that applied none).
async fn checkpoints(tx: &mut Tx<'_>) -> Result<std::collections::HashMap<String, i64>> {
    const SQL: &str = "SELECT name, position FROM projection_checkpoints";
    let rows: Vec<(String, i64)> = tx.fetch_all(SQL, &[]).await?;
    Ok(rows.into_iter().collect())
}

/// The last position `name` has applied (0 if none).
pub(crate) async fn checkpoint(tx: &mut Tx<'_>, name: &str) -> Result<i64> {
    const SQL: &str = "SELECT position FROM projection_checkpoints WHERE name = $1";
    let found: Option<(i64,)> = tx.fetch_optional(SQL, &[name.into()]).await?;
    Ok(found.map_or(0, |(position,)| position))
}
