//! One image with many annotations, through the command path: bulk creation in batches (rules,
//! ids, the log and every read model inline), viewport queries now and as of a past position,
//! the whole-image overview, a rebuild of every read model, the auditor's checks, exports of the
//! set, the import of its COCO file against bulk creation (the command path's and the REST
//! API's), and exports as of moments of a history with many changes. Printed as a Markdown
//! table.
//!
//! `cargo bench -p exact-api --bench annotations`; `EXACT_BENCH_ANNOTATIONS` sets the count
//! (default 1,000,000); `EXACT_TEST_DATABASE_URL` adds the PostgreSQL rows
//! (`EXACT_BENCH_ONLY=postgres`: those alone; `EXACT_BENCH_ONLY=import`: creation and the
//! import alone; `changes`: creation and the history of changes alone; `create`: creation and
//! its peer alone; `rebuild`: creation, then three rebuilds, each after the peer's refill;
//! combined: `postgres,import`).
//! Annotations are clustered like cells on tissue: boxes, points and polygons around random
//! centres on a 100,000 x 80,000 px slide.
//!
//! The peer, on SQLite: the database alone writing the same rows (`support/sqlite_peer.rs`);
//! the ratio rows compare our rates with its rates from the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use exact_api::commands::{AnnotationInput, Caller, Commands, NewAnnotations, NewUser};
use exact_domain::annotation_type::TypeSettings;
use exact_domain::image::ImageFile;
use exact_domain::image_set::SetSettings;
use exact_domain::product::ProductCommand;
use exact_domain::Actor;
use exact_projections::annotation_query::AnnotationQuery;
use exact_projections::timeline::{TimelineFilter, TimelineScope};
use exact_projections::{ReadDb, Rect};
use exact_store::testing::TestDb;
use exact_store::{Backend, Source, StoreUrl};
use serde_json::json;

// The allocator the `exact` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/sqlite_peer.rs"]
mod sqlite_peer;

const WIDTH: f64 = 100_000.0;
const HEIGHT: f64 = 80_000.0;
const BATCH: i64 = 5_000;
/// Batches of creation the peer copies at a time, right after ours (`sqlite_peer`).
const PEER_BLOCK: usize = 10;

/// xorshift64: deterministic, and no dependency for a benchmark's dice.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, from the sum of four uniforms.
    fn spread(&mut self, sigma: f64) -> f64 {
        ((0..4).map(|_| self.unit()).sum::<f64>() - 2.0) * sigma
    }
}

/// A cell near one of the tissue `centres`: a box, a point or a polygon, of `types` in that
/// order.
fn annotation(dice: &mut Dice, centres: &[(f64, f64)], types: [i64; 3]) -> AnnotationInput {
    let (x, y) = near(dice, centres);
    let kind = (dice.next() % 3) as usize;
    AnnotationInput::new(types[kind], shape(kind, x, y))
}

/// A place near one of the tissue `centres`.
fn near(dice: &mut Dice, centres: &[(f64, f64)]) -> (f64, f64) {
    let (cx, cy) = centres[(dice.next() % centres.len() as u64) as usize];
    let x = (cx + dice.spread(1_500.0)).clamp(0.0, WIDTH - 60.0);
    let y = (cy + dice.spread(1_500.0)).clamp(0.0, HEIGHT - 60.0);
    (x, y)
}

/// The vector of a box (kind 0), a point (1) or a polygon (2) at (`x`, `y`).
fn shape(kind: usize, x: f64, y: f64) -> serde_json::Value {
    match kind {
        0 => json!({"x1": x, "y1": y, "x2": x + 40.0, "y2": y + 36.0}),
        1 => json!({"x1": x, "y1": y, "x2": x + 25.0, "y2": y + 25.0}),
        _ => {
            json!({"x1": x, "y1": y, "x2": x + 30.0, "y2": y + 5.0, "x3": x + 22.0, "y3": y + 33.0, "x4": x + 3.0, "y4": y + 28.0})
        }
    }
}

/// A pathologist's team with a set, one slide of `WIDTH` x `HEIGHT` and three types (box,
/// point, polygon); returns the caller, the image and the types.
async fn lab(commands: &Commands) -> (Caller, i64, [i64; 3]) {
    lab_with_password(
        commands,
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    )
    .await
}

