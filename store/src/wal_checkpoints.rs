//! SQLite's WAL checkpoints on a thread of their own.
//!
//! In WAL mode SQLite copies the log's pages back into the database file (a checkpoint) inside
//! the commit that takes the WAL past 1,000 pages, on the committing connection: here the
//! writer, which every append waits for. At a million annotations that was an eighth of the
//! writer's time in bulk creation, and a single POST that drew it waited for a checkpoint and
//! its fsync (the likely cause of p99 spikes of a second on a slow disk). The store turns the
//! writer's automatic checkpoints off and runs passive ones from this thread's own connection
//! instead, after commits, at most every [`CHECKPOINT_EVERY`]: beside the writer, never in its
//! way (a passive checkpoint takes no lock a writer or reader waits for).
//!
//! A passive checkpoint that a commit overtakes leaves the WAL to grow, as the writer starts
//! the WAL over only when it has all been copied back; under a steady stream of commits that
//! may never happen by itself. Past [`LONG_WAL_FRAMES`] the thread runs a checkpoint that waits
//! for the writer and makes the next commit start the WAL over (what SQLite's own checkpoints
//! did on every commit past 1,000 pages).
//!
//! Durability does not depend on it: a commit is durable in the WAL, and SQLite replays the WAL
//! on the next open if a checkpoint never ran.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::Result;

/// The shortest time between two checkpoints while commits keep coming: long enough that a
/// stream of single appends does not become a stream of checkpoints (each ends in an fsync),
/// short enough that the WAL stays a few batches long.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Pages in the WAL past which it is started over (about 200 MB of 4 KiB pages: a few bulk
/// appends of 5,000 annotations, each of which writes 10,000 pages or more at the million).
const LONG_WAL_FRAMES: i64 = 50_000;

/// Asks the checkpoint thread for a checkpoint; the thread stops when this is dropped.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    nudge: SyncSender<()>,
}

impl Checkpoints {
    /// Starts the thread for the database at `path` (in WAL mode already).
    pub(crate) fn start(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        // Only a long WAL's checkpoint waits (for the writer's transaction); a passive one never.
        conn.busy_timeout(Duration::from_secs(10))?;
        // Under FULL a checkpoint syncs the WAL before it copies and the database after.
        conn.pragma_update(None, "synchronous", "full")?;
        let (nudge, nudged) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("exact-sqlite-checkpoints".into())
            .spawn(move || run(&conn, &nudged))?;
        Ok(Self { nudge })
    }

    /// Tells the thread that a commit added to the WAL. Nudges while one is pending merge.
    pub(crate) fn committed(&self) {
        match self.nudge.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => {
                tracing::error!("the SQLite checkpoint thread has stopped; the WAL will grow");
            }
        }
    }
}

/// Checkpoints after each nudge, at most every [`CHECKPOINT_EVERY`], until the store is gone.
fn run(conn: &Connection, nudged: &Receiver<()>) {
    let mut due = false;
    loop {
        if !due && nudged.recv().is_err() {
            return;
        }
        if let Err(error) = checkpoint(conn) {
            tracing::warn!(%error, "a WAL checkpoint failed; the next commit asks again");
        }
        due = false;
        let next = Instant::now() + CHECKPOINT_EVERY;
        loop {
            match nudged.recv_timeout(next.saturating_duration_since(Instant::now())) {
                Ok(()) => due = true,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// A passive checkpoint, and one that starts the WAL over if it has grown past
/// [`LONG_WAL_FRAMES`].
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    // (busy, pages in the WAL, pages copied back): -1 when the database is not in WAL mode.
    let pages: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?;
    if pages > LONG_WAL_FRAMES {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}
