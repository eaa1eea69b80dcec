//! The part of an append that is the same on every backend: checking expected versions,
//! numbering, stamping and chaining the new envelopes. The backends only load what this needs
//! inside their transaction and write what it returns.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use crate::envelope::{chain_hash, HashedFields};
use crate::{
    canonical, AppendContext, Envelope, Expected, Hash, Metadata, NewEvent, StoreError,
    StreamAppend,
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
        // Looked up before inserting: a bulk creation takes thousands of ids of one kind, and
        // the kind's name need not be copied for each.
        if !self.changed.contains(kind) {
            self.changed.insert(kind.to_owned());
            self.counters.entry(kind.to_owned()).or_insert(0);
        }
        let counter = self
            .counters
            .get_mut(kind)
            .expect("a changed kind has its counter");
        *counter += 1;
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
/// It may be called more than once (an append written with others first tries to go with them,
/// and is built again alone if that fails): each call must build the same append from the ids
/// it is given.
pub type BuildAppend = Box<dyn Fn(&mut IdAllocator) -> Vec<StreamAppend> + Send + Sync>;

/// The distinct stream names of an append, for the backend to look up their versions.
pub(crate) fn stream_names(appends: &[StreamAppend]) -> Vec<String> {
    let mut names: Vec<String> = appends.iter().map(|a| a.stream.clone()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Turns an append into envelopes chained on the head, a chunk at a time, so that a backend can
/// write one chunk while the next is hashed.
///
/// `recorded_at` never goes backwards along the log, even if the clock does, so that a time
/// maps to one position.
pub(crate) struct Planner {
    appends: std::vec::IntoIter<StreamAppend>,
    /// The stream being planned, its last version, and its events still to plan.
    current: Option<(String, i64, std::vec::IntoIter<NewEvent>)>,
    versions: HashMap<String, i64>,
    /// Each stream's version once this append is written.
    after: HashMap<String, i64>,
    metadata: String,
    recorded_at: DateTime<Utc>,
    position: i64,
    prev_hash: Hash,
    remaining: usize,
}

/// Checks every name and every stream's expected version against `versions` (the current
/// version of each stream that exists), in the appends' order: the first failure is the
/// error. Each stream's version once the appends are written.
pub(crate) fn check(
    appends: &[StreamAppend],
    versions: &HashMap<String, i64>,
) -> Result<HashMap<String, i64>, StoreError> {
    let mut after = HashMap::new();
    for append in appends {
        validate_name("stream", &append.stream)?;
        for event in &append.events {
            validate_name("event type", &event.event_type)?;
        }
        let actual = after
            .get(&append.stream)
            .or_else(|| versions.get(&append.stream))
            .copied();
        if !fits(append.expected, actual) {
            return Err(StoreError::Conflict {
                stream: append.stream.clone(),
                expected: append.expected,
                actual,
            });
        }
        after.insert(
            append.stream.clone(),
            actual.unwrap_or(0) + append.events.len() as i64,
        );
    }
    Ok(after)
}

fn fits(expected: Expected, actual: Option<i64>) -> bool {
    match expected {
        Expected::Any => true,
        Expected::NoStream => actual.is_none(),
        Expected::Exact(v) => actual == Some(v),
    }
}

/// The stream versions an append's expectations name: when no stream of it may be at any
/// version (no [`Expected::Any`]), they are the only versions it can be written on, so it can
/// be planned on them while the stored ones are read, and the plan is exactly the one the
/// stored versions give if they turn out the same.
pub(crate) struct Assumed {
    /// Each stream's first expectation in the append, and that append's index.
    first: HashMap<String, (usize, Expected)>,
}

impl Assumed {
    /// `None` if some stream of `appends` may be at any version.
    pub(crate) fn of(appends: &[StreamAppend]) -> Option<Self> {
        let mut first = HashMap::with_capacity(appends.len());
        for (index, append) in appends.iter().enumerate() {
            if append.expected == Expected::Any {
                return None;
            }
            first
                .entry(append.stream.clone())
                .or_insert((index, append.expected));
        }
        Some(Self { first })
    }

    /// The distinct streams, for their stored versions to be read (only when needed: a bulk
    /// creation on SQLite reads none unless the log refuses a row).
    pub(crate) fn streams(&self) -> Vec<String> {
        self.first.keys().cloned().collect()
    }

    /// Whether every stream is expected not to exist yet.
    pub(crate) fn all_new(&self) -> bool {
        self.first
            .values()
            .all(|(_, expected)| *expected == Expected::NoStream)
    }

    /// The current version of each stream that exists, as the expectations say.
    pub(crate) fn versions(&self) -> HashMap<String, i64> {
        self.first
            .iter()
            .filter_map(|(stream, (_, expected))| Some((stream.clone(), version(*expected)?)))
            .collect()
    }

    /// The conflict that [`check`] finds with the `stored` versions, if they differ from
    /// these; `check` must have passed with these. It is the first append, in order, of a
    /// stream whose version differs: every append before it sees what it saw with these.
    pub(crate) fn conflict(&self, stored: &HashMap<String, i64>) -> Option<StoreError> {
        self.first
            .iter()
            .filter(|(stream, (_, expected))| stored.get(*stream).copied() != version(*expected))
            .min_by_key(|(_, (index, _))| *index)
            .map(|(stream, (_, expected))| StoreError::Conflict {
                stream: stream.clone(),
                expected: *expected,
                actual: stored.get(stream).copied(),
            })
    }
}

/// The version a stream is at when `expected` holds of it; `None`: absent.
fn version(expected: Expected) -> Option<i64> {
    match expected {
        Expected::Exact(v) => Some(v),
        Expected::Any | Expected::NoStream => None,
    }
}

impl Planner {
    /// Checks the appends against `versions` ([`check`]) before anything is hashed or
    /// written.
    pub(crate) fn new(
        head: &Head,
        versions: HashMap<String, i64>,
        appends: Vec<StreamAppend>,
        context: &AppendContext,
        now: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let after = check(&appends, &versions)?;
        Ok(Self::checked(head, versions, after, appends, context, now))
    }

    /// A planner of appends that [`check`] passed with `versions`, giving `after`.
    pub(crate) fn checked(
        head: &Head,
        versions: HashMap<String, i64>,
        after: HashMap<String, i64>,
        appends: Vec<StreamAppend>,
        context: &AppendContext,
        now: DateTime<Utc>,
    ) -> Self {
        let recorded_at = crate::clock::to_micros(now.max(head.recorded_at));
        Self {
            remaining: appends.iter().map(|a| a.events.len()).sum(),
            appends: appends.into_iter(),
            current: None,
            versions,
            after,
            metadata: Metadata::new(context, recorded_at).to_canonical(),
            recorded_at,
            position: head.position,
            prev_hash: head.hash,
        }
    }

    /// The version of each of this append's streams once it is written.
    pub(crate) fn versions_after(&self) -> &HashMap<String, i64> {
        &self.after
    }

    /// Events not planned yet.
    #[cfg(test)]
    pub(crate) fn remaining(&self) -> usize {
        self.remaining
    }

    /// The next (at most) `max` envelopes; empty when all are planned.
    pub(crate) fn next_chunk(&mut self, max: usize) -> Vec<Envelope> {
        let mut chunk = Vec::with_capacity(max.min(self.remaining));
        while chunk.len() < max {
            let Some((stream, version, events)) = &mut self.current else {
                let Some(append) = self.appends.next() else {
                    break;
                };
                let version = self.versions.get(&append.stream).copied().unwrap_or(0);
                self.current = Some((append.stream, version, append.events.into_iter()));
                continue;
            };
            let Some(event) = events.next() else {
                self.versions.insert(std::mem::take(stream), *version);
                self.current = None;
                continue;
            };
            self.position += 1;
            *version += 1;
            let payload = canonical::to_string(&event.payload.to_json());
            let hash = chain_hash(
                &self.prev_hash,
                &HashedFields {
                    position: self.position,
                    stream,
                    version: *version,
                    event_id: event.event_id,
                    event_type: &event.event_type,
                    schema: event.schema,
                    payload: &payload,
                    metadata: &self.metadata,
                },
            );
            chunk.push(Envelope {
                position: self.position,
                stream: stream.clone(),
                version: *version,
                event_id: event.event_id,
                event_type: event.event_type,
                schema: event.schema,
                payload,
                metadata: self.metadata.clone(),
                recorded_at: self.recorded_at,
                prev_hash: self.prev_hash,
                hash,
            });
            self.prev_hash = hash;
        }
        self.remaining -= chunk.len();
        chunk
    }
}

/// Plans a whole append at once.
#[cfg(test)]
fn plan(
    head: &Head,
    versions: HashMap<String, i64>,
    appends: Vec<StreamAppend>,
    context: &AppendContext,
    now: DateTime<Utc>,
) -> Result<Vec<Envelope>, StoreError> {
    Ok(Planner::new(head, versions, appends, context, now)?.next_chunk(usize::MAX))
}

fn validate_name(what: &str, name: &str) -> Result<(), StoreError> {
    // Byte by byte for ASCII names (all of the domain's): the same control characters.
    let control = if name.is_ascii() {
        name.bytes().any(|b| b.is_ascii_control())
    } else {
        name.chars().any(char::is_control)
    };
    if name.is_empty() || name.len() > 200 || control {
        return Err(StoreError::InvalidAppend(format!(
            "{what} name {name:?} must be 1 to 200 characters without control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Source, ZERO_HASH};
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
    fn planning_in_chunks_gives_the_same_envelopes() {
        let appends = vec![
            append("a", Expected::NoStream, 5),
            append("b", Expected::Any, 3),
            append("a", Expected::Exact(5), 4),
        ];
        let batch = || appends.clone();
        let now = Utc::now();
        let context = AppendContext::system();
        let whole = plan(&head(), HashMap::new(), batch(), &context, now).unwrap();
        let mut planner = Planner::new(&head(), HashMap::new(), batch(), &context, now).unwrap();
        let mut chunked = Vec::new();
        loop {
            let chunk = planner.next_chunk(3);
            if chunk.is_empty() {
                break;
            }
            assert!(chunk.len() <= 3);
            chunked.extend(chunk);
        }
        assert_eq!(chunked, whole);
        assert_eq!(planner.remaining(), 0);
        let a_versions: Vec<i64> = whole
            .iter()
            .filter(|e| e.stream == "a")
            .map(|e| e.version)
            .collect();
        assert_eq!(a_versions, (1..=9).collect::<Vec<_>>());
    }

    #[test]
    fn a_late_conflict_is_found_before_anything_is_planned() {
        let batch = vec![
            append("a", Expected::NoStream, 2),
            append("a", Expected::Exact(1), 1),
        ];
        let err = Planner::new(
            &head(),
            HashMap::new(),
            batch,
            &AppendContext::system(),
            Utc::now(),
        )
        .err();
        assert!(
            matches!(
                err,
                Some(StoreError::Conflict {
                    actual: Some(2),
                    ..
                })
            ),
            "{err:?}"
        );
    }

    /// Every append of up to three parts over two streams, each expectation but `Any`, against
    /// every stored version of the two: when the expectations' own versions pass the check,
    /// the conflict `Assumed` names with the stored ones is exactly the check's error.
    #[test]
    fn an_assumed_plan_names_the_conflict_the_check_finds() {
        let expectations = [Expected::NoStream, Expected::Exact(1), Expected::Exact(2)];
        let stored_versions = [None, Some(1), Some(2), Some(3)];
        let mut parts: Vec<(&str, Expected)> = Vec::new();
        for stream in ["a", "b"] {
            for expected in expectations {
                parts.push((stream, expected));
            }
        }
        let mut appends_tried = 0;
        for len in 1..=3u32 {
            for pick in 0..parts.len().pow(len) {
                let chosen: Vec<StreamAppend> = (0..len)
                    .map(|i| {
                        let (stream, expected) = parts[pick / parts.len().pow(i) % parts.len()];
                        append(stream, expected, 1 + i as usize % 2)
                    })
                    .collect();
                let assumed = Assumed::of(&chosen).expect("no Any");
                if check(&chosen, &assumed.versions()).is_err() {
                    continue;
                }
                appends_tried += 1;
                for a in stored_versions {
                    for b in stored_versions {
                        let stored: HashMap<String, i64> = [("a", a), ("b", b)]
                            .into_iter()
                            .filter_map(|(s, v)| Some((s.to_string(), v?)))
                            .collect();
                        let checked = check(&chosen, &stored).err().map(|e| format!("{e:?}"));
                        let named = assumed.conflict(&stored).map(|e| format!("{e:?}"));
                        assert_eq!(named, checked, "{chosen:?} on {stored:?}");
                    }
                }
            }
        }
        assert!(appends_tried > 20, "{appends_tried}");
        assert!(Assumed::of(&[append("a", Expected::Any, 1)]).is_none());
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