/// The same lab, with alice's password hash given (for the REST API's Basic auth).
async fn lab_with_password(commands: &Commands, password_hash: String) -> (Caller, i64, [i64; 3]) {
    let alice = commands
        .create_user(
            &Caller::system(),
            NewUser {
                username: "alice".into(),
                email: String::new(),
                password_hash,
                is_superuser: false,
                is_staff: false,
            },
        )
        .await
        .unwrap();
    let alice = Caller::new(Actor::user(alice.id), Source::Import);
    let team = commands
        .create_team(&alice, "Pathology".into(), String::new())
        .await
        .unwrap()
        .id;
    let set = SetSettings {
        name: "Slides".into(),
        ..SetSettings::default()
    };
    let set = commands
        .create_image_set(&alice, team, set)
        .await
        .unwrap()
        .id;
    let product = commands
        .create_product(&alice, team, "Cells".into(), String::new())
        .await
        .unwrap()
        .id;
    commands
        .product_command(
            &alice,
            product,
            None,
            &ProductCommand::Link { image_set: set },
        )
        .await
        .unwrap();
    let mut types = [0; 3];
    for (slot, (name, vector_type)) in
        types
            .iter_mut()
            .zip([("Cell", 1), ("Nucleus", 2), ("Outline", 5)])
    {
        let settings = TypeSettings {
            name: name.into(),
            ..TypeSettings::default()
        };
        *slot = commands
            .create_annotation_type(&alice, product, vector_type, settings)
            .await
            .unwrap()
            .id;
    }
    let file = ImageFile {
        name: "slide.svs".into(),
        filename: "slide.svs".into(),
        checksum: "0".repeat(64),
        width: WIDTH as i64,
        height: HEIGHT as i64,
        mpp: Some(0.25),
        objective_power: Some(40.0),
        depth: 1,
        frames: 1,
        channels: 3,
        image_type: 0,
    };
    let image = commands.add_image(&alice, set, file).await.unwrap().id;
    (alice, image, types)
}

