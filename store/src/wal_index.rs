//! How much of SQLite's write-ahead log waits for a checkpoint, read from the WAL-index
//! header in the `-shm` file (https://www.sqlite.org/walformat.html, "The WAL-Index Format").
//!
//! The writer checkpoints by itself, after the callers of a commit have their answer, instead
//! of leaving it to SQLite's automatic checkpoint, which runs inside the `COMMIT` that crosses
//! its threshold and so makes that commit's callers wait for it. SQLite tells a connection the
//! size of the log through its WAL hook, which rusqlite does not offer without `unsafe`; the
//! header is the same number, kept in a file of documented format. A header this code does not
//! recognise leaves SQLite's automatic checkpoint on.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The WAL-index format this reads (the header's `iVersion`, the same since SQLite 3.7.0).
const FORMAT: u32 = 3_007_000;
/// Frames in the log after which the writer checkpoints: SQLite's own default.
pub(crate) const CHECKPOINT_FRAMES: u32 = 1_000;

#[derive(Debug)]
pub(crate) struct WalIndex {
    shm: File,
}

impl WalIndex {
    /// The WAL index of the database at `db`, if its header is of the format this reads (the
    /// writer's connection has opened it in WAL mode).
    pub(crate) fn open(db: &Path) -> Option<Self> {
        let mut shm = db.as_os_str().to_owned();
        shm.push("-shm");
        let index = Self {
            shm: File::open(shm).ok()?,
        };
        index.unchecked_frames().map(|_| index)
    }

    /// Frames of the log not yet copied into the database: `mxFrame` (the last committed
    /// frame) less `nBackfill` (frames checkpointed), both in the machine's byte order.
    pub(crate) fn unchecked_frames(&self) -> Option<u32> {
        let mut header = [0u8; 100];
        self.shm.read_exact_at(&mut header, 0).ok()?;
        let word = |at: usize| u32::from_ne_bytes(header[at..at + 4].try_into().unwrap());
        (word(0) == FORMAT).then(|| word(16).saturating_sub(word(96)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header read is SQLite's own: frames grow with commits and fall to none once a
    /// checkpoint has copied them.
    #[test]
    fn the_header_counts_the_frames_a_checkpoint_has_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exact.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (x TEXT)").unwrap();
        let index = WalIndex::open(&path).expect("a WAL index of the known format");
        let after_create = index.unchecked_frames().unwrap();
        assert!(after_create > 0, "the table's creation is in the log");
        for _ in 0..50 {
            conn.execute("INSERT INTO t VALUES (?1)", ["x".repeat(8_000)])
                .unwrap();
        }
        // Each commit of 8 kB adds at least two 4 kB pages.
        assert!(index.unchecked_frames().unwrap() >= after_create + 100);
        conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
            .unwrap();
        assert_eq!(index.unchecked_frames(), Some(0));
    }

    #[test]
    fn a_database_not_in_wal_mode_has_no_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exact.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x TEXT)").unwrap();
        assert!(WalIndex::open(&path).is_none());
    }
}
