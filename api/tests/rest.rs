//! EXACT's REST API over HTTP, on both backends: accounts, a whole labelling session, the
//! permission matrix, uploads and bad input (which must change nothing).

mod support;

use std::io::Write;

use axum::http::{Method, StatusCode};
use exact_store::testing::TestDb;
use serde_json::{json, Value};
use support::{add_member, box_annotation, ids_of, image, multipart, png, project, TestApp, ADMIN};

exact_store::on_both_backends!(
    first_start_creates_the_admin_and_basic_auth_is_checked,
    a_team_annotates_an_uploaded_image,
    every_route_checks_the_permission_matrix,
    uploads_are_streamed_checked_and_all_or_nothing,
    bad_input_is_a_json_4xx_and_changes_nothing,
    sessions_and_tokens_are_ways_in_too,
    live_updates_resume_from_a_position_and_stay_within_the_set,
    annotation_lists_filter_and_expand_as_exact_does,
    set_versions_read_annotations_as_they_were,
    set_tags_are_names_on_sets_with_stable_ids,
    screening_walks_the_tiles_of_an_image,
    media_files_attach_to_annotations,
    pins_are_each_users_own_and_put_sets_first_on_the_home_page,
    a_multi_page_tiff_is_one_image_with_a_frame_per_page,
    deletes_and_corrections_exact_accepts_are_events,
    list_filters_are_typed_and_a_refusal_names_the_parameter,
    verified_by_user_holds_however_many_the_caller_verified,
    clinical_mode_asks_for_reasons_and_signatures,
    a_creation_answers_what_a_read_answers,
);