/// `EXACT_BENCH_ONLY`: what to run of the bench (`postgres`, `import`, `changes`, `create`), empty
/// for all of it.
fn only() -> String {
    std::env::var("EXACT_BENCH_ONLY").unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn bench(backend: Backend, count: i64) {
    let db = TestDb::new(backend).await;
    let store = db.open_with_projections(exact_projections::all()).await;
    let read = ReadDb::connect(&db.url).await.unwrap();
    let commands = Commands::new(store.clone(), read.clone());
    let (alice, image, types) = lab(&commands).await;
    let mut dice = Dice(0x2545_F491_4F6C_DD1D);
    let centres: Vec<(f64, f64)> = (0..400)
        .map(|_| (dice.unit() * WIDTH, dice.unit() * HEIGHT))
        .collect();

    // SQLite's peer copies the same rows block by block, each block right after ours (see
    // `sqlite_peer`), for the ratio.
    let mut peer = match &db.url {
        StoreUrl::Sqlite(path) => Some(sqlite_peer::Peer::new(path).await),
        _ => None,
    };
    let batches = count / BATCH;
    let mut created = Duration::ZERO;
    let mut middle = 0;
    // Each annotation made: its id and kind (box, point, polygon), for the changes at the end.
    let mut made: Vec<(i64, usize)> = Vec::with_capacity(count as usize);
    for block in (0..batches).collect::<Vec<_>>().chunks(PEER_BLOCK) {
        let mut copied = Vec::with_capacity(block.len());
        // The block's requests are made before its clock starts (the same dice, in the same
        // order): rolling them and building their shapes' JSON is the client's work, not the
        // command path's, and took about 1 % of the time timed.
        let requests: Vec<(Vec<AnnotationInput>, Vec<usize>)> = block
            .iter()
            .map(|_| {
                let annotations: Vec<AnnotationInput> = (0..BATCH)
                    .map(|_| annotation(&mut dice, &centres, types))
                    .collect();
                let kinds = annotations
                    .iter()
                    .map(|a| types.iter().position(|t| *t == a.annotation_type).unwrap())
                    .collect();
                (annotations, kinds)
            })
            .collect();
        sqlite_peer::settle();
        let start = Instant::now();
        for (&batch, (annotations, kinds)) in block.iter().zip(requests) {
            let written = commands
                .create_annotations(&alice, NewAnnotations { image, annotations })
                .await
                .unwrap();
            made.extend(written.iter().map(|w| w.id).zip(kinds));
            let (first, last) = (&written[0], written.last().unwrap());
            if batch == batches / 2 {
                middle = last.position.unwrap();
            }
            copied.push(sqlite_peer::Batch {
                ids: [first.id, last.id],
                positions: [first.position.unwrap(), last.position.unwrap()],
            });
        }
        // The writer's checkpoint after the block's last commit is the block's work too.
        store.catch_up().await.unwrap();
        created += start.elapsed();
        if let Some(peer) = &mut peer {
            peer.copy(&copied);
        }
    }
    let create_rate = count as f64 / created.as_secs_f64();
    println!(
        "| {} | create {count} annotations in batches of {BATCH} | {:.2} s | {create_rate:.0} /s |",
        backend.name(),
        created.as_secs_f64(),
    );
    if let Some(peer) = &peer {
        let rate = peer.created as f64 / peer.create.as_secs_f64();
        println!(
            "| sqlite | peer: SQLite alone writes the same events, annotation rows and cells in the same batches, each {PEER_BLOCK} right after ours | {:.2} s | {rate:.0} /s |",
            peer.create.as_secs_f64()
        );
        println!(
            "| sqlite | ratio to the peer: create | | {:.2} |",
            create_rate / rate
        );
    }

    if only().contains("create") {
        // Creation against its peer alone (`EXACT_BENCH_ONLY=create`), for A/B runs.
        return;
    }
    if only().contains("rebuild") {
        // The rebuild against its peer's refill alone (`EXACT_BENCH_ONLY=rebuild`), three
        // times, for A/B runs.
        for _ in 0..3 {
            rebuild_against_peer(backend, store.as_ref(), peer.as_ref()).await;
        }
        return;
    }
    if only().contains("changes") {
        // The history of many changes alone (`EXACT_BENCH_ONLY=changes`).
        let set = read.image(image).await.unwrap().unwrap().image_set;
        changed_history(
            backend,
            &commands,
            store.as_ref(),
            &read,
            set,
            &made,
            alice.actor.id,
            &centres,
        )
        .await;
        return;
    }
    if only().contains("import") {
        // The import against creation alone (`EXACT_BENCH_ONLY=import`), to look at it closely.
        let set = read.image(image).await.unwrap().unwrap().image_set;
        import_coco(backend, store.as_ref(), &read, set, create_rate).await;
        return;
    }

    // Windows of 2,000 x 2,000 px at full resolution, centred on clusters (where the viewer is).
    let windows: Vec<Rect> = (0..200)
        .map(|i| {
            let (cx, cy) = centres[i % centres.len()];
            let (x, y) = (
                (cx - 1_000.0).clamp(0.0, WIDTH - 2_000.0),
                (cy - 1_000.0).clamp(0.0, HEIGHT - 2_000.0),
            );
            Rect {
                min_x: x,
                min_y: y,
                max_x: x + 2_000.0,
                max_y: y + 2_000.0,
            }
        })
        .collect();
    for (label, as_of) in [
        ("viewport 2000x2000, now", None),
        ("viewport 2000x2000, as of the middle", Some(middle)),
    ] {
        let mut times = Vec::new();
        let mut rows = 0;
        for window in &windows {
            let t = Instant::now();
            let query = AnnotationQuery {
                image: Some(image),
                rect: Some(*window),
                deleted: Some(false),
                as_of,
                ..AnnotationQuery::default()
            };
            rows += read.annotations(&query).await.unwrap().len();
            times.push(t.elapsed());
        }
        times.sort_unstable();
        println!(
            "| {} | {label} ({} rows on average) | p50 {} ms | p95 {} ms |",
            backend.name(),
            rows / windows.len(),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95))
        );
    }

    // The audit timeline's newest page, and one from the middle of the history.
    let set = read.image(image).await.unwrap().unwrap().image_set;
    timeline_pages(
        backend,
        &read,
        &[
            ("image, newest", TimelineScope::Image(image), None),
            (
                "image, from the middle",
                TimelineScope::Image(image),
                Some(middle),
            ),
            ("set, newest", TimelineScope::ImageSet(set), None),
        ],
    )
    .await;

    exports(backend, &db, store.as_ref(), &read, set, middle).await;

    for multiple in [1, 16] {
        let mut times = Vec::new();
        let mut cells = 0;
        for _ in 0..50 {
            let t = Instant::now();
            cells = read.overview(image, None, multiple).await.unwrap().len();
            times.push(t.elapsed());
        }
        times.sort_unstable();
        let edge = 1024 * multiple;
        println!(
            "| {} | whole-image overview, counts per {edge} px cell ({cells} cells) | p50 {} ms | p95 {} ms |",
            backend.name(),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95))
        );
    }

    let peer_refill = rebuild_against_peer(backend, store.as_ref(), peer.as_ref()).await;
    timed_rebuild(backend, store.as_ref(), exact_projections::catalog::NAME).await;
    let verify_rate = audit(backend, &db, store.as_ref()).await;
    if let Some(peer_refill) = peer_refill {
        println!(
            "| sqlite | ratio to the peer: chain verify / the peer's refill | | {:.2} |",
            verify_rate / peer_refill
        );
    }
    let coco = import_coco(backend, store.as_ref(), &read, set, create_rate).await;
    changed_history(
        backend,
        &commands,
        store.as_ref(),
        &read,
        set,
        &made,
        alice.actor.id,
        &centres,
    )
    .await;
    drop((store, read, commands, db));
    rest_import(backend, coco, count).await;
}

