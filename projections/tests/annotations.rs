//! The annotations read model, fed by domain commands through the store, on both backends.

use exact_domain::DomainEvent;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use exact_domain::annotation::{
    self, decide, evolve, Annotation, AnnotationChanges, AnnotationCommand, AnnotationContext,
    AnnotationEvent, ImageInfo, NewAnnotation, TypeInfo,
};
use exact_domain::permissions::{image_set_permissions, SetFlags, Standing};
use exact_domain::vector::VectorType;
use exact_projections::{AnnotationsProjection, ReadDb, Rect};
use exact_store::testing::TestDb;
use exact_store::{AppendContext, Expected, NewEvent, Source, Store, StreamAppend};
use serde_json::{json, Value};

exact_store::on_both_backends!(
    the_read_model_follows_commands_and_answers_as_of_a_past_position,
    a_rebuilt_read_model_equals_the_incrementally_built_one,
    a_large_append_counts_every_page_once,
    a_creation_of_an_id_the_read_model_holds_is_refused_not_written_over,
    changes_in_one_append_write_what_they_write_one_by_one,
    viewports_find_exactly_the_boxes_they_meet_now_and_as_of,
);

const ALICE: i64 = 7;
const BOX: i64 = 3;

fn context(image: i64) -> AnnotationContext {
    AnnotationContext {
        actor: ALICE,
        permissions: image_set_permissions(
            Standing {
                member: true,
                ..Standing::default()
            },
            SetFlags::default(),
        ),
        annotation_type: TypeInfo {
            id: BOX,
            vector_type: VectorType::BoundingBox,
            node_count: 0,
            active: true,
            offered: true,
        },
        image: ImageInfo {
            id: image,
            width: 10_000.0,
            height: 8_000.0,
            frames: 1,
        },
        other_global: false,
        clinical: false,
        reason_given: false,
    }
}

/// Loads the annotation from its stream, decides, and appends what the command produced.
async fn run(
    store: &Store,
    id: i64,
    command: AnnotationCommand,
    context: &AnnotationContext,
    reason: Option<&str>,
) {
    let stream = annotation::stream(id);
    let stored = store.read_stream(&stream, 1).await.unwrap();
    let state: Option<Annotation> = stored.iter().fold(None, |state, e| {
        let event = AnnotationEvent::from_parts(&e.event_type, e.payload_value().unwrap())
            .unwrap()
            .unwrap();
        evolve(state, &event)
    });
    let events = decide(state.as_ref(), &command, context).unwrap();
    let expected = stored
        .last()
        .map_or(Expected::NoStream, |e| Expected::Exact(e.version));
    let events = new_events(&events);
    let mut append_context = AppendContext::new(Source::Api, Some(context.actor));
    if let Some(reason) = reason {
        append_context = append_context.with_reason(reason);
    }
    store
        .append(&stream, expected, events, append_context)
        .await
        .unwrap();
}

/// The events a command decided, as the store takes them.
fn new_events(events: &[AnnotationEvent]) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| {
            let (name, payload) = e.to_parts();
            NewEvent::new(name, payload)
        })
        .collect()
}

fn create(id: i64, image: i64, x: f64, y: f64) -> AnnotationCommand {
    create_sized(id, image, x, y, 100.0, 200.0)
}

/// Creates every annotation of `creations` (id, command, context) in one append.
async fn create_all(store: &Store, creations: Vec<(i64, AnnotationCommand, AnnotationContext)>) {
    let actor = creations[0].2.actor;
    let appends = creations
        .into_iter()
        .map(|(id, command, context)| {
            let events = new_events(&decide(None, &command, &context).unwrap());
            StreamAppend::new(annotation::stream(id), Expected::NoStream, events)
        })
        .collect();
    store
        .append_many(appends, AppendContext::new(Source::Api, Some(actor)))
        .await
        .unwrap();
}

fn create_sized(id: i64, image: i64, x: f64, y: f64, w: f64, h: f64) -> AnnotationCommand {
    AnnotationCommand::Create(NewAnnotation {
        id,
        image,
        annotation_type: BOX,
        vector: json!({"x1": x, "y1": y, "x2": x + w, "y2": y + h}),
        description: String::new(),
        meta_data: Value::Null,
        concealed: false,
        blurred: false,
        unique_identifier: uuid::Uuid::from_u128(id as u128),
        user: None,
    })
}

fn moved(x: f64, y: f64) -> AnnotationCommand {
    AnnotationCommand::Change(AnnotationChanges {
        vector: Some(json!({"x1": x, "y1": y, "x2": x + 100.0, "y2": y + 100.0})),
        ..AnnotationChanges::default()
    })
}

async fn open(db: &TestDb) -> (Store, ReadDb) {
    let store = db
        .open_with_projections(vec![Arc::new(AnnotationsProjection)])
        .await;
    let read = ReadDb::connect(&db.url).await.unwrap();
    (store, read)
}

