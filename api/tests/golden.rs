//! Golden logs (issue 19's upgrade safety): each released schema of the events has a small
//! exported log in `tests/golden/<version>/log.jsonl`, and the read models it must give on each
//! backend (`read-models.<backend>.json`, every read-model table's rows as the store renders
//! them). Replaying every golden log into fresh read models must give exactly those: a change
//! to a projection or a payload that old logs no longer replay into the same tables fails here.
//!
//! `EXACT_WRITE_GOLDEN=1` writes what is missing instead (a log for a new version, from the
//! world built below; a dump for a log that has none): `tests/golden/README.md` says when.

mod support;

use std::path::{Path, PathBuf};

use exact_replay::read_models::{postgres_tables, sqlite_tables, Tables};
use exact_store::testing::TestDb;
use exact_store::{Backend, Envelope, OpenOptions, StoreUrl};
use serde_json::json;
use support::{add_member, box_annotation, image, project, TestApp};

exact_store::on_both_backends!(golden_logs_replay_into_their_read_models);

/// The schema version this build writes: a new golden log is made for it when missing.
const CURRENT: &str = "v3";

fn golden_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden")
}

fn writing() -> bool {
    std::env::var("EXACT_WRITE_GOLDEN").is_ok_and(|v| v == "1")
}

async fn golden_logs_replay_into_their_read_models(db: TestDb) {
    let backend = db.backend();
    let current = golden_folder().join(CURRENT);
    if writing() && !current.join("log.jsonl").exists() {
        assert_eq!(
            backend,
            Backend::Sqlite,
            "write a new log with the SQLite run first"
        );
        write_golden_log(db, &current).await;
        return;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir(golden_folder())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("log.jsonl").exists())
        .collect();
    versions.sort();
    assert!(
        versions.iter().any(|v| v.ends_with(CURRENT)),
        "no golden log for {CURRENT}: run with EXACT_WRITE_GOLDEN=1"
    );
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    for version in versions {
        let fresh = TestDb::new(backend).await;
        let tables = replay(&fresh, &version.join("log.jsonl")).await;
        let rendered = serde_json::to_string_pretty(&json!(tables.rows)).unwrap() + "\n";
        let expected = version.join(format!("read-models.{name}.json"));
        if writing() && !expected.exists() {
            std::fs::write(&expected, rendered).unwrap();
            continue;
        }
        let wanted: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&expected).unwrap_or_else(|_| {
                panic!("{}: missing (EXACT_WRITE_GOLDEN=1)", expected.display())
            }))
            .unwrap();
        let got = json!(tables.rows);
        for (table, rows) in wanted.as_object().unwrap() {
            assert_eq!(
                &got[table],
                rows,
                "{}: read model {table} differs from its golden dump",
                version.display()
            );
        }
        assert_eq!(
            got,
            wanted,
            "{}: the tables themselves differ",
            version.display()
        );
        assert!(tables.rows["annotations"].len() >= 3);
    }
}

/// Imports the log at `path` into the empty store `db` with every read model, and reads them.
async fn replay(db: &TestDb, path: &Path) -> Tables {
    let store = db
        .open_with_options(OpenOptions {
            initialize: false,
            projections: exact_projections::all(),
            ..OpenOptions::default()
        })
        .await
        .unwrap();
    let envelopes: Vec<Envelope> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(n, line)| {
            Envelope::from_json_line(line)
                .unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), n + 1))
        })
        .collect();
    for page in envelopes.chunks(1000) {
        store.import(page, &Default::default()).await.unwrap();
    }
    let report = store.verify(1, None).await.unwrap();
    assert!(
        report.is_intact(),
        "{}: {:?}",
        path.display(),
        report.problem
    );
    drop(store);
    match &db.url {
        StoreUrl::Sqlite(file) => sqlite_tables(file).await.unwrap(),
        StoreUrl::Postgres(url) => postgres_tables(url).await.unwrap(),
    }
}