/// Rebuilds read model `name` and prints how long it took; its rate in events/s.
async fn timed_rebuild(backend: Backend, store: &dyn exact_store::EventStore, name: &str) -> f64 {
    let start = Instant::now();
    let applied = store.rebuild(name, Arc::new(|_, _| {})).await.unwrap();
    let rebuilt = start.elapsed();
    let rate = applied as f64 / rebuilt.as_secs_f64();
    println!(
        "| {} | rebuild the {name} read model ({applied} events) | {:.2} s | {rate:.0} events/s |",
        backend.name(),
        rebuilt.as_secs_f64(),
    );
    rate
}

/// Rebuilds the annotations read model, right after SQLite's peer refills its table (when
/// there is a peer); prints both and their ratio. The peer's refill rate, if any.
async fn rebuild_against_peer(
    backend: Backend,
    store: &dyn exact_store::EventStore,
    peer: Option<&sqlite_peer::Peer>,
) -> Option<f64> {
    let peer_rate = peer.map(|peer| {
        let refill = peer.refill();
        let rate = peer.events as f64 / refill.as_secs_f64();
        println!(
            "| sqlite | peer: SQLite alone refills the annotations table and its indexes ({} events) | {:.2} s | {rate:.0} events/s |",
            peer.events,
            refill.as_secs_f64()
        );
        rate
    });
    sqlite_peer::settle();
    let rate = timed_rebuild(backend, store, exact_projections::annotations::NAME).await;
    if let Some(peer_rate) = peer_rate {
        println!(
            "| sqlite | ratio to the peer: rebuild | | {:.2} |",
            rate / peer_rate
        );
    }
    peer_rate
}

