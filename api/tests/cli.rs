//! The `exact` binary as an operator uses it: serve, verify, export, copy, checkpoints.

mod support;

use exact_domain::DomainEvent;
use std::process::{Output, Stdio};
use std::time::Duration;

use exact_store::testing::TestDb;
use exact_store::{AppendContext, Backend, Expected, NewEvent, Source};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

exact_store::on_both_backends!(
    the_python_auditor_verifies_the_export,
    verify_exits_nonzero_naming_the_broken_position,
    serve_answers_health_and_stops_on_sigterm,
    replay_rebuild_replays_the_log_into_the_read_models,
    user_commands_add_set_passwords_and_deactivate,
    demo_fills_an_empty_store_and_refuses_a_full_one,
    signed_checkpoints_catch_a_rewritten_chain,
    serve_signs_checkpoints,
    replay_log_filters_what_an_auditor_asks_for,
    replay_as_of_and_diff_read_the_log,
    replay_verify_finds_a_forged_read_model_and_rebuild_mends_it,
    export_writes_a_set_as_of_a_moment,
    a_store_export_restores_into_an_empty_store,
);

fn exact() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_exact"));
    command
        .env_remove("EXACT_DATABASE_URL")
        .env("EXACT_LOG", "warn");
    command
}

async fn run(args: &[&str]) -> Output {
    exact().args(args).output().await.expect("run exact")
}

