//! The part of an append that is the same on every backend: checking expected versions,
//! numbering, stamping and chaining the new envelopes. The backends only load what this needs
//! inside their transaction and write what it returns.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use crate::envelope::{chain_hash, HashedFields};
use crate::{
    canonical, AppendContext, Envelope, Expected, Hash, Metadata, StoreError, StreamAppend,
};

/// The last event of the log, as the next append sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub position: i64,
    pub hash: Hash,
    pub recorded_at: DateTime<Utc>,
}

impl Head {
    /// The head of an empty log: the first event links to 32 zero bytes.
    pub(crate) const EMPTY: Head = Head {
        position: 0,
        hash: crate::ZERO_HASH,
        recorded_at: DateTime::<Utc>::MIN_UTC,
    };
}

/// Hands out EXACT's integer ids (per kind: users, teams, images, annotations, ...) while an
/// append is being built. It works on the counters loaded inside the append's transaction, and
/// what it hands out is written back in that same transaction, or not at all.
#[derive(Debug, Default)]
pub struct IdAllocator {
    counters: BTreeMap<String, i64>,
    changed: BTreeSet<String>,
}

impl IdAllocator {
    pub(crate) fn new(counters: BTreeMap<String, i64>) -> Self {
        Self {
            counters,
            changed: BTreeSet::new(),
        }
    }

    /// The next id of `kind`, starting at 1.
    pub fn next(&mut self, kind: &str) -> i64 {
        let counter = self.counters.entry(kind.to_owned()).or_insert(0);
        *counter += 1;
        self.changed.insert(kind.to_owned());
        *counter
    }

    /// The last id handed out for `kind` (0 if none).
    pub fn last(&self, kind: &str) -> i64 {
        self.counters.get(kind).copied().unwrap_or(0)
    }

    /// The counters that moved, to be written back.
    pub(crate) fn changed(&self) -> Vec<(String, i64)> {
        self.changed
            .iter()
            .map(|kind| (kind.clone(), self.counters[kind]))
            .collect()
    }
}

/// Builds an append inside the store's transaction, with ids from the allocator.
pub type BuildAppend = Box<dyn FnOnce(&mut IdAllocator) -> Vec<StreamAppend> + Send>;