/// Issue 18's as-of export over a history of many changes: after the run's million, a quarter
/// of the annotations is moved and then a tenth deleted (350,000 changes for a million, written
/// in appends of 5,000 as the REST API's bulk calls would), and the set is exported as of
/// before the changes, between the moves and the deletions, and now. The changes are written
/// straight to the store (the events the commands would decide, without their checks): what is
/// measured is the export's reading of versions at a position when most of the log lies after
/// it or changed what it reads. Then users' timelines over that history.
#[allow(clippy::too_many_arguments)]
async fn changed_history(
    backend: Backend,
    commands: &Commands,
    store: &dyn exact_store::EventStore,
    read: &ReadDb,
    set: i64,
    made: &[(i64, usize)],
    made_by: i64,
    centres: &[(f64, f64)],
) {
    use exact_domain::annotation::{self, AnnotationChanged, AnnotationEvent};
    use exact_domain::DomainEvent;
    use exact_store::{AppendContext, Expected, NewEvent, StreamAppend};
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15);
    let before = store.last_position().await.unwrap();
    // The changes are bob's (every move) and carol's (every deletion), for users' timelines.
    let mut users = [0; 2];
    for (slot, username) in users.iter_mut().zip(["bob", "carol"]) {
        let user = NewUser {
            username: username.into(),
            email: String::new(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            is_superuser: false,
            is_staff: false,
        };
        *slot = commands
            .create_user(&Caller::system(), user)
            .await
            .unwrap()
            .id;
    }
    let [bob, carol] = users;
    let context = |user: i64| AppendContext::new(Source::Import, Some(user));
    let event = |e: AnnotationEvent| {
        let (name, payload) = e.to_parts();
        NewEvent::new(name, payload)
    };
    let start = Instant::now();
    let moves: Vec<StreamAppend> = made
        .iter()
        .step_by(4)
        .map(|&(id, kind)| {
            let (x, y) = near(&mut dice, centres);
            let moved = AnnotationEvent::AnnotationChanged(AnnotationChanged {
                id,
                vector: Some(shape(kind, x, y)),
                ..AnnotationChanged::default()
            });
            StreamAppend::new(annotation::stream(id), Expected::Any, vec![event(moved)])
        })
        .collect();
    let moved = moves.len();
    for chunk in moves.chunks(BATCH as usize) {
        store
            .append_many(chunk.to_vec(), context(bob))
            .await
            .unwrap();
    }
    let between = store.last_position().await.unwrap();
    let deletions: Vec<StreamAppend> = made
        .iter()
        .step_by(10)
        .map(|&(id, _)| {
            let deleted = AnnotationEvent::AnnotationDeleted { id };
            StreamAppend::new(annotation::stream(id), Expected::Any, vec![event(deleted)])
        })
        .collect();
    let deleted = deletions.len();
    for chunk in deletions.chunks(BATCH as usize) {
        store
            .append_many(chunk.to_vec(), context(carol))
            .await
            .unwrap();
    }
    let head = store.last_position().await.unwrap();
    let took = start.elapsed().as_secs_f64();
    println!(
        "| {} | then {moved} annotations moved and {deleted} deleted, in appends of {BATCH} | {took:.2} s | {:.0} changes/s |",
        backend.name(),
        (moved + deleted) as f64 / took
    );
    use exact_api::exports::{write_export, ExportKind, ExportRequest, ExportedBy};
    for (kind, name) in [
        (ExportKind::Coco, "COCO"),
        (ExportKind::Exact(None), "EXACT's default format"),
    ] {
        for (moment, position) in [
            ("as of before the changes", before),
            ("as of between the moves and the deletions", between),
            ("now, after the changes", head),
        ] {
            let request = ExportRequest {
                image_set: set,
                kind,
                position,
                exported_by: ExportedBy {
                    id: 0,
                    username: "bench".into(),
                },
                originals: Vec::new(),
            };
            let start = Instant::now();
            let manifest = write_export(store, read, request, tempfile::tempfile().unwrap())
                .await
                .unwrap();
            let took = start.elapsed().as_secs_f64();
            println!(
                "| {} | export {name}, {moment} ({} annotations) | {took:.2} s | {:.0} annotations/s |",
                backend.name(),
                manifest.annotations,
                manifest.annotations as f64 / took
            );
        }
    }

    // Users' timelines: alice's newest (her creations, behind every change since), bob's
    // newest and from the middle of his moves, carol's newest (the log's last events).
    timeline_pages(
        backend,
        read,
        &[
            ("user alice, newest", TimelineScope::User(made_by), None),
            ("user bob, newest", TimelineScope::User(bob), None),
            (
                "user bob, from the middle",
                TimelineScope::User(bob),
                Some((before + between) / 2),
            ),
            ("user carol, newest", TimelineScope::User(carol), None),
        ],
    )
    .await;
}