fn auditor() -> String {
    format!(
        "{}/../tests/auditor/verify_chain.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Events whose payloads hold what canonical JSON must get right: floats in every notation,
/// large integers, escapes and non-ASCII text.
async fn fill(db: &TestDb) {
    let store = db.open().await;
    let awkward = json!({
        "floats": [0.1, 1e-7, 0.0001, 1e16, 1e15, -0.0, 2.5e-308, 1.797_693_134_862_315_7e308, 123_456.789],
        "integers": [0, -1, 9_007_199_254_740_993_i64, u64::MAX],
        "text": "Zellkern \"mitotisch\" \\ tab\t newline\n bell\u{7} ☃ 𝔼",
        "vector": {"x1": 10.5, "y1": 20, "x2": 110.25, "y2": 220},
    });
    let context = AppendContext::new(Source::Api, Some(3)).with_reason("mitosis, second opinion");
    store
        .append(
            "sample-1",
            Expected::NoStream,
            vec![NewEvent::new("PayloadSampled", awkward)],
            context,
        )
        .await
        .unwrap();
    for n in 0..40 {
        let event = NewEvent::new("PayloadChanged", json!({ "n": n, "x": f64::from(n) / 7.0 }));
        let context = AppendContext::new(Source::Ui, Some(n.into()));
        store
            .append("sample-1", Expected::Any, vec![event], context)
            .await
            .unwrap();
    }
}

async fn the_python_auditor_verifies_the_export(db: TestDb) {
    fill(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("log.jsonl");
    let url = db.url_string();
    let out = run(&[
        "store",
        "export",
        "--format",
        "jsonl",
        "--database-url",
        &url,
        "--output",
        export.to_str().unwrap(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let audit = std::process::Command::new("python3")
        .arg(auditor())
        .arg(&export)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success(),
        "auditor: {said} {}",
        String::from_utf8_lossy(&audit.stderr)
    );
    assert!(said.starts_with("42 events, chain intact"), "{said}");

    // Change one payload value in the export: the auditor names that position.
    let text = std::fs::read_to_string(&export).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut third: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    third["payload"]["n"] = json!(1000);
    lines[2] = serde_json::to_string(&third).unwrap();
    std::fs::write(&export, lines.join("\n") + "\n").unwrap();
    let audit = std::process::Command::new("python3")
        .arg(auditor())
        .arg(&export)
        .output()
        .unwrap();
    assert!(!audit.status.success());
    assert_eq!(
        String::from_utf8_lossy(&audit.stderr).trim(),
        "chain broken at position 3"
    );
}

async fn verify_exits_nonzero_naming_the_broken_position(db: TestDb) {
    fill(&db).await;
    let url = db.url_string();
    let good = run(&["store", "verify", "--database-url", &url]).await;
    let said = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{said}");
    assert!(
        said.contains("chain intact: 42 events, positions 1 to 42"),
        "{said}"
    );
    assert!(said.contains("head hash "), "{said}");

    db.raw(db.drop_guard_sql()).await.unwrap();
    db.raw(
        "UPDATE events SET payload = replace(payload, '\"n\":5,', '\"n\":6,') WHERE position = 8",
    )
    .await
    .unwrap();
    let bad = run(&["store", "verify", "--database-url", &url]).await;
    let said = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{said}");
    assert!(
        said.contains("chain broken at position 8: hash mismatch"),
        "{said}"
    );
    assert!(said.contains("7 events before it are intact"), "{said}");
}

/// The output line that starts with `prefix`, without it.
fn line_after<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in {text}"))
}

/// Rewrites the log from `from` on as someone with write access to the database would: the
/// payload at `from` changed, every hash after it recomputed, so that the chain verifies.
async fn rewrite_chain_from(db: &TestDb, from: i64) {
    let store = db.open().await;
    let mut events = store.read_page(from - 1, 100_000).await.unwrap();
    let mut prev = events.remove(0).hash;
    let blob = |hash: &[u8]| match db.backend() {
        Backend::Sqlite => format!("X'{}'", hex::encode(hash)),
        Backend::Postgres => format!("'\\x{}'::bytea", hex::encode(hash)),
    };
    let mut sql = String::new();
    for (index, mut event) in events.into_iter().enumerate() {
        if index == 0 {
            event.payload = event.payload.replacen("\"n\":", "\"n\":7", 1);
        }
        event.prev_hash = prev;
        event.hash = event.compute_hash();
        prev = event.hash;
        sql.push_str(&format!(
            "UPDATE events SET payload = '{}', prev_hash = {}, hash = {} WHERE position = {};",
            event.payload.replace('\'', "''"),
            blob(&event.prev_hash),
            blob(&event.hash),
            event.position
        ));
    }
    drop(store);
    db.raw(db.drop_guard_sql()).await.unwrap();
    db.raw(&sql).await.unwrap();
}

/// The rewrite signed checkpoints exist for: an event changed and every hash after it
/// recomputed. The chain verifies; the checkpoints signed before the rewrite do not, each named
/// by its line and position, by `exact store verify` and by the auditor's own Python check.
async fn signed_checkpoints_catch_a_rewritten_chain(db: TestDb) {
    fill(&db).await;
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let url = db.url_string();
    let store_args = ["--database-url", url.as_str(), "--data-dir", data_dir];
    let signed = run(&[&["store", "checkpoint"][..], &store_args].concat()).await;
    let said = String::from_utf8_lossy(&signed.stdout).into_owned();
    assert!(
        signed.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&signed.stderr)
    );
    assert!(
        said.starts_with("checkpoint at position 42: head hash "),
        "{said}"
    );
    let public_key = line_after(&said, "public key ").to_owned();
    assert_eq!(public_key.len(), 64, "{said}");
    let key_file = data.path().join("checkpoint.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is readable by others: {mode:o}");
    }
    // Later events, a second checkpoint with the same key.
    let store = db.open().await;
    for n in 0..3 {
        let event = NewEvent::new("PayloadChanged", json!({ "n": 100 + n }));
        store
            .append(
                "sample-2",
                Expected::Any,
                vec![event],
                AppendContext::new(Source::Api, Some(1)),
            )
            .await
            .unwrap();
    }
    drop(store);
    let again = run(&[&["store", "checkpoint"][..], &store_args].concat()).await;
    let again_said = String::from_utf8_lossy(&again.stdout);
    assert!(
        again_said.starts_with("checkpoint at position 45:"),
        "{again_said}"
    );
    assert_eq!(line_after(&again_said, "public key "), public_key);

    let verify_args = [
        &["store", "verify"][..],
        &store_args,
        &["--public-key", &public_key],
    ]
    .concat();
    let good = run(&verify_args).await;
    let said = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{said}");
    assert!(said.contains("chain intact: 45 events"), "{said}");
    assert!(said.contains("2 checkpoints hold"), "{said}");
    let python = support::served::venv("cryptography-46.0.3", &["cryptography==46.0.3"]);
    let audit = |python: &std::path::Path| {
        let export = data.path().join("log.jsonl");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_exact"))
            .args(["store", "export", "--format", "jsonl", "--output"])
            .arg(&export)
            .args(["--database-url", &url])
            .env("EXACT_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let chain = std::process::Command::new("python3")
            .arg(auditor())
            .arg(&export)
            .output()
            .unwrap();
        assert!(
            chain.status.success(),
            "the chain verifies, rewritten or not: {chain:?}"
        );
        let checked = std::process::Command::new(python)
            .arg(format!(
                "{}/../tests/auditor/verify_checkpoints.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg(&export)
            .arg(data.path().join("checkpoints.jsonl"))
            .arg(&public_key)
            .output()
            .unwrap();
        (
            checked.status.success(),
            String::from_utf8_lossy(&checked.stdout).into_owned(),
        )
    };
    let (held, said) = audit(&python);
    assert!(held, "{said}");
    assert_eq!(said.trim(), "2 checkpoints hold");

    // Someone with the database rewrites it from position 30 on.
    rewrite_chain_from(&db, 30).await;
    let bad = run(&verify_args).await;
    let said = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{said}");
    assert!(
        said.contains("chain intact: 45 events"),
        "the rewrite verifies as a chain: {said}"
    );
    for (line, position) in [(1, 42), (2, 45)] {
        assert!(
            said.contains(&format!("checkpoint line {line} (position {position})"))
                && said.contains("rewritten at or before this position"),
            "{said}"
        );
    }
    let (held, said) = audit(&python);
    assert!(!held, "{said}");
    assert!(
        said.contains("checkpoint line 1 (position 42): the log's hash there differs"),
        "{said}"
    );

    // Checked against another key, every checkpoint is refused.
    let other = "ab".repeat(32);
    let other_args = [
        &["store", "verify"][..],
        &store_args,
        &["--public-key", &other],
    ]
    .concat();
    let foreign = run(&other_args).await;
    let said = String::from_utf8_lossy(&foreign.stdout);
    assert_eq!(foreign.status.code(), Some(1), "{said}");
    assert!(said.contains("signed with another key"), "{said}");
}

/// `exact serve` signs checkpoints by itself: with `--checkpoint-events 1` the bootstrap's
/// events are signed within seconds, and the checkpoint holds after the server stops.
async fn serve_signs_checkpoints(db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let url = db.url_string();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_exact"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--checkpoint-events",
            "1",
            "--database-url",
            &url,
            "--data-dir",
        ])
        .arg(data.path())
        .env("EXACT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let file = data.path().join("checkpoints.jsonl");
    let signed =
        |file: &std::path::Path| std::fs::read_to_string(file).is_ok_and(|t| t.ends_with('\n'));
    let mut waited = 0;
    while !signed(&file) && waited < 300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(signed(&file), "no checkpoint signed within 30 s");
    let data_dir = data.path().to_str().unwrap();
    let verify = run(&[
        "store",
        "verify",
        "--database-url",
        &url,
        "--data-dir",
        data_dir,
    ])
    .await;
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{said}");
    assert!(said.contains("checkpoints hold"), "{said}");
}

/// `exact replay log`, the auditor's view: by image (with its annotations' later changes and
/// verdicts, whose events name only the annotation), by set, by actor and type, by time.
async fn replay_log_filters_what_an_auditor_asks_for(db: TestDb) {
    use support::{add_member, box_annotation, image, project, TestApp};
    let app = TestApp::new(db).await;
    const OWNER: (&str, &str) = ("owner", "pw-owner");
    const MEMBER: (&str, &str) = ("member", "pw-member");
    app.user("owner").await;
    let member = app.user("member").await;
    let p = project(&app, OWNER, "audit", 1).await;
    add_member(&app, OWNER, p.team, member).await;
    let first = image(&app, OWNER, p.set, "first.png", 64, 48).await;
    let second = image(&app, OWNER, p.set, "second.png", 32, 24).await;
    let on_first = box_annotation(&app, OWNER, first, p.annotation_type).await;
    let by_member = box_annotation(&app, MEMBER, first, p.annotation_type).await;
    let on_second = box_annotation(&app, OWNER, second, p.annotation_type).await;
    let changed = app
        .patch(
            &format!("/api/v1/annotations/annotations/{on_first}/"),
            OWNER,
            json!({"vector": {"x1": 2, "y1": 2, "x2": 20, "y2": 20}}),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let verdict = app
        .post(
            "/api/v1/annotations/verifications/",
            MEMBER,
            json!({"annotation": on_first, "verified": true}),
        )
        .await;
    assert_eq!(verdict.status, 201, "{verdict:?}");

    let url = app.db.url_string();
    let log = |filters: Vec<String>| {
        let url = url.clone();
        async move {
            let mut args = vec![
                "replay".to_owned(),
                "log".into(),
                "--database-url".into(),
                url,
            ];
            args.extend(filters);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run(&args).await;
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .collect::<Vec<_>>()
        }
    };
    let streams = |events: &[serde_json::Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["stream"].as_str().unwrap().to_owned())
            .collect()
    };
    let types = |events: &[serde_json::Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    };

    // The first image: its own events and its two annotations', the change and the verdict
    // included; nothing of the second image.
    let of_first = log(vec!["--image".into(), first.to_string()]).await;
    let seen = streams(&of_first);
    for stream in [
        format!("image-{first}"),
        format!("annotation-{on_first}"),
        format!("annotation-{by_member}"),
    ] {
        assert!(seen.contains(&stream), "{stream} missing from {seen:?}");
    }
    for stream in [format!("image-{second}"), format!("annotation-{on_second}")] {
        assert!(
            !seen.contains(&stream),
            "{stream} in the first image's log: {seen:?}"
        );
    }
    let kinds = types(&of_first);
    assert!(kinds.contains(&"AnnotationChanged".to_owned()), "{kinds:?}");
    assert!(
        kinds.contains(&"AnnotationVerified".to_owned()),
        "no verdict in {kinds:?}"
    );
    let positions: Vec<i64> = of_first
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in log order: {positions:?}"
    );

    // The set: both images and all three annotations.
    let of_set = streams(&log(vec!["--image-set".into(), p.set.to_string()]).await);
    for stream in [
        format!("image_set-{}", p.set),
        format!("image-{second}"),
        format!("annotation-{on_second}"),
        format!("annotation-{by_member}"),
    ] {
        assert!(
            of_set.contains(&stream),
            "{stream} missing from the set's log {of_set:?}"
        );
    }

    // The member's creations: one annotation, with who and when in its metadata.
    let mine = log(vec![
        "--actor".into(),
        member.to_string(),
        "--type".into(),
        "AnnotationCreated".into(),
    ])
    .await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["payload"]["id"], by_member);
    assert_eq!(mine[0]["metadata"]["actor"], member);

    // From the change on (by position), and by time: the test's clock stands still, so every
    // event was recorded at the same microsecond, which both bounds include.
    let change = of_first
        .iter()
        .find(|e| e["type"] == "AnnotationChanged")
        .unwrap();
    let at = change["position"].as_i64().unwrap();
    let later = log(vec![
        "--from".into(),
        at.to_string(),
        "--image".into(),
        first.to_string(),
    ])
    .await;
    let kinds = types(&later);
    assert_eq!(later[0]["position"], at, "{later:?}");
    assert_eq!(kinds.len(), 2, "the change and the verdict: {kinds:?}");
    let recorded = change["metadata"]["recorded_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let then: chrono::DateTime<chrono::Utc> = recorded.parse().unwrap();
    let just_before = (then - chrono::Duration::microseconds(1)).to_rfc3339();
    let within = log(vec![
        "--since".into(),
        recorded.clone(),
        "--until".into(),
        recorded,
        "--image".into(),
        first.to_string(),
    ])
    .await;
    assert_eq!(within.len(), of_first.len());
    let before = log(vec!["--until".into(), just_before]).await;
    assert!(before.is_empty(), "{before:?}");
    let none = log(vec!["--stream".into(), "no-such-stream".into()]).await;
    assert!(none.is_empty());
}

/// `exact replay as-of` and `exact replay diff`, read from the log alone: three annotations,
/// then one deleted, one changed and one added; the summary at each moment and the diff between
/// them say exactly that.
async fn replay_as_of_and_diff_read_the_log(db: TestDb) {
    use support::{box_annotation, image, project, TestApp};
    let app = TestApp::new(db).await;
    const OWNER: (&str, &str) = ("owner", "pw-owner");
    app.user("owner").await;
    let p = project(&app, OWNER, "moments", 1).await;
    let first = image(&app, OWNER, p.set, "first.png", 64, 48).await;
    let second = image(&app, OWNER, p.set, "second.png", 32, 24).await;
    let kept = box_annotation(&app, OWNER, first, p.annotation_type).await;
    let doomed = box_annotation(&app, OWNER, first, p.annotation_type).await;
    let moved = box_annotation(&app, OWNER, second, p.annotation_type).await;
    let before = app.position().await;
    let deleted = app
        .delete(&format!("/api/v1/annotations/annotations/{doomed}/"), OWNER)
        .await;
    assert!(deleted.status.is_success(), "{deleted:?}");
    let changed = app
        .patch(
            &format!("/api/v1/annotations/annotations/{moved}/"),
            OWNER,
            json!({"vector": {"x1": 3, "y1": 3, "x2": 12, "y2": 12}}),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let added = box_annotation(&app, OWNER, second, p.annotation_type).await;
    let after = app.position().await;

    let url = app.db.url_string();
    let replay = |args: Vec<String>| {
        let url = url.clone();
        async move {
            let mut all = vec!["replay".to_owned()];
            all.extend(args);
            all.extend(["--database-url".to_owned(), url]);
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            run(&all).await
        }
    };
    let json_of = |out: Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let then = json_of(replay(vec!["as-of".into(), before.to_string()]).await);
    assert_eq!(then["position"], before);
    let set = |summary: &serde_json::Value| {
        summary["image_sets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == p.set)
            .cloned()
            .expect("the set")
    };
    let at_before = set(&then);
    assert_eq!(
        (
            &at_before["name"],
            &at_before["images"],
            &at_before["annotations"]
        ),
        (&json!("moments set"), &json!(2), &json!(3)),
        "{then}"
    );
    assert_eq!(at_before["per_type"], json!({"cell": 3}));
    let now = json_of(replay(vec!["as-of".into(), after.to_string()]).await);
    assert_eq!(set(&now)["annotations"], 3, "one gone, one new: {now}");
    // A time: the test's clock stands still, so its moment is the last event's.
    let time = now["recorded_at"].as_str().unwrap().to_owned();
    let by_time = json_of(replay(vec!["as-of".into(), time]).await);
    assert_eq!(by_time["position"], after);

    let diff = json_of(replay(vec!["diff".into(), before.to_string(), after.to_string()]).await);
    assert_eq!(diff["added"], json!([added]), "{diff}");
    assert_eq!(diff["removed"], json!([doomed]), "{diff}");
    assert_eq!(diff["changed"], json!([moved]), "{diff}");
    assert_eq!(diff["per_type"], json!({"cell": [1, 1, 1]}), "{diff}");
    assert_eq!(
        diff["per_image"][first.to_string()],
        json!([0, 1, 0]),
        "{diff}"
    );
    assert_eq!(
        diff["per_image"][second.to_string()],
        json!([1, 0, 1]),
        "{diff}"
    );
    assert!(!diff["changed"].as_array().unwrap().contains(&json!(kept)));

    let nonsense = replay(vec!["as-of".into(), "yesterday".into()]).await;
    assert_eq!(nonsense.status.code(), Some(2));
    let said = String::from_utf8_lossy(&nonsense.stderr);
    assert!(
        said.contains("neither a log position nor an RFC 3339 time"),
        "{said}"
    );
}

/// `exact replay verify`: the chain, and every read model against the same tables rebuilt from
/// the log. A read-model row changed by hand is found and named; `replay rebuild` mends it.
async fn replay_verify_finds_a_forged_read_model_and_rebuild_mends_it(db: TestDb) {
    use support::{box_annotation, image, project, TestApp};
    let app = TestApp::new(db).await;
    const OWNER: (&str, &str) = ("owner", "pw-owner");
    app.user("owner").await;
    let p = project(&app, OWNER, "forgery", 1).await;
    let picture = image(&app, OWNER, p.set, "first.png", 64, 48).await;
    let annotation = box_annotation(&app, OWNER, picture, p.annotation_type).await;
    let url = app.db.url_string();
    let args = ["replay", "verify", "--database-url", url.as_str()];
    let verify = || run(&args);

    let good = verify().await;
    let said = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(said.contains("chain intact"), "{said}");
    assert!(said.contains("read models equal to the log's: "), "{said}");

    // Someone edits a read model behind the log's back.
    app.db
        .raw(&format!(
            "UPDATE annotations SET description = 'forged' WHERE id = {annotation}"
        ))
        .await
        .unwrap();
    let bad = verify().await;
    let said = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{said}");
    assert!(
        said.contains("chain intact"),
        "the log itself is untouched: {said}"
    );
    assert!(said.contains("read model annotations differs"), "{said}");
    assert!(said.contains("forged"), "the forged row is shown: {said}");

    let rebuilt = run(&["replay", "rebuild", "--database-url", &url]).await;
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let mended = verify().await;
    let said = String::from_utf8_lossy(&mended.stdout);
    assert!(mended.status.success(), "{said}");
    assert!(said.contains("read models equal to the log's: "), "{said}");
}

/// `GET path`, with `extra` header lines (each ending in CRLF).
async fn http_get(address: &str, path: &str, extra: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn serve_answers_health_and_stops_on_sigterm(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let database = (db.backend() == Backend::Postgres).then(|| db.url_string());
    let (mut server, address) = start_server(dir.path(), database.as_deref()).await;

    let (status, body) = http_get(&address, "/api/v1/health", "").await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"status":"ok"}"#),
        "anonymous"
    );
    // exact/exact, the first account.
    let (status, body) = http_get(
        &address,
        "/api/v1/health",
        "Authorization: Basic ZXhhY3Q6ZXhhY3Q=\r\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"], db.backend().name());
    assert_eq!(
        health["position"], 3,
        "a new store holds its genesis event, the first account (exact/exact) and the default \
         export format"
    );
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    if db.backend() == Backend::Sqlite {
        assert!(
            dir.path().join("exact.db").exists(),
            "the embedded store lives in the data folder"
        );
    }

    let pid = server.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), server.wait())
        .await
        .expect("the server stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_lists_the_subcommands() {
    let top = run(&["--help"]).await;
    let said = String::from_utf8_lossy(&top.stdout);
    assert!(top.status.success());
    for word in ["serve", "store"] {
        assert!(said.contains(word), "{said}");
    }
    let store = run(&["store", "--help"]).await;
    let said = String::from_utf8_lossy(&store.stdout);
    for word in ["verify", "export", "copy"] {
        assert!(said.contains(word), "{said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_moves_a_log_to_postgres_and_refuses_to_overwrite() {
    let source = TestDb::sqlite();
    fill(&source).await;
    let target = TestDb::postgres().await;
    let (from, to) = (source.url_string(), target.url_string());
    let out = run(&["store", "copy", "--from", &from, "--to", &to]).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.starts_with("copied 42 events into postgres://"),
        "{said}"
    );
    assert!(
        !said.contains(&to),
        "the password stays out of messages: {said}"
    );

    let verify = run(&["store", "verify", "--database-url", &to]).await;
    assert!(verify.status.success());
    let again = run(&["store", "copy", "--from", &from, "--to", &to]).await;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("target store is not empty"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_database_url_is_a_clear_error() {
    let out = run(&["store", "verify", "--database-url", "mysql://somewhere/db"]).await;
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("unsupported database URL") && said.contains("postgres://"),
        "{said}"
    );
}

async fn replay_rebuild_replays_the_log_into_the_read_models(db: TestDb) {
    use exact_domain::annotation::{AnnotationCreated, AnnotationEvent};
    let store = db.open_with_projections(exact_projections::all()).await;
    for id in 1..=3 {
        let (name, payload) = AnnotationEvent::AnnotationCreated(AnnotationCreated {
            id,
            image: 1,
            annotation_type: 1,
            vector: json!({"x1": 10, "y1": 10, "x2": 50, "y2": 60}),
            description: String::new(),
            meta_data: serde_json::Value::Null,
            concealed: false,
            blurred: false,
            unique_identifier: uuid::Uuid::from_u128(id as u128),
            user: 1,
        })
        .to_parts();
        let stream = format!("annotation-{id}");
        store
            .append(
                &stream,
                Expected::NoStream,
                vec![NewEvent::new(name, payload)],
                AppendContext::system(),
            )
            .await
            .unwrap();
    }
    drop(store);
    let url = db.url_string();
    let out = run(&["replay", "rebuild", "--database-url", &url]).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["catalog", "annotations"] {
        assert!(
            said.contains(&format!("rebuilt {name}: 4 events in ")),
            "every read model replays genesis and three creations: {said}"
        );
    }
    let rows = db
        .pairs("SELECT unique_identifier, id FROM annotations ORDER BY id")
        .await;
    assert_eq!(
        rows.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
        [1, 2, 3]
    );

    let unknown = run(&[
        "replay",
        "rebuild",
        "--database-url",
        &url,
        "--projection",
        "nope",
    ])
    .await;
    assert_eq!(unknown.status.code(), Some(1));
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        said.contains("no read model called \"nope\"") && said.contains("annotations"),
        "{said}"
    );
}

/// `exact user add|passwd|deactivate` write the account's events; the server then lets the
/// account in with the password set there (checked here against the read model's hash).
async fn user_commands_add_set_passwords_and_deactivate(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let mut store_args = vec![
        "--data-dir".to_owned(),
        dir.path().to_str().unwrap().to_owned(),
    ];
    if db.backend() == Backend::Postgres {
        store_args.extend(["--database-url".to_owned(), db.url_string()]);
    }
    let user = |args: &[&str], password: Option<&str>| {
        let mut command = exact();
        command.arg("user").args(args).args(&store_args);
        match password {
            Some(p) => command.env("EXACT_PASSWORD", p),
            None => command.env_remove("EXACT_PASSWORD"),
        };
        async move { command.output().await.unwrap() }
    };
    let added = user(
        &["add", "carol", "--email", "carol@example.org"],
        Some("first-secret"),
    )
    .await;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    // The embedded store of the data folder, or the PostgreSQL database given.
    let url = match db.backend() {
        Backend::Sqlite => exact_store::StoreUrl::in_data_dir(dir.path()),
        Backend::Postgres => db.url.clone(),
    };
    let read = exact_projections::ReadDb::connect(&url).await.unwrap();
    let carol = read.user_by_username("carol").await.unwrap().unwrap();
    assert!(carol.password_hash.starts_with("$argon2id$") && carol.is_active);
    assert!(!carol.password_hash.contains("first-secret"));

    let taken = user(&["add", "carol"], Some("x-secret")).await;
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("username"));

    let changed = user(&["passwd", "carol"], Some("second-secret")).await;
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    let after = read.user_by_username("carol").await.unwrap().unwrap();
    assert_ne!(after.password_hash, carol.password_hash);
    let verified =
        exact_api::auth::password::verify("second-secret".into(), after.password_hash).await;
    assert!(verified.unwrap(), "the new password is the one stored");

    let unknown = user(&["passwd", "nobody"], Some("whatever")).await;
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody"));

    let gone = user(&["deactivate", "carol"], None).await;
    assert!(
        gone.status.success(),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    assert!(
        !read
            .user_by_username("carol")
            .await
            .unwrap()
            .unwrap()
            .is_active
    );
}

async fn demo_fills_an_empty_store_and_refuses_a_full_one(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "demo".to_owned(),
        "--data-dir".to_owned(),
        dir.path().to_str().unwrap().to_owned(),
    ];
    if db.backend() == Backend::Postgres {
        args.extend(["--database-url".to_owned(), db.url_string()]);
    }
    let demo = || {
        let mut command = exact();
        command.args(&args).env_remove("EXACT_ADMIN_PASSWORD");
        async move { command.output().await.unwrap() }
    };
    let made = demo().await;
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(String::from_utf8_lossy(&made.stdout).contains("demo ready"));
    let url = match db.backend() {
        Backend::Sqlite => exact_store::StoreUrl::in_data_dir(dir.path()),
        Backend::Postgres => db.url.clone(),
    };
    let read = exact_projections::ReadDb::connect(&url).await.unwrap();
    let admin = read.user_by_username("exact").await.unwrap().unwrap();
    let sets = read.readable_sets(admin.actor()).await.unwrap();
    assert_eq!(sets.len(), 1);
    let images = read.readable_images(admin.actor(), None).await.unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!((images[0].width, images[0].height), (8000, 6000));
    let types = read.offered_types(sets[0].id).await.unwrap();
    let kinds: Vec<i64> = types.iter().map(|t| t.vector_type).collect();
    assert_eq!(kinds, [1, 2, 5, 4, 7]);
    let counts = read.image_statistics(images[0].id, None).await.unwrap();
    assert_eq!(counts.total, 4);
    // The token the demo worked with is revoked.
    let tokens = read.access_tokens(admin.id).await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].revoked.is_some());
    // The slide is stored in the data folder, and nothing is left in staging.
    assert!(dir.path().join("images").read_dir().unwrap().count() > 0);
    let staging = dir.path().join("uploads");
    assert!(
        !staging.exists()
            || staging
                .read_dir()
                .unwrap()
                .all(|e| !e.unwrap().path().ends_with("demo"))
    );

    let store = exact_store::open(&url, exact_store::OpenOptions::default())
        .await
        .unwrap();
    let position = store.last_position().await.unwrap();
    drop(store);
    let again = demo().await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds data"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let store = exact_store::open(&url, exact_store::OpenOptions::default())
        .await
        .unwrap();
    assert_eq!(
        store.last_position().await.unwrap(),
        position,
        "a refused demo writes nothing"
    );
}

