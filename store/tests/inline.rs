//! Inline projections: read models updated in the append's own transaction.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use exact_store::testing::TestDb;
use exact_store::{AppendContext, Envelope, Expected, InlineProjection, NewEvent, StoreError, Tx};
use serde_json::json;

exact_store::on_both_backends!(
    each_append_updates_the_read_model_before_it_returns,
    a_failing_projection_rolls_the_append_back,
    a_failing_projection_among_concurrent_appends_fails_its_append_alone,
    a_projection_added_later_catches_up_when_the_store_opens,
    a_projection_never_skips_what_another_process_appended,
    rebuild_replays_the_whole_log_into_an_emptied_read_model,
    rows_inserted_in_bulk_all_land_or_none,
    a_rebuild_reads_page_after_page_and_refuses_a_gap,
    an_index_built_in_a_rebuild_leaves_the_writer_as_it_was,
);

/// Counts events per stream; refuses events of type `Poison`.
#[derive(Debug)]
struct StreamCounts;

#[async_trait]
impl InlineProjection for StreamCounts {
    fn name(&self) -> &'static str {
        "stream_counts"
    }

    async fn apply(&self, tx: &mut Tx<'_>, events: &[Envelope]) -> exact_store::Result<()> {
        for e in events {
            if e.event_type == "Poison" {
                return Err(StoreError::Projection {
                    name: self.name().into(),
                    reason: "poisoned".into(),
                });
            }
            let sql = "INSERT INTO stream_counts (stream, events) VALUES ($1, 1) \
                       ON CONFLICT (stream) DO UPDATE SET events = stream_counts.events + 1";
            tx.execute(sql, &[e.stream.as_str().into()]).await?;
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx<'_>) -> exact_store::Result<()> {
        tx.execute("DELETE FROM stream_counts", &[]).await?;
        Ok(())
    }
}

/// A store with the read model's table, not yet opened with the projection.
async fn prepared(db: &TestDb) {
    drop(db.open_with(false).await);
    db.raw("CREATE TABLE stream_counts (stream TEXT PRIMARY KEY, events BIGINT NOT NULL)")
        .await
        .unwrap();
}

fn projections() -> Vec<Arc<dyn InlineProjection>> {
    vec![Arc::new(StreamCounts)]
}

async fn counts(db: &TestDb) -> Vec<(String, i64)> {
    db.pairs("SELECT stream, events FROM stream_counts ORDER BY stream")
        .await
}

async fn checkpoint(db: &TestDb) -> i64 {
    db.pairs("SELECT name, position FROM projection_checkpoints")
        .await
        .first()
        .map_or(0, |(_, p)| *p)
}

fn event(n: i64) -> NewEvent {
    NewEvent::new("Counted", json!({ "n": n }))
}

async fn each_append_updates_the_read_model_before_it_returns(db: TestDb) {
    prepared(&db).await;
    let store = db.open_with_projections(projections()).await;
    store
        .append(
            "a",
            Expected::NoStream,
            vec![event(1), event(2), event(3)],
            AppendContext::system(),
        )
        .await
        .unwrap();
    store
        .append(
            "b",
            Expected::NoStream,
            vec![event(4), event(5)],
            AppendContext::system(),
        )
        .await
        .unwrap();
    assert_eq!(
        counts(&db).await,
        [("$store".into(), 1), ("a".into(), 3), ("b".into(), 2)]
    );
    assert_eq!(checkpoint(&db).await, 6);
}

