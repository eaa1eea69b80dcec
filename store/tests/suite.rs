//! The event store's behaviour, the same on SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::TimeDelta;
use exact_store::testing::{self as common, TestDb};
use exact_store::{
    AppendContext, Backend, Envelope, EventStore, Expected, NewEvent, Payload, PlannedPayload,
    ProblemKind, Source, StoreError, StreamAppend, ZERO_HASH,
};
use futures_util::TryStreamExt;
use serde_json::json;

exact_store::on_both_backends!(
    genesis_comes_first,
    appends_number_stamp_and_chain_events,
    reads_a_stream_from_a_version,
    conflicts_name_the_stream_and_versions,
    a_conflicting_batch_leaves_nothing,
    a_large_append_names_its_conflict_as_a_small_one_would,
    a_batch_failing_in_the_database_leaves_nothing,
    retried_appends_are_idempotent,
    counters_advance_only_with_stored_events,
    concurrent_tasks_get_gapless_positions,
    concurrent_appends_to_one_stream_get_gapless_versions,
    failing_appends_among_concurrent_ones_fail_alone,
    concurrent_appends_each_get_the_outcome_they_would_get_alone,
    two_processes_get_gapless_positions,
    a_hundred_thousand_events_in_one_append,
    planned_payloads_are_stored_as_their_json_would_be,
    reopening_gives_the_same_log,
    stored_events_cannot_be_updated_or_deleted,
    a_row_that_does_not_decode_is_named_as_corrupt,
    verify_names_an_edited_payload,
    verify_names_a_deleted_row,
    verify_names_swapped_rows,
    verify_names_an_inserted_row,
    verify_names_a_changed_time_column,
    verify_checks_a_range,
    verify_finds_a_problem_deep_in_a_long_log,
    subscribers_wake_on_commit,
    cold_commits_move_the_cold_version_in_every_process,
    a_newer_schema_is_refused,
    recorded_time_follows_the_clock_and_never_goes_back,
    a_time_maps_to_the_last_position_recorded_by_then,
    bad_names_are_refused,
);

fn event(n: i64) -> NewEvent {
    NewEvent::new(
        "ThingHappened",
        json!({ "n": n, "x": n as f64 / 3.0, "label": "Zellkern ☃" }),
    )
}

fn api(actor: i64) -> AppendContext {
    AppendContext::new(Source::Api, Some(actor))
}

async fn all(store: &dyn EventStore) -> Vec<Envelope> {
    store.read_all(1).try_collect().await.unwrap()
}

async fn genesis_comes_first(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.last_position().await.unwrap(), 1);
    let genesis = &store.read_page(1, 10).await.unwrap()[0];
    assert_eq!((genesis.position, genesis.version), (1, 1));
    assert_eq!(genesis.stream, exact_store::STORE_STREAM);
    assert_eq!(genesis.event_type, exact_store::STORE_INITIALIZED);
    assert_eq!(genesis.prev_hash, ZERO_HASH);
    let payload = genesis.payload_value().unwrap();
    assert_eq!(payload["binary_version"], exact_store::BINARY_VERSION);
    assert!(payload["store_id"]
        .as_str()
        .is_some_and(|id| id.len() == 36));
    assert_eq!(genesis.metadata().unwrap().source, Source::System);
}

async fn appends_number_stamp_and_chain_events(db: TestDb) {
    let store = db.open().await;
    let context = api(7)
        .with_reason("first cells")
        .with_client_addr("10.1.2.3");
    let stored = store
        .append(
            "annotation-1",
            Expected::NoStream,
            vec![event(1), event(2), event(3)],
            context.clone(),
        )
        .await
        .unwrap();
    let placed: Vec<_> = stored.iter().map(|e| (e.position, e.version)).collect();
    assert_eq!(placed, [(2, 1), (3, 2), (4, 3)]);
    let genesis = &store.read_page(1, 1).await.unwrap()[0];
    assert_eq!(stored[0].prev_hash, genesis.hash);
    assert_eq!(stored[1].prev_hash, stored[0].hash);
    for e in &stored {
        assert_eq!(e.compute_hash(), e.hash);
        let metadata = e.metadata().unwrap();
        assert_eq!(metadata.actor, Some(7));
        assert_eq!(metadata.reason.as_deref(), Some("first cells"));
        assert_eq!(metadata.client_addr.as_deref(), Some("10.1.2.3"));
        assert_eq!(metadata.correlation_id, context.correlation_id);
        assert_eq!(metadata.recorded_at, common::start_time());
    }
    assert_eq!(
        stored[0].payload,
        r#"{"label":"Zellkern ☃","n":1,"x":0.3333333333333333}"#
    );
    // What is read back is exactly what the append returned.
    assert_eq!(all(store.as_ref()).await[1..], stored[..]);
    assert_eq!(store.last_position().await.unwrap(), 4);
}

async fn reads_a_stream_from_a_version(db: TestDb) {
    let store = db.open().await;
    store
        .append("a", Expected::NoStream, vec![event(1), event(2)], api(1))
        .await
        .unwrap();
    store
        .append("b", Expected::NoStream, vec![event(9)], api(1))
        .await
        .unwrap();
    store
        .append("a", Expected::Exact(2), vec![event(3)], api(1))
        .await
        .unwrap();
    let tail = store.read_stream("a", 2).await.unwrap();
    let read: Vec<_> = tail.iter().map(|e| (e.version, e.position)).collect();
    assert_eq!(read, [(2, 3), (3, 5)]);
    assert!(store.read_stream("missing", 1).await.unwrap().is_empty());
}