/// Starts `exact serve` on `data` (and PostgreSQL `database`, if given) and returns it with
/// the address it listens on.
async fn start_server(
    data: &std::path::Path,
    database: Option<&str>,
) -> (tokio::process::Child, String) {
    let mut command = exact();
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data);
    if let Some(url) = database {
        command.args(["--database-url", url]);
    }
    let mut server = command
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the server starts")
        .unwrap()
        .expect("the server says where it listens");
    let address = line
        .strip_prefix("exact listening on http://")
        .expect(&line)
        .to_owned();
    (server, address)
}

/// One process serves an SQLite store: a second `serve`, or a rebuild, on the same folder is
/// refused with a message that says why, and the first server goes on answering. Once it is
/// gone (even killed), the store opens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_a_served_sqlite_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (mut first, address) = start_server(dir.path(), None).await;

    // Refused at once; a second server that started would run until killed.
    let second = tokio::time::timeout(
        Duration::from_secs(60),
        exact()
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir", data])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("a second server started on the served store")
    .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second server started: {said}");
    assert!(said.contains("another exact process"), "{said}");
    let rebuild = run(&["replay", "rebuild", "--data-dir", data]).await;
    let said = String::from_utf8_lossy(&rebuild.stderr);
    assert!(
        !rebuild.status.success(),
        "a rebuild ran under the server: {said}"
    );
    assert!(said.contains("another exact process"), "{said}");
    let (status, _) = http_get(&address, "/api/v1/health", "").await;
    assert_eq!(status, 200, "the first server goes on");
    // Commands that only append (the admin's `user passwd`) still work beside it.
    let added = exact()
        .args(["user", "add", "walter", "--data-dir", data])
        .env("EXACT_PASSWORD", "walter-secret")
        .output()
        .await
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    // kill -9 leaves no stale lock: the system drops it with the process.
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let (mut again, address) = start_server(dir.path(), None).await;
    let (status, _) = http_get(&address, "/api/v1/health", "").await;
    assert_eq!(status, 200);
    again.start_kill().unwrap();
}