async fn a_failing_projection_rolls_the_append_back(db: TestDb) {
    prepared(&db).await;
    let store = db.open_with_projections(projections()).await;
    store
        .append(
            "a",
            Expected::NoStream,
            vec![event(1)],
            AppendContext::system(),
        )
        .await
        .unwrap();
    let poisoned = vec![event(2), NewEvent::new("Poison", json!({}))];
    let err = store
        .append("a", Expected::Any, poisoned, AppendContext::system())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Projection { ref name, .. } if name == "stream_counts"),
        "{err:?}"
    );
    assert_eq!(
        store.last_position().await.unwrap(),
        2,
        "the events were not stored either"
    );
    assert_eq!(counts(&db).await, [("$store".into(), 1), ("a".into(), 1)]);
    assert_eq!(checkpoint(&db).await, 2);

    // A large append gives the read models its events page by page as it writes them: a
    // refusal in its last page takes back the pages applied before it too.
    let mut poisoned: Vec<NewEvent> = (0..12_000).map(event).collect();
    poisoned.push(NewEvent::new("Poison", json!({})));
    let err = store
        .append("big", Expected::NoStream, poisoned, AppendContext::system())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Projection { .. }), "{err:?}");
    assert_eq!(store.last_position().await.unwrap(), 2);
    assert_eq!(counts(&db).await, [("$store".into(), 1), ("a".into(), 1)]);
    assert_eq!(checkpoint(&db).await, 2);
    // Without the poison: every page applied once.
    let big: Vec<NewEvent> = (0..12_000).map(event).collect();
    store
        .append("big", Expected::NoStream, big, AppendContext::system())
        .await
        .unwrap();
    assert_eq!(
        counts(&db).await,
        [
            ("$store".into(), 1),
            ("a".into(), 1),
            ("big".into(), 12_000)
        ]
    );
    assert_eq!(checkpoint(&db).await, 12_002);
}

/// Appends waiting together are written as one where they can (group commit): a read model's
/// refusal of one of them must still fail that one alone, the others' rows all landing.
async fn a_failing_projection_among_concurrent_appends_fails_its_append_alone(db: TestDb) {
    prepared(&db).await;
    let store = db.open_with_projections(projections()).await;
    // A long append in front makes the others wait, and so go in groups.
    let long: Vec<NewEvent> = (0..20_000).map(event).collect();
    let in_front = {
        let store = store.clone();
        tokio::spawn(async move {
            let context = AppendContext::system();
            store.append("long", Expected::Any, long, context).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut tasks = Vec::new();
    for task in 0..60_i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut events = vec![event(task)];
            if task % 10 == 3 {
                events.push(NewEvent::new("Poison", json!({})));
            }
            let result = store
                .append(
                    &format!("s{}", task % 4),
                    Expected::Any,
                    events,
                    AppendContext::system(),
                )
                .await;
            (task, result)
        }));
    }
    let mut written = 0;
    for task in tasks {
        match task.await.unwrap() {
            (task, Err(StoreError::Projection { .. })) if task % 10 == 3 => {}
            (task, Ok(envelopes)) if task % 10 != 3 => written += envelopes.len() as i64,
            (task, other) => panic!("task {task}: {other:?}"),
        }
    }
    assert_eq!(written, 54);
    assert_eq!(in_front.await.unwrap().unwrap().len(), 20_000);
    let stored = 1 + 20_000 + 54;
    assert_eq!(store.last_position().await.unwrap(), stored);
    let total: i64 = counts(&db).await.iter().map(|(_, n)| n).sum();
    assert_eq!(
        total, stored,
        "every stored event is counted once, no refused one"
    );
    assert_eq!(checkpoint(&db).await, stored);
}

async fn a_projection_added_later_catches_up_when_the_store_opens(db: TestDb) {
    prepared(&db).await;
    let plain = db.open().await;
    // More than a catch-up page per stream.
    for stream in ["s0", "s1", "s2"] {
        let batch = (0..4_000).map(event).collect();
        plain
            .append(stream, Expected::NoStream, batch, AppendContext::system())
            .await
            .unwrap();
    }
    drop(plain);
    let store = db.open_with_projections(projections()).await;
    assert_eq!(
        counts(&db).await,
        [
            ("$store".into(), 1),
            ("s0".into(), 4_000),
            ("s1".into(), 4_000),
            ("s2".into(), 4_000)
        ]
    );
    assert_eq!(checkpoint(&db).await, store.last_position().await.unwrap());
}

async fn a_projection_never_skips_what_another_process_appended(db: TestDb) {
    prepared(&db).await;
    let with = db.open_with_projections(projections()).await;
    // An instance without the projection (an older binary) appends meanwhile.
    let without = db.open().await;
    without
        .append(
            "old",
            Expected::NoStream,
            vec![event(1), event(2)],
            AppendContext::system(),
        )
        .await
        .unwrap();
    with.append(
        "new",
        Expected::NoStream,
        vec![event(3)],
        AppendContext::system(),
    )
    .await
    .unwrap();
    assert_eq!(
        counts(&db).await,
        [("$store".into(), 1), ("new".into(), 1), ("old".into(), 2)]
    );
    assert_eq!(checkpoint(&db).await, 4);
}