/// The audit timeline's page of 100 (issue 19) for each of `pages` (label, scope, before):
/// the versions, the versions before them and the events that made them, as `/audit/` reads
/// them, 20 times each.
async fn timeline_pages(
    backend: Backend,
    read: &ReadDb,
    pages: &[(&str, TimelineScope, Option<i64>)],
) {
    for &(label, scope, before) in pages {
        let mut times = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let filter = TimelineFilter::newest(scope, before, 101);
            let versions = read.timeline(&filter).await.unwrap();
            assert_eq!(versions.len(), 101, "{label}");
            let ids: Vec<i64> = versions.iter().map(|v| v.id).collect();
            let positions: Vec<i64> = versions.iter().map(|v| v.valid_from).collect();
            read.versions_of(&ids).await.unwrap();
            read.events_at(&positions).await.unwrap();
            times.push(t.elapsed());
        }
        times.sort_unstable();
        println!(
            "| {} | audit timeline page of 100 ({label}) | p50 {} ms | p95 {} ms |",
            backend.name(),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95))
        );
    }
}

/// Exports of the whole set (issue 18): COCO and EXACT's default format, now and as of the
/// middle of the history, each the full request (dataset read at the position, written, zipped
/// with its manifest); on SQLite, the peer: Python's json module writing the same COCO from the
/// same rows.
async fn exports(
    backend: Backend,
    db: &TestDb,
    store: &dyn exact_store::EventStore,
    read: &ReadDb,
    set: i64,
    middle: i64,
) {
    use exact_api::exports::{write_export, ExportKind, ExportRequest, ExportedBy};
    let head = store.last_position().await.unwrap();
    let mut coco_now = 0.0;
    for (kind, label, position) in [
        (ExportKind::Coco, "COCO, now", head),
        (ExportKind::Coco, "COCO, as of the middle", middle),
        (ExportKind::Exact(None), "EXACT's default format, now", head),
        (
            ExportKind::Exact(None),
            "EXACT's default format, as of the middle",
            middle,
        ),
    ] {
        let file = tempfile::tempfile().unwrap();
        let request = ExportRequest {
            image_set: set,
            kind,
            position,
            exported_by: ExportedBy {
                id: 0,
                username: "bench".into(),
            },
            originals: Vec::new(),
        };
        let start = Instant::now();
        let manifest = write_export(store, read, request, file.try_clone().unwrap())
            .await
            .unwrap();
        let took = start.elapsed().as_secs_f64();
        let rate = manifest.annotations as f64 / took;
        let megabytes = manifest.files[0].bytes as f64 / 1e6;
        println!(
            "| {} | export {label} ({} annotations, {megabytes:.0} MB, zipped with its manifest) | {took:.2} s | {rate:.0} annotations/s |",
            backend.name(),
            manifest.annotations,
        );
        if label == "COCO, now" {
            coco_now = rate;
        }
    }
    let StoreUrl::Sqlite(path) = &db.url else {
        return;
    };
    let out = tempfile::NamedTempFile::new().unwrap();
    let peer = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/coco_peer.py"))
        .arg(path)
        .arg(set.to_string())
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        peer.status.success(),
        "{}",
        String::from_utf8_lossy(&peer.stderr)
    );
    let said = String::from_utf8_lossy(&peer.stdout);
    let mut words = said.split_whitespace();
    let written: f64 = words.next().unwrap().parse().unwrap();
    let took: f64 = words.next().unwrap().parse().unwrap();
    let peer_rate = written / took;
    println!(
        "| sqlite | peer: Python's json module writes the same COCO from the same rows ({written:.0} annotations) | {took:.2} s | {peer_rate:.0} annotations/s |"
    );
    println!(
        "| sqlite | ratio to the peer: COCO export, now | | {:.2} |",
        coco_now / peer_rate
    );
}