/// A creation is answered from the envelopes it appended, not read back: the answer must be
/// what a read of the annotation answers, for every kind of vector and field, a single POST
/// and a list, in the caller's name and in another's.
async fn a_creation_answers_what_a_read_answers(db: TestDb) {
    let app = TestApp::new(db).await;
    let bob = app.user("bob").await;
    let boxes = project(&app, ADMIN, "answers", 1).await;
    let image = image(&app, ADMIN, boxes.set, "a.png", 500, 400).await;
    let mut types = vec![boxes.annotation_type];
    for (name, vector_type) in [("point", 2), ("polygon", 5), ("whole", 7)] {
        let made = app
            .post(
                "/api/v1/annotations/annotation_types/",
                ADMIN,
                json!({"name": name, "product": boxes.product, "vector_type": vector_type}),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
        types.push(made.json["id"].as_i64().unwrap());
    }
    let bodies = [
        json!({"image": image, "annotation_type": types[0],
               "vector": {"x1": 10.5, "y1": 20, "x2": 30, "y2": 44.25},
               "description": "Zellkern ☃ \"quoted\"", "meta_data": {"score": 0.93, "tags": ["a"]}}),
        json!({"image": image, "annotation_type": types[1], "vector": {"x1": 7, "y1": 9},
               "unique_identifier": "0193a5e6-8a0b-7c3d-9e1f-2a3b4c5d6e7f", "user": bob}),
        json!({"image": image, "annotation_type": types[2],
               "vector": {"x1": 1, "y1": 1, "x2": 50, "y2": 1, "x3": 25, "y3": 40, "frame": 1}}),
        json!({"image": image, "annotation_type": types[3], "vector": null}),
    ];
    let mut answered = Vec::new();
    for body in &bodies[..2] {
        let one = app
            .post("/api/v1/annotations/annotations/", ADMIN, body.clone())
            .await;
        assert_eq!(one.status, StatusCode::CREATED, "{one:?}");
        answered.push(one.json);
    }
    let list = app
        .post(
            "/api/v1/annotations/annotations/",
            ADMIN,
            Value::Array(bodies[2..].to_vec()),
        )
        .await;
    assert_eq!(list.status, StatusCode::CREATED, "{list:?}");
    answered.extend(list.json.as_array().unwrap().iter().cloned());
    assert_eq!(
        answered[1]["user"]["id"]
            .as_i64()
            .or(answered[1]["user"].as_i64()),
        Some(bob)
    );
    for answer in &answered {
        let id = answer["id"].as_i64().unwrap();
        let read = app
            .get(&format!("/api/v1/annotations/annotations/{id}/"), ADMIN)
            .await;
        assert_eq!(read.status, StatusCode::OK, "{read:?}");
        assert_eq!(answer, &read.json, "annotation {id}: answered, then read");
    }
}

async fn first_start_creates_the_admin_and_basic_auth_is_checked(db: TestDb) {
    let app = TestApp::new(db).await;
    // A second start finds the account and creates nothing.
    let before = app.position().await;
    app.state.ensure_admin(None).await.unwrap();
    assert_eq!(app.position().await, before);

    let me = app.get("/api/v1/users/users/", ADMIN).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json["results"][0]["username"], "exact");
    assert_eq!(me.json["results"][0]["is_superuser"], true);
    assert!(me.json["results"][0].get("password_hash").is_none());

    let anonymous = app
        .send(Method::GET, "/api/v1/users/users/", None, None, vec![], &[])
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.json["code"], "unauthorized");
    let wrong = app.get("/api/v1/users/users/", ("exact", "nope")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    let ann = app.user("ann").await;
    assert_eq!(
        app.get("/api/v1/users/teams/", ("ann", "pw-ann"))
            .await
            .status,
        StatusCode::OK
    );
    // A changed password ends the remembered one at once.
    let changed = app
        .patch(
            &format!("/api/v1/users/users/{ann}/"),
            ADMIN,
            json!({"password": "new-secret"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    assert_eq!(
        app.get("/api/v1/users/teams/", ("ann", "pw-ann"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/v1/users/teams/", ("ann", "new-secret"))
            .await
            .status,
        StatusCode::OK
    );
    // So does deactivation, though the password was just verified and remembered.
    let gone = app
        .delete(&format!("/api/v1/users/users/{ann}/"), ADMIN)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let refused = app.get("/api/v1/users/teams/", ("ann", "new-secret")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");

    // Only a superuser creates accounts.
    app.user("bob").await;
    let by_bob = app
        .post(
            "/api/v1/users/users/",
            ("bob", "pw-bob"),
            json!({"username": "eve"}),
        )
        .await;
    assert_eq!(by_bob.status, StatusCode::FORBIDDEN, "{by_bob:?}");

    // Repeated failures: the account is throttled, even for the right password.
    for _ in 0..10 {
        let answer = app.get("/api/v1/users/teams/", ("bob", "guess")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let throttled = app.get("/api/v1/users/teams/", ("bob", "guess")).await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{throttled:?}"
    );
}

async fn a_team_annotates_an_uploaded_image(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    let ann = ("ann", "pw-ann");
    let p = project(&app, ann, "Lab", 1).await;
    let png_bytes = png(600, 400);
    let uploaded = app
        .upload(
            ann,
            &[("image_set", &p.set.to_string()), ("image_type", "0")],
            &[("file_path", "slide one.png", &png_bytes)],
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{uploaded:?}");
    assert_eq!(uploaded.json["count"], 1);
    let img = &uploaded.json["results"][0];
    assert_eq!(
        (img["width"].as_i64(), img["height"].as_i64()),
        (Some(600), Some(400))
    );
    assert_eq!(img["name"], "slide_one.png");
    let image_id = img["id"].as_i64().unwrap();

    // One annotation, then a list in one append.
    let before = app.position().await;
    let one = app
        .post(
            "/api/v1/annotations/annotations/",
            ann,
            json!({"image": image_id, "annotation_type": p.annotation_type,
                   "vector": {"x1": 10, "y1": 10, "x2": 50, "y2": 40}}),
        )
        .await;
    assert_eq!(one.status, StatusCode::CREATED, "{one:?}");
    assert!(one.json["unique_identifier"]
        .as_str()
        .is_some_and(|u| u.len() == 36));
    let one_id = one.json["id"].as_i64().unwrap();
    assert_eq!(app.position().await, before + 1);
    let list: Vec<Value> = (0..120)
        .map(|i| {
            let x = (i % 12) * 45 + 5;
            let y = (i / 12) * 35 + 5;
            json!({"image": image_id, "annotation_type": p.annotation_type,
                   "vector": {"x1": x, "y1": y, "x2": x + 20, "y2": y + 20}})
        })
        .collect();
    let before = app.position().await;
    let many = app
        .post("/api/v1/annotations/annotations/", ann, Value::Array(list))
        .await;
    assert_eq!(many.status, StatusCode::CREATED, "{many:?}");
    assert_eq!(many.json.as_array().unwrap().len(), 120);
    assert_eq!(
        app.position().await,
        before + 120,
        "one append of 120 events"
    );

    // Pages as DRF gives them.
    let page = app
        .get(
            &format!("/api/v1/annotations/annotations/?image={image_id}&limit=50&offset=100"),
            ann,
        )
        .await;
    assert_eq!(page.json["count"], 121);
    assert_eq!(page.json["results"].as_array().unwrap().len(), 21);
    assert!(page.json["next"].is_null());
    // A link a client can follow: the whole path, `/api/v1` included.
    let previous = page.json["previous"].as_str().unwrap();
    assert!(previous.contains("offset=50"), "{previous}");
    let followed = app
        .get(&previous[previous.find("/api/v1/").unwrap()..], ann)
        .await;
    assert_eq!(followed.status, StatusCode::OK, "{previous}: {followed:?}");
    assert_eq!(followed.json["results"].as_array().unwrap().len(), 50);
    // The viewport filter.
    let window = app
        .get(
            &format!(
                "/api/v1/annotations/annotations/?image={image_id}&in_bbox=0,0,60,45&limit=500"
            ),
            ann,
        )
        .await;
    let ids: Vec<i64> = window.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(ids.contains(&one_id) && ids.len() < 10, "{ids:?}");

    // A partial update with a reason, then a stale If-Match.
    let path = format!("/api/v1/annotations/annotations/{one_id}/");
    let etag = app.get(&path, ann).await.headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let changed = app
        .send(
            Method::PATCH,
            &path,
            Some(ann),
            Some("application/json"),
            serde_json::to_vec(&json!({"vector": {"x1": 12, "y1": 10, "x2": 50, "y2": 40}, "reason": "tighter box"}))
                .unwrap(),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    assert_eq!(changed.json["vector"]["x1"], 12);
    let position = app.position().await;
    let stale = app
        .send(
            Method::PATCH,
            &path,
            Some(ann),
            Some("application/json"),
            br#"{"description": "late"}"#.to_vec(),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{stale:?}");
    assert_eq!(app.position().await, position);
    let deleted = app.delete(&path, ann).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let history = app.get(&format!("{path}history/"), ann).await;
    let versions = history.json["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3, "{history:?}");
    assert_eq!(versions[1]["reason"], "tighter box");
    assert_eq!(versions[1]["changed"], json!(["vector"]));
    assert_eq!(versions[2]["state"]["deleted"], true);
    // As of the position before the change, the old box.
    let as_of = versions[1]["position"].as_i64().unwrap() - 1;
    let old = app
        .get(
            &format!("/api/v1/annotations/annotations/?id={one_id}&as_of={as_of}"),
            ann,
        )
        .await;
    assert_eq!(old.json["results"][0]["vector"]["x1"], 10, "{old:?}");
    let live = app
        .get(
            &format!("/api/v1/annotations/annotations/?image={image_id}&deleted=false"),
            ann,
        )
        .await;
    assert_eq!(live.json["count"], 120);

    // Verdicts as form fields and as JSON; a later one replaces the earlier.
    let second = many.json[0]["id"].as_i64().unwrap();
    let form = app
        .send(
            Method::POST,
            "/api/v1/annotations/verifications/",
            Some(ann),
            Some("application/x-www-form-urlencoded"),
            format!("annotation={second}&verified=true").into_bytes(),
            &[],
        )
        .await;
    assert_eq!(form.status, StatusCode::CREATED, "{form:?}");
    let again = app
        .post(
            "/api/v1/annotations/verifications/",
            ann,
            json!({"annotation": second, "verified": false}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    let verdicts = app
        .get(
            &format!("/api/v1/annotations/verifications/?annotation={second}"),
            ann,
        )
        .await;
    assert_eq!(verdicts.json["count"], 1);
    assert_eq!(verdicts.json["results"][0]["verified"], false);

    // The access log, as the viewer reports it.
    let opened = app
        .post(
            "/api/v1/annotations/log_image_actions/",
            ann,
            json!({"image": image_id, "action": 1}),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{opened:?}");
    assert_eq!(opened.json["ip"], "10.0.0.1");

    // Pixels: thumbnail, slide information, DeepZoom, a patch; the download is the upload.
    let thumb = app
        .get(&format!("/api/v1/images/images/{image_id}/thumbnail/"), ann)
        .await;
    assert_eq!(thumb.status, StatusCode::OK);
    let decoded = image::load_from_memory(&thumb.bytes).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (128, 85));
    let info = app
        .get(
            &format!("/api/v1/images/images/{image_id}/slide_information/"),
            ann,
        )
        .await;
    assert_eq!(info.json["level_dimensions"][0], json!([600, 400]));
    let dzi = app
        .get(&format!("/images/image/{image_id}/0/0/tile/"), ann)
        .await;
    assert!(
        dzi.json.as_str().unwrap().contains("Width=\"600\""),
        "{dzi:?}"
    );
    let tile = app
        .get(
            &format!("/images/image/{image_id}/0/0/tile_files/10/0_0.jpeg"),
            ann,
        )
        .await;
    assert_eq!(tile.status, StatusCode::OK);
    assert_eq!(tile.headers["content-type"], "image/jpeg");
    let patch = app
        .get(
            &format!(
                "/api/v1/images/images/{image_id}/get_patch/?x=10&y=20&level=0&width=30&height=40"
            ),
            ann,
        )
        .await;
    let patch = image::load_from_memory(&patch.bytes).unwrap().to_rgb8();
    assert_eq!(patch.dimensions(), (30, 40));
    assert_eq!(patch.get_pixel(0, 0).0, [10, 20, 128]);
    let download = app
        .get(
            &format!("/images/api/image/download/{image_id}/?original_image=true"),
            ann,
        )
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert!(
        download.bytes == png_bytes,
        "the download is the uploaded file"
    );

    // Lists carry the links exact-sync reads.
    let set = app
        .get(&format!("/api/v1/images/image_sets/{}/", p.set), ann)
        .await;
    assert_eq!(set.json["images"], json!([image_id]));
    assert_eq!(set.json["product_set"], json!([p.product]));
    let team = app
        .get(&format!("/api/v1/users/teams/{}/", p.team), ann)
        .await;
    assert_eq!(team.json["image_sets"], json!([p.set]));
    let img = app
        .get(&format!("/api/v1/images/images/{image_id}/"), ann)
        .await;
    assert_eq!(img.json["annotations"].as_array().unwrap().len(), 120);
}

async fn every_route_checks_the_permission_matrix(db: TestDb) {
    let app = TestApp::new(db).await;
    for name in ["owner", "member", "outsider"] {
        app.user(name).await;
    }
    let owner = ("owner", "pw-owner");
    let member = ("member", "pw-member");
    let outsider = ("outsider", "pw-outsider");
    let p = project(&app, owner, "Owners", 1).await;
    let member_id = app
        .get("/api/v1/users/users/?username=member", ADMIN)
        .await
        .json["results"][0]["id"]
        .as_i64()
        .unwrap();
    let joined = app
        .post(
            "/api/v1/users/team_membership/",
            owner,
            json!({"team": p.team, "user": member_id}),
        )
        .await;
    assert_eq!(joined.status, StatusCode::CREATED, "{joined:?}");
    let image_id = image(&app, owner, p.set, "a.png", 300, 200).await;
    let box_on = |image: i64| {
        json!({"image": image, "annotation_type": p.annotation_type,
               "vector": {"x1": 1, "y1": 1, "x2": 9, "y2": 9}})
    };
    let created = app
        .post("/api/v1/annotations/annotations/", member, box_on(image_id))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let annotation = created.json["id"].as_i64().unwrap();

    let reads = [
        format!("/api/v1/images/image_sets/{}/", p.set),
        format!("/api/v1/images/images/{image_id}/"),
        format!("/api/v1/images/images/{image_id}/thumbnail/"),
        format!("/api/v1/images/images/{image_id}/slide_information/"),
        format!("/images/image/{image_id}/0/0/tile/"),
        format!("/images/image/{image_id}/0/0/tile_files/9/0_0.jpeg"),
        format!("/images/api/image/download/{image_id}/"),
        format!("/api/v1/annotations/annotations/{annotation}/"),
        format!("/api/v1/annotations/annotations/{annotation}/history/"),
        format!("/api/v1/users/teams/{}/", p.team),
    ];
    for path in &reads {
        assert_eq!(
            app.get(path, member).await.status,
            StatusCode::OK,
            "member reads {path}"
        );
        assert_eq!(
            app.get(path, ADMIN).await.status,
            StatusCode::OK,
            "superuser reads {path}"
        );
        let hidden = app.get(path, outsider).await;
        assert_eq!(
            hidden.status,
            StatusCode::NOT_FOUND,
            "outsider reads {path}: {hidden:?}"
        );
        assert_eq!(hidden.json["code"], "not_found");
    }
    // Lists show the outsider nothing of the team's.
    for list in [
        "/api/v1/images/image_sets/",
        "/api/v1/images/images/",
        "/api/v1/annotations/annotations/",
        "/api/v1/users/teams/",
        "/api/v1/administration/products/",
        "/api/v1/annotations/annotation_types/",
    ] {
        let answer = app.get(list, outsider).await;
        assert_eq!(answer.json["count"], 0, "{list}: {answer:?}");
        assert!(
            app.get(list, member).await.json["count"].as_i64().unwrap() > 0,
            "{list}"
        );
    }
    let position = app.position().await;
    let writes = [
        app.post(
            "/api/v1/annotations/annotations/",
            outsider,
            box_on(image_id),
        )
        .await,
        app.patch(
            &format!("/api/v1/annotations/annotations/{annotation}/"),
            outsider,
            json!({"description": "x"}),
        )
        .await,
        app.delete(
            &format!("/api/v1/annotations/annotations/{annotation}/"),
            outsider,
        )
        .await,
        app.post(
            "/api/v1/annotations/verifications/",
            outsider,
            json!({"annotation": annotation, "verified": true}),
        )
        .await,
        app.upload(
            outsider,
            &[("image_set", &p.set.to_string())],
            &[("file_path", "b.png", &png(10, 10))],
        )
        .await,
    ];
    for answer in &writes {
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{answer:?}");
    }
    assert_eq!(
        app.position().await,
        position,
        "refused writes write nothing"
    );

    // Public: readable by all, annotated by none outside; public collaboration: annotated too.
    let public = app
        .patch(
            &format!("/api/v1/images/image_sets/{}/", p.set),
            owner,
            json!({"public": true}),
        )
        .await;
    assert_eq!(public.status, StatusCode::OK, "{public:?}");
    assert_eq!(app.get(&reads[1], outsider).await.status, StatusCode::OK);
    let read_only = app
        .post(
            "/api/v1/annotations/annotations/",
            outsider,
            box_on(image_id),
        )
        .await;
    assert_eq!(read_only.status, StatusCode::FORBIDDEN, "{read_only:?}");
    let deleting = app
        .delete(&format!("/api/v1/images/images/{image_id}/"), outsider)
        .await;
    assert_eq!(deleting.status, StatusCode::FORBIDDEN, "{deleting:?}");
    app.patch(
        &format!("/api/v1/images/image_sets/{}/", p.set),
        owner,
        json!({"public_collaboration": true}),
    )
    .await;
    let collaborating = app
        .post(
            "/api/v1/annotations/annotations/",
            outsider,
            box_on(image_id),
        )
        .await;
    assert_eq!(
        collaborating.status,
        StatusCode::CREATED,
        "{collaborating:?}"
    );
    // Deleting images stays with the team's admin and the set's creator.
    let by_member = app
        .delete(&format!("/api/v1/images/images/{image_id}/"), member)
        .await;
    assert_eq!(by_member.status, StatusCode::FORBIDDEN, "{by_member:?}");
    let by_owner = app
        .delete(&format!("/api/v1/images/images/{image_id}/"), owner)
        .await;
    assert_eq!(by_owner.status, StatusCode::NO_CONTENT, "{by_owner:?}");
    assert_eq!(
        app.get(&reads[1], owner).await.status,
        StatusCode::NOT_FOUND
    );
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }
    out.into_inner()
}

/// Files under the data folder's `images/`, as relative paths.
fn stored_files(app: &TestApp) -> Vec<String> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let root = app.data.path().join("images");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

async fn uploads_are_streamed_checked_and_all_or_nothing(db: TestDb) {
    let app = TestApp::with_config(db, |config| config.max_upload_bytes = 2 << 20).await;
    let p = project(&app, ADMIN, "Uploads", 1).await;
    let set = p.set.to_string();
    let fields = [("image_set", set.as_str())];

    // A zip with two images and a text file: two images.
    let archive = zip_of(&[
        ("case/a.png", &png(64, 48)),
        ("case/b.png", &png(32, 32)),
        ("notes.txt", b"hi"),
    ]);
    let zipped = app
        .upload(ADMIN, &fields, &[("file_path", "batch.zip", &archive)])
        .await;
    assert_eq!(zipped.status, StatusCode::CREATED, "{zipped:?}");
    assert_eq!(zipped.json["count"], 2);

    let refuse = |answer: &support::Answer, code: &str| {
        assert!(answer.status.is_client_error(), "{answer:?}");
        assert_eq!(answer.json["code"], code, "{answer:?}");
    };
    let position = app.position().await;
    let files = stored_files(&app);
    // Unreadable: a named 422, and neither file nor event stays; the good file beside it neither.
    let broken = app
        .upload(
            ADMIN,
            &fields,
            &[
                ("file_path", "ok.png", &png(20, 20)),
                ("file_path", "broken.svs", b"not a slide"),
            ],
        )
        .await;
    assert_eq!(
        broken.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{broken:?}"
    );
    assert!(
        broken.json["message"]
            .as_str()
            .unwrap()
            .contains("broken.svs"),
        "{broken:?}"
    );
    // Path traversal and absolute names inside a zip.
    let traversal = zip_of(&[("../../escape.png", &png(8, 8))]);
    refuse(
        &app.upload(ADMIN, &fields, &[("file_path", "t.zip", &traversal)])
            .await,
        "unsafe_archive",
    );
    let absolute = zip_of(&[("/tmp/abs.png", &png(8, 8))]);
    refuse(
        &app.upload(ADMIN, &fields, &[("file_path", "a.zip", &absolute)])
            .await,
        "unsafe_archive",
    );
    // A bomb: a megabyte of zeros per compressed kilobyte.
    let bomb = zip_of(&[("zeros.png", &vec![0u8; 50 << 20])]);
    refuse(
        &app.upload(ADMIN, &fields, &[("file_path", "bomb.zip", &bomb)])
            .await,
        "unsafe_archive",
    );
    // Over the size limit.
    let big = vec![7u8; 3 << 20];
    let too_big = app
        .upload(ADMIN, &fields, &[("file_path", "big.png", &big)])
        .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE, "{too_big:?}");
    // The same image again.
    let again = app
        .upload(ADMIN, &fields, &[("file_path", "a.png", &png(64, 48))])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");
    // No set given.
    refuse(
        &app.upload(ADMIN, &[], &[("file_path", "c.png", &png(8, 8))])
            .await,
        "required",
    );

    assert_eq!(
        app.position().await,
        position,
        "no refused upload wrote an event"
    );
    assert_eq!(stored_files(&app), files, "no refused upload left a file");
    assert!(!app.data.path().join("escape.png").exists());
    let staging = std::fs::read_dir(app.data.path().join("uploads"))
        .unwrap()
        .count();
    assert_eq!(staging, 0, "staging folders are removed");
}

async fn bad_input_is_a_json_4xx_and_changes_nothing(db: TestDb) {
    let app = TestApp::new(db).await;
    let p = project(&app, ADMIN, "Inputs", 1).await;
    let image_id = image(&app, ADMIN, p.set, "x.png", 100, 100).await;
    let position = app.position().await;
    let post = |body: Vec<u8>| {
        let app = &app;
        async move {
            app.send(
                Method::POST,
                "/api/v1/annotations/annotations/",
                Some(ADMIN),
                Some("application/json"),
                body,
                &[],
            )
            .await
        }
    };
    let good = |vector: Value| json!({"image": image_id, "annotation_type": p.annotation_type, "vector": vector});
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            serde_json::to_vec(&json!({"image": "seven", "annotation_type": p.annotation_type}))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            serde_json::to_vec(&json!({"image": image_id})).unwrap(),
            StatusCode::BAD_REQUEST,
            "required",
        ),
        (
            serde_json::to_vec(
                &good(json!({"x1": 1, "y1": 1, "x2": 5, "y2": 5}))
                    .as_object()
                    .map(|o| {
                        let mut o = o.clone();
                        o.insert("image".into(), json!(99_999));
                        Value::Object(o)
                    })
                    .unwrap(),
            )
            .unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            serde_json::to_vec(&good(json!({"x1": 50, "y1": 1, "x2": 5, "y2": 5}))).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            serde_json::to_vec(&good(json!({"x1": "NaN", "y1": 1, "x2": 5, "y2": 5}))).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            serde_json::to_vec(&good(json!({"x1": 1, "y1": 1, "x2": 5000, "y2": 5}))).unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            serde_json::to_vec(&json!([
                good(json!({"x1": 1, "y1": 1, "x2": 5, "y2": 5})),
                good(json!({"x1": 9, "y1": 1}))
            ]))
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            serde_json::to_vec(
                &good(json!({"x1": 1, "y1": 1, "x2": 5, "y2": 5}))
                    .as_object()
                    .map(|o| {
                        let mut o = o.clone();
                        o.insert("unique_identifier".into(), json!("not-a-uuid"));
                        Value::Object(o)
                    })
                    .unwrap(),
            )
            .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            vec![b'['; 70 << 20],
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
        let answer = post(body).await;
        assert_eq!(answer.status, status, "{shown}: {answer:?}");
        assert_eq!(answer.json["code"], code, "{shown}: {answer:?}");
        assert!(answer.json["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    for query in [
        "limit=0",
        "limit=abc",
        "offset=-1",
        "image=x",
        "in_bbox=1,2,3",
        "in_bbox=5,5,1,1",
        "time__gte=yesterday",
        "deleted=maybe",
        "as_of=soon",
        "vector_y=1",
        "vector_x_min=left",
        "annotationversion=x",
        "verified_by__range=1,x",
        "expand=nothing",
        "verified_by=me",
        "meta_data__isnull=perhaps",
    ] {
        let answer = app
            .get(&format!("/api/v1/annotations/annotations/?{query}"), ADMIN)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {answer:?}"
        );
        assert!(answer.json["code"].is_string(), "{query}: {answer:?}");
    }
    // A non-UTF-8 file name and a non-UTF-8 form value.
    let (content_type, mut body) = support::multipart(&[("image_set", &p.set.to_string())], &[]);
    let tail = body.split_off(body.len() - b"--exact-test-boundary-7d9f--\r\n".len());
    body.extend_from_slice(b"--exact-test-boundary-7d9f\r\nContent-Disposition: form-data; name=\"file_path\"; filename=\"\xff\xfe.png\"\r\n\r\n\xff\r\n");
    body.extend_from_slice(&tail);
    let answer = app
        .send(
            Method::POST,
            "/api/v1/images/images/",
            Some(ADMIN),
            Some(&content_type),
            body,
            &[],
        )
        .await;
    assert!(answer.status.is_client_error(), "{answer:?}");
    assert!(answer.json["code"].is_string(), "{answer:?}");
    let team = app
        .post("/api/v1/users/teams/", ADMIN, json!({"name": "x"}))
        .await;
    assert_eq!(
        (team.status, team.json["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    let route = app
        .post("/api/v1/processing/plugins/", ADMIN, json!({}))
        .await;
    assert_eq!(route.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        app.position().await,
        position,
        "no bad input wrote anything"
    );
}

/// The `exact_session=...` pair of a response's cookie.
fn session_cookie(answer: &support::Answer) -> String {
    let set = answer.headers["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    set.split(';').next().unwrap().to_owned()
}

async fn sessions_and_tokens_are_ways_in_too(db: TestDb) {
    let app = TestApp::new(db).await;
    let ann_id = app.user("ann").await;
    let form = |body: &str| body.as_bytes().to_vec();
    let login = |password: &'static str| {
        let app = &app;
        async move {
            app.send(
                Method::POST,
                "/api/v1/auth/login/",
                None,
                Some("application/x-www-form-urlencoded"),
                form(&format!("username=ann&password={password}")),
                &[],
            )
            .await
        }
    };
    assert_eq!(login("wrong").await.status, StatusCode::UNAUTHORIZED);
    let logged_in = login("pw-ann").await;
    assert_eq!(logged_in.status, StatusCode::OK, "{logged_in:?}");
    let cookie = session_cookie(&logged_in);
    let csrf = logged_in.json["csrf_token"].as_str().unwrap().to_owned();
    let with_cookie =
        |method: Method, path: &str, body: Value, extra: Vec<(&'static str, String)>| {
            let app = &app;
            let cookie = cookie.clone();
            let path = path.to_owned();
            async move {
                let mut headers: Vec<(&str, &str)> = vec![("cookie", cookie.as_str())];
                for (name, value) in &extra {
                    headers.push((name, value.as_str()));
                }
                app.send(
                    method,
                    &path,
                    None,
                    Some("application/json"),
                    serde_json::to_vec(&body).unwrap(),
                    &headers,
                )
                .await
            }
        };
    let me = with_cookie(Method::GET, "/api/v1/auth/session/", Value::Null, vec![]).await;
    assert_eq!(
        (me.status, me.json["id"].as_i64()),
        (StatusCode::OK, Some(ann_id)),
        "{me:?}"
    );
    assert_eq!(me.json["csrf_token"], csrf.as_str());
    // A write by cookie needs the CSRF token.
    let position = app.position().await;
    let forged = with_cookie(
        Method::POST,
        "/api/v1/users/teams/",
        json!({"name": "Forged"}),
        vec![],
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{forged:?}");
    assert_eq!(forged.json["code"], "csrf_failed");
    let wrong = vec![("x-csrftoken", "0".repeat(48))];
    assert_eq!(
        with_cookie(
            Method::POST,
            "/api/v1/users/teams/",
            json!({"name": "Forged"}),
            wrong
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.position().await, position);
    let made = with_cookie(
        Method::POST,
        "/api/v1/users/teams/",
        json!({"name": "Browser team"}),
        vec![("x-csrftoken", csrf.clone())],
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    // The log says the change came through the web app.
    let last = app
        .state
        .store
        .read_page(app.position().await, 1)
        .await
        .unwrap();
    let metadata: Value = serde_json::from_str(&last[0].metadata).unwrap();
    assert_eq!(
        (metadata["source"].as_str(), metadata["actor"].as_i64()),
        (Some("ui"), Some(ann_id))
    );

    // A personal access token: shown once, works as Bearer, listed without its secret.
    let created = app
        .post(
            "/api/v1/users/tokens/",
            ("ann", "pw-ann"),
            json!({"name": "laptop"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let token = created.json["token"].as_str().unwrap().to_owned();
    let token_id = created.json["id"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let by_token = app
        .send(
            Method::GET,
            "/api/v1/users/teams/",
            None,
            None,
            vec![],
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(by_token.status, StatusCode::OK, "{by_token:?}");
    assert_eq!(by_token.json["count"], 1);
    let listed = app.get("/api/v1/users/tokens/", ("ann", "pw-ann")).await;
    assert_eq!(listed.json["results"][0]["name"], "laptop");
    assert!(
        !listed.json.to_string().contains(&token),
        "the secret is never shown again"
    );
    let stored = app
        .state
        .store
        .read_stream(&format!("user-{ann_id}"), 1)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|e| !e.payload_value().unwrap().to_string().contains(&token)),
        "the log keeps the token's hash, not the token"
    );
    // Someone else cannot revoke it; its owner can, and it stops working.
    app.user("bob").await;
    let by_bob = app
        .delete(
            &format!("/api/v1/users/tokens/{token_id}/"),
            ("bob", "pw-bob"),
        )
        .await;
    assert_eq!(by_bob.status, StatusCode::NOT_FOUND, "{by_bob:?}");
    let revoked = app
        .delete(
            &format!("/api/v1/users/tokens/{token_id}/"),
            ("ann", "pw-ann"),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let refused = app
        .send(
            Method::GET,
            "/api/v1/users/teams/",
            None,
            None,
            vec![],
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");

    // Tokens come and go without ending the browser session; a new password ends it.
    let still = with_cookie(Method::GET, "/api/v1/auth/session/", Value::Null, vec![]).await;
    assert_eq!(still.status, StatusCode::OK, "{still:?}");
    let changed = app
        .patch(
            &format!("/api/v1/users/users/{ann_id}/"),
            ADMIN,
            json!({"password": "pw-ann-2"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    let ended = with_cookie(Method::GET, "/api/v1/auth/session/", Value::Null, vec![]).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED, "{ended:?}");
    // A fresh login, then logout ends it.
    let again = login("pw-ann-2").await;
    let cookie = session_cookie(&again);
    let csrf = again.json["csrf_token"].as_str().unwrap().to_owned();
    let headers = [("cookie", cookie.as_str()), ("x-csrftoken", csrf.as_str())];
    let alive = app
        .send(
            Method::GET,
            "/api/v1/users/teams/",
            None,
            None,
            vec![],
            &headers,
        )
        .await;
    assert_eq!(alive.status, StatusCode::OK);
    let out = app
        .send(
            Method::POST,
            "/api/v1/auth/logout/",
            None,
            None,
            vec![],
            &headers,
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = app
        .send(
            Method::GET,
            "/api/v1/users/teams/",
            None,
            None,
            vec![],
            &headers,
        )
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{after:?}");
}

/// The `(id, event)` pairs of the SSE frames in `text`.
fn frames(text: &str) -> Vec<(i64, String, Value)> {
    text.split("\n\n")
        .filter_map(|frame| {
            let field = |name: &str| {
                frame.lines().find_map(|l| {
                    l.strip_prefix(&format!("{name}:"))
                        .map(|v| v.trim().to_owned())
                })
            };
            Some((
                field("id")?.parse().ok()?,
                field("event")?,
                serde_json::from_str(&field("data")?).ok()?,
            ))
        })
        .collect()
}

async fn live_updates_resume_from_a_position_and_stay_within_the_set(db: TestDb) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let app = TestApp::new(db).await;
    app.user("outsider").await;
    let p = project(&app, ADMIN, "Live", 1).await;
    let other = project(&app, ADMIN, "Elsewhere", 1).await;
    let image_id = image(&app, ADMIN, p.set, "live.png", 200, 200).await;
    let other_image = image(&app, ADMIN, other.set, "other.png", 200, 200).await;
    let box_on = |image: i64, t: i64, x: i64| json!({"image": image, "annotation_type": t, "vector": {"x1": x, "y1": 5, "x2": x + 10, "y2": 15}});
    let before = app.position().await;
    let first = app
        .post(
            "/api/v1/annotations/annotations/",
            ADMIN,
            box_on(image_id, p.annotation_type, 5),
        )
        .await;
    let first_id = first.json["id"].as_i64().unwrap();

    let path = format!("/api/v1/events/?image_set={}", p.set);
    let hidden = app.get(&path, ("outsider", "pw-outsider")).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);

    // Resume from before the first annotation: it comes first, then what happens next.
    let request = axum::http::Request::get(&path)
        .header("authorization", support::basic(ADMIN.0, ADMIN.1))
        .header("last-event-id", before.to_string())
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();

    app.post(
        "/api/v1/annotations/annotations/",
        ADMIN,
        box_on(other_image, other.annotation_type, 5),
    )
    .await;
    app.post(
        "/api/v1/annotations/annotations/",
        ADMIN,
        box_on(image_id, p.annotation_type, 50),
    )
    .await;
    app.send(
        Method::PATCH,
        &format!("/api/v1/annotations/annotations/{first_id}/"),
        Some(ADMIN),
        Some("application/json"),
        br#"{"description": "seen live"}"#.to_vec(),
        &[("x-exact-reason", "second look")],
    )
    .await;

    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while frames(&text).len() < 3 {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("three events within 20 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let seen = frames(&text);
    let kinds: Vec<&str> = seen.iter().map(|(_, kind, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "AnnotationCreated",
            "AnnotationCreated",
            "AnnotationChanged"
        ],
        "{text}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "positions ascend: {text}"
    );
    assert_eq!(seen[0].2["payload"]["id"], first_id);
    assert!(seen
        .iter()
        .all(|(_, _, d)| d["payload"]["image"].as_i64().is_none_or(|i| i == image_id)));
    assert_eq!(seen[2].2["reason"], "second look");
    assert_eq!(seen[2].2["payload"]["description"], "seen live");
}

/// The ids of a list's results, in order.
async fn annotation_lists_filter_and_expand_as_exact_does(db: TestDb) {
    let app = TestApp::new(db).await;
    let ann_id = app.user("ann").await;
    let bob_id = app.user("bob").await;
    let (ann, bob) = (("ann", "pw-ann"), ("bob", "pw-bob"));
    let p = project(&app, ann, "Filters", 1).await;
    let member = app
        .post(
            "/api/v1/users/team_membership/",
            ann,
            json!({"team": p.team, "user": bob_id}),
        )
        .await;
    assert_eq!(member.status, StatusCode::CREATED, "{member:?}");
    let image_id = image(&app, ann, p.set, "filters.png", 300, 200).await;
    let uuid = "7d2b0f9e-1c3a-4b5d-8e6f-0a1b2c3d4e5f";
    let bodies = [
        json!({"image": image_id, "annotation_type": p.annotation_type, "description": "Mitosis here",
               "vector": {"x1": 1, "y1": 1, "x2": 9, "y2": 9}, "unique_identifier": uuid,
               "meta_data": {"score": 0.9}}),
        json!({"image": image_id, "annotation_type": p.annotation_type, "description": "mitosis?",
               "vector": {"x1": 20, "y1": 20, "x2": 29, "y2": 29}}),
        json!({"image": image_id, "annotation_type": p.annotation_type, "description": "",
               "vector": {"x1": 40, "y1": 40, "x2": 49, "y2": 49}}),
    ];
    let mut ids = Vec::new();
    for body in bodies {
        let created = app
            .post("/api/v1/annotations/annotations/", ann, body)
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
        ids.push(created.json["id"].as_i64().unwrap());
    }
    // Bob rejects the second: `verified_by` finds verdicts either way.
    let verdict = app
        .post(
            "/api/v1/annotations/verifications/",
            bob,
            json!({"annotation": ids[1], "verified": false}),
        )
        .await;
    assert_eq!(verdict.status, StatusCode::CREATED, "{verdict:?}");
    let verdict_id = verdict.json["id"].as_i64().unwrap();

    let list = |query: &str| format!("/api/v1/annotations/annotations/?image={image_id}&{query}");
    // Case matters for `__contains`, as in Django; a UUID matches in any case.
    assert_eq!(
        ids_of(&app.get(&list("description__contains=itosis"), ann).await),
        ids[..2]
    );
    assert_eq!(
        ids_of(&app.get(&list("description__contains=Mitosis"), ann).await),
        ids[..1]
    );
    assert_eq!(
        ids_of(&app.get(&list("description=mitosis%3F"), ann).await),
        ids[1..2]
    );
    assert_eq!(
        ids_of(
            &app.get(&list("unique_identifier__contains=1C3A-4B5D"), ann)
                .await
        ),
        ids[..1]
    );
    assert_eq!(
        ids_of(&app.get(&list("meta_data__isnull=false"), ann).await),
        ids[..1]
    );
    assert_eq!(
        ids_of(&app.get(&list("meta_data__isnull=true"), ann).await),
        ids[1..]
    );
    assert_eq!(
        ids_of(&app.get(&list(&format!("verified_by={bob_id}")), ann).await),
        ids[1..2]
    );
    assert!(ids_of(&app.get(&list(&format!("verified_by={ann_id}")), ann).await).is_empty());
    // A verdict filter reads current verdicts: with `as_of` it is refused, not ignored.
    let refused = app
        .get(&list(&format!("verified_by={bob_id}&as_of=1")), ann)
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{refused:?}");
    // EXACT's coordinate ranges on the vector's first point (both ends honoured here).
    assert_eq!(
        ids_of(&app.get(&list("vector_x_min=10&vector_x_max=30"), ann).await),
        ids[1..2]
    );
    assert_eq!(ids_of(&app.get(&list("vector_x=,30"), ann).await), ids[..2]);
    assert_eq!(ids_of(&app.get(&list("vector_y=39,"), ann).await), ids[2..]);
    assert_eq!(ids_of(&app.get(&list("vector_type=1"), ann).await), ids);
    assert!(ids_of(&app.get(&list("vector_type=5"), ann).await).is_empty());
    let range = format!("verified_by__range={},{}", bob_id, bob_id + 5);
    assert_eq!(ids_of(&app.get(&list(&range), ann).await), ids[1..2]);
    let below = format!("verified_by__range=0,{}", bob_id - 1);
    assert!(ids_of(&app.get(&list(&below), ann).await).is_empty());
    // Logins are not recorded and no set is zipped: those filters keep all or none.
    let users = |query: &str| {
        let app = &app;
        let path = format!("/api/v1/users/users/?{query}");
        async move { ids_of(&app.get(&path, ann).await).len() }
    };
    assert!(users("last_login__isnull=true").await >= 3);
    assert_eq!(users("last_login__gte=2020-01-01T00:00:00Z").await, 0);
    assert_eq!(users("last_login__isnull=false").await, 0);
    let zipped = |state: i64| {
        let app = &app;
        let path = format!("/api/v1/images/image_sets/?zip_state={state}");
        async move { ids_of(&app.get(&path, ann).await) }
    };
    assert_eq!(zipped(0).await, vec![p.set]);
    assert!(zipped(1).await.is_empty());

    // `expand` as EXACT's viewer asks for it: ids replaced by the objects.
    let expanded = app
        .get(
            &list("expand=user,last_editor,annotation_type,image,uploaded_media_files&limit=1"),
            ann,
        )
        .await;
    assert_eq!(expanded.status, StatusCode::OK, "{expanded:?}");
    let first = &expanded.json["results"][0];
    assert_eq!(first["user"]["username"], "ann");
    assert_eq!(first["last_editor"]["id"], ann_id);
    assert_eq!(first["annotation_type"]["name"], "cell");
    assert_eq!(first["annotation_type"]["id"], p.annotation_type);
    assert_eq!(first["image"]["name"], "filters.png");
    assert_eq!(first["uploaded_media_files"], json!([]));
    assert_eq!(first["description"], "Mitosis here");
    // `fields` and `expand` together; a single annotation expands too.
    let shaped = app.get(&list("fields=id,user&expand=user"), ann).await;
    assert_eq!(
        shaped.json["results"][2],
        json!({"id": ids[2], "user": shaped.json["results"][0]["user"]})
    );
    let one = app
        .get(
            &format!("/api/v1/annotations/annotations/{}/?expand=image", ids[0]),
            ann,
        )
        .await;
    assert_eq!(one.json["image"]["id"], image_id);
    // Verdicts expand their annotation and user; the access log its image and user.
    let verdicts = app
        .get(
            &format!(
                "/api/v1/annotations/verifications/?expand=annotation,user&annotation={}",
                ids[1]
            ),
            ann,
        )
        .await;
    assert_eq!(verdicts.json["results"][0]["id"], verdict_id);
    assert_eq!(verdicts.json["results"][0]["user"]["username"], "bob");
    assert_eq!(
        verdicts.json["results"][0]["annotation"]["description"],
        "mitosis?"
    );
    let verdict_one = app
        .get(
            &format!("/api/v1/annotations/verifications/{verdict_id}/?expand=user"),
            ann,
        )
        .await;
    assert_eq!(verdict_one.json["user"]["id"], bob_id);
    // A name that cannot be expanded is a 400 naming the field and what can be.
    let unknown = app.get(&list("expand=team"), ann).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{unknown:?}");
    assert_eq!(unknown.json["field"], "expand");
    assert!(unknown.json["message"]
        .as_str()
        .unwrap()
        .contains("last_editor"));
    // EXACT's image filters over their annotations: type, how many, verified.
    let empty_image = image(&app, ann, p.set, "empty.png", 50, 50).await;
    let images = |query: &str| {
        let app = &app;
        let path = format!("/api/v1/images/images/?image_set={}&{query}", p.set);
        async move { ids_of(&app.get(&path, ann).await) }
    };
    assert_eq!(
        images(&format!("annotation_type={}", p.annotation_type)).await,
        vec![image_id]
    );
    assert_eq!(images("num_annotations_min=3").await, vec![image_id]);
    assert_eq!(images("num_annotations_max=0").await, vec![empty_image]);
    assert!(images("num_annotations__gte=4").await.is_empty());
    assert!(images("verified=true").await.is_empty());
    assert_eq!(images("verified=false").await, vec![image_id, empty_image]);
    let accepted = app
        .post(
            "/api/v1/annotations/verifications/",
            ann,
            json!({"annotation": ids[0], "verified": true}),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::CREATED);
    assert_eq!(images("verified=true").await, vec![image_id]);
    assert!(images("time__gte=2999-01-01T00:00:00Z").await.is_empty());
    assert_eq!(images("time__lte=2999-01-01T00:00:00Z").await.len(), 2);
    let bad = app
        .get("/api/v1/images/images/?num_annotations_min=many", ann)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // What the caller may not read stays an id: an outsider sees nothing at all.
    app.user("eve").await;
    let outsider = app.get(&list("expand=user"), ("eve", "pw-eve")).await;
    assert!(ids_of(&outsider).is_empty());
}

async fn set_versions_read_annotations_as_they_were(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    app.user("eve").await;
    let (ann, eve) = (("ann", "pw-ann"), ("eve", "pw-eve"));
    let p = project(&app, ann, "Versions", 1).await;
    let image_id = image(&app, ann, p.set, "versions.png", 300, 200).await;
    let mut ids = Vec::new();
    for x in [10, 60, 110] {
        let created = app
            .post(
                "/api/v1/annotations/annotations/",
                ann,
                json!({"image": image_id, "annotation_type": p.annotation_type,
                       "vector": {"x1": x, "y1": 10, "x2": x + 20, "y2": 30}}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
        ids.push(created.json["id"].as_i64().unwrap());
    }
    let made = app
        .post(
            "/api/v1/images/set_versions/",
            ann,
            json!({"name": "train-v1", "imagesets": [p.set]}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    assert_eq!(made.json["imagesets"], json!([p.set]));
    let version = made.json["id"].as_i64().unwrap();
    // The version names the log as it stood just before its own event.
    assert_eq!(
        made.json["position"].as_i64(),
        Some(app.position().await - 1)
    );

    // After the version: one moved, one deleted, one new, one untouched.
    let moved = app
        .patch(
            &format!("/api/v1/annotations/annotations/{}/", ids[1]),
            ann,
            json!({"vector": {"x1": 200, "y1": 100, "x2": 240, "y2": 140}}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{moved:?}");
    let deleted = app
        .delete(&format!("/api/v1/annotations/annotations/{}/", ids[2]), ann)
        .await;
    assert!(deleted.status.is_success(), "{deleted:?}");
    let later = app
        .post(
            "/api/v1/annotations/annotations/",
            ann,
            json!({"image": image_id, "annotation_type": p.annotation_type,
                   "vector": {"x1": 5, "y1": 150, "x2": 25, "y2": 170}}),
        )
        .await;
    assert_eq!(later.status, StatusCode::CREATED);

    let rows = app
        .get(
            &format!("/api/v1/annotations/annotation_versions/?version={version}"),
            ann,
        )
        .await;
    assert_eq!(rows.status, StatusCode::OK, "{rows:?}");
    assert_eq!(
        rows.json["count"], 3,
        "the later annotation is not in the version"
    );
    let results = rows.json["results"].as_array().unwrap();
    let row_of = |id: i64| results.iter().find(|r| r["annotation"] == id).unwrap();
    assert_eq!(row_of(ids[0])["has_changes"], false);
    assert_eq!(row_of(ids[1])["has_changes"], true);
    assert_eq!(row_of(ids[1])["vector"]["x1"], 60, "the vector as it was");
    assert_eq!(row_of(ids[2])["deleted"], false);
    assert_eq!(row_of(ids[2])["has_changes"], true);
    let changed = app
        .get(
            &format!("/api/v1/annotations/annotation_versions/?version={version}&has_changes=true"),
            ann,
        )
        .await;
    assert_eq!(changed.json["count"], 2);
    let unchanged = app
        .get(
            &format!(
                "/api/v1/annotations/annotation_versions/?version={version}&has_changes=false"
            ),
            ann,
        )
        .await;
    assert_eq!(unchanged.json["results"][0]["annotation"], ids[0]);
    let one_id = row_of(ids[1])["id"].as_i64().unwrap();
    let one = app
        .get(
            &format!("/api/v1/annotations/annotation_versions/{one_id}/"),
            ann,
        )
        .await;
    assert_eq!(one.status, StatusCode::OK, "{one:?}");
    assert_eq!(one.json["vector"]["x2"], 80);
    // EXACT's `annotationversion` filter: the annotation a version row is of.
    let by_row = |row: i64, who| {
        let app = &app;
        async move {
            app.get(
                &format!("/api/v1/annotations/annotations/?annotationversion={row}"),
                who,
            )
            .await
        }
    };
    assert_eq!(ids_of(&by_row(one_id, ann).await), vec![ids[1]]);
    let later_id = later.json["id"].as_i64().unwrap();
    assert!(ids_of(&by_row((version << 32) | later_id, ann).await).is_empty());
    assert!(ids_of(&by_row(one_id, eve).await).is_empty());

    let sets = app
        .get(
            &format!("/api/v1/images/image_sets/?set_versions={version}"),
            ann,
        )
        .await;
    assert_eq!(ids_of(&sets), vec![p.set]);
    // The version is listed for those who may read its sets, and for nobody else.
    let listed = app
        .get("/api/v1/images/set_versions/?name=train-v1", ann)
        .await;
    assert_eq!(listed.json["count"], 1);
    assert!(
        app.get("/api/v1/images/set_versions/", eve).await.json["results"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    for path in [
        format!("/api/v1/images/set_versions/{version}/"),
        format!("/api/v1/annotations/annotation_versions/?version={version}"),
        format!("/api/v1/annotations/annotation_versions/{one_id}/"),
    ] {
        assert_eq!(
            app.get(&path, eve).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // Bad input changes nothing: no version filter, a taken name, a set one may not read.
    let before = app.position().await;
    let unfiltered = app
        .get("/api/v1/annotations/annotation_versions/", ann)
        .await;
    assert_eq!(unfiltered.status, StatusCode::BAD_REQUEST);
    assert_eq!(unfiltered.json["field"], "version");
    let taken = app
        .post(
            "/api/v1/images/set_versions/",
            ann,
            json!({"name": "train-v1", "imagesets": [p.set]}),
        )
        .await;
    assert!(taken.status.is_client_error(), "{taken:?}");
    let foreign = app
        .post(
            "/api/v1/images/set_versions/",
            eve,
            json!({"name": "stolen", "imagesets": [p.set]}),
        )
        .await;
    assert!(foreign.status.is_client_error(), "{foreign:?}");
    assert_eq!(app.position().await, before);
}

async fn set_tags_are_names_on_sets_with_stable_ids(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    app.user("eve").await;
    let (ann, eve) = (("ann", "pw-ann"), ("eve", "pw-eve"));
    let lab = project(&app, ann, "Tags", 1).await;
    let other = app
        .post(
            "/api/v1/images/image_sets/",
            ann,
            json!({"name": "second", "team": lab.team}),
        )
        .await;
    let other = other.json["id"].as_i64().unwrap();

    let made = app
        .post(
            "/api/v1/images/set_tags/",
            ann,
            json!({"name": "mitosis", "imagesets": [lab.set, other]}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    assert_eq!(made.json["imagesets"], json!([lab.set, other]));
    let mitosis = made.json["id"].as_i64().unwrap();
    let second = app
        .post(
            "/api/v1/images/set_tags/",
            ann,
            json!({"name": "training", "imagesets": [lab.set]}),
        )
        .await;
    let training = second.json["id"].as_i64().unwrap();
    assert_ne!(training, mitosis);
    // The set shows the tag's id and its name.
    let set = app
        .get(&format!("/api/v1/images/image_sets/{}/", lab.set), ann)
        .await;
    assert_eq!(set.json["set_tags"], json!([mitosis, training]));
    assert_eq!(set.json["tags"], json!(["mitosis", "training"]));
    let by_set = app
        .get(&format!("/api/v1/images/set_tags/?imagesets={other}"), ann)
        .await;
    assert_eq!(by_set.json["count"], 1);
    assert_eq!(by_set.json["results"][0]["name"], "mitosis");
    let tagged = app
        .get(
            &format!("/api/v1/images/image_sets/?set_tags={training}"),
            ann,
        )
        .await;
    assert_eq!(ids_of(&tagged), vec![lab.set]);

    // Moved to one set; then taken off everywhere; given again, the name keeps its id.
    let moved = app
        .patch(
            &format!("/api/v1/images/set_tags/{mitosis}/"),
            ann,
            json!({"imagesets": [other]}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{moved:?}");
    assert_eq!(moved.json["imagesets"], json!([other]));
    let removed = app
        .delete(&format!("/api/v1/images/set_tags/{mitosis}/"), ann)
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/images/set_tags/{mitosis}/"), ann)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let again = app
        .post(
            "/api/v1/images/set_tags/",
            ann,
            json!({"name": "mitosis", "imagesets": [lab.set]}),
        )
        .await;
    assert_eq!(again.json["id"], mitosis);

    // Outsiders see no tag and change no set; bad input changes nothing.
    assert!(
        app.get("/api/v1/images/set_tags/", eve).await.json["results"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let before = app.position().await;
    for (who, body) in [
        (eve, json!({"name": "mine", "imagesets": [lab.set]})),
        (ann, json!({"name": "empty", "imagesets": []})),
        (ann, json!({"name": "  ", "imagesets": [lab.set]})),
        (ann, json!({"imagesets": [lab.set]})),
        (ann, json!({"name": "half", "imagesets": [lab.set, 987654]})),
    ] {
        let refused = app
            .post("/api/v1/images/set_tags/", who, body.clone())
            .await;
        assert!(refused.status.is_client_error(), "{body}: {refused:?}");
        assert!(refused.json["code"].is_string());
    }
    assert_eq!(
        app.delete(&format!("/api/v1/images/set_tags/{training}/"), eve)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.position().await, before, "nothing was written");
    // The typed body names the field it cannot read, and reads a form as DRF does.
    let unreadable = app
        .post(
            "/api/v1/images/set_tags/",
            ann,
            json!({"name": "x", "imagesets": ["one"]}),
        )
        .await;
    assert_eq!(
        (
            unreadable.status,
            unreadable.json["code"].as_str(),
            unreadable.json["field"].as_str()
        ),
        (
            StatusCode::BAD_REQUEST,
            Some("invalid_field"),
            Some("imagesets")
        )
    );
    assert_eq!(app.position().await, before, "nothing was written");
    let form = app
        .send(
            Method::POST,
            "/api/v1/images/set_tags/",
            Some(ann),
            Some("application/x-www-form-urlencoded"),
            format!("name=from+a+form&imagesets={}&imagesets={other}", lab.set).into_bytes(),
            &[],
        )
        .await;
    assert_eq!(form.status, StatusCode::CREATED, "{form:?}");
    assert_eq!(form.json["imagesets"], json!([lab.set, other]));
}

async fn screening_walks_the_tiles_of_an_image(db: TestDb) {
    let app = TestApp::new(db).await;
    let ann_id = app.user("ann").await;
    let bob_id = app.user("bob").await;
    app.user("eve").await;
    let (ann, bob, eve) = (("ann", "pw-ann"), ("bob", "pw-bob"), ("eve", "pw-eve"));
    let p = project(&app, ann, "Screening", 1).await;
    app.post(
        "/api/v1/users/team_membership/",
        ann,
        json!({"team": p.team, "user": bob_id}),
    )
    .await;
    let image_id = image(&app, ann, p.set, "screen.png", 200, 100).await;
    let tiles = json!({
        "0": {"Screened": false, "x_min": 0, "y_min": 0, "x_max": 110, "y_max": 100},
        "1": {"Screened": false, "x_min": 90, "y_min": 0, "x_max": 200, "y_max": 100},
    });
    let started = app
        .post(
            "/api/v1/images/screening_modes/",
            ann,
            json!({"image": image_id, "screening_tiles": tiles, "x_steps": 2, "y_steps": 1,
                   "x_resolution": 110, "y_resolution": 100}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{started:?}");
    assert_eq!(started.json["user"], ann_id);
    assert_eq!(started.json["current_index"], 0);
    let id = started.json["id"].as_i64().unwrap();

    // Moving on marks the tile screened; the ETag guards against a stale writer.
    let moved = app
        .patch(
            &format!("/api/v1/images/screening_modes/{id}/"),
            ann,
            json!({"current_index": 1}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{moved:?}");
    assert_eq!(moved.json["screening_tiles"]["1"]["Screened"], true);
    assert_eq!(moved.json["screening_tiles"]["0"]["Screened"], false);
    let stale = app
        .send(
            Method::PATCH,
            &format!("/api/v1/images/screening_modes/{id}/"),
            Some(ann),
            Some("application/json"),
            br#"{"current_index": 0}"#.to_vec(),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{stale:?}");

    // Each user has their own; the team sees them, expanded on request; outsiders do not.
    let own = app
        .post(
            "/api/v1/images/screening_modes/",
            bob,
            json!({"image": image_id}),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{own:?}");
    let listed = app
        .get(
            &format!("/api/v1/images/screening_modes/?image={image_id}&user={ann_id}&expand=user"),
            bob,
        )
        .await;
    assert_eq!(listed.json["count"], 1);
    assert_eq!(listed.json["results"][0]["user"]["username"], "ann");
    assert!(
        app.get("/api/v1/images/screening_modes/", eve).await.json["results"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        app.get(&format!("/api/v1/images/screening_modes/{id}/"), eve)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Refused, and nothing written: a second screening of the same image, another user's
    // screening, a grid that is not one, a tile index off the grid, an outsider.
    let before = app.position().await;
    let refusals = [
        (
            ann,
            Method::POST,
            "/api/v1/images/screening_modes/".to_string(),
            json!({"image": image_id}),
        ),
        (
            bob,
            Method::POST,
            "/api/v1/images/screening_modes/".to_string(),
            json!({"image": image_id, "user": ann_id}),
        ),
        (
            bob,
            Method::PATCH,
            format!("/api/v1/images/screening_modes/{id}/"),
            json!({"x_steps": 3}),
        ),
        (
            ann,
            Method::PATCH,
            format!("/api/v1/images/screening_modes/{id}/"),
            json!({"screening_tiles": [1, 2]}),
        ),
        (
            ann,
            Method::PATCH,
            format!("/api/v1/images/screening_modes/{id}/"),
            json!({"current_index": 7}),
        ),
        (
            ann,
            Method::PATCH,
            format!("/api/v1/images/screening_modes/{id}/"),
            json!({"y_steps": -1}),
        ),
        (
            eve,
            Method::POST,
            "/api/v1/images/screening_modes/".to_string(),
            json!({"image": image_id}),
        ),
    ];
    for (who, method, path, body) in refusals {
        let answer = app.json(method.clone(), &path, who, body.clone()).await;
        assert!(
            answer.status.is_client_error(),
            "{method} {path} {body}: {answer:?}"
        );
        assert!(answer.json["code"].is_string());
    }
    assert_eq!(app.position().await, before);
}

async fn media_files_attach_to_annotations(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    app.user("eve").await;
    let (ann, eve) = (("ann", "pw-ann"), ("eve", "pw-eve"));
    let p = project(&app, ann, "Media", 1).await;
    let image_id = image(&app, ann, p.set, "media.png", 100, 100).await;
    let annotation = app
        .post(
            "/api/v1/annotations/annotations/",
            ann,
            json!({"image": image_id, "annotation_type": p.annotation_type,
                   "vector": {"x1": 1, "y1": 1, "x2": 9, "y2": 9}}),
        )
        .await;
    let annotation = annotation.json["id"].as_i64().unwrap();
    let attach = |who: (&'static str, &'static str),
                  fields: Vec<(&'static str, String)>,
                  files: Vec<(&'static str, &'static [u8])>| {
        let app = &app;
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let files: Vec<(&str, &str, &[u8])> =
                files.iter().map(|(n, b)| ("file", *n, *b)).collect();
            let (content_type, body) = multipart(&fields, &files);
            app.send(
                Method::POST,
                "/api/v1/annotations/annotation_media_files/",
                Some(who),
                Some(&content_type),
                body,
                &[],
            )
            .await
        }
    };
    let id_text = annotation.to_string();
    let sound: &'static [u8] = b"RIFF....WAVEfmt not really a sound";
    let picture: &'static [u8] = b"\x89PNG pretend";
    let attached = attach(
        ann,
        vec![
            ("annotation", id_text.clone()),
            ("media_file_type", "4".into()),
        ],
        vec![("call.wav", sound), ("look.png", picture)],
    )
    .await;
    assert_eq!(attached.status, StatusCode::CREATED, "{attached:?}");
    assert_eq!(attached.json["count"], 2);
    let first = &attached.json["results"][0];
    assert_eq!(first["name"], "call.wav");
    assert_eq!(first["media_file_type"], 4);
    assert_eq!(first["annotation"], annotation);
    let file_id = first["id"].as_i64().unwrap();
    // The bytes come back as they went in, to those who may read the annotation.
    let bytes = app
        .get(
            &format!("/api/v1/annotations/annotation_media_files/{file_id}/file/"),
            ann,
        )
        .await;
    assert_eq!(bytes.status, StatusCode::OK);
    assert_eq!(bytes.bytes, sound);
    // The same name again is left out, as EXACT does.
    let again = attach(
        ann,
        vec![("annotation", id_text.clone())],
        vec![("call.wav", sound)],
    )
    .await;
    assert_eq!(again.json["count"], 0, "{again:?}");
    // The annotation lists its files when asked to expand them.
    let expanded = app
        .get(
            &format!("/api/v1/annotations/annotations/{annotation}/?expand=uploaded_media_files"),
            ann,
        )
        .await;
    assert_eq!(
        expanded.json["uploaded_media_files"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let listed = app
        .get(
            &format!("/api/v1/annotations/annotation_media_files/?annotation={annotation}&media_file_type=4"),
            ann,
        )
        .await;
    assert_eq!(listed.json["count"], 2);

    // Outsiders see nothing and attach nothing; bad input leaves no event and no file.
    for path in [
        format!("/api/v1/annotations/annotation_media_files/{file_id}/"),
        format!("/api/v1/annotations/annotation_media_files/{file_id}/file/"),
    ] {
        assert_eq!(
            app.get(&path, eve).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let media_folder = app.data.path().join(format!("media/{annotation}"));
    let files_before = std::fs::read_dir(&media_folder).unwrap().count();
    let before = app.position().await;
    for (who, fields) in [
        (eve, vec![("annotation", id_text.clone())]),
        (ann, vec![("annotation", "987654".to_string())]),
        (
            ann,
            vec![
                ("annotation", id_text.clone()),
                ("media_file_type", "9".into()),
            ],
        ),
        (ann, vec![("media_file_type", "2".into())]),
    ] {
        let refused = attach(who, fields.clone(), vec![("new.wav", sound)]).await;
        assert!(refused.status.is_client_error(), "{fields:?}: {refused:?}");
        assert!(refused.json["code"].is_string());
    }
    assert_eq!(app.position().await, before);
    assert_eq!(
        std::fs::read_dir(&media_folder).unwrap().count(),
        files_before
    );

    // Detached, a file is gone from the lists and its route.
    let detached = app
        .delete(
            &format!("/api/v1/annotations/annotation_media_files/{file_id}/"),
            ann,
        )
        .await;
    assert_eq!(detached.status, StatusCode::NO_CONTENT, "{detached:?}");
    assert_eq!(
        app.get(
            &format!("/api/v1/annotations/annotation_media_files/{file_id}/"),
            ann
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

/// The order of the set cards on the home page, by set id.
fn home_order(html: &str) -> Vec<i64> {
    html.split("data-set=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

async fn pins_are_each_users_own_and_put_sets_first_on_the_home_page(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    let bob_id = app.user("bob").await;
    let (ann, bob) = (("ann", "pw-ann"), ("bob", "pw-bob"));
    let lab = project(&app, ann, "Alpha", 1).await;
    add_member(&app, ann, lab.team, bob_id).await;
    let zulu = app
        .post(
            "/api/v1/images/image_sets/",
            ann,
            json!({"name": "Zulu", "team": lab.team}),
        )
        .await
        .json["id"]
        .as_i64()
        .unwrap();
    let login = |who: (&'static str, &'static str)| app.session(who);
    let home = |cookie: String| {
        let app = &app;
        async move {
            let page = app
                .send(Method::GET, "/", None, None, vec![], &[("cookie", &cookie)])
                .await;
            assert_eq!(page.status, StatusCode::OK);
            home_order(&String::from_utf8(page.bytes).unwrap())
        }
    };
    // A form that repeats a field sends a list, as DRF reads it: one product, both sets.
    let form = app
        .send(
            Method::POST,
            "/api/v1/administration/products/",
            Some(ann),
            Some("application/x-www-form-urlencoded"),
            format!(
                "name=Form+product&team={}&imagesets={}&imagesets={zulu}",
                lab.team, lab.set
            )
            .into_bytes(),
            &[],
        )
        .await;
    assert_eq!(form.status, StatusCode::CREATED, "{form:?}");
    assert_eq!(form.json["imagesets"], json!([lab.set, zulu]));

    let (ann_cookie, bob_cookie) = (login(ann).await, login(bob).await);
    assert_eq!(home(ann_cookie.clone()).await, vec![lab.set, zulu]);

    let pin = format!("/api/v1/images/image_sets/{zulu}/pin/");
    let before = app.position().await;
    let pinned = app.json(Method::PUT, &pin, ann, json!({})).await;
    assert_eq!(pinned.status, StatusCode::OK, "{pinned:?}");
    assert_eq!(pinned.json, json!({"image_set": zulu, "pinned": true}));
    // Twice is once: the second pin writes nothing.
    let again = app.json(Method::PUT, &pin, ann, json!({})).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(app.position().await, before + 1);
    // Ann's pin is hers: Zulu comes first for her, not for Bob, and the set itself is
    // unchanged (its version, which If-Match compares, did not move).
    assert_eq!(home(ann_cookie.clone()).await, vec![zulu, lab.set]);
    assert_eq!(home(bob_cookie).await, vec![lab.set, zulu]);
    let set = app
        .get(&format!("/api/v1/images/image_sets/{zulu}/"), ann)
        .await;
    assert_eq!(set.headers["etag"], "\"1\"");

    // Nobody pins what they cannot read; a set that does not exist is the same 404.
    app.user("eve").await;
    for path in [pin.clone(), "/api/v1/images/image_sets/98765/pin/".into()] {
        let refused = app
            .json(Method::PUT, &path, ("eve", "pw-eve"), json!({}))
            .await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{refused:?}");
        assert_eq!(refused.json["code"], "not_found");
    }

    let unpinned = app.delete(&pin, ann).await;
    assert_eq!(unpinned.status, StatusCode::NO_CONTENT);
    assert_eq!(home(ann_cookie).await, vec![lab.set, zulu]);
    // The pins survive a rebuild of the read models from the log.
    app.json(Method::PUT, &pin, bob, json!({})).await;
    app.state
        .store
        .rebuild("catalog", std::sync::Arc::new(|_, _| {}))
        .await
        .unwrap();
    assert_eq!(home(login(bob).await).await, vec![zulu, lab.set]);
}

async fn a_multi_page_tiff_is_one_image_with_a_frame_per_page(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    let ann = ("ann", "pw-ann");
    let lab = project(&app, ann, "Frames", 1).await;
    let files = tempfile::tempdir().unwrap();
    let series = files.path().join("series.tif");
    exact_tiles::fixture::write_multi_page_tiff(&series, 600, 400, 3).unwrap();
    let bytes = std::fs::read(&series).unwrap();
    let made = app
        .upload(
            ann,
            &[("image_set", &lab.set.to_string())],
            &[("file_path", "series.tif", &bytes)],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    let series = &made.json["results"][0];
    assert_eq!(
        (series["frames"].as_i64(), series["width"].as_i64()),
        (Some(3), Some(600))
    );
    let id = series["id"].as_i64().unwrap();

    // Each frame's tiles show its own page; 0 is frame 1 for single-frame clients.
    let centre = |bytes: &[u8]| {
        let tile = image::load_from_memory(bytes).unwrap().into_rgb8();
        tile.get_pixel(tile.width() / 2, tile.height() / 2).0
    };
    let level = {
        let dzi = app
            .get(&format!("/api/v1/images/images/{id}/1/2/tile/"), ann)
            .await;
        assert_eq!(dzi.status, StatusCode::OK, "{dzi:?}");
        assert!(String::from_utf8_lossy(&dzi.bytes).contains("Width=\"600\""));
        10 // 2^10 >= 600: the full-resolution level
    };
    for (frame, page) in [(0, 0), (1, 0), (2, 1), (3, 2)] {
        let tile = app
            .get(
                &format!("/api/v1/images/images/{id}/1/{frame}/tile_files/{level}/0_0.png"),
                ann,
            )
            .await;
        assert_eq!(tile.status, StatusCode::OK, "frame {frame}: {tile:?}");
        let expected = exact_tiles::fixture::page_colour(page);
        let got = centre(&tile.bytes);
        assert!(
            got.iter().zip(expected).all(|(a, b)| a.abs_diff(b) <= 2),
            "frame {frame}: {got:?} is not page {page}'s {expected:?}"
        );
    }
    let beyond = app
        .get(&format!("/api/v1/images/images/{id}/1/4/tile/"), ann)
        .await;
    assert_eq!(beyond.status, StatusCode::NOT_FOUND, "{beyond:?}");
    assert_eq!(beyond.json["field"], "frame");

    // Annotations name their frame; one past the last frame is refused, writing nothing.
    let on_frame = |frame: i64| {
        json!({"image": id, "annotation_type": lab.annotation_type,
               "vector": {"x1": 10, "y1": 10, "x2": 50, "y2": 40, "frame": frame}})
    };
    let kept = app
        .post("/api/v1/annotations/annotations/", ann, on_frame(3))
        .await;
    assert_eq!(kept.status, StatusCode::CREATED, "{kept:?}");
    assert_eq!(kept.json["vector"]["frame"], 3);
    let before = app.position().await;
    let refused = app
        .post("/api/v1/annotations/annotations/", ann, on_frame(4))
        .await;
    assert_eq!(refused.status.as_u16() / 100, 4, "{refused:?}");
    assert_eq!(refused.json["field"], "vector", "{refused:?}");
    assert_eq!(app.position().await, before);

    // Frames are described (EXACT's later FrameDescription): one event per change, the
    // frames named change, null takes one away, a frame the image lacks is refused.
    let path = format!("/api/v1/images/images/{id}/");
    let described = app
        .patch(
            &path,
            ann,
            json!({"frame_descriptions": {"1": "t = 0 s", "2": "t = 30 s"}}),
        )
        .await;
    assert_eq!(described.status, StatusCode::OK, "{described:?}");
    assert_eq!(
        described.json["frame_descriptions"],
        json!({"1": "t = 0 s", "2": "t = 30 s"})
    );
    let changed = app
        .patch(
            &path,
            ann,
            json!({"frame_descriptions": {"1": null, "3": "t = 60 s"}}),
        )
        .await;
    assert_eq!(
        changed.json["frame_descriptions"],
        json!({"2": "t = 30 s", "3": "t = 60 s"}),
        "{changed:?}"
    );
    let before = app.position().await;
    for bad in [
        json!({"frame_descriptions": {"4": "past the last frame"}}),
        json!({"frame_descriptions": {"two": "not a number"}}),
        json!({"frame_descriptions": ["t = 0 s"]}),
    ] {
        let refused = app.patch(&path, ann, bad.clone()).await;
        assert_eq!(refused.status.as_u16() / 100, 4, "{bad}: {refused:?}");
        assert_eq!(refused.json["field"], "frame_descriptions", "{refused:?}");
    }
    let unchanged = app
        .patch(&path, ann, json!({"frame_descriptions": {"2": "t = 30 s"}}))
        .await;
    assert_eq!(unchanged.status, StatusCode::OK, "{unchanged:?}");
    assert_eq!(
        app.position().await,
        before,
        "refusals and no-ops write nothing"
    );
    assert_eq!(
        app.get(&path, ann).await.json["frame_descriptions"]["3"],
        "t = 60 s"
    );

    // A single-frame image has no frame 2.
    let png = image(&app, ann, lab.set, "one.png", 300, 200).await;
    let none = app
        .get(&format!("/api/v1/images/images/{png}/1/2/tile/"), ann)
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
}

/// What EXACT's client sends that this server once refused: team, product and type deletes,
/// team and vector-type corrections, and EXACT's `objectivePower` key. Each is an event; the
/// log keeps what was before.
async fn deletes_and_corrections_exact_accepts_are_events(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    let bob_id = app.user("bob").await;
    let (ann, bob) = (("ann", "pw-ann"), ("bob", "pw-bob"));
    let lab = project(&app, ann, "Deletes", 1).await;
    add_member(&app, ann, lab.team, bob_id).await;
    let image_id = image(&app, ann, lab.set, "deletes.png", 300, 200).await;
    let image_json = app
        .get(&format!("/api/v1/images/images/{image_id}/"), ann)
        .await;
    assert!(
        image_json
            .json
            .as_object()
            .unwrap()
            .contains_key("objectivePower")
            && !image_json
                .json
                .as_object()
                .unwrap()
                .contains_key("objective_power"),
        "{image_json:?}"
    );
    let none = app
        .get("/api/v1/images/images/?objectivePower__range=30,50", ann)
        .await;
    assert_eq!(none.json["count"], 0, "a PNG has no objective power");

    // The team: renamed by its admin, not by a member.
    let team_path = format!("/api/v1/users/teams/{}/", lab.team);
    let refused = app.patch(&team_path, bob, json!({"name": "Bob's"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    let renamed = app
        .patch(&team_path, ann, json!({"name": "Renamed team"}))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{renamed:?}");
    assert_eq!(renamed.json["name"], "Renamed team");

    // The type: two boxes on the image; polygons need three nodes, so no.
    let boxes = vec![
        box_annotation(&app, ann, image_id, lab.annotation_type).await,
        box_annotation(&app, ann, image_id, lab.annotation_type).await,
    ];
    // EXACT's `verified_by_user`: whether the caller accepted it.
    let verdict = app
        .post(
            "/api/v1/annotations/verifications/",
            ann,
            json!({"annotation": boxes[0], "verified": true}),
        )
        .await;
    assert_eq!(verdict.status, StatusCode::CREATED, "{verdict:?}");
    let listed = app
        .get(
            &format!("/api/v1/annotations/annotations/?image={image_id}"),
            ann,
        )
        .await;
    let flags: Vec<&Value> = listed.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["verified_by_user"])
        .collect();
    assert_eq!(flags, [&json!(true), &json!(false)]);
    let for_bob = app
        .get(
            &format!("/api/v1/annotations/annotations/{}/", boxes[0]),
            bob,
        )
        .await;
    assert_eq!(for_bob.json["verified_by_user"], false);

    let type_path = format!(
        "/api/v1/annotations/annotation_types/{}/",
        lab.annotation_type
    );
    let before = app.position().await;
    let polygon = app
        .patch(&type_path, ann, json!({"vector_type": 5, "name": "cells"}))
        .await;
    assert_eq!(polygon.status, StatusCode::CONFLICT, "{polygon:?}");
    assert_eq!(
        (
            polygon.json["code"].as_str(),
            polygon.json["field"].as_str()
        ),
        (Some("in_use"), Some("vector_type"))
    );
    let message = polygon.json["message"].as_str().unwrap();
    assert!(
        boxes.iter().all(|id| message.contains(&id.to_string())),
        "the refusal names the annotations: {message}"
    );
    assert_eq!(
        app.position().await,
        before,
        "a refused change writes nothing"
    );
    // Two nodes make a line of several segments: that fits.
    let multi_line = app.patch(&type_path, ann, json!({"vector_type": 4})).await;
    assert_eq!(multi_line.status, StatusCode::OK, "{multi_line:?}");
    assert_eq!(multi_line.json["vector_type"], 4);
    let by_vector_type = app
        .get(
            &format!("/api/v1/annotations/annotations/?image={image_id}&vector_type=4"),
            ann,
        )
        .await;
    assert_eq!(ids_of(&by_vector_type), boxes);

    // Deleting the type deletes its live annotations in the same append; as of before, they
    // and the type's annotations are all there.
    let before_delete = app.position().await;
    let deleted = app.delete(&type_path, ann).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    assert_eq!(app.get(&type_path, ann).await.status, StatusCode::NOT_FOUND);
    let types = app
        .get(
            &format!(
                "/api/v1/annotations/annotation_types/?product={}",
                lab.product
            ),
            ann,
        )
        .await;
    assert_eq!(types.json["count"], 0, "{types:?}");
    let live = app
        .get(
            &format!("/api/v1/annotations/annotations/?image={image_id}&deleted=false"),
            ann,
        )
        .await;
    assert_eq!(live.json["count"], 0, "{live:?}");
    let then = app
        .get(
            &format!(
                "/api/v1/annotations/annotations/?image={image_id}&deleted=false&as_of={before_delete}"
            ),
            ann,
        )
        .await;
    assert_eq!(ids_of(&then), boxes);
    let orphan = app
        .post(
            "/api/v1/annotations/annotations/",
            ann,
            json!({"image": image_id, "annotation_type": lab.annotation_type,
                   "vector": {"x1": 1, "y1": 1, "x2": 9, "y2": 9}}),
        )
        .await;
    assert_eq!(orphan.status.as_u16() / 100, 4, "{orphan:?}");
    assert_eq!(orphan.json["field"], "annotation_type");
    // Its name is free again.
    let again = app
        .post(
            "/api/v1/annotations/annotation_types/",
            ann,
            json!({"name": "mitosis", "product": lab.product, "vector_type": 1}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{again:?}");
    let on_again = box_annotation(&app, ann, image_id, again.json["id"].as_i64().unwrap()).await;

    // The product: gone, its types listed and offered nowhere.
    let product_path = format!("/api/v1/administration/products/{}/", lab.product);
    assert_eq!(
        app.delete(&product_path, bob).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&product_path, ann).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&product_path, ann).await.status,
        StatusCode::NOT_FOUND
    );
    let products = app.get("/api/v1/administration/products/", ann).await;
    assert_eq!(products.json["count"], 0, "{products:?}");
    let types = app.get("/api/v1/annotations/annotation_types/", ann).await;
    assert_eq!(types.json["count"], 0, "{types:?}");
    // ... and its types' live annotations went with them, in the same append.
    let gone = app
        .get(&format!("/api/v1/annotations/annotations/{on_again}/"), ann)
        .await;
    assert_eq!(gone.json["deleted"], true, "{gone:?}");
    let set_path = format!("/api/v1/images/image_sets/{}/", lab.set);
    assert_eq!(app.get(&set_path, ann).await.json["product_set"], json!([]));

    // The team: deleted by its admin; its set stays, without a team, public and locked.
    assert_eq!(
        app.delete(&team_path, bob).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&team_path, ann).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&team_path, ann).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/users/teams/", ann).await.json["count"], 0);
    let set = app.get(&set_path, ann).await;
    assert_eq!(set.status, StatusCode::OK, "{set:?}");
    assert_eq!(
        (
            &set.json["team"],
            &set.json["public"],
            &set.json["image_lock"]
        ),
        (&Value::Null, &json!(true), &json!(true))
    );
}

/// Every list reads its filters into a typed struct with DRF's leniency (`True`, numbers as
/// text, `__in` lists, `__range` pairs); a value that cannot be read is a 400 `invalid_query`
/// naming the parameter, on every kind of filter and every list.
async fn list_filters_are_typed_and_a_refusal_names_the_parameter(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    let ann = ("ann", "pw-ann");
    let first = project(&app, ann, "Typed one", 1).await;
    let second = project(&app, ann, "Typed two", 1).await;
    let patch = app
        .patch(
            &format!("/api/v1/images/image_sets/{}/", second.set),
            ann,
            json!({"public": "True", "priority": "1"}),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK, "{patch:?}");
    assert_eq!(
        (
            patch.json["public"].as_bool(),
            patch.json["priority"].as_i64()
        ),
        (Some(true), Some(1))
    );

    let sets = |query: &str| format!("/api/v1/images/image_sets/?{query}");
    let both = [first.set, second.set];
    for (query, expected) in [
        ("public=True".to_owned(), vec![second.set]),
        ("public=0".to_owned(), vec![first.set]),
        (format!("id__in={},{}", both[0], both[1]), both.to_vec()),
        (format!("id={}&id__in={}", both[0], both[1]), vec![]),
        (
            "name__in=Typed%20one%20set,Typed+two+set".to_owned(),
            both.to_vec(),
        ),
        ("name__contains=TWO".to_owned(), vec![second.set]),
        ("priority=%201%20".to_owned(), vec![second.set]),
        (
            "time__range=2000-01-01T00:00:00Z,2999-01-01T00:00:00Z".to_owned(),
            both.to_vec(),
        ),
        ("time__lte=2000-01-01".to_owned(), vec![]),
        ("team=".to_owned(), both.to_vec()),
    ] {
        let answer = app.get(&sets(&query), ann).await;
        assert_eq!(answer.status, StatusCode::OK, "{query}: {answer:?}");
        assert_eq!(ids_of(&answer), expected, "{query}");
    }
    // A page's links keep the filters, encoded.
    let paged = app
        .get(
            &sets("name__in=Typed%20one%20set,Typed+two+set&limit=1"),
            ann,
        )
        .await;
    let next = paged.json["next"].as_str().unwrap();
    assert!(
        next.contains("name__in=Typed+one+set%2CTyped+two+set"),
        "{next}"
    );
    assert_eq!(
        ids_of(&app.get(&next.replace("http://localhost", ""), ann).await),
        [second.set]
    );

    let picture = image(&app, ann, first.set, "typed.png", 40, 30).await;
    let patch_of = |query: &str| format!("/api/v1/images/images/{picture}/get_patch/?{query}");
    let (bad_corner, no_corner) = (patch_of("x=1&y=a"), patch_of("y=1"));
    let before = app.position().await;
    for (path, parameter) in [
        ("/api/v1/images/image_sets/?public=maybe", "public"),
        ("/api/v1/images/image_sets/?team=one", "team"),
        (
            "/api/v1/images/image_sets/?time__gte=yesterday",
            "time__gte",
        ),
        (
            "/api/v1/images/image_sets/?time__range=2020-01-01",
            "time__range",
        ),
        ("/api/v1/images/image_sets/?id__in=1,x", "id__in"),
        (
            "/api/v1/images/images/?objectivePower__range=20",
            "objectivePower__range",
        ),
        ("/api/v1/images/images/?mpp=NaN", "mpp"),
        ("/api/v1/annotations/annotations/?in_bbox=1,2,3", "in_bbox"),
        ("/api/v1/annotations/annotations/?vector_x=1", "vector_x"),
        (
            "/api/v1/annotations/annotations/?unique_identifier=not-a-uuid",
            "unique_identifier",
        ),
        (
            "/api/v1/annotations/annotation_types/?vector_type__range=1",
            "vector_type__range",
        ),
        ("/api/v1/users/users/?is_staff=2", "is_staff"),
        ("/api/v1/users/teams/?members=me", "members"),
        (
            "/api/v1/annotations/verifications/?verified=yes%20please",
            "verified",
        ),
        (bad_corner.as_str(), "y"),
        ("/api/v1/images/image_sets/?limit=many", "limit"),
    ] {
        let answer = app.get(path, ann).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}: {answer:?}");
        assert_eq!(
            (answer.json["code"].as_str(), answer.json["field"].as_str()),
            (Some("invalid_query"), Some(parameter)),
            "{path}: {answer:?}"
        );
    }
    let missing = app.get(&no_corner, ann).await;
    assert_eq!(
        (
            missing.status,
            missing.json["code"].as_str(),
            missing.json["field"].as_str()
        ),
        (StatusCode::BAD_REQUEST, Some("required"), Some("x"))
    );
    assert_eq!(
        app.position().await,
        before,
        "a refused filter writes nothing"
    );
}

/// `verified_by_user` is read two ways (the caller's verdicts in the page's id range, or, for a
/// caller who verified many there, the page's ids one by one); both answer the same.
async fn verified_by_user_holds_however_many_the_caller_verified(db: TestDb) {
    let app = TestApp::new(db).await;
    let p = project(&app, ADMIN, "verdicts", 1).await;
    let image_id = image(&app, ADMIN, p.set, "v.png", 100, 100).await;
    let boxes: Vec<Value> = (0..24)
        .map(|i| {
            json!({"image": image_id, "annotation_type": p.annotation_type,
                   "vector": {"x1": i, "y1": 1, "x2": i + 5, "y2": 9}})
        })
        .collect();
    let created = app
        .post("/api/v1/annotations/annotations/", ADMIN, json!(boxes))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let ids: Vec<i64> = created
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    // Accept the even ones but the last, reject the odd ones.
    let mut accepted = std::collections::BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let verified = i % 2 == 0 && i < 22;
        let verdict = app
            .post(
                "/api/v1/annotations/verifications/",
                ADMIN,
                json!({"annotation": id, "verified": verified}),
            )
            .await;
        assert_eq!(verdict.status, StatusCode::CREATED, "{verdict:?}");
        if verified {
            accepted.insert(*id);
        }
    }
    let flags = |answer: &support::Answer| -> Vec<(i64, bool)> {
        answer.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["id"].as_i64().unwrap(),
                    a["verified_by_user"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let expected = |shown: &[(i64, bool)]| -> Vec<(i64, bool)> {
        shown
            .iter()
            .map(|(id, _)| (*id, accepted.contains(id)))
            .collect()
    };
    // Pages of neighbours: few verdicts in their range.
    for offset in [0, 5, 20] {
        let page = app
            .get(
                &format!(
                    "/api/v1/annotations/annotations/?image={image_id}&limit=5&offset={offset}"
                ),
                ADMIN,
            )
            .await;
        let shown = flags(&page);
        assert!(!shown.is_empty());
        assert_eq!(shown, expected(&shown), "offset {offset}");
    }
    // A page of two far apart: eleven accepted between them, more than the page holds, so
    // the ids are asked one by one.
    let (first, last) = (ids[0], ids[22]);
    let far = app
        .get(
            &format!("/api/v1/annotations/annotations/?id__in={first},{last}"),
            ADMIN,
        )
        .await;
    assert_eq!(flags(&far), vec![(first, true), (last, false)]);
    let near_and_far = app
        .get(
            &format!(
                "/api/v1/annotations/annotations/?id__in={first},{}",
                ids[20]
            ),
            ADMIN,
        )
        .await;
    assert_eq!(flags(&near_and_far), vec![(first, true), (ids[20], true)]);
    // Another member of the team sees none of it as theirs.
    let other = app.user("other").await;
    add_member(&app, ADMIN, p.team, other).await;
    let p_other = app
        .get(
            &format!("/api/v1/annotations/annotations/?image={image_id}&limit=50"),
            ("other", "pw-other"),
        )
        .await;
    let theirs = flags(&p_other);
    assert_eq!(theirs.len(), 24);
    assert!(theirs.iter().all(|(_, mine)| !mine));
}

/// Clinical mode (issue 19): a verdict is an electronic signature (the password again, the
/// signer's name, the time and the meaning, bound to the version signed), and an annotation
/// that has a verdict is changed, deleted or un-verified only with a reason. Every refusal
/// names its field and writes nothing.
async fn clinical_mode_asks_for_reasons_and_signatures(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    let bob_id = app.user("bob").await;
    let (ann, bob) = (("ann", "pw-ann"), ("bob", "pw-bob"));
    let lab = project(&app, ann, "Clinic", 1).await;
    add_member(&app, ann, lab.team, bob_id).await;
    let image_id = image(&app, ann, lab.set, "clinic.png", 300, 200).await;
    let signed_box = box_annotation(&app, ann, image_id, lab.annotation_type).await;
    let other_box = box_annotation(&app, ann, image_id, lab.annotation_type).await;
    let set_path = format!("/api/v1/images/image_sets/{}/", lab.set);
    assert_eq!(app.get(&set_path, ann).await.json["clinical"], false);
    let switched = app.patch(&set_path, bob, json!({"clinical": true})).await;
    assert_eq!(
        switched.status,
        StatusCode::FORBIDDEN,
        "a member may not: {switched:?}"
    );
    let switched = app.patch(&set_path, ann, json!({"clinical": true})).await;
    assert_eq!(switched.status, StatusCode::OK, "{switched:?}");
    assert_eq!(switched.json["clinical"], true);

    let refused = |answer: &support::Answer, status: StatusCode, code: &str, field: &str| {
        assert_eq!(answer.status, status, "{answer:?}");
        assert_eq!(answer.json["code"], code, "{answer:?}");
        assert_eq!(answer.json["field"], field, "{answer:?}");
    };
    let verdicts = "/api/v1/annotations/verifications/";
    let before = app.position().await;
    // No password, another's password, a meaning that contradicts `verified`, an unknown one.
    for (body, status, code, field) in [
        (
            json!({"annotation": signed_box, "verified": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "signature_required",
            "password",
        ),
        (
            json!({"annotation": signed_box, "verified": true, "password": "pw-ann"}),
            StatusCode::FORBIDDEN,
            "signature_refused",
            "password",
        ),
        (
            json!({"annotation": signed_box, "verified": true, "password": "pw-bob", "meaning": "rejected"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "meaning",
        ),
        (
            json!({"annotation": signed_box, "verified": true, "password": "pw-bob", "meaning": "liked"}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "meaning",
        ),
    ] {
        refused(&app.post(verdicts, bob, body).await, status, code, field);
    }
    assert_eq!(app.position().await, before, "no refusal wrote anything");

    let signed = app
        .post(
            verdicts,
            bob,
            json!({"annotation": signed_box, "verified": true, "password": "pw-bob", "meaning": "reviewed"}),
        )
        .await;
    assert_eq!(signed.status, StatusCode::CREATED, "{signed:?}");
    let signature = &signed.json["signature"];
    assert_eq!(signature["name"], "bob");
    assert_eq!(signature["meaning"], "reviewed");
    assert_eq!(signature["annotation_version"], 1);
    assert_eq!(signature["applies_to_current_version"], true);
    assert_eq!(signature["signed_at"], signed.json["time"]);
    // The log itself holds the signature: name, meaning and version, hashed with the event.
    let last = app
        .state
        .store
        .read_page(app.position().await, 1)
        .await
        .unwrap();
    assert_eq!(last[0].event_type, "AnnotationVerified");
    assert_eq!(
        last[0].payload_value().unwrap()["signature"],
        json!({"name": "bob", "meaning": "reviewed", "version": 1})
    );

    // Changing the signed annotation needs a reason; without one nothing changes.
    let annotation_path = format!("/api/v1/annotations/annotations/{signed_box}/");
    let before = app.position().await;
    let unexplained = app
        .patch(&annotation_path, ann, json!({"description": "mitosis"}))
        .await;
    refused(
        &unexplained,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason_required",
        "reason",
    );
    let deleted = app.delete(&annotation_path, ann).await;
    refused(
        &deleted,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason_required",
        "reason",
    );
    assert_eq!(app.position().await, before);
    assert_eq!(app.get(&annotation_path, ann).await.json["description"], "");
    let explained = app
        .patch(
            &annotation_path,
            ann,
            json!({"description": "mitosis", "reason": "second look at 40x"}),
        )
        .await;
    assert_eq!(explained.status, StatusCode::OK, "{explained:?}");
    let changed_at = app.position().await;
    // The signature stays with the version signed.
    let verdict = app
        .get(&format!("{verdicts}?annotation={signed_box}"), ann)
        .await;
    let signature = &verdict.json["results"][0]["signature"];
    assert_eq!(signature["annotation_version"], 1);
    assert_eq!(signature["applies_to_current_version"], false);
    assert_eq!(signature["superseded_at_position"], changed_at);
    // A delete carries its reason in a header, percent-encoded beyond ASCII.
    let gone = app
        .send(
            Method::DELETE,
            &annotation_path,
            Some(ann),
            None,
            vec![],
            &[(
                "X-Exact-Reason",
                "doppelt%20erfasst%20%E2%80%93%20duplicate",
            )],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{gone:?}");
    let history = app.get(&format!("{annotation_path}history/"), ann).await;
    let reasons: Vec<&Value> = history.json["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["reason"])
        .collect();
    assert_eq!(
        reasons,
        [
            &Value::Null,
            &Value::Null,
            &json!("second look at 40x"),
            &json!("doppelt erfasst \u{2013} duplicate")
        ],
        "{history:?}"
    );

    // An annotation without a verdict changes as anywhere.
    let free = app
        .patch(
            &format!("/api/v1/annotations/annotations/{other_box}/"),
            ann,
            json!({"description": "no verdict, no reason"}),
        )
        .await;
    assert_eq!(free.status, StatusCode::OK, "{free:?}");
    // Taking a signed verdict back needs a reason too.
    let signed = app
        .post(
            verdicts,
            bob,
            json!({"annotation": other_box, "verified": false, "password": "pw-bob"}),
        )
        .await;
    assert_eq!(signed.status, StatusCode::CREATED, "{signed:?}");
    assert_eq!(signed.json["signature"]["meaning"], "rejected");
    let verdict_path = format!("{verdicts}{}/", signed.json["id"]);
    let before = app.position().await;
    let withdrawn = app.delete(&verdict_path, bob).await;
    refused(
        &withdrawn,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reason_required",
        "reason",
    );
    assert_eq!(app.position().await, before);
    let withdrawn = app
        .send(
            Method::DELETE,
            &verdict_path,
            Some(bob),
            None,
            vec![],
            &[("X-Exact-Reason", "signed the wrong cell")],
        )
        .await;
    assert_eq!(withdrawn.status, StatusCode::NO_CONTENT, "{withdrawn:?}");

    // Out of clinical mode, a plain verdict is taken again.
    let off = app.patch(&set_path, ann, json!({"clinical": false})).await;
    assert_eq!(off.json["clinical"], false, "{off:?}");
    let plain = app
        .post(
            verdicts,
            bob,
            json!({"annotation": other_box, "verified": true}),
        )
        .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{plain:?}");
    assert_eq!(plain.json["signature"], Value::Null);

    // The signatures and the setting are read models like any other: a rebuild from the log
    // gives the same rows.
    let tables = || async {
        match &app.db.url {
            exact_store::StoreUrl::Sqlite(path) => {
                exact_replay::read_models::sqlite_tables(path).await
            }
            exact_store::StoreUrl::Postgres(url) => {
                exact_replay::read_models::postgres_tables(url).await
            }
        }
        .unwrap()
    };
    let live = tables().await;
    for name in [
        exact_projections::catalog::NAME,
        exact_projections::annotations::NAME,
    ] {
        app.state
            .store
            .rebuild(name, std::sync::Arc::new(|_, _| {}))
            .await
            .unwrap();
    }
    let rebuilt = tables().await;
    assert_eq!(
        exact_replay::read_models::compare(&live, &rebuilt),
        vec![],
        "a rebuild changed the read models"
    );
}