async fn rebuild_replays_the_whole_log_into_an_emptied_read_model(db: TestDb) {
    prepared(&db).await;
    let store = db.open_with_projections(projections()).await;
    for n in 0..30 {
        store
            .append(
                &format!("s{}", n % 4),
                Expected::Any,
                vec![event(n)],
                AppendContext::system(),
            )
            .await
            .unwrap();
    }
    let built = counts(&db).await;
    db.raw("UPDATE stream_counts SET events = 999; DELETE FROM stream_counts WHERE stream = 's1'")
        .await
        .unwrap();
    let applied = store
        .rebuild("stream_counts", Arc::new(|_, _| {}))
        .await
        .unwrap();
    assert_eq!(applied, 31);
    assert_eq!(
        counts(&db).await,
        built,
        "rebuilt equals incrementally built"
    );
    assert_eq!(checkpoint(&db).await, 31);
    let err = store
        .rebuild("nonexistent", Arc::new(|_, _| {}))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Projection { .. }), "{err:?}");
}

/// Writes rows `from..to` of event `{"from", "to"}` into `tally` through `Tx::insert_rows`;
/// a row already there has its `hits` raised. `"null_at"` makes that row's hits NULL, which
/// the table refuses.
#[derive(Debug)]
struct Tally;

#[async_trait]
impl InlineProjection for Tally {
    fn name(&self) -> &'static str {
        "tally"
    }

    async fn apply(&self, tx: &mut Tx<'_>, events: &[Envelope]) -> exact_store::Result<()> {
        for e in events.iter().filter(|e| e.event_type == "Tally") {
            let payload = e.payload_value().unwrap();
            let (from, to) = (
                payload["from"].as_i64().unwrap(),
                payload["to"].as_i64().unwrap(),
            );
            let null_at = payload["null_at"].as_i64();
            let mut values = Vec::new();
            for n in from..to {
                let hits = (Some(n) != null_at).then_some(1_i64);
                values.extend([n.into(), hits.into()]);
            }
            let changed = tx
                .insert_rows(
                    "INSERT INTO tally (n, hits) ",
                    2,
                    " ON CONFLICT (n) DO UPDATE SET hits = tally.hits + excluded.hits",
                    &values,
                )
                .await?;
            assert_eq!(changed, (to - from) as u64, "one change per row");
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx<'_>) -> exact_store::Result<()> {
        tx.execute("DELETE FROM tally", &[]).await?;
        Ok(())
    }
}

/// More rows than one PostgreSQL statement may bind (two columns × 40,000 > 65,535
/// parameters), an upsert over some of them, batches with a row refused here and there, and
/// one of whole runs and a rest.
async fn rows_inserted_in_bulk_all_land_or_none(db: TestDb) {
    drop(db.open_with(false).await);
    db.raw("CREATE TABLE tally (n BIGINT PRIMARY KEY, hits BIGINT NOT NULL)")
        .await
        .unwrap();
    let store = db.open_with_projections(vec![Arc::new(Tally)]).await;
    let tally = |from: i64, to: i64, null_at: Option<i64>| {
        NewEvent::new(
            "Tally",
            json!({ "from": from, "to": to, "null_at": null_at }),
        )
    };
    let context = AppendContext::system;
    store
        .append("t", Expected::Any, vec![tally(0, 40_000, None)], context())
        .await
        .unwrap();
    store
        .append(
            "t",
            Expected::Any,
            vec![tally(39_990, 40_010, None)],
            context(),
        )
        .await
        .unwrap();
    // SQLite writes runs of a thousand rows a statement, then of 50, then the rest a row at a
    // time: a refused row in the last run of 50, in the first, and among the rest, after
    // whole runs went in; in a run of a thousand, and in a run of 50 after one.
    for (from, to, null_at) in [
        (50_000, 50_100, 50_099),
        (60_000, 60_123, 60_010),
        (80_000, 80_123, 80_120),
        (90_000, 91_123, 90_999),
        (100_000, 101_123, 101_060),
    ] {
        let refused = store
            .append(
                "t",
                Expected::Any,
                vec![tally(from, to, Some(null_at))],
                context(),
            )
            .await;
        assert!(refused.is_err(), "a NULL in a NOT NULL column is refused");
    }
    store
        .append(
            "t",
            Expected::Any,
            vec![tally(70_000, 71_123, None)],
            context(),
        )
        .await
        .unwrap();

    let summary = db
        .pairs("SELECT CAST(hits AS TEXT), COUNT(*) FROM tally GROUP BY hits ORDER BY hits")
        .await;
    assert_eq!(
        summary,
        [("1".into(), 39_990 + 10 + 1_123), ("2".into(), 10)],
        "every row once, the overlap twice, nothing of the refused batches"
    );
}