async fn conflicts_name_the_stream_and_versions(db: TestDb) {
    let store = db.open().await;
    store
        .append(
            "team-1",
            Expected::NoStream,
            vec![event(1), event(2)],
            api(1),
        )
        .await
        .unwrap();
    let cases = [
        ("team-1", Expected::NoStream, Some(2)),
        ("team-1", Expected::Exact(1), Some(2)),
        ("team-2", Expected::Exact(1), None),
    ];
    for (stream, expected, actual) in cases {
        let err = store
            .append(stream, expected, vec![event(3)], api(1))
            .await
            .unwrap_err();
        match err {
            StoreError::Conflict {
                stream: s,
                expected: e,
                actual: a,
            } => {
                assert_eq!((s.as_str(), e, a), (stream, expected, actual));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(store.last_position().await.unwrap(), 3);
    store
        .append("team-1", Expected::Exact(2), vec![event(3)], api(1))
        .await
        .unwrap();
    store
        .append("team-1", Expected::Any, vec![event(4)], api(1))
        .await
        .unwrap();
    assert_eq!(store.read_stream("team-1", 1).await.unwrap().len(), 4);
}

async fn a_conflicting_batch_leaves_nothing(db: TestDb) {
    let store = db.open().await;
    store
        .append("taken", Expected::NoStream, vec![event(1)], api(1))
        .await
        .unwrap();
    let batch = vec![
        StreamAppend::new("fresh", Expected::NoStream, vec![event(2), event(3)]),
        StreamAppend::new("taken", Expected::NoStream, vec![event(4)]),
    ];
    let err = store.append_many(batch, api(1)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { ref stream, .. } if stream == "taken"),
        "{err:?}"
    );
    assert_eq!(store.last_position().await.unwrap(), 2);
    assert!(store.read_stream("fresh", 1).await.unwrap().is_empty());
}

/// An append of many streams is planned on the versions its expectations name while the
/// stored ones are read (on SQLite, if all are new, not read unless the log refuses a row): a
/// stream that does not match must still be the conflict a check before any write names, the
/// first of the append's order, and leave nothing.
async fn a_large_append_names_its_conflict_as_a_small_one_would(db: TestDb) {
    let store = db.open().await;
    for stream in ["s-60", "s-150"] {
        store
            .append(stream, Expected::NoStream, vec![event(1), event(2)], api(1))
            .await
            .unwrap();
    }
    let head = store.last_position().await.unwrap();
    let new_streams = |n: i64| -> Vec<StreamAppend> {
        (0..n)
            .map(|i| StreamAppend::new(format!("s-{i}"), Expected::NoStream, vec![event(i)]))
            .collect()
    };
    let conflict = |err: StoreError| match err {
        StoreError::Conflict {
            stream,
            expected,
            actual,
        } => (stream, expected, actual),
        other => panic!("expected a conflict, got {other:?}"),
    };
    // All new but two, in append order s-60 first (s-150 sorts before it by name).
    let err = store
        .append_many(new_streams(200), api(1))
        .await
        .unwrap_err();
    assert_eq!(
        conflict(err),
        ("s-60".to_string(), Expected::NoStream, Some(2))
    );
    // A later append of the same stream, consistent with the first: still the first named.
    let mut twice = new_streams(100);
    twice.push(StreamAppend::new("s-7", Expected::Exact(1), vec![event(7)]));
    let err = store.append_many(twice, api(1)).await.unwrap_err();
    assert_eq!(
        conflict(err),
        ("s-60".to_string(), Expected::NoStream, Some(2))
    );
    // Versions named: the one that is not where it was expected.
    let mut named: Vec<StreamAppend> = (1000..1100)
        .map(|i| StreamAppend::new(format!("s-{i}"), Expected::NoStream, vec![event(i)]))
        .collect();
    named.push(StreamAppend::new(
        "s-150",
        Expected::Exact(1),
        vec![event(3)],
    ));
    named.push(StreamAppend::new(
        "s-60",
        Expected::Exact(2),
        vec![event(3)],
    ));
    let err = store.append_many(named, api(1)).await.unwrap_err();
    assert_eq!(
        conflict(err),
        ("s-150".to_string(), Expected::Exact(1), Some(2))
    );
    // A row the log refuses for another reason is that refusal, not a conflict.
    let stored = store.read_stream("s-60", 1).await.unwrap();
    let mut reused: Vec<StreamAppend> = (2000..2100)
        .map(|i| StreamAppend::new(format!("s-{i}"), Expected::NoStream, vec![event(i)]))
        .collect();
    reused[70].events[0] = event(0).with_event_id(stored[0].event_id);
    let err = store.append_many(reused, api(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateEvent { .. }), "{err:?}");

    assert_eq!(store.last_position().await.unwrap(), head);
    assert!(store.read_stream("s-0", 1).await.unwrap().is_empty());
    assert!(store.read_stream("s-1000", 1).await.unwrap().is_empty());
    assert!(store.read_stream("s-2000", 1).await.unwrap().is_empty());
    // Without the two, the same append is written whole.
    let written = store
        .append_many(
            new_streams(200)
                .into_iter()
                .filter(|a| a.stream != "s-60" && a.stream != "s-150")
                .collect(),
            api(1),
        )
        .await
        .unwrap();
    assert_eq!(written.len(), 198);
    assert!(store.verify(1, None).await.unwrap().is_intact());
}

async fn a_batch_failing_in_the_database_leaves_nothing(db: TestDb) {
    let store = db.open().await;
    let stored = store
        .append("a", Expected::NoStream, vec![event(1)], api(1))
        .await
        .unwrap();
    // The third event reuses a stored event id: the database refuses it after the first two
    // rows are written, and the whole append must roll back, ids included.
    let reused = event(3).with_event_id(stored[0].event_id);
    let failing = store
        .append_built(
            api(1),
            Box::new(move |ids| {
                let id = ids.next("annotation");
                vec![StreamAppend::new(
                    format!("annotation-{id}"),
                    Expected::NoStream,
                    vec![event(1), event(2), reused.clone()],
                )]
            }),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(failing, StoreError::DuplicateEvent { .. }),
        "{failing:?}"
    );
    assert_eq!(store.last_position().await.unwrap(), 2);
    assert!(store
        .read_stream("annotation-1", 1)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.counters().await.unwrap(), BTreeMap::new());
    // The store is still usable afterwards.
    store
        .append("b", Expected::NoStream, vec![event(4)], api(1))
        .await
        .unwrap();
    assert!(store.verify(1, None).await.unwrap().is_intact());
}

async fn retried_appends_are_idempotent(db: TestDb) {
    let store = db.open().await;
    let batch = vec![event(1), event(2)];
    let first = store
        .append("a", Expected::NoStream, batch.clone(), api(1))
        .await
        .unwrap();
    // The client never saw the answer and sends the same batch again; its expectation no longer
    // holds, but the append is recognized as stored.
    let again = store
        .append("a", Expected::NoStream, batch.clone(), api(1))
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(store.last_position().await.unwrap(), 3);
    // Reusing only part of a stored batch is not a retry.
    let mixed = vec![batch[0].clone(), event(3)];
    let err = store
        .append("a", Expected::Any, mixed, api(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateEvent { .. }), "{err:?}");
    assert_eq!(store.last_position().await.unwrap(), 3);
}

async fn counters_advance_only_with_stored_events(db: TestDb) {
    let store = db.open().await;
    let create = |count: usize, expected: Expected| -> exact_store::BuildAppend {
        Box::new(move |ids| {
            (0..count)
                .map(|_| {
                    let id = ids.next("annotation");
                    StreamAppend::new(format!("annotation-{id}"), expected, vec![event(id)])
                })
                .collect()
        })
    };
    let one = store
        .append_built(api(1), create(1, Expected::NoStream))
        .await
        .unwrap();
    assert_eq!(one[0].stream, "annotation-1");
    let three = store
        .append_built(api(1), create(3, Expected::NoStream))
        .await
        .unwrap();
    let streams: Vec<_> = three.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(streams, ["annotation-2", "annotation-3", "annotation-4"]);
    // A failed append hands out nothing.
    store
        .append_built(api(1), create(2, Expected::Exact(5)))
        .await
        .unwrap_err();
    assert_eq!(
        store.counters().await.unwrap(),
        BTreeMap::from([("annotation".to_string(), 4)])
    );
    drop(store);
    let store = db.open().await;
    let next = store
        .append_built(api(1), create(1, Expected::NoStream))
        .await
        .unwrap();
    assert_eq!(next[0].stream, "annotation-5");
}

async fn concurrent_tasks_get_gapless_positions(db: TestDb) {
    let store = db.open().await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = format!("writer-{task}");
            for version in 0..500 {
                let expected = if version == 0 {
                    Expected::NoStream
                } else {
                    Expected::Exact(version)
                };
                store
                    .append(&stream, expected, vec![event(version)], api(task))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = store.verify(1, None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
    assert_eq!(
        (report.checked, report.first, report.last),
        (4001, Some(1), Some(4001))
    );
    for task in 0..8 {
        assert_eq!(
            store
                .read_stream(&format!("writer-{task}"), 1)
                .await
                .unwrap()
                .len(),
            500
        );
    }
}

/// Appends that arrive together may share a transaction (SQLite's group commit): one that fails
/// in the database after writing rows must still fail alone, ids and rows rolled back, while the
/// others commit as if each had been alone.
async fn failing_appends_among_concurrent_ones_fail_alone(db: TestDb) {
    let store = db.open().await;
    let stored = store
        .append("seed", Expected::NoStream, vec![event(0)], api(1))
        .await
        .unwrap();
    let taken = stored[0].event_id;
    let mut tasks = Vec::new();
    for task in 0..40_i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let fails = task % 2 == 0;
            let result = store
                .append_built(
                    api(task),
                    Box::new(move |ids| {
                        let id = ids.next("annotation");
                        let mut events = vec![event(task), event(task + 100)];
                        if fails {
                            events.push(event(task + 200).with_event_id(taken));
                        }
                        vec![StreamAppend::new(
                            format!("annotation-{id}"),
                            Expected::NoStream,
                            events,
                        )]
                    }),
                )
                .await;
            (fails, result)
        }));
    }
    let mut streams = Vec::new();
    for task in tasks {
        let (fails, result) = task.await.unwrap();
        match (fails, result) {
            (true, Err(StoreError::DuplicateEvent { .. })) => {}
            (false, Ok(written)) => {
                assert_eq!(written.len(), 2);
                assert_eq!(
                    written[0].metadata().unwrap().actor,
                    written[1].metadata().unwrap().actor
                );
                streams.push(written[0].stream.clone());
            }
            (fails, other) => panic!("failing: {fails}, got {other:?}"),
        }
    }
    // 20 appends of 2 events after genesis and the seed: positions and ids without gaps.
    assert_eq!(store.last_position().await.unwrap(), 2 + 40);
    streams.sort_by_key(|s| s.trim_start_matches("annotation-").parse::<i64>().unwrap());
    let expected: Vec<String> = (1..=20).map(|id| format!("annotation-{id}")).collect();
    assert_eq!(streams, expected, "ids of failed appends were given back");
    assert_eq!(store.counters().await.unwrap()["annotation"], 20);
    let report = store.verify(1, None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
}

/// Appends that wait together are written as one where they can (group commit, both
/// backends): new appends, conflicts and retries mixed in one burst must each still get what
/// they would get alone, with their own actor and ids, and nothing between them.
async fn concurrent_appends_each_get_the_outcome_they_would_get_alone(db: TestDb) {
    let store = db.open().await;
    store
        .append("taken", Expected::NoStream, vec![event(0)], api(1))
        .await
        .unwrap();
    let seed = event(1);
    let retried = store
        .append("retried", Expected::NoStream, vec![seed.clone()], api(1))
        .await
        .unwrap();
    let mut ids = Vec::new();
    // First a burst of new appends only (they can go together), then a mixed one.
    for burst in 0..2_i64 {
        // A long append in front makes the burst wait, and so go in groups (if the machine is
        // too slow for the burst to arrive while it is written, the burst goes in other
        // groups: what is asserted holds either way).
        let long: Vec<NewEvent> = (0..20_000).map(event).collect();
        let in_front = {
            let store = store.clone();
            tokio::spawn(async move { store.append("long", Expected::Any, long, api(2)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut tasks = Vec::new();
        for task in 0..60_i64 {
            let (store, seed) = (store.clone(), seed.clone());
            let actor = 100 + burst * 100 + task;
            let kind = if burst == 0 { 2 } else { task % 3 };
            tasks.push(tokio::spawn(async move {
                let result = match kind {
                    0 => {
                        let events = vec![event(task)];
                        store
                            .append("taken", Expected::NoStream, events, api(actor))
                            .await
                    }
                    1 => {
                        store
                            .append("retried", Expected::NoStream, vec![seed], api(1))
                            .await
                    }
                    _ => store.append_built(api(actor), numbered_append()).await,
                };
                (kind, actor, result)
            }));
        }
        for task in tasks {
            match task.await.unwrap() {
                (0, _, Err(StoreError::Conflict { stream, actual, .. })) => {
                    assert_eq!((stream.as_str(), actual), ("taken", Some(1)));
                }
                (1, _, Ok(stored)) => {
                    assert_eq!(stored, retried, "a retry answers what is stored");
                }
                (2, actor, Ok(written)) => {
                    assert_eq!(written.len(), 2);
                    for e in &written {
                        assert_eq!(e.metadata().unwrap().actor, Some(actor));
                    }
                    assert_eq!(written[1].position, written[0].position + 1);
                    let id: i64 = written[0].stream["annotation-".len()..].parse().unwrap();
                    let payload: serde_json::Value =
                        serde_json::from_str(&written[0].payload).unwrap();
                    assert_eq!(payload["n"], id, "built with the id it was given");
                    ids.push(id);
                }
                (kind, _, other) => panic!("kind {kind}: {other:?}"),
            }
        }
        assert_eq!(in_front.await.unwrap().unwrap().len(), 20_000);
    }
    // Genesis, the two seeds, two long appends and 80 appends of two events: no gaps in
    // positions or ids.
    assert_eq!(store.last_position().await.unwrap(), 3 + 40_000 + 160);
    ids.sort_unstable();
    assert_eq!(
        ids,
        (1..=80).collect::<Vec<_>>(),
        "ids of refused appends were given back"
    );
    assert_eq!(store.counters().await.unwrap()["annotation"], 80);
    assert_eq!(store.read_stream("taken", 1).await.unwrap().len(), 1);
    let report = store.verify(1, None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
}

/// A new stream named by the next annotation id, with two events that carry it.
fn numbered_append() -> exact_store::BuildAppend {
    Box::new(|ids| {
        let id = ids.next("annotation");
        vec![StreamAppend::new(
            format!("annotation-{id}"),
            Expected::NoStream,
            vec![event(id), event(-id)],
        )]
    })
}

async fn concurrent_appends_to_one_stream_get_gapless_versions(db: TestDb) {
    let store = db.open().await;
    let mut tasks = Vec::new();
    for task in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..50 {
                store
                    .append("shared", Expected::Any, vec![event(n)], api(task))
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let versions: Vec<i64> = store
        .read_stream("shared", 1)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, (1..=200).collect::<Vec<_>>());
}

async fn two_processes_get_gapless_positions(db: TestDb) {
    db.open().await;
    let url = db.url_string();
    let spawn = |prefix: &str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_exact-store-load"))
            .args([url.as_str(), "4", "250", prefix])
            .kill_on_drop(true)
            .spawn()
            .expect("start a load process")
    };
    let (mut first, mut second) = (spawn("first"), spawn("second"));
    let (a, b) = tokio::join!(first.wait(), second.wait());
    assert!(
        a.unwrap().success() && b.unwrap().success(),
        "a load process failed"
    );
    let store = db.open().await;
    let report = store.verify(1, None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
    assert_eq!((report.checked, report.last), (2001, Some(2001)));
}

async fn a_hundred_thousand_events_in_one_append(db: TestDb) {
    let store = db.open().await;
    let batch: Vec<StreamAppend> = (0..10_000)
        .map(|s| {
            StreamAppend::new(
                format!("bulk-{s}"),
                Expected::NoStream,
                (0..10).map(event).collect(),
            )
        })
        .collect();
    let stored = store
        .append_many(batch, AppendContext::new(Source::Import, Some(1)))
        .await
        .unwrap();
    assert_eq!(stored.len(), 100_000);
    assert_eq!(stored.last().map(|e| e.position), Some(100_001));
    let report = store.verify(1, None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
    assert_eq!(report.checked, 100_001);
    assert_eq!(report.head_hash, Some(stored[99_999].hash));
}

/// `event(n)`'s payload, made when its append is planned.
#[derive(Debug)]
struct PlannedEvent(i64);

impl PlannedPayload for PlannedEvent {
    fn to_json(&self) -> serde_json::Value {
        event(self.0).payload.to_json().into_owned()
    }
}

/// Payloads made when the append is planned, alone and among JSON ones, in an append small
/// enough to be planned on the writer and one large enough to be planned beside it: each is
/// stored, hashed and read back exactly as the same event with a JSON payload.
async fn planned_payloads_are_stored_as_their_json_would_be(db: TestDb) {
    let store = db.open().await;
    let planned = |n: i64| {
        let mut e = event(n);
        e.payload = Payload::Planned(std::sync::Arc::new(PlannedEvent(n)));
        e
    };
    let small: Vec<NewEvent> = (0..3).map(planned).collect();
    store
        .append("small", Expected::NoStream, small, api(1))
        .await
        .unwrap();
    let large: Vec<StreamAppend> = (0..1_200)
        .map(|n| {
            let event = if n % 3 == 0 { event(n) } else { planned(n) };
            StreamAppend::new(format!("large-{n}"), Expected::NoStream, vec![event])
        })
        .collect();
    store.append_many(large, api(1)).await.unwrap();

    let stored = all(store.as_ref()).await;
    assert_eq!(stored.len(), 1 + 3 + 1_200);
    let expected: Vec<String> = (0..3)
        .chain(0..1_200)
        .map(|n| exact_store::canonical::to_string(&event(n).payload.to_json()))
        .collect();
    let payloads: Vec<String> = stored[1..].iter().map(|e| e.payload.clone()).collect();
    assert_eq!(payloads, expected);
    let report = store.verify(1, None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
}

async fn reopening_gives_the_same_log(db: TestDb) {
    let store = db.open().await;
    for n in 0..20 {
        store
            .append(
                &format!("s-{}", n % 3),
                Expected::Any,
                vec![event(n)],
                api(n),
            )
            .await
            .unwrap();
    }
    store
        .append_built(
            api(1),
            Box::new(|ids| {
                vec![StreamAppend::new(
                    format!("image-{}", ids.next("image")),
                    Expected::NoStream,
                    vec![event(0)],
                )]
            }),
        )
        .await
        .unwrap();
    let before = all(store.as_ref()).await;
    let counters = store.counters().await.unwrap();
    drop(store);
    let store = db.open().await;
    assert_eq!(
        all(store.as_ref()).await,
        before,
        "no second genesis, nothing lost or changed"
    );
    assert_eq!(store.counters().await.unwrap(), counters);
    store
        .append("s-0", Expected::Any, vec![event(99)], api(1))
        .await
        .unwrap();
    assert!(store.verify(1, None).await.unwrap().is_intact());
}

async fn stored_events_cannot_be_updated_or_deleted(db: TestDb) {
    let store = db.open().await;
    store
        .append("a", Expected::NoStream, vec![event(1)], api(1))
        .await
        .unwrap();
    assert!(db
        .raw("UPDATE events SET type = 'Other' WHERE position = 2")
        .await
        .is_err());
    assert!(db
        .raw("DELETE FROM events WHERE position = 2")
        .await
        .is_err());
    assert_eq!(all(store.as_ref()).await[1].event_type, "ThingHappened");
}

/// A row whose hashes, time or event id cannot be what the store wrote fails the read that
/// meets it, naming its position and column, as corrupt (not as an error of the database).
async fn a_row_that_does_not_decode_is_named_as_corrupt(db: TestDb) {
    let store = tampered_store(&db).await;
    let mut tampered = vec![(3, "prev_hash"), (4, "hash"), (5, "recorded_at")];
    db.raw(
        "UPDATE events SET prev_hash = substr(prev_hash, 1, 31) WHERE position = 3; \
         UPDATE events SET hash = hash || hash WHERE position = 4; \
         UPDATE events SET recorded_at = 9223372036854775807 WHERE position = 5;",
    )
    .await
    .unwrap();
    // PostgreSQL's column is of type UUID: only SQLite's blob can hold another length.
    if db.backend() == Backend::Sqlite {
        db.raw("UPDATE events SET event_id = substr(event_id, 1, 15) WHERE position = 6")
            .await
            .unwrap();
        tampered.push((6, "event_id"));
    }
    let intact = store.read_page(1, 2).await.unwrap();
    assert_eq!(
        intact.iter().map(|e| e.position).collect::<Vec<_>>(),
        [1, 2]
    );
    for (position, column) in tampered {
        match store.read_page(position, 10).await {
            Err(StoreError::Corrupt {
                position: at,
                reason,
            }) => {
                assert_eq!(at, position);
                assert!(reason.starts_with(column), "{position}: {reason}");
            }
            other => panic!("position {position}: {other:?}"),
        }
    }
}

/// A store with five events after genesis, its guard dropped by a tamperer.
async fn tampered_store(db: &TestDb) -> exact_store::Store {
    let store = db.open().await;
    for n in 0..5 {
        store
            .append("a", Expected::Any, vec![event(n)], api(1))
            .await
            .unwrap();
    }
    assert!(store.verify(1, None).await.unwrap().is_intact());
    db.raw(db.drop_guard_sql()).await.unwrap();
    store
}

async fn verify_names_an_edited_payload(db: TestDb) {
    let store = tampered_store(&db).await;
    // One byte: the label's last letter.
    db.raw(
        "UPDATE events SET payload = replace(payload, 'Zellkern', 'Zellkerm') WHERE position = 4",
    )
    .await
    .unwrap();
    let problem = store
        .verify(1, None)
        .await
        .unwrap()
        .problem
        .expect("the edit is found");
    assert_eq!(
        (problem.position, problem.kind),
        (4, ProblemKind::HashMismatch)
    );
}

async fn verify_names_a_deleted_row(db: TestDb) {
    let store = tampered_store(&db).await;
    db.raw("DELETE FROM events WHERE position = 3")
        .await
        .unwrap();
    let problem = store
        .verify(1, None)
        .await
        .unwrap()
        .problem
        .expect("the deletion is found");
    assert_eq!((problem.position, problem.kind), (3, ProblemKind::Gap));
}

async fn verify_names_swapped_rows(db: TestDb) {
    let store = tampered_store(&db).await;
    // Swap the content of positions 3 and 5, keeping the positions in place.
    let columns = [
        "stream",
        "version",
        "event_id",
        "type",
        "schema",
        "payload",
        "metadata",
        "recorded_at",
        "prev_hash",
        "hash",
    ];
    let park = match db.backend() {
        Backend::Sqlite => "UPDATE events SET event_id = randomblob(16), version = -version WHERE position IN (3, 5)",
        Backend::Postgres => "UPDATE events SET event_id = gen_random_uuid(), version = -version WHERE position IN (3, 5)",
    };
    let sets: Vec<String> = columns.iter().map(|c| format!("{c} = o.{c}")).collect();
    let sql = format!(
        "CREATE TABLE originals AS SELECT * FROM events WHERE position IN (3, 5); {park}; \
         UPDATE events SET {} FROM originals o WHERE o.position = 8 - events.position;",
        sets.join(", ")
    );
    db.raw(&sql).await.unwrap();
    let swapped = store.read_page(3, 3).await.unwrap();
    assert_eq!(
        (swapped[0].version, swapped[2].version),
        (4, 2),
        "the rows really were swapped"
    );
    let problem = store
        .verify(1, None)
        .await
        .unwrap()
        .problem
        .expect("the swap is found");
    assert_eq!(problem.position, 3);
    assert_eq!(problem.kind, ProblemKind::BrokenLink);
}

async fn verify_names_an_inserted_row(db: TestDb) {
    let store = tampered_store(&db).await;
    // Make room at position 4 (shifting the rest up, through a detour so that no two rows
    // share a position on the way) and put a copy of event 3 there, with an id and a version
    // of its own so that no constraint stops it.
    let fresh_id = match db.backend() {
        Backend::Sqlite => "randomblob(16)",
        Backend::Postgres => "gen_random_uuid()",
    };
    let sql = format!(
        "UPDATE events SET position = position + 1000 WHERE position >= 4; \
         UPDATE events SET position = position - 999 WHERE position >= 1000; \
         INSERT INTO events (position, stream, version, event_id, type, schema, payload, \
         metadata, recorded_at, prev_hash, hash) SELECT 4, stream, version + 100, {fresh_id}, \
         type, schema, payload, metadata, recorded_at, prev_hash, hash FROM events WHERE position = 3;"
    );
    db.raw(&sql).await.unwrap();
    let inserted = store.read_page(4, 1).await.unwrap();
    assert_eq!(
        inserted[0].version,
        store.read_page(3, 1).await.unwrap()[0].version + 100
    );
    assert_eq!(
        store.last_position().await.unwrap(),
        7,
        "the log grew by the inserted row"
    );
    let problem = store
        .verify(1, None)
        .await
        .unwrap()
        .problem
        .expect("the insertion is found");
    assert_eq!(problem.position, 4, "{problem:?}");
}

async fn verify_names_a_changed_time_column(db: TestDb) {
    let store = tampered_store(&db).await;
    db.raw("UPDATE events SET recorded_at = recorded_at - 3600000000 WHERE position = 5")
        .await
        .unwrap();
    let problem = store
        .verify(1, None)
        .await
        .unwrap()
        .problem
        .expect("the change is found");
    assert_eq!(
        (problem.position, problem.kind),
        (5, ProblemKind::ColumnMismatch)
    );
}

async fn verify_checks_a_range(db: TestDb) {
    let store = tampered_store(&db).await;
    db.raw("UPDATE events SET payload = '{}' WHERE position = 6")
        .await
        .unwrap();
    let early = store.verify(2, Some(5)).await.unwrap();
    assert!(early.is_intact());
    assert_eq!(
        (early.checked, early.first, early.last),
        (4, Some(2), Some(5))
    );
    let late = store.verify(5, None).await.unwrap();
    assert_eq!(late.problem.map(|p| p.position), Some(6));
}

async fn verify_finds_a_problem_deep_in_a_long_log(db: TestDb) {
    let store = db.open().await;
    let batch = (0..12_000).map(event).collect();
    store
        .append("long", Expected::NoStream, batch, api(1))
        .await
        .unwrap();
    db.raw(db.drop_guard_sql()).await.unwrap();
    // Past the first page, and in the second half of its page, which another thread checks.
    db.raw("UPDATE events SET payload = replace(payload, 'Zellkern', 'Zellkerm') WHERE position = 9000")
        .await
        .unwrap();
    let report = store.verify(1, None).await.unwrap();
    let problem = report.problem.expect("the edit is found");
    assert_eq!(
        (problem.position, problem.kind),
        (9000, ProblemKind::HashMismatch)
    );
    assert_eq!((report.checked, report.last), (8999, Some(8999)));
}

async fn subscribers_wake_on_commit(db: TestDb) {
    let store = db.open().await;
    let mut here = store.subscribe();
    assert_eq!(*here.borrow_and_update(), 1);
    // A second instance, as another process would hold: on PostgreSQL it hears the commit
    // through NOTIFY; on SQLite only the writing instance is woken.
    let other = db.open().await;
    let mut there = other.subscribe();
    there.borrow_and_update();
    tokio::time::sleep(Duration::from_millis(200)).await;
    store
        .append("a", Expected::NoStream, vec![event(1)], api(1))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), here.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*here.borrow(), 2);
    if db.backend() == Backend::Postgres {
        tokio::time::timeout(Duration::from_secs(10), there.wait_for(|p| *p >= 2))
            .await
            .expect("another instance is woken by NOTIFY")
            .unwrap();
    }
}

/// Waits until `store`'s cold version is known and not `seen`, for what another instance does.
async fn cold_version_after(store: &dyn EventStore, seen: Option<u64>) -> Option<u64> {
    for _ in 0..200 {
        let now = store.cold_version();
        if now.is_some() && now != seen {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the cold version stayed {seen:?}")
}

async fn cold_commits_move_the_cold_version_in_every_process(db: TestDb) {
    let options = || exact_store::OpenOptions {
        clock: db.clock.clone(),
        hot_streams: vec!["hot-".to_owned()],
        ..exact_store::OpenOptions::default()
    };
    let store = db.open_with_options(options()).await.unwrap();
    if db.backend() == Backend::Sqlite {
        // Another process (`exact user`) may commit unannounced: nothing may be cached.
        store
            .append("cold-1", Expected::Any, vec![event(1)], api(1))
            .await
            .unwrap();
        assert_eq!(store.cold_version(), None);
        return;
    }
    // Known once the store listens for other processes' commits (and has heard the
    // announcement of its own first event).
    cold_version_after(store.as_ref(), None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = store.cold_version();
    // Events of hot streams alone leave it; any other moves it before the append returns.
    store
        .append_many(
            vec![
                StreamAppend::new("hot-1", Expected::Any, vec![event(1)]),
                StreamAppend::new("hot-2", Expected::Any, vec![event(2)]),
            ],
            api(1),
        )
        .await
        .unwrap();
    assert_eq!(store.cold_version(), before);
    store
        .append_many(
            vec![
                StreamAppend::new("hot-1", Expected::Any, vec![event(3)]),
                StreamAppend::new("cold-1", Expected::Any, vec![event(4)]),
            ],
            api(1),
        )
        .await
        .unwrap();
    let after = store.cold_version();
    assert!(after > before, "{before:?} -> {after:?}");
    // Its own announcement comes back; let it, then another instance's hot commit leaves the
    // version and its cold one moves it, as it is heard.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = store.cold_version();
    let other = db.open_with_options(options()).await.unwrap();
    other
        .append("hot-3", Expected::Any, vec![event(5)], api(2))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        store.cold_version(),
        settled,
        "a hot commit elsewhere moved it"
    );
    other
        .append("cold-2", Expected::Any, vec![event(6)], api(2))
        .await
        .unwrap();
    let heard = cold_version_after(store.as_ref(), settled).await;
    // A lost listening connection may have missed announcements: what was kept before goes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heard = store.cold_version().or(heard);
    db.raw(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE pid <> pg_backend_pid() AND datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .await
    .unwrap();
    cold_version_after(store.as_ref(), heard).await;
}

async fn a_newer_schema_is_refused(db: TestDb) {
    drop(db.open().await);
    let future = match db.backend() {
        Backend::Sqlite => "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                           VALUES (99990101000000, 'from a newer exact', 1, X'00', 0)",
        Backend::Postgres => "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                             VALUES (99990101000000, 'from a newer exact', true, '\\x00', 0)",
    };
    db.raw(future).await.unwrap();
    let err = exact_store::open(&db.url, exact_store::OpenOptions::default())
        .await
        .unwrap_err();
    // `known` is this binary's newest migration, whatever number that has reached.
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew { found: 99_990_101_000_000, known } if (1..1000).contains(&known)
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer than this binary"), "{err}");
}

async fn recorded_time_follows_the_clock_and_never_goes_back(db: TestDb) {
    let store = db.open().await;
    db.clock.advance(TimeDelta::milliseconds(1500));
    let later = store
        .append("a", Expected::Any, vec![event(1)], api(1))
        .await
        .unwrap();
    assert_eq!(
        later[0].recorded_at,
        common::start_time() + TimeDelta::milliseconds(1500)
    );
    db.clock.advance(TimeDelta::hours(-2));
    let skewed = store
        .append("a", Expected::Any, vec![event(2)], api(1))
        .await
        .unwrap();
    assert_eq!(skewed[0].recorded_at, later[0].recorded_at);
}

async fn bad_names_are_refused(db: TestDb) {
    let store = db.open().await;
    for stream in ["", "with\nnewline"] {
        let err = store
            .append(stream, Expected::Any, vec![event(1)], api(1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidAppend(_)), "{err:?}");
    }
    let nameless = NewEvent::new("", json!({}));
    let err = store
        .append("a", Expected::Any, vec![nameless], api(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidAppend(_)), "{err:?}");
    assert_eq!(store.last_position().await.unwrap(), 1);
}

async fn a_time_maps_to_the_last_position_recorded_by_then(db: TestDb) {
    let store = db.open().await;
    let start = common::start_time();
    db.clock.advance(TimeDelta::seconds(10));
    store
        .append("a", Expected::Any, vec![event(1)], api(1))
        .await
        .unwrap();
    db.clock.advance(TimeDelta::seconds(10));
    store
        .append("a", Expected::Any, vec![event(2), event(3)], api(1))
        .await
        .unwrap();
    let cases = [
        (start - TimeDelta::microseconds(1), 0),
        (start, 1),
        (start + TimeDelta::seconds(15), 2),
        (start + TimeDelta::seconds(20), 4),
        (start + TimeDelta::days(365), 4),
    ];
    for (at, position) in cases {
        assert_eq!(store.position_at(at).await.unwrap(), position, "at {at}");
    }
}

/// SQLite's automatic checkpoint is off on the writer's connection (it checkpoints after the
/// commit's callers have their answer): while the store stays open, what is committed still
/// reaches the database file, not only its log.
#[tokio::test]
async fn sqlite_checkpoints_the_wal_while_the_store_is_open() {
    let db = TestDb::sqlite();
    let store = db.open().await;
    let path = db.sqlite_path();
    let size = || std::fs::metadata(path).unwrap().len();
    let before = size();
    let page = sqlite_page_size(path);
    // A checkpoint is due past 1,000 pages of log; some 1,200 pages' worth is committed.
    let label = "Zellkern ☃ ".repeat(100 * page as usize / 4096);
    for round in 0..20 {
        let events = (0..200)
            .map(|n| NewEvent::new("ThingHappened", json!({ "n": n, "label": label })))
            .collect();
        store
            .append(&format!("s-{round}"), Expected::NoStream, events, api(1))
            .await
            .unwrap();
    }
    // The last checkpoint may run just after the answer: waited for a little.
    for _ in 0..100 {
        if size() > before + 1_000 * page {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the database file stayed at {} bytes ({before} before)",
        size()
    );
}

/// A new SQLite database gets 16 KiB pages; one made with SQLite's default 4 KiB (every
/// database before them) opens, migrates and takes appends with its own pages.
#[tokio::test]
async fn sqlite_databases_keep_the_page_size_they_were_made_with() {
    let fresh = TestDb::sqlite();
    fresh.open().await;
    assert_eq!(sqlite_page_size(fresh.sqlite_path()), 16_384);

    let old = TestDb::sqlite();
    let path = old.sqlite_path();
    {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.pragma_update(None, "page_size", 4_096).unwrap();
        conn.pragma_update(None, "journal_mode", "wal").unwrap();
        conn.execute_batch("CREATE TABLE made_before (x INTEGER)")
            .unwrap();
    }
    let store = old.open().await;
    store
        .append(
            "s-1",
            Expected::NoStream,
            vec![NewEvent::new("ThingHappened", json!({}))],
            api(1),
        )
        .await
        .unwrap();
    drop(store);
    let store = old.open().await;
    assert_eq!(store.read_stream("s-1", 1).await.unwrap().len(), 1);
    assert_eq!(sqlite_page_size(path), 4_096);
}

/// The page size of the SQLite database at `path`, in bytes.
fn sqlite_page_size(path: &std::path::Path) -> u64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap()
}