fn files_of(zip_bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).unwrap();
            (file.name().to_owned(), bytes)
        })
        .collect()
}

/// `exact export` on the demo's set: a zip with the manifest, the same bytes when asked again
/// as of the position it names, and a clear refusal of a set that was not there.
async fn export_writes_a_set_as_of_a_moment(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut store_args = vec!["--data-dir".to_owned(), data.to_str().unwrap().to_owned()];
    if db.backend() == Backend::Postgres {
        store_args.extend(["--database-url".to_owned(), db.url_string()]);
    }
    let exact_with = |args: &[&str]| {
        let mut command = exact();
        command.args(args).args(&store_args);
        async move { command.output().await.unwrap() }
    };
    let made = exact_with(&["demo"]).await;
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let now = dir.path().join("now.zip");
    let exported = exact_with(&[
        "export",
        "--image-set",
        "1",
        "--format",
        "coco",
        "--output",
        now.to_str().unwrap(),
    ])
    .await;
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let said = String::from_utf8_lossy(&exported.stdout).into_owned();
    assert!(
        said.contains("exported 4 annotations of image set 1"),
        "{said}"
    );
    let bytes = std::fs::read(&now).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_reader(archive.by_name("manifest.json").unwrap()).unwrap();
    let position = manifest["position"].as_i64().unwrap();
    assert_eq!(manifest["format"], "coco");
    assert_eq!(manifest["exported_by"]["id"], 0);

    let then = dir.path().join("then.zip");
    let again = exact_with(&[
        "export",
        "--image-set",
        "1",
        "--format",
        "coco",
        "--as-of",
        &position.to_string(),
        "--output",
        then.to_str().unwrap(),
    ])
    .await;
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        std::fs::read(&then).unwrap(),
        bytes,
        "as of its own position, the same bytes"
    );

    let refused = exact_with(&[
        "export",
        "--image-set",
        "1",
        "--format",
        "coco",
        "--as-of",
        "2",
        "--output",
        dir.path().join("early.zip").to_str().unwrap(),
    ])
    .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("did not exist at position 2"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!dir.path().join("early.zip").exists(), "nothing written");

    // The COCO file imported back into its own set changes nothing; a new label line is
    // applied in the name given; a file with a refused line applies nothing and says why.
    let coco_bytes = files_of(&bytes)["annotations.coco.json"].clone();
    let coco = dir.path().join("coco.json");
    std::fs::write(&coco, &coco_bytes).unwrap();
    let back = exact_with(&[
        "import",
        "--image-set",
        "1",
        "--format",
        "coco",
        coco.to_str().unwrap(),
    ])
    .await;
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&back.stdout).unwrap();
    assert_eq!(report["applied"], 0, "{report}");
    assert_eq!(report["unchanged"], manifest["annotations"], "{report}");
    // The export's zip as it is reads the same (its manifest passed over).
    let zipped = exact_with(&[
        "import",
        "--image-set",
        "1",
        "--format",
        "coco",
        then.to_str().unwrap(),
    ])
    .await;
    assert!(
        zipped.status.success(),
        "{}",
        String::from_utf8_lossy(&zipped.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&zipped.stdout).unwrap();
    assert_eq!(report["unchanged"], manifest["annotations"], "{report}");
    let parsed: serde_json::Value = serde_json::from_slice(&coco_bytes).unwrap();
    let image_name = parsed["images"][0]["file_name"].as_str().unwrap();
    let boxed = parsed["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["segmentation"][0]
                .as_array()
                .is_some_and(|ring| ring.len() == 8)
        })
        .unwrap()["category_id"]
        .clone();
    let type_name = parsed["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == boxed)
        .unwrap()["name"]
        .as_str()
        .unwrap();
    let lines = dir.path().join("labels.txt");
    std::fs::write(
        &lines,
        format!("{image_name}|{type_name}|{{\"x1\": 5,\"y1\": 5,\"x2\": 50,\"y2\": 40}}|\n"),
    )
    .unwrap();
    let added = exact_with(&[
        "import",
        "--image-set",
        "1",
        "--format",
        "exact",
        "--as",
        "exact",
        lines.to_str().unwrap(),
    ])
    .await;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&added.stdout).unwrap();
    assert_eq!(report["applied"], 1, "{report}");
    // What changed since the export: the one annotation imported.
    let diff = exact_with(&["diff", "--image-set", "1", "--from", &position.to_string()]).await;
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    let diff: serde_json::Value = serde_json::from_slice(&diff.stdout).unwrap();
    assert_eq!(
        (diff["added"].as_array().map(Vec::len), &diff["removed"]),
        (Some(1), &serde_json::json!([])),
        "{diff}"
    );
    std::fs::write(&lines, "nowhere.png|cell|not in image\n").unwrap();
    let refused = exact_with(&[
        "import",
        "--image-set",
        "1",
        "--format",
        "exact",
        lines.to_str().unwrap(),
    ])
    .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("1 of 1 annotations were refused"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(report["refused"][0]["at"], "line 1");
    let unknown = exact_with(&[
        "export",
        "--image-set",
        "1",
        "--format",
        "pascal",
        "--output",
        "x.zip",
    ])
    .await;
    assert_eq!(unknown.status.code(), Some(2), "clap's usage error");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("voc, yolo or asap"));
}

