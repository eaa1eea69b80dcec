//! What an outside probe of a fresh server found (issue 15), each case as it was reproduced,
//! on both backends: file names that climbed out of the data folder, a UUID that read another
//! team's annotation, a login lock that a remembered password went around, a bulk delete that
//! was half done, a long list answered 500 after it was saved, server paths in errors, emails
//! and tag ids that told one team of another, logins and logouts from other sites, links built
//! on the client's `Host`, and missing protective headers.

mod support;

use std::path::{Component, Path};

use axum::http::{Method, StatusCode};
use exact_store::testing::TestDb;
use serde_json::{json, Value};
use support::{box_annotation, ids_of, image, png, project, Answer, TestApp, ADMIN};

exact_store::on_both_backends!(
    hostile_file_names_never_leave_the_data_folder,
    a_uuid_finds_only_what_the_same_request_made,
    the_login_lock_comes_before_a_remembered_password,
    multiple_delete_is_all_or_nothing,
    a_long_list_of_annotations_is_saved_and_answered,
    errors_name_the_clients_file_not_a_server_path,
    verifications_take_id_in,
    emails_are_shown_to_the_user_their_team_admins_and_superusers,
    set_tag_ids_tell_nothing_of_other_teams,
    logins_and_logouts_come_from_the_servers_own_pages,
    links_are_built_on_the_public_url,
    answers_carry_protective_headers,
    pages_need_a_session_and_static_files_stay_in_their_folder,
);

/// Names a client may send for a file: absolute, climbing, Windows-style, encoded, with NUL
/// and control characters, very long, reserved, hidden, empty.
fn hostile_names(outside: &Path) -> Vec<String> {
    let outside = outside.display();
    vec![
        format!("{outside}/absolute.png"),
        "../../../../climbed.png".into(),
        "..\\..\\..\\windows.png".into(),
        "C:\\Windows\\drive.png".into(),
        "C:drive-relative.png".into(),
        "%2e%2e%2f%2e%2e%2fencoded.png".into(),
        "..%2F..%2Fencoded2.png".into(),
        "nul\u{0}byte.png".into(),
        "control\u{1}\u{7f}\n.png".into(),
        format!("{}.png", "long".repeat(300)),
        "CON.png".into(),
        "nul".into(),
        ".hidden.png".into(),
        "..".into(),
        ".".into(),
        "/".into(),
        "".into(),
        "a/../../b.png".into(),
        "ünïcödé 名前.png".into(),
    ]
}

/// Every file under `root`, as paths relative to it.
fn files_under(root: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    found
}