/// The distinct stream names of an append, for the backend to look up their versions.
pub(crate) fn stream_names(appends: &[StreamAppend]) -> Vec<String> {
    let mut names: Vec<String> = appends.iter().map(|a| a.stream.clone()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Checks every stream's expected version and turns the append into envelopes chained on
/// `head`. `versions` holds the current version of every stream that exists.
///
/// `recorded_at` never goes backwards along the log, even if the clock does, so that a time
/// maps to one position.
pub(crate) fn plan(
    head: &Head,
    mut versions: HashMap<String, i64>,
    appends: Vec<StreamAppend>,
    context: &AppendContext,
    now: DateTime<Utc>,
) -> Result<Vec<Envelope>, StoreError> {
    let recorded_at = crate::clock::to_micros(now.max(head.recorded_at));
    let metadata = Metadata::new(context, recorded_at).to_canonical();
    let total: usize = appends.iter().map(|a| a.events.len()).sum();
    let mut envelopes = Vec::with_capacity(total);
    let mut position = head.position;
    let mut prev_hash = head.hash;
    for append in appends {
        validate_name("stream", &append.stream)?;
        let actual = versions.get(&append.stream).copied();
        let fits = match append.expected {
            Expected::Any => true,
            Expected::NoStream => actual.is_none(),
            Expected::Exact(v) => actual == Some(v),
        };
        if !fits {
            return Err(StoreError::Conflict {
                stream: append.stream,
                expected: append.expected,
                actual,
            });
        }
        let mut version = actual.unwrap_or(0);
        for event in append.events {
            validate_name("event type", &event.event_type)?;
            position += 1;
            version += 1;
            let payload = canonical::to_string(&event.payload);
            let hash = chain_hash(
                &prev_hash,
                &HashedFields {
                    position,
                    stream: &append.stream,
                    version,
                    event_id: event.event_id,
                    event_type: &event.event_type,
                    schema: event.schema,
                    payload: &payload,
                    metadata: &metadata,
                },
            );
            envelopes.push(Envelope {
                position,
                stream: append.stream.clone(),
                version,
                event_id: event.event_id,
                event_type: event.event_type,
                schema: event.schema,
                payload,
                metadata: metadata.clone(),
                recorded_at,
                prev_hash,
                hash,
            });
            prev_hash = hash;
        }
        versions.insert(append.stream, version);
    }
    Ok(envelopes)
}

fn validate_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(StoreError::InvalidAppend(format!(
            "{what} name {name:?} must be 1 to 200 characters without control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEvent, Source, ZERO_HASH};
    use serde_json::json;

    fn head() -> Head {
        Head::EMPTY
    }

    fn append(stream: &str, expected: Expected, n: usize) -> StreamAppend {
        let events = (0..n)
            .map(|i| NewEvent::new("Happened", json!({ "i": i })))
            .collect();
        StreamAppend::new(stream, expected, events)
    }

    #[test]
    fn numbers_and_chains_events_across_streams() {
        let now = "2026-01-01T00:00:00.1234567Z".parse().unwrap();
        let versions = HashMap::from([("b".to_string(), 4)]);
        let batch = vec![
            append("a", Expected::NoStream, 2),
            append("b", Expected::Exact(4), 1),
        ];
        let out = plan(
            &head(),
            versions,
            batch,
            &AppendContext::new(Source::Api, Some(7)),
            now,
        )
        .unwrap();
        let placed: Vec<_> = out
            .iter()
            .map(|e| (e.position, e.stream.as_str(), e.version))
            .collect();
        assert_eq!(placed, [(1, "a", 1), (2, "a", 2), (3, "b", 5)]);
        assert_eq!(out[0].prev_hash, ZERO_HASH);
        assert_eq!(out[1].prev_hash, out[0].hash);
        assert_eq!(out[2].prev_hash, out[1].hash);
        assert!(out.iter().all(|e| e.compute_hash() == e.hash));
        assert_eq!(
            out[0].recorded_at,
            "2026-01-01T00:00:00.123456Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
        );
    }

    #[test]
    fn a_stream_named_twice_sees_its_own_earlier_events() {
        let batch = vec![
            append("a", Expected::NoStream, 1),
            append("a", Expected::Exact(1), 1),
        ];
        let out = plan(
            &head(),
            HashMap::new(),
            batch,
            &AppendContext::system(),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(out[1].version, 2);
    }

    #[test]
    fn mismatched_expectations_are_conflicts() {
        let cases = [
            (Some(3), Expected::NoStream),
            (None, Expected::Exact(1)),
            (Some(3), Expected::Exact(2)),
        ];
        for (actual, expected) in cases {
            let versions: HashMap<_, _> =
                actual.map(|v| ("s".to_string(), v)).into_iter().collect();
            let err = plan(
                &head(),
                versions,
                vec![append("s", expected, 1)],
                &AppendContext::system(),
                Utc::now(),
            )
            .unwrap_err();
            match err {
                StoreError::Conflict {
                    actual: got,
                    expected: e,
                    ..
                } => {
                    assert_eq!((got, e), (actual, expected));
                }
                other => panic!("expected a conflict, got {other}"),
            }
        }
    }

    #[test]
    fn time_never_goes_backwards() {
        let mut h = head();
        h.recorded_at = "2030-01-01T00:00:00Z".parse().unwrap();
        let out = plan(
            &h,
            HashMap::new(),
            vec![append("s", Expected::Any, 1)],
            &AppendContext::system(),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(out[0].recorded_at, h.recorded_at);
    }

    #[test]
    fn empty_names_are_refused() {
        let err = plan(
            &head(),
            HashMap::new(),
            vec![append("", Expected::Any, 1)],
            &AppendContext::system(),
            Utc::now(),
        );
        assert!(matches!(err, Err(StoreError::InvalidAppend(_))));
    }

    #[test]
    fn allocator_reports_only_moved_counters() {
        let mut ids = IdAllocator::new(BTreeMap::from([("image".into(), 9), ("team".into(), 2)]));
        assert_eq!(ids.next("image"), 10);
        assert_eq!(ids.next("annotation"), 1);
        assert_eq!(ids.last("team"), 2);
        assert_eq!(
            ids.changed(),
            [("annotation".to_string(), 1), ("image".to_string(), 10)]
        );
    }
}