/// Issue 18: the set's COCO file imported as `exact import` does it (every annotation
/// checked, then one append) into a new store holding what the run's own store held when it
/// began: the team, the set with a slide of the same name and size, the three types. The peer
/// is the creation rate at the top of this run (batches of 5,000 through the command path into
/// that same empty state), which the import should reach.
async fn import_coco(
    backend: Backend,
    store: &dyn exact_store::EventStore,
    read: &ReadDb,
    set: i64,
    create_rate: f64,
) -> Vec<u8> {
    let head = store.last_position().await.unwrap();
    let dataset =
        exact_projections::export::read_dataset(store, read, set, head, &Default::default())
            .await
            .unwrap();
    let mut coco = Vec::new();
    exact_projections::export::coco::write(&dataset, &mut coco).unwrap();
    drop(dataset);
    let fresh = TestDb::new(backend).await;
    let fresh_store = fresh.open_with_projections(exact_projections::all()).await;
    let fresh_read = ReadDb::connect(&fresh.url).await.unwrap();
    let commands = Commands::new(fresh_store, fresh_read.clone());
    let (alice, image, _) = lab(&commands).await;
    let copy = fresh_read.image(image).await.unwrap().unwrap().image_set;
    let megabytes = coco.len() as f64 / 1e6;
    let files = [exact_api::imports::ImportFile::new(
        "annotations.coco.json",
        coco.clone(),
    )];
    let start = Instant::now();
    let report = exact_api::imports::import(
        &commands,
        &alice,
        copy,
        exact_api::imports::ImportKind::Coco,
        &files,
        exact_api::imports::ImportOptions::default(),
    )
    .await
    .unwrap();
    let took = start.elapsed().as_secs_f64();
    let rate = report.applied as f64 / took;
    println!(
        "| {} | import the COCO file into an empty store's set ({} annotations, {:.0} MB, one append) | {took:.2} s | {rate:.0} /s |",
        backend.name(),
        report.applied,
        megabytes,
    );
    println!(
        "| {} | ratio to the peer: import / creation in batches at the top of this run | | {:.2} |",
        backend.name(),
        rate / create_rate
    );
    coco
}

/// A fresh store holding the lab (alice with a password), served by the whole router in
/// process.
struct RestLab {
    router: axum::Router,
    image: i64,
    types: [i64; 3],
    set: i64,
    _db: TestDb,
    _data: tempfile::TempDir,
}

const ALICE_PASSWORD: &str = "bench-password";

impl RestLab {
    async fn new(backend: Backend) -> Self {
        let db = TestDb::new(backend).await;
        let store = db.open_with_projections(exact_projections::all()).await;
        let data = tempfile::tempdir().unwrap();
        let config = exact_api::Config::new(data.path().to_owned());
        let state = exact_api::AppState::open(store, &db.url, config)
            .await
            .unwrap();
        let hash = exact_api::auth::password::hash(ALICE_PASSWORD.into())
            .await
            .unwrap();
        let (_, image, types) = lab_with_password(&state.commands, hash).await;
        let set = state.read.image(image).await.unwrap().unwrap().image_set;
        Self {
            router: exact_api::app(state),
            image,
            types,
            set,
            _db: db,
            _data: data,
        }
    }

    /// POSTs `body` as alice and returns the answer; panics unless it succeeds.
    async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> serde_json::Value {
        use base64::Engine;
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("alice:{ALICE_PASSWORD}"));
        let mut request = axum::http::Request::post(path)
            .header("authorization", format!("Basic {credentials}"))
            .header("content-type", content_type)
            .body(axum::body::Body::from(body))
            .unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                5000,
            ))));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let answer = response.into_body().collect().await.unwrap().to_bytes();
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&answer[..answer.len().min(500)])
        );
        serde_json::from_slice(&answer).unwrap()
    }
}

