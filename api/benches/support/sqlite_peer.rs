//! The peer of the SQLite rows: SQLite alone writing rows our command path wrote, with none
//! of our code in the way (no rules, JSON, hashes, ids or channels), so that a rate of ours
//! can be read against what the database itself does on this machine in the same run.
//!
//! The rows are copied by `INSERT … SELECT` from the benchmark's own database, attached
//! read-only, into a fresh database with the same migrations and the writer's settings: no
//! value crosses into Rust, which makes the peer a floor on the time any implementation of
//! these tables needs (the `WHERE` keeps SQLite from copying whole pages instead of rows).
//! Its log is checkpointed as SQLite does by default, inside the commit that takes it past
//! 1,000 frames; the store's writer does the same checkpoints itself right after answering
//! that commit's callers, so each delays the next batch's writes instead of this batch's
//! answer (creation's time holds them all: each overlaps the client's making of its next
//! batch, and the benchmark waits for a block's last one before its clock stops).
//! The peer copies the creation block by block, each block of batches right after ours wrote
//! it, and refills its table right before our rebuild: this machine's speed drifts by a
//! third within minutes, and two phases of half a minute each, one after the other, read
//! 0.81-1.07 of each other with no change of code between runs (BENCHMARKS.md, "creation
//! read against its peer block by block"). Every phase of both starts after a `sync`: a
//! gigabyte left for writeback by one phase would slow the next.
//! It writes a subset of what a creation writes: the log's rows, the annotations' rows and
//! the new cells of the spatial index, not the overview's counts or the statistics.

use std::path::Path;
use std::time::{Duration, Instant};

use exact_store::testing::TestDb;
use exact_store::Backend;

/// The peer's database, filled as the benchmark's creation goes, then ready for
/// [`Peer::refill`].
pub struct Peer {
    /// The annotations' creations: their events, rows and cells, one transaction per batch.
    pub create: Duration,
    pub created: i64,
    /// Events in the log, as a rebuild counts them.
    pub events: i64,
    conn: rusqlite::Connection,
    _db: TestDb,
}

/// One batch of the benchmark's creation: its annotations' ids and its events' positions,
/// first and last (one creation per event, in the order of the log).
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    pub ids: [i64; 2],
    pub positions: [i64; 2],
}

/// Writes back what the page cache holds dirty, so that a timed phase does not pay for the
/// writes of the one before it (each phase writes a gigabyte at the million).
pub fn settle() {
    let synced = std::process::Command::new("sync").status();
    assert!(synced.is_ok_and(|s| s.success()), "sync failed");
}

impl Peer {
    /// A fresh database beside the one at `source`, with its log as it is now (the lab:
    /// user, team, set, types, image), copied untimed before any annotation is created.
    pub async fn new(source: &Path) -> Peer {
        let peer = TestDb::new(Backend::Sqlite).await;
        // Opening a store runs the migrations (no genesis event: the copy brings the log's
        // own); the store is closed again before the copy.
        drop(peer.open_with(false).await);
        let conn = exact_store::testing::sqlite_writer_connection(peer.sqlite_path()).unwrap();
        conn.execute(
            "ATTACH DATABASE ?1 AS src",
            [format!("file:{}?mode=ro", source.display())],
        )
        .unwrap();
        conn.execute("INSERT INTO events SELECT * FROM src.events", [])
            .unwrap();
        Peer {
            create: Duration::ZERO,
            created: 0,
            events: 0,
            conn,
            _db: peer,
        }
    }

    /// Copies `batches`, which the benchmark has just created, each in a transaction of its
    /// own as the writer wrote it; their time adds to [`Peer::create`].
    pub fn copy(&mut self, batches: &[Batch]) {
        let conn = &self.conn;
        settle();
        for batch in batches {
            let start = Instant::now();
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            conn.execute(
                "INSERT INTO events SELECT * FROM src.events WHERE position BETWEEN ?1 AND ?2",
                batch.positions,
            )
            .unwrap();
            conn.execute(
                "INSERT INTO annotation_cells SELECT * FROM src.annotation_cells WHERE cell IN \
                 (SELECT cell FROM src.annotations WHERE id BETWEEN ?1 AND ?2) \
                 ON CONFLICT (cell) DO NOTHING",
                batch.ids,
            )
            .unwrap();
            conn.execute(
                "INSERT INTO annotations SELECT * FROM src.annotations WHERE id BETWEEN ?1 AND ?2",
                batch.ids,
            )
            .unwrap();
            conn.execute_batch("COMMIT").unwrap();
            self.create += start.elapsed();
            self.created += batch.ids[1] - batch.ids[0] + 1;
        }
        self.events = conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap();
    }

    /// A rebuild's writes: the rows from empty, with the indexes a rebuild builds after the
    /// rows built after them and the others kept up as the rows go in, one transaction (the
    /// cells of the spatial index stay, as a rebuild keeps them). Its time.
    pub fn refill(&self) -> Duration {
        let conn = &self.conn;
        let indexes: Vec<(String, String)> = conn
            .prepare(&format!(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' \
                 AND tbl_name = 'annotations' AND name IN ('{}')",
                exact_projections::annotations::INDEXES_BUILT_AFTER_ROWS.join("', '")
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        settle();
        let start = Instant::now();
        // As the store's rebuild: temporary storage in files, so that the sort that builds
        // each index may run on worker threads.
        conn.execute_batch("PRAGMA temp_store = FILE; BEGIN IMMEDIATE")
            .unwrap();
        for (name, _) in &indexes {
            conn.execute_batch(&format!("DROP INDEX \"{name}\""))
                .unwrap();
        }
        conn.execute_batch(
            "DELETE FROM annotations;
             INSERT INTO annotations SELECT * FROM src.annotations WHERE true;",
        )
        .unwrap();
        let definitions: Vec<String> = indexes.into_iter().map(|(_, sql)| sql).collect();
        exact_store::testing::sqlite_create_indexes(conn, &definitions).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        let elapsed = start.elapsed();
        conn.execute_batch("PRAGMA temp_store = MEMORY").unwrap();
        elapsed
    }
}