/// More events than a rebuild reads per page (5,000), then a log with a hole in it.
async fn a_rebuild_reads_page_after_page_and_refuses_a_gap(db: TestDb) {
    prepared(&db).await;
    let store = db.open_with_projections(projections()).await;
    for batch in 0..12 {
        let appends = (0..1_000)
            .map(|n| {
                exact_store::StreamAppend::new(
                    format!("s{}", (batch * 1_000 + n) % 7),
                    Expected::Any,
                    vec![event(n)],
                )
            })
            .collect();
        store
            .append_many(appends, AppendContext::system())
            .await
            .unwrap();
    }
    let built = counts(&db).await;
    db.raw("DELETE FROM stream_counts").await.unwrap();
    let applied = store
        .rebuild("stream_counts", Arc::new(|_, _| {}))
        .await
        .unwrap();
    assert_eq!(applied, 12_001, "every event once, across three pages");
    assert_eq!(counts(&db).await, built);

    db.raw(db.drop_guard_sql()).await.unwrap();
    // Deletes the event at `position`; a rebuild is then refused, naming `gap`, and changes
    // nothing.
    let refused_after_deleting = |position: i64, gap: &'static str| {
        let (db, store, built) = (&db, &store, &built);
        async move {
            db.raw(&format!("DELETE FROM events WHERE position = {position}"))
                .await
                .unwrap();
            let err = store
                .rebuild("stream_counts", Arc::new(|_, _| {}))
                .await
                .unwrap_err();
            assert!(
                matches!(&err, StoreError::Projection { reason, .. } if reason.contains(gap)),
                "{err:?}"
            );
            assert_eq!(
                &counts(db).await,
                built,
                "the failed rebuild changed nothing"
            );
        }
    };
    // The last of the second page (5,001 to 10,000): pages are cut by position and read ahead,
    // so the page after it starts where it should and only this page's end shows the hole.
    refused_after_deleting(10_000, "gap before position 10000").await;
    // In the second page too.
    refused_after_deleting(7_000, "gap after position 5000").await;
}

/// What the writer's connection was set to when a projection looked, on SQLite: temporary
/// storage (1 files, 2 memory), page cache and the sorter's worker threads.
#[derive(Clone, Copy, Debug, PartialEq)]
struct WriterSettings {
    temp_store: i64,
    cache_size: i64,
    threads: i64,
}

impl WriterSettings {
    /// As the store keeps them between rebuilds.
    const USUAL: WriterSettings = WriterSettings {
        temp_store: 2,
        cache_size: -65_536,
        threads: 0,
    };

    async fn of(tx: &mut Tx<'_>) -> exact_store::Result<Option<Self>> {
        if !matches!(tx, Tx::Sqlite(_)) {
            return Ok(None);
        }
        Ok(Some(WriterSettings {
            temp_store: pragma(tx, "temp_store").await?,
            cache_size: pragma(tx, "cache_size").await?,
            threads: pragma(tx, "threads").await?,
        }))
    }
}

async fn pragma(tx: &mut Tx<'_>, name: &str) -> exact_store::Result<i64> {
    let row: Option<(i64,)> = tx.fetch_optional(&format!("PRAGMA {name}"), &[]).await?;
    Ok(row.expect("a pragma's value").0)
}