/// The peer the issue names for the import: the REST API's bulk creation (lists of `BATCH`
/// POSTed as EXACT's clients do, with their UUIDs: the same annotations the run created),
/// against the run's COCO file POSTed to the REST import route; each into a fresh store
/// holding the lab, through the whole router in process. Bodies are made before the clock
/// starts, for both.
async fn rest_import(backend: Backend, coco: Vec<u8>, count: i64) {
    let creation = RestLab::new(backend).await;
    let mut dice = Dice(0x2545_F491_4F6C_DD1D);
    let centres: Vec<(f64, f64)> = (0..400)
        .map(|_| (dice.unit() * WIDTH, dice.unit() * HEIGHT))
        .collect();
    let bodies: Vec<Vec<u8>> = (0..count / BATCH)
        .map(|_| {
            let list: Vec<serde_json::Value> = (0..BATCH)
                .map(|_| {
                    let input = annotation(&mut dice, &centres, creation.types);
                    json!({
                        "image": creation.image,
                        "annotation_type": input.annotation_type,
                        "vector": input.vector,
                        "unique_identifier": uuid::Uuid::new_v4(),
                    })
                })
                .collect();
            serde_json::to_vec(&list).unwrap()
        })
        .collect();
    let start = Instant::now();
    for body in bodies {
        creation
            .post("/api/v1/annotations/annotations/", "application/json", body)
            .await;
    }
    let created = start.elapsed().as_secs_f64();
    let create_rate = count as f64 / created;
    println!(
        "| {} | REST API: POST {count} annotations in lists of {BATCH} | {created:.2} s | {create_rate:.0} /s |",
        backend.name(),
    );
    drop(creation);

    let import = RestLab::new(backend).await;
    let boundary = "exact-bench-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"annotations.coco.json\"\r\nContent-Type: application/json\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&coco);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    drop(coco);
    let start = Instant::now();
    let report = import
        .post(
            &format!(
                "/api/v1/images/image_sets/{}/import/?format=coco",
                import.set
            ),
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )
        .await;
    let took = start.elapsed().as_secs_f64();
    assert_eq!(
        report["applied"], count,
        "every annotation of the file is applied"
    );
    let rate = count as f64 / took;
    println!(
        "| {} | REST API: POST the COCO file to the import route (one append) | {took:.2} s | {rate:.0} /s |",
        backend.name(),
    );
    println!(
        "| {} | ratio to the peer the issue names: REST import / REST bulk creation | | {:.2} |",
        backend.name(),
        rate / create_rate
    );
}

/// The auditor's checks over the whole log (issue 19): the chain alone, in process, then
/// `exact replay verify` as an auditor runs it (the chain, the checkpoints, and every read
/// model against a rebuild in a scratch store). Returns the chain's rate in events/s.
async fn audit(backend: Backend, db: &TestDb, store: &dyn exact_store::EventStore) -> f64 {
    let start = Instant::now();
    let report = store.verify(1, None).await.unwrap();
    let verified = start.elapsed();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    let rate = report.checked as f64 / verified.as_secs_f64();
    println!(
        "| {} | verify the chain ({} events, hashed on every core) | {:.2} s | {rate:.0} events/s |",
        backend.name(),
        report.checked,
        verified.as_secs_f64(),
    );
    let url = match &db.url {
        StoreUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        StoreUrl::Postgres(url) => url.clone(),
    };
    let folder = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let answer = std::process::Command::new(env!("CARGO_BIN_EXE_exact"))
        .args(["replay", "verify", "--database-url", &url, "--data-dir"])
        .arg(folder.path())
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(
        answer.status.success(),
        "replay verify: {}{}",
        String::from_utf8_lossy(&answer.stdout),
        String::from_utf8_lossy(&answer.stderr)
    );
    println!(
        "| {} | exact replay verify: the chain and every read model against a rebuild ({} events) | {:.2} s | {:.0} events/s |",
        backend.name(),
        report.checked,
        took.as_secs_f64(),
        report.checked as f64 / took.as_secs_f64(),
    );
    rate
}

#[tokio::main]
async fn main() {
    let count: i64 = std::env::var("EXACT_BENCH_ANNOTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    println!("| backend | operation | time | rate or latency |");
    println!("|---|---|---:|---:|");
    // `EXACT_BENCH_ONLY=postgres` skips the SQLite rows (a run at the million on one store).
    if !only().contains("postgres") {
        bench(Backend::Sqlite, count).await;
    }
    if std::env::var("EXACT_TEST_DATABASE_URL").is_ok() {
        bench(Backend::Postgres, count).await;
    } else {
        eprintln!("EXACT_TEST_DATABASE_URL is not set: PostgreSQL rows skipped (run `make bench`)");
    }
}