/// Each component is a plain name the server could have made: no separators, dots, controls.
fn assert_plain(relative: &Path) {
    for component in relative.components() {
        let Component::Normal(name) = component else {
            panic!("{relative:?} has a component that is not a plain name");
        };
        let name = name.to_str().unwrap();
        assert!(
            !name.starts_with('.')
                // 120 for the name, and the suffix of a plain image's pyramid beside it.
                && name.len() <= 120 + ".pyramid.tif".len()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "{relative:?} holds the unsafe name {name:?}"
        );
    }
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

async fn hostile_file_names_never_leave_the_data_folder(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("bob").await;
    let bob = ("bob", "pw-bob");
    let p = project(&app, bob, "Files", 1).await;
    let image_id = image(&app, bob, p.set, "first.png", 40, 30).await;
    let annotation = box_annotation(&app, bob, image_id, p.annotation_type)
        .await
        .to_string();
    let outside = tempfile::tempdir().unwrap();
    let picture = png(20, 20);

    for (i, name) in hostile_names(outside.path()).iter().enumerate() {
        // Media files: kept under a safe name of their own, the client's name shown as given.
        let attached = app
            .multipart(
                "/api/v1/annotations/annotation_media_files/",
                bob,
                &[("annotation", &annotation)],
                &[("file", name, format!("media {i}").as_bytes())],
            )
            .await;
        assert!(
            attached.status == StatusCode::CREATED || attached.status.is_client_error(),
            "{name:?}: {attached:?}"
        );
        if attached.status == StatusCode::CREATED && attached.json["count"] == 1 {
            let id = attached.json["results"][0]["id"].as_i64().unwrap();
            let served = app
                .get(
                    &format!("/api/v1/annotations/annotation_media_files/{id}/file/"),
                    bob,
                )
                .await;
            assert_eq!(served.status, StatusCode::OK, "{name:?}: {served:?}");
            assert_eq!(served.bytes, format!("media {i}").as_bytes());
        }

        // Images: a picture under a hostile name is stored under a safe one.
        let uploaded = app
            .multipart(
                "/api/v1/images/images/",
                bob,
                &[("image_set", &p.set.to_string())],
                &[("file_path", name, &png(10 + i as u32, 10))],
            )
            .await;
        assert!(
            uploaded.status == StatusCode::CREATED || uploaded.status.is_client_error(),
            "{name:?}: {uploaded:?}"
        );
        if uploaded.status == StatusCode::CREATED {
            let filename = uploaded.json["results"][0]["filename"].as_str().unwrap();
            assert_plain(Path::new(filename));
        }

        // The same name inside a zip archive, and as the archive's own name.
        if !name.is_empty() {
            let archive = zip_of(&[(name.as_str(), &picture)]);
            let zipped = app
                .multipart(
                    "/api/v1/images/images/",
                    bob,
                    &[("image_set", &p.set.to_string())],
                    &[("file_path", &format!("{name}.zip"), &archive)],
                )
                .await;
            assert!(
                zipped.status == StatusCode::CREATED || zipped.status.is_client_error(),
                "{name:?} in a zip: {zipped:?}"
            );
        }
    }

    // Refused uploads write no event: a text file under each hostile name.
    let position = app.position().await;
    for name in hostile_names(outside.path()) {
        let refused = app
            .multipart(
                "/api/v1/images/images/",
                bob,
                &[("image_set", &p.set.to_string())],
                &[("file_path", &name, b"not an image at all")],
            )
            .await;
        assert!(refused.status.is_client_error(), "{name:?}: {refused:?}");
        assert!(refused.json["code"].is_string(), "{refused:?}");
    }
    assert_eq!(
        app.position().await,
        position,
        "refused uploads wrote events"
    );

    assert_eq!(
        files_under(outside.path()),
        Vec::<std::path::PathBuf>::new(),
        "a file landed outside the data folder"
    );
    let parent = app.data.path().parent().unwrap();
    for climbed in ["climbed.png", "b.png", "windows.png", "encoded.png"] {
        assert!(!parent.join(climbed).exists(), "{climbed} climbed out");
    }
    let stored = files_under(app.data.path());
    assert!(stored.len() > 20, "{stored:?}");
    for relative in &stored {
        assert_plain(relative);
    }
}

async fn a_uuid_finds_only_what_the_same_request_made(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("alice").await;
    app.user("bob").await;
    let (alice, bob) = (("alice", "pw-alice"), ("bob", "pw-bob"));
    let a = project(&app, alice, "Alices", 1).await;
    let b = project(&app, bob, "Bobs", 1).await;
    let alice_image = image(&app, alice, a.set, "a.png", 100, 100).await;
    let bob_image = image(&app, bob, b.set, "b.png", 100, 100).await;
    let uuid = "0190a0a0-0000-7000-8000-00000000abcd";
    let secret = json!({"image": alice_image, "annotation_type": a.annotation_type,
        "vector": {"x1": 1, "y1": 1, "x2": 9, "y2": 9}, "unique_identifier": uuid,
        "description": "patient 4711, confidential", "meta_data": {"diagnosis": "secret"}});
    let made = app
        .post("/api/v1/annotations/annotations/", alice, secret.clone())
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    let alice_id = made.json["id"].as_i64().unwrap();

    // Alice's retry is answered with what she made, and writes nothing.
    let position = app.position().await;
    let retried = app
        .post("/api/v1/annotations/annotations/", alice, secret)
        .await;
    assert_eq!(retried.status, StatusCode::CREATED, "{retried:?}");
    assert_eq!(retried.json["id"], alice_id);

    // Bob, on his own image with his own type, learns only that the UUID is taken.
    let probe = json!({"image": bob_image, "annotation_type": b.annotation_type,
        "vector": {"x1": 1, "y1": 1, "x2": 9, "y2": 9}, "unique_identifier": uuid});
    let single = app
        .post("/api/v1/annotations/annotations/", bob, probe.clone())
        .await;
    let listed = app
        .post("/api/v1/annotations/annotations/", bob, json!([probe]))
        .await;
    for answer in [&single, &listed] {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{answer:?}");
        assert_eq!(answer.json["field"], "unique_identifier");
        let text = String::from_utf8_lossy(&answer.bytes);
        for leak in ["4711", "secret", "\"id\"", "\"image\"", "vector"] {
            assert!(!text.contains(leak), "{leak} leaked: {text}");
        }
    }
    // Alice herself reusing the UUID on another image of hers is refused too.
    let other_image = image(&app, alice, a.set, "c.png", 120, 100).await;
    let position_before_reuse = app.position().await;
    let moved = app
        .post(
            "/api/v1/annotations/annotations/",
            alice,
            json!({"image": other_image, "annotation_type": a.annotation_type,
                   "vector": {"x1": 1, "y1": 1, "x2": 9, "y2": 9}, "unique_identifier": uuid}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::BAD_REQUEST, "{moved:?}");
    assert_eq!(app.position().await, position_before_reuse);
    assert!(position < position_before_reuse, "the upload was written");
}

async fn login_form(app: &TestApp, user: &str, password: &str, headers: &[(&str, &str)]) -> Answer {
    app.send(
        Method::POST,
        "/api/v1/auth/login/",
        None,
        Some("application/x-www-form-urlencoded"),
        format!("username={user}&password={password}").into_bytes(),
        headers,
    )
    .await
}

async fn the_login_lock_comes_before_a_remembered_password(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("carol").await;
    app.user("dave").await;
    let carol = ("carol", "pw-carol");
    // The right password is remembered now.
    assert_eq!(
        app.get("/api/v1/users/teams/", carol).await.status,
        StatusCode::OK
    );
    let mut refused = Vec::new();
    for guess in 0..12 {
        let answer = app
            .get("/api/v1/users/teams/", ("carol", &format!("guess-{guess}")))
            .await;
        refused.push(answer.status);
    }
    assert!(
        refused[..10].iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{refused:?}"
    );
    assert!(
        refused[10..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{refused:?}"
    );
    // During the lock the right password tells nothing either: Basic and the login form.
    let right = app.get("/api/v1/users/teams/", carol).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS, "{right:?}");
    let form = login_form(&app, "carol", "pw-carol", &[]).await;
    assert_eq!(form.status, StatusCode::TOO_MANY_REQUESTS, "{form:?}");

    // An inactive account: the lock answers first, right password or not.
    let dave_id = app
        .get("/api/v1/users/users/?username=dave", ADMIN)
        .await
        .json["results"][0]["id"]
        .as_i64()
        .unwrap();
    app.patch(
        &format!("/api/v1/users/users/{dave_id}/"),
        ADMIN,
        json!({"is_active": false}),
    )
    .await;
    let inactive = app.get("/api/v1/users/teams/", ("dave", "pw-dave")).await;
    assert_eq!(inactive.status, StatusCode::UNAUTHORIZED, "{inactive:?}");
    for guess in 0..10 {
        app.get("/api/v1/users/teams/", ("dave", &format!("guess-{guess}")))
            .await;
    }
    let locked = app.get("/api/v1/users/teams/", ("dave", "pw-dave")).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{locked:?}");
}

async fn multiple_delete_is_all_or_nothing(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("owner").await;
    app.user("bob").await;
    let (owner, bob) = (("owner", "pw-owner"), ("bob", "pw-bob"));
    let mine = project(&app, bob, "Bobs", 1).await;
    let bob_image = image(&app, bob, mine.set, "b.png", 100, 100).await;
    let theirs = project(&app, owner, "Owners", 1).await;
    let their_image = image(&app, owner, theirs.set, "o.png", 100, 100).await;
    let my_one = box_annotation(&app, bob, bob_image, mine.annotation_type).await;
    let my_two = box_annotation(&app, bob, bob_image, mine.annotation_type).await;
    let their_one = box_annotation(&app, owner, their_image, theirs.annotation_type).await;
    assert!(their_one > my_one);
    // Their set is public: Bob may read it, not delete in it.
    app.patch(
        &format!("/api/v1/images/image_sets/{}/", theirs.set),
        owner,
        json!({"public": true}),
    )
    .await;
    let position = app.position().await;
    let refused = app
        .delete(
            &format!(
                "/api/v1/annotations/annotations/multiple_delete/?id__in={my_one},{their_one}"
            ),
            bob,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_eq!(
        app.position().await,
        position,
        "a refused bulk delete wrote events"
    );
    let first = app
        .get(&format!("/api/v1/annotations/annotations/{my_one}/"), bob)
        .await;
    assert_eq!(first.json["deleted"], false, "{first:?}");
    // An id that does not exist (or cannot be read) refuses the whole list too.
    let unknown = app
        .delete(
            &format!("/api/v1/annotations/annotations/multiple_delete/?id__in={my_one},999999"),
            bob,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{unknown:?}");
    assert_eq!(app.position().await, position);
    // Bob's own two go together, in one append.
    let done = app
        .delete(
            &format!("/api/v1/annotations/annotations/multiple_delete/?id__in={my_two},{my_one}"),
            bob,
        )
        .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{done:?}");
    assert_eq!(app.position().await, position + 2);
    for id in [my_one, my_two] {
        let row = app
            .get(&format!("/api/v1/annotations/annotations/{id}/"), bob)
            .await;
        assert_eq!(row.json["deleted"], true);
    }
    let events = app.state.store.read_page(position + 1, 10).await.unwrap();
    assert_eq!(events.len(), 2);
    let correlation = |i: usize| {
        serde_json::from_str::<Value>(&events[i].metadata).unwrap()["correlation_id"].clone()
    };
    assert_eq!(correlation(0), correlation(1), "one command, one append");
}

async fn a_long_list_of_annotations_is_saved_and_answered(db: TestDb) {
    let app = TestApp::new(db).await;
    let p = project(&app, ADMIN, "Bulk", 2).await;
    let image_id = image(&app, ADMIN, p.set, "bulk.png", 4000, 4000).await;
    // More than SQLite's 32,766 parameters of one statement.
    let count = 33_000;
    let items: Vec<Value> = (0..count)
        .map(|i| {
            let (x, y) = ((i % 180) * 20 + 10, (i / 180) * 20 + 10);
            json!({"image": image_id, "annotation_type": p.annotation_type,
                   "vector": {"x1": x, "y1": y, "x2": x + 5, "y2": y + 5}})
        })
        .collect();
    let position = app.position().await;
    let answer = app
        .post(
            "/api/v1/annotations/annotations/",
            ADMIN,
            Value::Array(items),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.status);
    let created = answer.json.as_array().unwrap();
    assert_eq!(created.len(), count as usize);
    assert_eq!(app.position().await, position + count);
    let listed = app
        .get(
            &format!("/api/v1/annotations/annotations/?image={image_id}&limit=1"),
            ADMIN,
        )
        .await;
    assert_eq!(listed.json["count"], count);
}

async fn errors_name_the_clients_file_not_a_server_path(db: TestDb) {
    let app = TestApp::new(db).await;
    let p = project(&app, ADMIN, "Errors", 1).await;
    let refused = app
        .upload(
            ADMIN,
            &[("image_set", &p.set.to_string())],
            &[("file_path", "notes.txt", b"just some notes")],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{refused:?}"
    );
    let message = refused.json["message"].as_str().unwrap();
    assert!(message.starts_with("notes.txt: "), "{message}");
    let data = app.data.path().display().to_string();
    assert!(!message.contains(&data), "{message}");
    assert!(!message.contains('/'), "a path in {message}");
    // A broken image (a PNG header and nothing else) names the client's file too.
    let broken = app
        .upload(
            ADMIN,
            &[("image_set", &p.set.to_string())],
            &[("file_path", "scan.png", b"\x89PNG\r\n\x1a\nbroken")],
        )
        .await;
    assert!(broken.status.is_client_error(), "{broken:?}");
    let message = broken.json["message"].as_str().unwrap();
    assert!(message.starts_with("scan.png: "), "{message}");
    assert!(!message.contains(&data), "{message}");
}

async fn verifications_take_id_in(db: TestDb) {
    let app = TestApp::new(db).await;
    let p = project(&app, ADMIN, "Verdicts", 1).await;
    let image_id = image(&app, ADMIN, p.set, "v.png", 100, 100).await;
    let mut verdicts = Vec::new();
    for i in 0..3 {
        let made = app
            .post(
                "/api/v1/annotations/annotations/",
                ADMIN,
                json!({"image": image_id, "annotation_type": p.annotation_type,
                       "vector": {"x1": i, "y1": 1, "x2": 9, "y2": 9}}),
            )
            .await;
        let verdict = app
            .post(
                "/api/v1/annotations/verifications/",
                ADMIN,
                json!({"annotation": made.json["id"], "verified": true}),
            )
            .await;
        assert_eq!(verdict.status, StatusCode::CREATED, "{verdict:?}");
        verdicts.push(verdict.json["id"].as_i64().unwrap());
    }
    let asked = app
        .get(
            &format!(
                "/api/v1/annotations/verifications/?id__in={},{}",
                verdicts[0], verdicts[2]
            ),
            ADMIN,
        )
        .await;
    assert_eq!(ids_of(&asked), [verdicts[0], verdicts[2]], "{asked:?}");
}

async fn emails_are_shown_to_the_user_their_team_admins_and_superusers(db: TestDb) {
    let app = TestApp::new(db).await;
    for name in ["lead", "member", "stranger"] {
        let made = app
            .post(
                "/api/v1/users/users/",
                ADMIN,
                json!({"username": name, "password": format!("pw-{name}"),
                       "email": format!("{name}@example.org")}),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    }
    let (lead, member, stranger) = (
        ("lead", "pw-lead"),
        ("member", "pw-member"),
        ("stranger", "pw-stranger"),
    );
    let team = app
        .post("/api/v1/users/teams/", lead, json!({"name": "Lab"}))
        .await;
    let team = team.json["id"].as_i64().unwrap();
    let member_id = app
        .get("/api/v1/users/users/?username=member", ADMIN)
        .await
        .json["results"][0]["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/users/team_membership/",
        lead,
        json!({"team": team, "user": member_id}),
    )
    .await;
    let email_of = |who: (&'static str, &'static str), name: &'static str| {
        let app = &app;
        async move {
            let listed = app
                .get(&format!("/api/v1/users/users/?username={name}"), who)
                .await;
            let one = &listed.json["results"][0];
            let by_team = app
                .get(&format!("/api/v1/users/users/?team={team}"), who)
                .await;
            let in_team = by_team.json["results"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["username"] == name)
                .map(|u| u["email"].clone());
            let single = app
                .get(&format!("/api/v1/users/users/{}/", one["id"]), who)
                .await;
            assert_eq!(single.json["email"], one["email"], "{single:?}");
            if let Some(in_team) = in_team {
                assert_eq!(in_team, one["email"]);
            }
            assert_eq!(one["username"], name, "the other fields stay");
            one["email"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(email_of(member, "member").await, "member@example.org");
    assert_eq!(email_of(lead, "member").await, "member@example.org");
    assert_eq!(email_of(ADMIN, "member").await, "member@example.org");
    assert_eq!(
        email_of(member, "lead").await,
        "",
        "a member is not an admin"
    );
    assert_eq!(email_of(stranger, "member").await, "");
    assert_eq!(email_of(stranger, "lead").await, "");
    assert_eq!(email_of(lead, "stranger").await, "");
}

async fn set_tag_ids_tell_nothing_of_other_teams(db: TestDb) {
    // The same tag name as another team used first, and as nobody used before: the same id.
    let app = TestApp::new(db).await;
    app.user("bob").await;
    app.user("alice").await;
    let (alice, bob) = (("alice", "pw-alice"), ("bob", "pw-bob"));
    let a = project(&app, alice, "Alices", 1).await;
    let b = project(&app, bob, "Bobs", 1).await;
    let tag = |who, set: i64, name: &'static str| {
        let app = &app;
        async move {
            let answer = app
                .post(
                    "/api/v1/images/set_tags/",
                    who,
                    json!({"name": name, "imagesets": [set]}),
                )
                .await;
            assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
            assert_eq!(
                answer.json["imagesets"],
                json!([set]),
                "only the caller's sets"
            );
            answer.json["id"].as_i64().unwrap()
        }
    };
    for name in ["tumour-study-7", "other", "more"] {
        tag(alice, a.set, name).await;
    }
    let used_before = tag(bob, b.set, "tumour-study-7").await;
    let never_used = tag(bob, b.set, "never-used-elsewhere").await;
    // Bob's ids are those a store where Alice never tagged anything gives.
    let fresh = TestApp::new(TestDb::new(app.db.backend()).await).await;
    fresh.user("bob").await;
    let fb = project(&fresh, bob, "Bobs", 1).await;
    for (name, id) in [
        ("never-used-elsewhere", never_used),
        ("tumour-study-7", used_before),
    ] {
        let answer = fresh
            .post(
                "/api/v1/images/set_tags/",
                bob,
                json!({"name": name, "imagesets": [fb.set]}),
            )
            .await;
        assert_eq!(answer.json["id"], id, "{name}");
    }
    // The set shows the same ids, and filters by them.
    let set = app
        .get(&format!("/api/v1/images/image_sets/{}/", b.set), bob)
        .await;
    let mut shown: Vec<i64> = set.json["set_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    shown.sort_unstable();
    let mut expected = vec![used_before, never_used];
    expected.sort_unstable();
    assert_eq!(shown, expected);
    let filtered = app
        .get(
            &format!("/api/v1/images/image_sets/?set_tags={used_before}"),
            bob,
        )
        .await;
    assert_eq!(filtered.json["count"], 1, "{filtered:?}");
    let got = app
        .get(&format!("/api/v1/images/set_tags/{used_before}/"), bob)
        .await;
    assert_eq!(got.json["imagesets"], json!([b.set]), "{got:?}");
}

async fn logins_and_logouts_come_from_the_servers_own_pages(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("erin").await;
    let host = [("host", "exact.example.org")];
    // Login CSRF: a form posted from another site is refused and opens no session.
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("referer", "https://evil.example/page"),
        ("origin", "http://exact.example.org.evil.example"),
    ] {
        let forced = login_form(&app, "erin", "pw-erin", &[host[0], (name, value)]).await;
        assert_eq!(
            forced.status,
            StatusCode::FORBIDDEN,
            "{name}: {value}: {forced:?}"
        );
        assert_eq!(forced.json["code"], "cross_origin");
        assert!(!forced.headers.contains_key("set-cookie"), "{forced:?}");
    }
    // From the server's own page, and from a client that is no browser.
    let own = login_form(
        &app,
        "erin",
        "pw-erin",
        &[host[0], ("origin", "http://exact.example.org")],
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    let script = login_form(&app, "erin", "pw-erin", &host).await;
    assert_eq!(script.status, StatusCode::OK, "{script:?}");
    let cookie = script.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = script.json["csrf_token"].as_str().unwrap().to_owned();
    let logout = |extra: Vec<(&'static str, String)>| {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            let mut headers: Vec<(&str, &str)> = vec![("cookie", &cookie), host[0]];
            for (name, value) in &extra {
                headers.push((name, value));
            }
            app.send(
                Method::POST,
                "/api/v1/auth/logout/",
                None,
                None,
                vec![],
                &headers,
            )
            .await
        }
    };
    let session_alive = || {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            app.send(
                Method::GET,
                "/api/v1/auth/session/",
                None,
                None,
                vec![],
                &[("cookie", &cookie)],
            )
            .await
            .status
                == StatusCode::OK
        }
    };
    // Logout CSRF: without the token, or from another site, the session stays.
    let forged = logout(vec![]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{forged:?}");
    assert_eq!(forged.json["code"], "csrf_failed");
    let elsewhere = logout(vec![
        ("x-csrftoken", csrf.clone()),
        ("origin", "https://evil.example".into()),
    ])
    .await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN, "{elsewhere:?}");
    assert!(session_alive().await);
    let done = logout(vec![("x-csrftoken", csrf)]).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{done:?}");
    let cleared: Vec<&str> = done
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("exact_session=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    assert!(!session_alive().await);
}

async fn links_are_built_on_the_public_url(db: TestDb) {
    let app = TestApp::with_config(db, |config| {
        config.set_public_url(Some("https://exact.example.org/"));
    })
    .await;
    for i in 0..3 {
        app.post(
            "/api/v1/users/teams/",
            ADMIN,
            json!({"name": format!("Team {i}")}),
        )
        .await;
    }
    let page = app
        .send(
            Method::GET,
            "/api/v1/users/teams/?limit=1",
            Some(ADMIN),
            None,
            vec![],
            &[("host", "evil.example"), ("x-forwarded-proto", "http")],
        )
        .await;
    assert_eq!(
        page.json["next"], "https://exact.example.org/api/v1/users/teams/?limit=1&offset=1",
        "{page:?}"
    );
    // Past the end: no next page; the previous one is the last with rows.
    let past = app
        .get("/api/v1/users/teams/?limit=2&offset=50", ADMIN)
        .await;
    assert_eq!(past.json["results"], json!([]));
    assert_eq!(past.json["next"], Value::Null, "{past:?}");
    assert_eq!(
        past.json["previous"], "https://exact.example.org/api/v1/users/teams/?limit=2&offset=2",
        "{past:?}"
    );
    let middle = app
        .get("/api/v1/users/teams/?limit=2&offset=1", ADMIN)
        .await;
    assert_eq!(middle.json["next"], Value::Null, "{middle:?}");
    assert_eq!(
        middle.json["previous"], "https://exact.example.org/api/v1/users/teams/?limit=2",
        "{middle:?}"
    );
}

async fn answers_carry_protective_headers(db: TestDb) {
    let app = TestApp::new(db).await;
    let p = project(&app, ADMIN, "Headers", 1).await;
    let image_id = image(&app, ADMIN, p.set, "h.png", 60, 60).await;
    let listed = app.get("/api/v1/images/image_sets/", ADMIN).await;
    let error = app.get("/api/v1/images/image_sets/999/", ADMIN).await;
    for answer in [&listed, &error] {
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        assert_eq!(answer.headers["x-frame-options"], "DENY");
        assert_eq!(answer.headers["cache-control"], "no-store", "{answer:?}");
    }
    // Pixels keep their own cache policy.
    let tile = app
        .get(
            &format!("/images/image/{image_id}/0/0/tile_files/6/0_0.jpeg"),
            ADMIN,
        )
        .await;
    assert_eq!(tile.status, StatusCode::OK);
    assert!(tile.headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    assert_eq!(tile.headers["x-content-type-options"], "nosniff");

    // An uploaded page is served as bytes to save, never as a page.
    let annotation = box_annotation(&app, ADMIN, image_id, p.annotation_type).await;
    let attached = app
        .multipart(
            "/api/v1/annotations/annotation_media_files/",
            ADMIN,
            &[("annotation", &annotation.to_string())],
            &[
                (
                    "file",
                    "page.html",
                    b"<script>alert(document.cookie)</script>",
                ),
                ("file", "drawing.svg", b"<svg onload=\"alert(1)\"/>"),
                ("file", "photo.png", &png(4, 4)),
            ],
        )
        .await;
    assert_eq!(attached.status, StatusCode::CREATED, "{attached:?}");
    let types: Vec<String> = {
        let mut types = Vec::new();
        for file in attached.json["results"].as_array().unwrap() {
            let served = app
                .get(
                    &format!(
                        "/api/v1/annotations/annotation_media_files/{}/file/",
                        file["id"]
                    ),
                    ADMIN,
                )
                .await;
            assert_eq!(served.status, StatusCode::OK);
            assert_eq!(served.headers["x-content-type-options"], "nosniff");
            assert!(served.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment"));
            assert!(served.headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("sandbox"));
            types.push(served.headers["content-type"].to_str().unwrap().to_owned());
        }
        types
    };
    assert_eq!(
        types,
        [
            "application/octet-stream",
            "application/octet-stream",
            "image/png"
        ]
    );

    // Health: the status for anyone, the rest for those signed in.
    let anonymous = app
        .send(Method::GET, "/api/v1/health", None, None, vec![], &[])
        .await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert_eq!(anonymous.json, json!({"status": "ok"}));
    let signed_in = app.get("/api/v1/health", ADMIN).await;
    assert_eq!(signed_in.json["status"], "ok");
    assert_eq!(signed_in.json["position"], app.position().await);
    let wrong = app.get("/api/v1/health", ("exact", "wrong")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
}

async fn pages_need_a_session_and_static_files_stay_in_their_folder(db: TestDb) {
    let app = TestApp::new(db).await;
    let anonymous = |path: &'static str| {
        let app = &app;
        async move { app.send(Method::GET, path, None, None, vec![], &[]).await }
    };
    for page in [
        "/",
        "/images/imageset/1/",
        "/annotations/1/",
        "/annotations/1/verify/",
        "/administration/",
        "/users/settings/",
        "/users/team/1/",
    ] {
        let answer = anonymous(page).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{page}: {answer:?}");
        let location = answer.headers["location"].to_str().unwrap();
        assert!(
            location.starts_with("/accounts/login/?next=%2F"),
            "{location}"
        );
    }
    let login = anonymous("/accounts/login/").await;
    assert_eq!(login.status, StatusCode::OK);
    let policy = login.headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("script-src 'self';") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    assert_eq!(login.headers["cache-control"], "no-store");
    for path in [
        "/static/x/..%2F..%2F..%2FCargo.toml",
        "/static/x/%2e%2e/%2e%2e/api/Cargo.toml",
        "/static/x/vendor/..%2F..%2Ftemplates%2Fbase.html",
        "/static/x/vendor/openseadragon/..%2F..%2F..%2FCargo.toml",
    ] {
        let answer = anonymous(path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}: {answer:?}");
    }
    // The stylesheet itself, cached for a year under its version.
    let html = String::from_utf8(login.bytes).unwrap();
    let css = html
        .split("href=\"")
        .find_map(|rest| rest.split('"').next().filter(|h| h.ends_with("app.css")))
        .unwrap()
        // (The template escapes `/` in attributes; a browser reads it back.)
        .replace("&#x2f;", "/");
    let sheet = app.send(Method::GET, &css, None, None, vec![], &[]).await;
    assert_eq!(sheet.status, StatusCode::OK);
    assert!(sheet.headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
}
