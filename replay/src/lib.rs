//! Work over the whole log: rebuilding read models from position 0, reading a dataset as it was
//! at any position, and diffing two positions.
//!
//! It drives `exact-store` and its registered projections; it knows nothing of HTTP. The chain
//! check itself (`verify`) lives in `exact-store`, next to the hash it checks. Built so far:
//! [`rebuild`], signed [`checkpoint`]s, the auditor's [`audit_log`], the [`dataset`] as of any
//! moment with the diff between two, and the check of [`read_models`] against the log.

pub mod audit_log;
pub mod checkpoint;
pub mod dataset;
pub mod read_models;

use std::time::{Duration, Instant};

use exact_store::{EventStore, Progress, Result};

/// What one rebuild did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rebuilt {
    pub name: String,
    /// Events replayed into the emptied read model.
    pub events: u64,
    pub elapsed: Duration,
}

/// Empties and replays each named read model in turn, each in one transaction, telling
/// `progress(name)` how far it is.
pub async fn rebuild(
    store: &dyn EventStore,
    names: &[String],
    progress: impl Fn(&str) -> Progress,
) -> Result<Vec<Rebuilt>> {
    let mut done = Vec::with_capacity(names.len());
    for name in names {
        let started = Instant::now();
        let events = store.rebuild(name, progress(name)).await?;
        done.push(Rebuilt {
            name: name.clone(),
            events,
            elapsed: started.elapsed(),
        });
    }
    Ok(done)
}