/// Keeps each event's `n` in `numbered`, whose unique index by `n` a rebuild builds after the
/// rows (`Tx::create_indexes`), as the annotations' spatial index is; notes the writer's
/// settings it sees in appends and in the rebuild's last step.
#[derive(Debug, Default)]
struct Numbered {
    seen: Mutex<Vec<(&'static str, WriterSettings)>>,
}

impl Numbered {
    fn seen(&self) -> Vec<(&'static str, WriterSettings)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    async fn note(&self, when: &'static str, tx: &mut Tx<'_>) -> exact_store::Result<()> {
        if let Some(settings) = WriterSettings::of(tx).await? {
            self.seen.lock().unwrap().push((when, settings));
        }
        Ok(())
    }
}

const NUMBERED_INDEX: &str = "CREATE UNIQUE INDEX numbered_by_n ON numbered (n)";

#[async_trait]
impl InlineProjection for Numbered {
    fn name(&self) -> &'static str {
        "numbered"
    }

    async fn apply(&self, tx: &mut Tx<'_>, events: &[Envelope]) -> exact_store::Result<()> {
        for e in events.iter().filter(|e| e.event_type == "Counted") {
            let n = e.payload_value().unwrap()["n"].as_i64().unwrap();
            tx.execute("INSERT INTO numbered (n) VALUES ($1)", &[n.into()])
                .await?;
        }
        self.note("append", tx).await
    }

    async fn reset(&self, tx: &mut Tx<'_>) -> exact_store::Result<()> {
        tx.execute("DROP INDEX IF EXISTS numbered_by_n", &[])
            .await?;
        tx.execute("DELETE FROM numbered", &[]).await?;
        Ok(())
    }

    async fn finish_rebuild(&self, tx: &mut Tx<'_>) -> exact_store::Result<()> {
        tx.create_indexes(&[NUMBERED_INDEX.to_owned()]).await?;
        self.note("rebuild", tx).await
    }
}

/// A rebuild builds its indexes with SQLite's sort on worker threads, which needs temporary
/// storage in files and a smaller page cache; after it, built or failed, appends find the
/// writer's usual settings (memory for savepoints' journals, its whole page cache).
async fn an_index_built_in_a_rebuild_leaves_the_writer_as_it_was(db: TestDb) {
    drop(db.open_with(false).await);
    db.raw("CREATE TABLE numbered (n BIGINT NOT NULL)")
        .await
        .unwrap();
    let numbered = Arc::new(Numbered::default());
    let store = db.open_with_projections(vec![numbered.clone()]).await;
    let sqlite = db.backend() == exact_store::Backend::Sqlite;
    let usual = |when| sqlite.then_some((when, WriterSettings::USUAL));
    let append = async |n: i64| {
        store
            .append("n", Expected::Any, vec![event(n)], AppendContext::system())
            .await
    };
    for n in [1, 2, 3] {
        append(n).await.unwrap();
    }
    numbered.seen();

    store
        .rebuild("numbered", Arc::new(|_, _| {}))
        .await
        .unwrap();
    let during = WriterSettings {
        temp_store: 1,
        ..WriterSettings::USUAL
    };
    assert_eq!(
        numbered.seen().last().copied(),
        sqlite.then_some(("rebuild", during)),
        "the rebuild's own settings are put back as soon as its indexes are built"
    );
    append(4).await.unwrap();
    assert_eq!(numbered.seen(), Vec::from_iter(usual("append")));
    assert!(
        append(2).await.is_err(),
        "the index the rebuild built holds: a second 2 is refused"
    );
    numbered.seen();

    // A log the unique index cannot hold: the rebuild fails whole.
    db.raw("DROP INDEX numbered_by_n").await.unwrap();
    append(2).await.unwrap();
    numbered.seen();
    let refused = store.rebuild("numbered", Arc::new(|_, _| {})).await;
    assert!(refused.is_err(), "a duplicate fails the unique index");
    assert!(
        numbered.seen().iter().all(|(when, _)| *when == "append"),
        "the rebuild stopped at its index"
    );
    assert_eq!(
        db.pairs("SELECT CAST(n AS TEXT), COUNT(*) FROM numbered GROUP BY n ORDER BY n")
            .await,
        [1, 2, 3, 4].map(|n| (n.to_string(), if n == 2 { 2 } else { 1 })),
        "the failed rebuild changed nothing"
    );
    append(5).await.unwrap();
    assert_eq!(numbered.seen(), Vec::from_iter(usual("append")));
}