/// A world that makes every kind of event the API writes, exported as the golden log.
async fn write_golden_log(db: TestDb, folder: &Path) {
    let app = TestApp::new(db).await;
    const OWNER: (&str, &str) = ("owner", "pw-owner");
    const MEMBER: (&str, &str) = ("member", "pw-member");
    app.user("owner").await;
    let member = app.user("member").await;
    let p = project(&app, OWNER, "golden", 5).await;
    add_member(&app, OWNER, p.team, member).await;
    let boxes = app
        .post(
            "/api/v1/annotations/annotation_types/",
            OWNER,
            json!({"name": "box", "product": p.product, "vector_type": 1, "color_code": "#00AA00"}),
        )
        .await;
    assert_eq!(boxes.status, 201, "{boxes:?}");
    let boxes = boxes.json["id"].as_i64().unwrap();
    let changed = app
        .patch(
            &format!("/api/v1/images/image_sets/{}/", p.set),
            OWNER,
            json!({"description": "golden set", "public": true}),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let first = image(&app, OWNER, p.set, "first.png", 64, 48).await;
    let second = image(&app, OWNER, p.set, "second.png", 32, 24).await;
    let polygon = app
        .post(
            "/api/v1/annotations/annotations/",
            MEMBER,
            json!({"image": first, "annotation_type": p.annotation_type,
                   "vector": {"x1": 1, "y1": 1, "x2": 30, "y2": 2, "x3": 15, "y3": 40},
                   "description": "Zellkern ☃", "meta_data": {"score": 0.25}}),
        )
        .await;
    assert_eq!(polygon.status, 201, "{polygon:?}");
    let polygon = polygon.json["id"].as_i64().unwrap();
    let kept = box_annotation(&app, OWNER, first, boxes).await;
    let doomed = box_annotation(&app, OWNER, second, boxes).await;
    for (method, path, body) in [
        (
            "patch",
            format!("/api/v1/annotations/annotations/{kept}/"),
            json!({"vector": {"x1": 2, "y1": 2, "x2": 20, "y2": 20}, "concealed": true}),
        ),
        (
            "post",
            "/api/v1/annotations/verifications/".into(),
            json!({"annotation": kept, "verified": true}),
        ),
        (
            "post",
            "/api/v1/annotations/verifications/".into(),
            json!({"annotation": polygon, "verified": false}),
        ),
        (
            "delete",
            format!("/api/v1/annotations/annotations/{doomed}/"),
            json!(null),
        ),
        (
            "post",
            "/api/v1/annotations/log_image_actions/".into(),
            json!({"image": first, "action": 1}),
        ),
        (
            "post",
            "/api/v1/images/set_tags/".into(),
            json!({"name": "golden", "imagesets": [p.set]}),
        ),
        (
            "post",
            "/api/v1/images/screening_modes/".into(),
            json!({"image": second}),
        ),
        (
            "post",
            "/api/v1/images/set_versions/".into(),
            json!({"name": "golden v1", "imagesets": [p.set]}),
        ),
        (
            "post",
            "/api/v1/users/tokens/".into(),
            json!({"name": "golden script"}),
        ),
        (
            "patch",
            format!("/api/v1/users/teams/{}/", p.team),
            json!({"website": "https://example.org"}),
        ),
        // v2: clinical mode's payloads (the set's `clinical`, a verdict's `signature`) and a
        // change with its reason.
        (
            "patch",
            format!("/api/v1/images/image_sets/{}/", p.set),
            json!({"clinical": true}),
        ),
        (
            "post",
            "/api/v1/annotations/verifications/".into(),
            json!({"annotation": kept, "verified": true, "password": OWNER.1, "meaning": "reviewed"}),
        ),
        (
            "patch",
            format!("/api/v1/annotations/annotations/{kept}/"),
            json!({"description": "signed, then corrected", "reason": "golden reason"}),
        ),
    ] {
        let method = axum::http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let answer = app.json(method.clone(), &path, OWNER, body).await;
        assert!(answer.status.is_success(), "{method} {path}: {answer:?}");
    }
    std::fs::create_dir_all(folder).unwrap();
    let mut file = tokio::fs::File::create(folder.join("log.jsonl"))
        .await
        .unwrap();
    exact_store::export_jsonl(app.state.store.as_ref(), &mut file)
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::flush(&mut file).await.unwrap();
}