/// `exact store export` then `exact store import`: the demo's log restored into an empty
/// store (`db`) verifies, its read models equal a rebuild and the source's, and the id
/// counters come with it (a new account does not take an id the log used). A second import is
/// refused; a tampered line is named and nothing of the file is stored.
async fn a_store_export_restores_into_an_empty_store(db: TestDb) {
    let source = tempfile::tempdir().unwrap();
    let source_dir = source.path().to_str().unwrap();
    let ok = |out: &Output| {
        assert!(
            out.status.success(),
            "{} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(&run(&["demo", "--data-dir", source_dir]).await);
    let log = source.path().join("log.jsonl");
    ok(&run(&[
        "store",
        "export",
        "--data-dir",
        source_dir,
        "--output",
        log.to_str().unwrap(),
    ])
    .await);
    let target = tempfile::tempdir().unwrap();
    let mut on_target = vec![
        "--data-dir".to_owned(),
        target.path().to_str().unwrap().to_owned(),
    ];
    if db.backend() == Backend::Postgres {
        on_target.extend(["--database-url".to_owned(), db.url_string()]);
    }
    let with_target = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(on_target.iter().cloned());
        all
    };
    let run_owned = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args).await
    };
    let restored = run_owned(with_target(&[
        "store",
        "import",
        "--input",
        log.to_str().unwrap(),
    ]))
    .await;
    ok(&restored);
    let events = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(
        String::from_utf8_lossy(&restored.stdout)
            .starts_with(&format!("restored {events} events into ")),
        "{}",
        String::from_utf8_lossy(&restored.stdout)
    );
    ok(&run_owned(with_target(&["store", "verify"])).await);
    ok(&run_owned(with_target(&["replay", "verify"])).await);

    // The same world as the source's read models hold.
    let source_url = exact_store::StoreUrl::in_data_dir(source.path());
    let target_url = match db.backend() {
        Backend::Sqlite => exact_store::StoreUrl::in_data_dir(target.path()),
        Backend::Postgres => db.url.clone(),
    };
    let world = |url: exact_store::StoreUrl| async move {
        let read = exact_projections::ReadDb::connect(&url).await.unwrap();
        let admin = read.user_by_username("exact").await.unwrap().unwrap();
        let images = read.readable_images(admin.actor(), None).await.unwrap();
        let counts = read.image_statistics(images[0].id, None).await.unwrap();
        let users: Vec<(i64, String)> = read
            .users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        (users, images.len(), counts.total)
    };
    let (users, images, annotations) = world(source_url).await;
    assert_eq!(
        world(target_url.clone()).await,
        (users.clone(), images, annotations)
    );

    // The counters came with the log: a new account gets an id no event used.
    let added = exact()
        .args(with_target(&["user", "add", "newbie"]))
        .env("EXACT_PASSWORD", "newbie-secret")
        .output()
        .await
        .unwrap();
    ok(&added);
    let read = exact_projections::ReadDb::connect(&target_url)
        .await
        .unwrap();
    let newbie = read.user_by_username("newbie").await.unwrap().unwrap();
    assert!(
        users.iter().all(|(id, _)| *id < newbie.id),
        "{users:?} {newbie:?}"
    );

    let again = run_owned(with_target(&[
        "store",
        "import",
        "--input",
        log.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // A line changed by hand: named, and nothing of the file stored.
    let tampered = source.path().join("tampered.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 4 {
                line.replacen("\"source\":\"", "\"source\":\"x", 1)
            } else {
                line.to_owned()
            }
        })
        .collect();
    std::fs::write(&tampered, lines.join("\n")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let refused = run(&[
        "store",
        "import",
        "--data-dir",
        empty.path().to_str().unwrap(),
        "--input",
        tampered.to_str().unwrap(),
    ])
    .await;
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("line 5"), "{said}");
    let untouched = exact_store::open(
        &exact_store::StoreUrl::in_data_dir(empty.path()),
        exact_store::OpenOptions {
            initialize: false,
            ..exact_store::OpenOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(untouched.last_position().await.unwrap(), 0);
}
