//! Commits that may change what a process caches. Most commits of a busy server only add and
//! change annotations; a server may keep what it read of the rest (accounts, sets, images,
//! types, memberships) while no other event commits. This counts those other commits: by this
//! process before its callers hear of them, and on PostgreSQL by any process, whose
//! announcements say whether they made one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::Envelope;

#[derive(Debug)]
pub(crate) struct ColdCommits {
    /// Stream-name prefixes whose events change nothing cached (`OpenOptions::hot_streams`).
    hot_streams: Vec<String>,
    version: AtomicU64,
    /// Whether commits of other processes are heard: while not, nothing may be cached.
    listening: AtomicBool,
}

impl ColdCommits {
    pub(crate) fn new(hot_streams: Vec<String>) -> Self {
        Self {
            hot_streams,
            version: AtomicU64::new(0),
            listening: AtomicBool::new(false),
        }
    }

    /// Whether `envelopes` hold an event of a stream that is not hot.
    pub(crate) fn touched_by(&self, envelopes: &[Envelope]) -> bool {
        envelopes.iter().any(|e| {
            !self
                .hot_streams
                .iter()
                .any(|prefix| e.stream.starts_with(prefix.as_str()))
        })
    }

    /// A cold commit happened (or may have: announcements were missed).
    pub(crate) fn moved(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// Commits may have been missed while not listening: what was cached before goes either
    /// way (moved before and after, so that no reader keeps an entry across the switch).
    pub(crate) fn set_listening(&self, listening: bool) {
        self.moved();
        self.listening.store(listening, Ordering::SeqCst);
        self.moved();
    }

    pub(crate) fn version(&self) -> Option<u64> {
        self.listening
            .load(Ordering::SeqCst)
            .then(|| self.version.load(Ordering::SeqCst))
    }
}