/// The live annotations of `image` in `window`, as the log stood at `position`.
async fn viewport_as_of(
    read: &ReadDb,
    image: i64,
    window: Rect,
    position: i64,
) -> Vec<exact_projections::annotations::AnnotationRow> {
    let query = exact_projections::annotation_query::AnnotationQuery {
        image: Some(image),
        rect: Some(window),
        deleted: Some(false),
        as_of: Some(position),
        ..Default::default()
    };
    read.annotations(&query).await.unwrap()
}

fn rect(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Rect {
    Rect {
        min_x,
        min_y,
        max_x,
        max_y,
    }
}

async fn the_read_model_follows_commands_and_answers_as_of_a_past_position(db: TestDb) {
    let (store, read) = open(&db).await;
    run(&store, 1, create(1, 11, 10.0, 20.0), &context(11), None).await;
    run(&store, 2, create(2, 11, 800.0, 600.0), &context(11), None).await;
    run(&store, 3, create(3, 12, 10.0, 20.0), &context(12), None).await;
    let before = store.last_position().await.unwrap();
    run(
        &store,
        1,
        moved(5000.0, 5000.0),
        &context(11),
        Some("wrong cell"),
    )
    .await;
    run(&store, 2, AnnotationCommand::Delete, &context(11), None).await;
    run(
        &store,
        1,
        AnnotationCommand::Verify { verified: true },
        &context(11),
        None,
    )
    .await;

    let ids = |rows: Vec<exact_projections::annotations::AnnotationRow>| {
        rows.iter().map(|r| r.id).collect::<Vec<_>>()
    };
    let top_left = rect(0.0, 0.0, 200.0, 300.0);
    assert_eq!(
        ids(read.viewport(11, top_left).await.unwrap()),
        Vec::<i64>::new(),
        "1 moved away, 3 is on another image"
    );
    assert_eq!(
        ids(read
            .viewport(11, rect(4900.0, 4900.0, 5050.0, 5050.0))
            .await
            .unwrap()),
        [1]
    );
    assert_eq!(
        ids(read
            .viewport(11, rect(0.0, 0.0, 10_000.0, 8_000.0))
            .await
            .unwrap()),
        [1],
        "2 is deleted"
    );
    assert_eq!(ids(read.viewport(12, top_left).await.unwrap()), [3]);
    // Touching edges count.
    assert_eq!(
        ids(read
            .viewport(12, rect(110.0, 220.0, 120.0, 230.0))
            .await
            .unwrap()),
        [3]
    );

    let then = viewport_as_of(&read, 11, top_left, before).await;
    assert_eq!(then.iter().map(|v| v.id).collect::<Vec<_>>(), [1]);
    assert_eq!(
        then[0].vector.as_deref(),
        Some(r#"{"x1":10,"x2":110,"y1":20,"y2":220}"#)
    );
    let whole_then = viewport_as_of(&read, 11, rect(0.0, 0.0, 10_000.0, 8_000.0), before).await;
    assert_eq!(whole_then.iter().map(|v| v.id).collect::<Vec<_>>(), [1, 2]);

    // The overview counts annotations per 1024 px cell by their centre: 1 moved to (5050, 5050),
    // 2 is deleted; coarser grids sum cells.
    assert_eq!(read.overview(11, None, 1).await.unwrap(), [(4, 4, 1)]);
    assert_eq!(read.overview(11, None, 8).await.unwrap(), [(0, 0, 1)]);
    assert_eq!(read.overview(11, Some(BOX), 1).await.unwrap(), [(4, 4, 1)]);
    assert_eq!(read.overview(11, Some(99), 1).await.unwrap(), []);
    assert_eq!(read.overview(12, None, 1).await.unwrap(), [(0, 0, 1)]);

    assert_eq!(read.verifications(1).await.unwrap(), [(ALICE, true)]);
    let history = read.history(1).await.unwrap();
    let steps: Vec<_> = history
        .iter()
        .map(|v| {
            (
                v.version,
                v.event_type.as_str(),
                v.reason.as_deref(),
                v.actor,
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (1, "AnnotationCreated", None, Some(ALICE)),
            (2, "AnnotationChanged", Some("wrong cell"), Some(ALICE)),
            (3, "AnnotationVerified", None, Some(ALICE)),
        ]
    );
    assert_eq!(
        history[0].valid_to,
        Some(history[1].valid_from),
        "versions follow each other without a hole"
    );
    assert_eq!(history[1].valid_to, Some(history[2].valid_from));
    assert_eq!(history[2].valid_to, None);
    // Who changed what: the move changed the vector only; a verdict changes no field.
    assert_eq!(history[1].changes_from(&history[0]), ["vector"]);
    assert!(history[2].changes_from(&history[1]).is_empty());

    // The current versions are the rows of `annotations`; the history table holds only the
    // versions replaced since (a creation writes no history row), and the view every one.
    let replaced = db
        .pairs(
            "SELECT id || '|' || version || '|' || valid_from || '|' || valid_to, id \
             FROM annotation_history ORDER BY id, version",
        )
        .await;
    let replaced: Vec<&str> = replaced.iter().map(|(row, _)| row.as_str()).collect();
    let (moved_at, verified_at) = (history[1].valid_from, history[2].valid_from);
    let deletion = read.history(2).await.unwrap();
    assert_eq!(deletion[1].event_type, "AnnotationDeleted");
    assert_eq!(
        replaced,
        [
            format!("1|1|{}|{moved_at}", history[0].valid_from),
            format!("1|2|{moved_at}|{verified_at}"),
            format!("2|1|{}|{}", deletion[0].valid_from, deletion[1].valid_from),
        ]
    );
    let versions = db
        .pairs("SELECT 'versions', COUNT(*) FROM annotation_versions")
        .await;
    assert_eq!(
        versions,
        [("versions".to_string(), 6)],
        "3 of 1, 2 of 2, 1 of 3"
    );
}

/// Every row of the three tables, as text, in a stable order.
async fn dump(db: &TestDb) -> Vec<(String, i64)> {
    let mut rows = db
        .pairs(
            "SELECT id || '|' || image || '|' || annotation_type || '|' || COALESCE(vector, '-') || '|' || description \
             || '|' || COALESCE(meta_data, '-') || '|' || deleted || '|' || user_id || '|' || COALESCE(last_editor, -1) \
             || '|' || time || '|' || last_edit_time || '|' || COALESCE(min_x, -1) || '|' || version || '|' || position \
             || '|' || COALESCE(cell, -1) || '|' || event_type || '|' || COALESCE(reason, '-'), id \
             FROM annotations ORDER BY id",
        )
        .await;
    rows.extend(
        db.pairs(
            "SELECT image || '|' || annotation_type || '|' || col || '|' || row_index || '|' || count, count \
             FROM annotation_density WHERE count <> 0 ORDER BY image, annotation_type, col, row_index",
        )
        .await,
    );
    rows.extend(
        db.pairs(
            "SELECT image || '|' || annotation_type || '|' || total || '|' || accepted || '|' || rejected || '|' \
             || unverified, total FROM annotation_statistics ORDER BY image, annotation_type",
        )
        .await,
    );
    rows.extend(db.pairs("SELECT annotation || '|' || user_id || '|' || verified || '|' || time, annotation FROM verifications ORDER BY annotation, user_id").await);
    rows.extend(
        db.pairs(
            "SELECT id || '|' || version || '|' || valid_from || '|' || COALESCE(valid_to, -1) || '|' || event_type \
             || '|' || COALESCE(vector, '-') || '|' || deleted || '|' || recorded_at || '|' || COALESCE(cell, -1), id \
             FROM annotation_history \
             ORDER BY id, version",
        )
        .await,
    );
    rows
}

async fn a_rebuilt_read_model_equals_the_incrementally_built_one(db: TestDb) {
    let (store, _read) = open(&db).await;
    // Bulk appends of up to 1,200 creations: more than one chunk of rows.
    Workload::with_bulk(1_200).run(&store, 300).await;
    let incremental = dump(&db).await;
    assert!(
        incremental.len() > 250,
        "the workload wrote a real read model: {} rows",
        incremental.len()
    );
    let indexes = index_definitions(&db).await;
    let applied = store
        .rebuild(exact_projections::annotations::NAME, Arc::new(|_, _| {}))
        .await
        .unwrap();
    assert_eq!(applied as i64, store.last_position().await.unwrap());
    assert_eq!(
        dump(&db).await,
        incremental,
        "rebuilt equals incrementally built, row for row"
    );
    // A rebuild drops the tables' indexes and builds them after the rows: they must be back,
    // as they were.
    assert_eq!(index_definitions(&db).await, indexes);
}

/// An append of more events than a page of the read models (5,000) gives them its events page by
/// page and writes the overview's counts and the statistics once, summed over the pages; a
/// rebuild, which reads the log in pages too, makes the same rows.
async fn a_large_append_counts_every_page_once(db: TestDb) {
    let (store, _read) = open(&db).await;
    let creations = (0..12_345_i64)
        .map(|n| {
            let (x, y) = ((n % 90) as f64 * 100.0, (n / 90) as f64 * 50.0);
            (
                n + 1,
                create_sized(n + 1, 11, x, y, 40.0, 30.0),
                context(11),
            )
        })
        .collect();
    create_all(&store, creations).await;
    let statistics = db
        .pairs("SELECT CAST(total AS TEXT), unverified FROM annotation_statistics")
        .await;
    assert_eq!(statistics, [("12345".into(), 12_345)]);
    let density = db
        .pairs("SELECT 'cells', CAST(SUM(count) AS BIGINT) FROM annotation_density")
        .await;
    assert_eq!(density, [("cells".into(), 12_345)]);
    let incremental = dump(&db).await;
    let cells = assert_every_cell_indexed(&db).await;
    if db.backend() == exact_store::Backend::Sqlite {
        assert!(
            cells.0.len() > 500,
            "the append used cells: {}",
            cells.0.len()
        );
    }
    store
        .rebuild(exact_projections::annotations::NAME, Arc::new(|_, _| {}))
        .await
        .unwrap();
    assert_eq!(dump(&db).await, incremental);
    assert_eq!(assert_every_cell_indexed(&db).await, cells);
}

/// On SQLite, that every cell a current or past version names is a row of `annotation_cells`
/// and an entry of its R*Tree, and no other; the cells (nothing on PostgreSQL).
async fn assert_every_cell_indexed(db: &TestDb) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
    if db.backend() != exact_store::Backend::Sqlite {
        return Default::default();
    }
    let (cells, tree) = spatial_cells(db).await;
    let used: BTreeSet<i64> = db
        .pairs(
            "SELECT 'cell', cell FROM annotations WHERE cell IS NOT NULL \
             UNION SELECT 'cell', cell FROM annotation_history WHERE cell IS NOT NULL",
        )
        .await
        .into_iter()
        .map(|(_, cell)| cell)
        .collect();
    let ids = |rows: &[(String, i64)]| rows.iter().map(|r| r.1).collect::<BTreeSet<i64>>();
    assert_eq!(
        ids(&cells),
        used,
        "the cells table holds the cells the rows use"
    );
    assert_eq!(ids(&tree), used, "the R*Tree holds the cells the rows use");
    (cells, tree)
}

/// Creations are inserted, not upserted: a creation whose id the read model holds already (a
/// log that strayed) fails its append and leaves the row it would have written over.
async fn a_creation_of_an_id_the_read_model_holds_is_refused_not_written_over(db: TestDb) {
    let (store, _read) = open(&db).await;
    run(&store, 1, create(1, 11, 100.0, 100.0), &context(11), None).await;
    let before = dump(&db).await;
    let head = store.last_position().await.unwrap();

    let AnnotationCommand::Create(mut again) = create(1, 11, 5_000.0, 5_000.0) else {
        unreachable!()
    };
    again.unique_identifier = uuid::Uuid::from_u128(999);
    let events = decide(None, &AnnotationCommand::Create(again), &context(11)).unwrap();
    let refused = store
        .append(
            "annotation-strayed",
            Expected::NoStream,
            new_events(&events),
            AppendContext::new(Source::Api, Some(ALICE)),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(dump(&db).await, before);
    assert_eq!(store.last_position().await.unwrap(), head);
}

/// Changes applied together (an append of many changes, a rebuild) write the same rows as
/// the same events appended one at a time: moves, verdicts of several users, signatures and the
/// change that ends one, withdrawals, deletions and restorations, a change of type and back
/// (its statistics' row nets nothing), and two changes of one annotation in one append.
async fn changes_in_one_append_write_what_they_write_one_by_one(db: TestDb) {
    use exact_domain::annotation::Meaning;
    let (together, _) = open(&db).await;
    let second = TestDb::new(db.backend()).await;
    let (one_by_one, _) = open(&second).await;
    let creations = || {
        (1..=40_i64)
            .map(|id| {
                let (x, y) = ((id % 8) as f64 * 1_000.0, (id / 8) as f64 * 1_000.0);
                (id, create_sized(id, 11, x, y, 50.0, 40.0), context(11))
            })
            .collect::<Vec<_>>()
    };
    create_all(&together, creations()).await;
    create_all(&one_by_one, creations()).await;

    // Each annotation's commands, decided in turn on its state: (actor, clinical, command).
    let mut states: BTreeMap<i64, Annotation> = BTreeMap::new();
    let stream_events = |store: &Store, id: i64| {
        let store = store.clone();
        async move {
            let stored = store.read_stream(&annotation::stream(id), 1).await.unwrap();
            stored.iter().fold(None, |state, e| {
                let event = AnnotationEvent::from_parts(&e.event_type, e.payload_value().unwrap())
                    .unwrap()
                    .unwrap();
                evolve(state, &event)
            })
        }
    };
    for id in 1..=40 {
        states.insert(id, stream_events(&together, id).await.unwrap());
    }
    let plan = |id: i64, round: u32| -> Vec<(i64, bool, AnnotationCommand)> {
        let user = 1 + (id + i64::from(round)) % 3;
        match (id % 7, round) {
            (0, 0) => vec![(user, false, moved(id as f64 * 10.0, 5.0))],
            (1, 0) => vec![(user, false, AnnotationCommand::Verify { verified: true })],
            (2, 0) => vec![(
                user,
                true,
                AnnotationCommand::Sign {
                    meaning: Meaning::Approved,
                    signer: format!("user {user}"),
                },
            )],
            (3, 0) => vec![(user, false, AnnotationCommand::Delete)],
            (4, 0) => vec![(
                user,
                false,
                AnnotationCommand::Change(AnnotationChanges {
                    annotation_type: Some(BOX + 1),
                    ..AnnotationChanges::default()
                }),
            )],
            (5, 0) => vec![
                (2, false, AnnotationCommand::Verify { verified: false }),
                (3, false, AnnotationCommand::Verify { verified: true }),
            ],
            (_, 0) => vec![(user, false, moved(9_000.0, id as f64 * 100.0))],
            (2, 1) => vec![(user, true, moved(100.0, 100.0))],
            (3, 1) => vec![(user, false, AnnotationCommand::Restore)],
            (4, 1) => vec![(
                user,
                false,
                AnnotationCommand::Change(AnnotationChanges {
                    annotation_type: Some(BOX),
                    ..AnnotationChanges::default()
                }),
            )],
            (5, 1) => vec![(2, false, AnnotationCommand::WithdrawVerdict)],
            (1, 1) => vec![
                (user, false, moved(7_000.0, 7_000.0)),
                (user, false, moved(7_100.0, 7_000.0)),
            ],
            _ => vec![(
                user,
                false,
                AnnotationCommand::Verify {
                    verified: id % 2 == 0,
                },
            )],
        }
    };
    for round in 0..2 {
        // Every annotation's events of this round: one append for all on one store, one append
        // per event on the other, in the same order.
        let mut appends = Vec::new();
        let mut singles = Vec::new();
        for id in 1..=40 {
            let mut events = Vec::new();
            for (actor, clinical, command) in plan(id, round) {
                let mut ctx = context(11);
                ctx.actor = actor;
                ctx.clinical = clinical;
                ctx.reason_given = clinical;
                if let AnnotationCommand::Change(AnnotationChanges {
                    annotation_type: Some(kind),
                    ..
                }) = &command
                {
                    ctx.annotation_type.id = *kind;
                }
                let state = states.remove(&id);
                let decided = decide(state.as_ref(), &command, &ctx).unwrap();
                let state = decided.iter().fold(state, evolve);
                states.insert(id, state.unwrap());
                events.extend(decided.iter().map(|e| {
                    let (name, payload) = e.to_parts();
                    singles.push((id, NewEvent::new(name.clone(), payload.clone())));
                    NewEvent::new(name, payload)
                }));
            }
            appends.push(StreamAppend::new(
                annotation::stream(id),
                Expected::Any,
                events,
            ));
        }
        together
            .append_many(appends, AppendContext::new(Source::Api, Some(ALICE)))
            .await
            .unwrap();
        for (id, event) in singles {
            one_by_one
                .append_many(
                    vec![StreamAppend::new(
                        annotation::stream(id),
                        Expected::Any,
                        vec![event],
                    )],
                    AppendContext::new(Source::Api, Some(ALICE)),
                )
                .await
                .unwrap();
        }
    }
    let signatures = "SELECT annotation || '|' || user_id || '|' || COALESCE(signer, '-') || '|' \
                      || COALESCE(signed_version, -1) || '|' || COALESCE(unsigned_at, -1), annotation \
                      FROM verifications ORDER BY annotation, user_id";
    let rows = dump(&db).await;
    assert_eq!(rows, dump(&second).await);
    assert_eq!(db.pairs(signatures).await, second.pairs(signatures).await);
    // The moves' new cells, added once at the end of each append, as one by one.
    assert_eq!(
        assert_every_cell_indexed(&db).await,
        assert_every_cell_indexed(&second).await
    );
    assert!(
        db.pairs(signatures)
            .await
            .iter()
            .any(|(row, _)| row.contains("|user ") && !row.ends_with("|-1")),
        "a signature was ended by the change after it"
    );
}

/// SQLite's cells of the spatial index: every row of `annotation_cells` and the cells the
/// R*Tree holds, with their boxes as the tree stores them.
async fn spatial_cells(db: &TestDb) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
    let cells = db
        .pairs(
            "SELECT image || '|' || min_x || '|' || min_y || '|' || max_x || '|' || max_y, cell \
             FROM annotation_cells ORDER BY cell",
        )
        .await;
    let tree = db
        .pairs(
            "SELECT min_x || '|' || min_y || '|' || max_x || '|' || max_y || '|' || min_image, cell \
             FROM annotation_cells_rtree ORDER BY cell",
        )
        .await;
    (cells, tree)
}

/// A rebuild keeps the spatial index's cells when its R*Tree agrees with them, drops the cells
/// no version uses, and makes the tree again when it does not agree (SQLite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_keeps_or_mends_the_cells_of_the_spatial_index() {
    let db = TestDb::new(exact_store::Backend::Sqlite).await;
    let (store, read) = open(&db).await;
    Workload::with_bulk(200).run(&store, 150).await;
    let rows = dump(&db).await;
    let (cells, tree) = spatial_cells(&db).await;
    assert!(cells.len() > 20, "the workload used cells: {}", cells.len());
    assert_eq!(
        cells.iter().map(|c| c.1).collect::<Vec<_>>(),
        tree.iter().map(|t| t.1).collect::<Vec<_>>()
    );
    let rebuild = || async {
        store
            .rebuild(exact_projections::annotations::NAME, Arc::new(|_, _| {}))
            .await
            .unwrap()
    };

    // A cell no version uses (of image 99, which has none), in the table and so in the tree.
    db.raw("INSERT INTO annotation_cells (cell, image, min_x, min_y, max_x, max_y) VALUES (425201762305, 99, -128, -128, 384, 384)")
        .await
        .unwrap();
    assert_eq!(spatial_cells(&db).await.1.len(), tree.len() + 1);
    rebuild().await;
    assert_eq!(
        spatial_cells(&db).await,
        (cells.clone(), tree.clone()),
        "the unused cell is gone"
    );
    assert_eq!(dump(&db).await, rows);

    // The tree loses the cell of the first annotation and gains one of no row.
    let first: Vec<(String, i64)> = db
        .pairs("SELECT 'cell', cell FROM annotations WHERE cell IS NOT NULL ORDER BY id LIMIT 1")
        .await;
    let lost = first[0].1;
    db.raw(&format!(
        "DELETE FROM annotation_cells_rtree WHERE cell = {lost}"
    ))
    .await
    .unwrap();
    db.raw("INSERT INTO annotation_cells_rtree VALUES (425201762305, 0, 10, 0, 10, 98.5, 99.5)")
        .await
        .unwrap();
    // Its annotations, and a window over the whole slide that should find them.
    let hidden = db
        .pairs(&format!(
            "SELECT 'image', image FROM annotations WHERE cell = {lost}"
        ))
        .await;
    let query = exact_projections::annotation_query::AnnotationQuery {
        image: Some(hidden[0].1),
        rect: Some(rect(-1.0e6, -1.0e6, 1.0e6, 1.0e6)),
        ..Default::default()
    };
    let ids = db
        .pairs(&format!(
            "SELECT 'id', id FROM annotations WHERE cell = {lost}"
        ))
        .await;
    let found = || async {
        let rows = read.annotations(&query).await.unwrap();
        ids.iter()
            .filter(|(_, id)| rows.iter().any(|r| r.id == *id))
            .count()
    };
    assert_eq!(found().await, 0, "the damaged tree hides them");
    rebuild().await;
    assert_eq!(
        spatial_cells(&db).await,
        (cells, tree),
        "the tree is made again"
    );
    assert_eq!(found().await, ids.len(), "the mended tree finds them");
    assert_eq!(dump(&db).await, rows);
}

/// The name and definition of every index of the two annotation tables.
async fn index_definitions(db: &TestDb) -> Vec<(String, i64)> {
    let sql = match db.backend() {
        exact_store::Backend::Sqlite => {
            "SELECT name || ': ' || COALESCE(sql, 'automatic'), 1 FROM sqlite_master \
             WHERE type = 'index' AND tbl_name IN ('annotations', 'annotation_history') ORDER BY name"
        }
        exact_store::Backend::Postgres => {
            "SELECT indexname || ': ' || indexdef, CAST(1 AS BIGINT) FROM pg_indexes \
             WHERE tablename IN ('annotations', 'annotation_history') ORDER BY indexname"
        }
    };
    let indexes = db.pairs(sql).await;
    assert!(
        indexes
            .iter()
            .any(|(i, _)| i.starts_with("annotations_by_image")),
        "{indexes:?}"
    );
    indexes
}

/// xorshift64: deterministic dice for the workloads.
struct Dice(u64);

impl Dice {
    /// A number below `n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A deterministic random workload on two images: creates, moves, deletes, restores and
/// verdicts. Each `run` goes on where the last ended.
struct Workload {
    dice: Dice,
    created: i64,
    /// The most creations one append may hold (a client's bulk POST).
    bulk: u64,
}

impl Workload {
    fn new() -> Self {
        Self {
            dice: Dice(0x9E37_79B9_7F4A_7C15),
            created: 0,
            bulk: 80,
        }
    }

    /// A workload whose bulk appends may hold `bulk` creations.
    fn with_bulk(bulk: u64) -> Self {
        Self {
            bulk,
            ..Self::new()
        }
    }

    async fn run(&mut self, store: &Store, operations: usize) {
        let Workload {
            dice,
            created,
            bulk,
        } = self;
        let mut next = |n: u64| dice.below(n);
        for _ in 0..operations {
            let choice = next(6);
            if *created == 0 || choice == 0 {
                // Now and then a client's bulk POST, of enough creations for the append to
                // decode them beside the writer.
                let count = if next(4) == 0 {
                    64 + next(*bulk - 63)
                } else {
                    1
                };
                let mut creations = Vec::new();
                for _ in 0..count {
                    *created += 1;
                    let image = 11 + next(2) as i64;
                    // Mostly cell-sized boxes; every eighth a region of up to 8,000 px.
                    let (w, h) = if next(8) == 0 {
                        (1.0 + next(8000) as f64, 1.0 + next(8000) as f64)
                    } else {
                        (1.0 + next(300) as f64, 1.0 + next(300) as f64)
                    };
                    let (x, y) = (next(10_000) as f64, next(8_000) as f64);
                    let command = create_sized(
                        *created,
                        image,
                        x.min(10_000.0 - w),
                        y.min(8_000.0 - h),
                        w,
                        h,
                    );
                    creations.push((*created, command, context(image)));
                }
                create_all(store, creations).await;
                continue;
            }
            let id = 1 + next(*created as u64) as i64;
            let image = {
                let rows = store.read_stream(&annotation::stream(id), 1).await.unwrap();
                rows[0].payload_value().unwrap()["image"].as_i64().unwrap()
            };
            let mut ctx = context(image);
            ctx.actor = 1 + next(3) as i64;
            let stream = store.read_stream(&annotation::stream(id), 1).await.unwrap();
            let state = stream.iter().fold(None, |s, e| {
                evolve(
                    s,
                    &AnnotationEvent::from_parts(&e.event_type, e.payload_value().unwrap())
                        .unwrap()
                        .unwrap(),
                )
            });
            let command = match choice {
                1 | 2 => moved(next(9000) as f64, next(7000) as f64),
                3 => AnnotationCommand::Delete,
                4 => AnnotationCommand::Restore,
                _ => AnnotationCommand::Verify {
                    verified: next(2) == 0,
                },
            };
            // Commands the rules refuse (changing a deleted annotation) are skipped, as a client's
            // refused request would be.
            if decide(state.as_ref(), &command, &ctx).is_ok() {
                run(store, id, command, &ctx, None).await;
            }
        }
    }
}

/// Every annotation as the log stood at `position`, folded from its events: the truth the read
/// model's answers are held against.
async fn states_as_of(store: &Store, position: i64) -> BTreeMap<i64, Annotation> {
    use futures_util::TryStreamExt;
    let events: Vec<_> = store.read_all(1).try_collect().await.unwrap();
    let mut states = BTreeMap::new();
    for e in events.iter().filter(|e| e.position <= position) {
        let Some(event) = AnnotationEvent::from_parts(&e.event_type, e.payload_value().unwrap())
        else {
            continue;
        };
        let event = event.unwrap();
        let id = event.annotation_id();
        if let Some(state) = evolve(states.remove(&id), &event) {
            states.insert(id, state);
        }
    }
    states
}

/// The spatial index and the plain filters against a brute-force test of every box of the
/// states folded from the log, now and as of a past position, over windows of every size:
/// nothing missed, nothing extra, each as it was.
async fn viewports_find_exactly_the_boxes_they_meet_now_and_as_of(db: TestDb) {
    use exact_domain::vector::Vector;
    use exact_projections::annotation_query::AnnotationQuery;
    let (store, read) = open(&db).await;
    let mut workload = Workload::new();
    workload.run(&store, 200).await;
    let middle = store.last_position().await.unwrap();
    workload.run(&store, 200).await;
    let now = store.last_position().await.unwrap();
    let truth = [
        (None, states_as_of(&store, now).await),
        (Some(middle), states_as_of(&store, middle).await),
    ];
    let meets = |vector: &Value, r: &Rect| {
        Vector::from_json(vector).unwrap().is_some_and(|v| {
            let b = v.bounds();
            b.min_x <= r.max_x && b.max_x >= r.min_x && b.min_y <= r.max_y && b.max_y >= r.min_y
        })
    };
    let mut dice = Dice(0x2545_F491_4F6C_DD1D);
    let mut next = |n: u64| dice.below(n);
    // Random windows of every size, and a pixel at the far corner of each live box: the part
    // of an annotation farthest from the centre its cell is chosen by.
    let mut windows = Vec::new();
    for _ in 0..60 {
        let (x, y) = (next(10_000) as f64, next(8_000) as f64);
        let half = [5.0, 150.0, 1_000.0, 6_000.0][next(4) as usize];
        windows.push((
            11 + next(2) as i64,
            rect(x - half, y - half, x + half, y + half),
        ));
    }
    for image in [11, 12] {
        let live = AnnotationQuery {
            image: Some(image),
            deleted: Some(false),
            ..AnnotationQuery::default()
        };
        for a in read.annotations(&live).await.unwrap() {
            let value: Value = serde_json::from_str(a.vector.as_deref().unwrap()).unwrap();
            let b = Vector::from_json(&value).unwrap().unwrap().bounds();
            windows.push((image, rect(b.max_x - 0.5, b.max_y - 0.5, b.max_x, b.max_y)));
        }
    }
    // Each annotation as it was: (id, vector, description, deleted).
    type Seen = (i64, Value, String, bool);
    let state_seen =
        |a: &Annotation| -> Seen { (a.id, a.vector.clone(), a.description.clone(), a.deleted) };
    let seen = |rows: Vec<exact_projections::annotations::AnnotationRow>| -> Vec<Seen> {
        rows.into_iter()
            .map(|a| {
                let vector = serde_json::from_str(a.vector.as_deref().unwrap_or("null")).unwrap();
                (a.id, vector, a.description, a.deleted)
            })
            .collect()
    };
    let mut found = 0;
    for (as_of, states) in &truth {
        // Without a window: every annotation of each image, deleted ones too.
        for image in [11, 12] {
            let expected: Vec<Seen> = states
                .values()
                .filter(|a| a.image == image)
                .map(state_seen)
                .collect();
            let all = AnnotationQuery {
                image: Some(image),
                as_of: *as_of,
                ..AnnotationQuery::default()
            };
            assert_eq!(seen(read.annotations(&all).await.unwrap()), expected);
            assert_eq!(
                read.count_annotations(&all).await.unwrap(),
                expected.len() as i64
            );
        }
        for (image, window) in &windows {
            let expected: Vec<Seen> = states
                .values()
                .filter(|a| a.image == *image && !a.deleted && meets(&a.vector, window))
                .map(state_seen)
                .collect();
            let windowed = AnnotationQuery {
                image: Some(*image),
                deleted: Some(false),
                rect: Some(*window),
                as_of: *as_of,
                ..AnnotationQuery::default()
            };
            let answered = seen(read.annotations(&windowed).await.unwrap());
            assert_eq!(
                answered, expected,
                "window {window:?} of image {image}, as of {as_of:?}"
            );
            found += answered.len();
        }
    }
    assert!(found > 100, "the windows met annotations: {found}");
    let changed_since_middle = truth[0]
        .1
        .iter()
        .filter(|(id, a)| {
            truth[1]
                .1
                .get(id)
                .is_some_and(|then| then.vector != a.vector)
        })
        .count();
    assert!(
        changed_since_middle > 10,
        "the workload moved annotations after the middle: {changed_since_middle}"
    );
}

/// SQLite's migration 0024 moves the overview's counts into a table ordered by their key: a
/// database migrated up to 0023 with counts in it keeps every count.
#[tokio::test]
async fn the_overview_counts_survive_their_move_into_one_btree() {
    use sqlx::Connection as _;

    let db = TestDb::sqlite();
    // The migrations as they were before 0024, from a folder of their own (sqlx records each
    // one's checksum, which the store checks against its own files when it opens).
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
    let before = db.sqlite_path().with_file_name("migrations-before-0024");
    std::fs::create_dir(&before).unwrap();
    for entry in std::fs::read_dir(&all).unwrap() {
        let name = entry.unwrap().file_name();
        if name.to_string_lossy().as_ref() < "0024" {
            std::fs::copy(all.join(&name), before.join(&name)).unwrap();
        }
    }
    let mut conn = sqlx::SqliteConnection::connect(&format!("{}?mode=rwc", db.url_string()))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(before.as_path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO annotation_density (image, annotation_type, col, row_index, count) \
         VALUES (11, 3, 0, 0, 5), (11, 3, 7, 2, 1), (12, 4, 0, 0, 9)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    drop(db.open_with(false).await);
    let counts = db
        .pairs(
            "SELECT image || '|' || annotation_type || '|' || col || '|' || row_index, count \
             FROM annotation_density ORDER BY image, annotation_type, col, row_index",
        )
        .await;
    assert_eq!(
        counts,
        [
            ("11|3|0|0".into(), 5),
            ("11|3|7|2".into(), 1),
            ("12|4|0|0".into(), 9)
        ]
    );
    let definition = db
        .pairs("SELECT sql, 0 FROM sqlite_master WHERE name = 'annotation_density'")
        .await;
    assert!(definition[0].0.contains("WITHOUT ROWID"), "{definition:?}");
}
