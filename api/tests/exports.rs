//! Exports (issue 18), on both backends: a set's annotations in EXACT's language, COCO, CSV and
//! GeoJSON, read at a log position, packed with a manifest that names the position and its
//! chain hash; the same request gives the same bytes whatever was written since; a team's
//! format applies its templates, conditionals and `min_verifications`; nobody exports a set
//! they may not read.

mod support;

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use axum::http::StatusCode;
use exact_api::commands::Caller;
use exact_domain::export_format::FormatSettings;
use exact_store::testing::TestDb;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::{add_member, box_annotation, image, project, TestApp};

exact_store::on_both_backends!(
    exports_read_the_set_as_of_a_position,
    imports_check_every_line_and_apply_all_or_nothing,
    zip_downloads_answer_as_exact_and_never_go_stale,
    team_formats_are_edited_with_a_preview_and_exports_are_listed,
    the_default_format_is_made_with_the_store_and_superusers_change_it,
    zips_of_labels_are_imported_whole_and_checked,
    multi_file_slides_are_downloaded_with_their_parts
);

/// The files of a zip, by name.
fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        files.insert(file.name().to_owned(), content);
    }
    files
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

async fn exports_read_the_set_as_of_a_position(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    let bob_id = app.user("bob").await;
    app.user("carl").await;
    let (ann, bob, carl) = (("ann", "pw-ann"), ("bob", "pw-bob"), ("carl", "pw-carl"));
    let lab = project(&app, ann, "Exports", 1).await;
    add_member(&app, ann, lab.team, bob_id).await;
    let polygon_type = app
        .post(
            "/api/v1/annotations/annotation_types/",
            ann,
            json!({"name": "gland", "product": lab.product, "vector_type": 5,
                   "enable_concealed": true}),
        )
        .await;
    assert_eq!(polygon_type.status, StatusCode::CREATED, "{polygon_type:?}");
    let polygon_type = polygon_type.json["id"].as_i64().unwrap();
    let slide = image(&app, ann, lab.set, "slide.png", 300, 200).await;
    let create = |vector: Value, kind: i64, extra: Value| {
        let app = &app;
        async move {
            let mut body = json!({"image": slide, "annotation_type": kind, "vector": vector});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let answer = app
                .post("/api/v1/annotations/annotations/", ann, body)
                .await;
            assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
            (
                answer.json["id"].as_i64().unwrap(),
                answer.json["unique_identifier"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        }
    };
    let (first, _) = create(
        json!({"x1": 10, "y1": 20, "x2": 40, "y2": 60}),
        lab.annotation_type,
        json!({}),
    )
    .await;
    let (gland, gland_uuid) = create(
        json!({"x1": 0, "y1": 0, "x2": 10, "y2": 0, "x3": 10, "y3": 10, "x4": 0, "y4": 10}),
        polygon_type,
        json!({"concealed": true, "description": "a, \"quoted\" gland"}),
    )
    .await;
    let (third, third_uuid) = create(
        json!({"x1": 100.5, "y1": 50, "x2": 120.5, "y2": 80}),
        lab.annotation_type,
        json!({}),
    )
    .await;
    let then = app.state.store.last_position().await.unwrap();
    let chain_hash = hex::encode(app.state.store.read_page(then, 1).await.unwrap()[0].hash);

    let export = |query: String, who: (&'static str, &'static str)| {
        let app = &app;
        async move {
            app.get(
                &format!("/api/v1/images/image_sets/{}/export/?{query}", lab.set),
                who,
            )
            .await
        }
    };

    // COCO as of `then`: the manifest names the position, its chain hash and every file's hash.
    let coco_then = export(format!("format=coco&as_of={then}"), ann).await;
    assert_eq!(coco_then.status, StatusCode::OK, "{coco_then:?}");
    let files = unzip(&coco_then.bytes);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["annotations.coco.json", "manifest.json"]
    );
    let manifest = json_of(&files["manifest.json"]);
    assert_eq!(manifest["position"], then);
    assert_eq!(manifest["chain_hash"], chain_hash);
    assert_eq!(manifest["format"], "coco");
    assert_eq!(manifest["image_set"]["id"], lab.set);
    assert_eq!(manifest["exported_by"]["username"], "ann");
    assert_eq!(manifest["annotations"], 3);
    assert_eq!(
        manifest["files"][0]["sha256"],
        hex::encode(Sha256::digest(&files["annotations.coco.json"]))
    );
    let coco = json_of(&files["annotations.coco.json"]);
    assert_eq!(
        coco["images"],
        json!([{"id": slide, "file_name": "slide.png", "width": 300, "height": 200}])
    );
    let categories: Vec<&str> = coco["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(categories, ["cell", "gland"]);
    let annotations = coco["annotations"].as_array().unwrap();
    assert_eq!(annotations.len(), 3);
    assert_eq!(annotations[0]["id"], first);
    assert_eq!(annotations[0]["bbox"], json!([10.0, 20.0, 30.0, 40.0]));
    assert_eq!(annotations[0]["area"], 1200.0);
    assert_eq!(annotations[1]["area"], 100.0);
    assert_eq!(
        annotations[1]["segmentation"],
        json!([[0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0]])
    );
    assert_eq!(annotations[1]["exact_uuid"], gland_uuid.as_str());

    // EXACT's default format: the lines its label upload reads back.
    let exact_then = export(format!("format=exact&as_of={then}"), ann).await;
    assert_eq!(exact_then.status, StatusCode::OK, "{exact_then:?}");
    let files = unzip(&exact_then.bytes);
    let name = format!("export_{then}.txt");
    assert_eq!(
        String::from_utf8(files[&name].clone()).unwrap(),
        "\nslide.png|cell|{\"x1\": 10,\"y1\": 20,\"x2\": 40,\"y2\": 60}|\n\
         slide.png|gland|{\"x1\": 0,\"y1\": 0,\"x2\": 10,\"y2\": 0,\"x3\": 10,\"y3\": 10,\"x4\": 0,\"y4\": 10}|\n\
         slide.png|cell|{\"x1\": 100.5,\"y1\": 50,\"x2\": 120.5,\"y2\": 80}|\n"
    );

    // Then the world moves on: a type renamed, an annotation moved, one deleted, one added, a
    // verdict given.
    let renamed = app
        .patch(
            &format!(
                "/api/v1/annotations/annotation_types/{}/",
                lab.annotation_type
            ),
            ann,
            json!({"name": "tumour cell"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{renamed:?}");
    let moved = app
        .patch(
            &format!("/api/v1/annotations/annotations/{first}/"),
            ann,
            json!({"vector": {"x1": 11, "y1": 21, "x2": 41, "y2": 61}}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{moved:?}");
    let deleted = app
        .delete(&format!("/api/v1/annotations/annotations/{gland}/"), ann)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    let (fourth, _) = create(
        json!({"x1": 200, "y1": 100, "x2": 210, "y2": 110}),
        lab.annotation_type,
        json!({}),
    )
    .await;
    let verdict = app
        .post(
            "/api/v1/annotations/verifications/",
            bob,
            json!({"annotation": third, "verified": true}),
        )
        .await;
    assert_eq!(verdict.status, StatusCode::CREATED, "{verdict:?}");

    // The same requests give the same bytes.
    let again = export(format!("format=coco&as_of={then}"), ann).await;
    assert_eq!(again.bytes, coco_then.bytes, "COCO as of {then} changed");
    let again = export(format!("format=exact&as_of={then}"), ann).await;
    assert_eq!(
        again.bytes, exact_then.bytes,
        "EXACT's format as of {then} changed"
    );
    // A dataset version of that moment is the same export.
    let version = app
        .post(
            "/api/v1/images/set_versions/",
            ann,
            json!({"name": "v1", "imagesets": [lab.set], "position": then}),
        )
        .await;
    assert_eq!(version.status, StatusCode::CREATED, "{version:?}");
    let by_version = export(format!("format=coco&version={}", version.json["id"]), ann).await;
    assert_eq!(by_version.bytes, coco_then.bytes);

    // Now is another moment.
    let now = export("format=coco".into(), ann).await;
    let files = unzip(&now.bytes);
    let coco = json_of(&files["annotations.coco.json"]);
    assert_eq!(coco["annotations"].as_array().unwrap().len(), 3);
    assert_eq!(
        coco["annotations"][0]["bbox"],
        json!([11.0, 21.0, 30.0, 40.0])
    );
    assert_eq!(coco["categories"][0]["name"], "tumour cell");
    assert!(
        json_of(&files["manifest.json"])["position"]
            .as_i64()
            .unwrap()
            > then
    );

    // What changed since: the move, the deletion and the addition (the verdict and the
    // rename change no annotation), per type and image; a version names the same moment.
    let diff = app
        .get(
            &format!("/api/v1/images/image_sets/{}/diff/?from={then}", lab.set),
            ann,
        )
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{diff:?}");
    assert_eq!(
        (
            &diff.json["added"],
            &diff.json["removed"],
            &diff.json["changed"]
        ),
        (&json!([fourth]), &json!([gland]), &json!([first])),
        "{diff:?}"
    );
    assert_eq!(
        diff.json["total"],
        json!({"added": 1, "removed": 1, "changed": 1}),
        "{diff:?}"
    );
    // The diff page says the same, each annotation linked to its trail; a moment it cannot
    // read is said beside the form; a set one may not read is not there.
    let diff_page = format!("/images/imageset/{}/diff/", lab.set);
    let (status, html) = page_html(&app, &format!("{diff_page}?from={then}"), ann).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(
            "<strong>1</strong> added, <strong>1</strong> removed, <strong>1</strong> changed"
        ),
        "{html}"
    );
    assert!(html.contains(&format!("href=\"/audit/?annotation={fourth}\"")));
    assert!(
        html.contains("<td>gland</td><td>0</td><td>1</td><td>0</td>"),
        "{html}"
    );
    let (status, html) = page_html(&app, &format!("{diff_page}?from=yesterday"), ann).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"diff-error\">from: "), "{html}");
    let (status, _) = page_html(&app, &format!("{diff_page}?from={then}"), carl).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        diff.json["by_type"],
        json!({"tumour cell": {"added": 1, "removed": 0, "changed": 1},
               "gland": {"added": 0, "removed": 1, "changed": 0}})
    );
    assert_eq!(
        diff.json["by_image"]["slide.png"],
        json!({"added": 1, "removed": 1, "changed": 1})
    );
    let by_version = app
        .get(
            &format!(
                "/api/v1/images/image_sets/{}/diff/?from_version={}",
                lab.set, version.json["id"]
            ),
            ann,
        )
        .await;
    assert_eq!(by_version.json["by_type"], diff.json["by_type"]);
    let beyond = format!("from={then}&to=999999");
    for (query, field) in [
        ("", "from"),
        ("from=never", "from"),
        (beyond.as_str(), "to"),
    ] {
        let refused = app
            .get(
                &format!("/api/v1/images/image_sets/{}/diff/?{query}", lab.set),
                ann,
            )
            .await;
        assert!(refused.status.is_client_error(), "{query}: {refused:?}");
        assert_eq!(refused.json["field"], field, "{query}: {refused:?}");
    }

    // CSV: every annotation, deleted ones too, quoted where needed.
    let csv = export("format=csv".into(), bob).await;
    assert_eq!(csv.status, StatusCode::OK, "{csv:?}");
    let text = String::from_utf8(unzip(&csv.bytes)["annotations.csv"].clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with("id,unique_identifier,image,image_name,"));
    assert!(
        lines[2].contains(",gland,")
            && lines[2].contains(",\"a, \"\"quoted\"\" gland\",")
            && lines[2].contains(",true,false,true,"),
        "{}",
        lines[2]
    );
    assert!(lines[3].ends_with(",1,0"), "bob's verdict: {}", lines[3]);

    // QuPath's GeoJSON: one file per image, classifications with QuPath's colours.
    let qupath = export("format=qupath".into(), ann).await;
    let files = unzip(&qupath.bytes);
    let features = json_of(&files["slide.png.geojson"]);
    assert_eq!(features["type"], "FeatureCollection");
    let features = features["features"].as_array().unwrap();
    assert_eq!(features.len(), 3);
    assert_eq!(features[0]["geometry"]["type"], "Polygon");
    assert_eq!(
        features[0]["properties"]["classification"],
        json!({"name": "tumour cell", "color": [204, 68, 68]})
    );

    // A team's format: its templates, a conditional, and min_verifications applied.
    let format = FormatSettings {
        name: "centres".into(),
        annotation_format: "%%UUID;%%type;%%cx;%%cy;%%relwidth%%ifconcealed;hidden%%endif".into(),
        min_verifications: 1,
        name_format: "%%imageset-%%exportid.csv".into(),
        ..FormatSettings::default()
    };
    let caller = Caller::new(
        exact_domain::Actor {
            id: app
                .state
                .read
                .user_by_username("ann")
                .await
                .unwrap()
                .unwrap()
                .id,
            superuser: false,
            staff: false,
        },
        exact_store::Source::Api,
    );
    app.state
        .commands
        .create_export_format(&caller, lab.team, format)
        .await
        .unwrap();
    let format_id = app
        .state
        .read
        .export_format_named("centres")
        .await
        .unwrap()
        .unwrap();
    let team_format = export(format!("format=exact:{format_id}"), ann).await;
    assert_eq!(team_format.status, StatusCode::OK, "{team_format:?}");
    let files = unzip(&team_format.bytes);
    let position = json_of(&files["manifest.json"])["position"]
        .as_i64()
        .unwrap();
    assert_eq!(
        String::from_utf8(files[&format!("Exports set-{position}.csv")].clone()).unwrap(),
        format!("\n{third_uuid};tumour cell;110.5;65.0;0.06666666666666667\n"),
        "only the annotation with a net accept"
    );

    // Refusals: JSON, naming the field; nothing for those who may not read the set.
    for (query, field) in [
        ("", "format"),
        ("format=pascal", "format"),
        ("format=coco&as_of=999999", "as_of"),
        ("format=coco&as_of=yesterday", "as_of"),
        ("format=coco&version=999", "version"),
        ("format=exact:999", "format"),
    ] {
        let refused = export(query.into(), ann).await;
        assert!(refused.status.is_client_error(), "{query}: {refused:?}");
        assert_eq!(refused.json["field"], field, "{query}: {refused:?}");
    }
    let outsider = export("format=coco".into(), carl).await;
    assert_eq!(outsider.status, StatusCode::NOT_FOUND, "{outsider:?}");
    // Another team's format is not carl's to use, not even on his own set.
    let carls = project(&app, carl, "Carl", 1).await;
    let borrowed = app
        .get(
            &format!(
                "/api/v1/images/image_sets/{}/export/?format=exact:{format_id}",
                carls.set
            ),
            carl,
        )
        .await;
    assert_eq!(borrowed.status, StatusCode::NOT_FOUND, "{borrowed:?}");
    assert_eq!(borrowed.json["field"], "format");

    // The set page's form sends its empty fields; they mean "now". It lists the team's format.
    let from_form = export("format=coco&as_of=&version=".into(), ann).await;
    assert_eq!(from_form.status, StatusCode::OK, "{from_form:?}");
    let cookie = app.session(ann).await;
    let page = app
        .send(
            axum::http::Method::GET,
            &format!("/images/imageset/{}/", lab.set),
            None,
            None,
            vec![],
            &[("cookie", &cookie)],
        )
        .await;
    let html = String::from_utf8_lossy(&page.bytes);
    assert!(
        html.contains(&format!(
            "<option value=\"exact:{format_id}\">centres (a team's format)</option>"
        )),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"1\">v1</option>") || html.contains(">v1</option>"),
        "{html}"
    );
}

/// `format`'s export of set `from` (its file `file`) imported into a new project's set with
/// an image of the same name, types made on the way: the new set, the import's answer and the
/// new set's COCO export.
async fn copy_through(
    app: &TestApp,
    who: (&str, &str),
    from: i64,
    format: &str,
    file: &str,
    project_name: &str,
) -> (support::Project, support::Answer, Vec<u8>) {
    let exported = app
        .get(
            &format!("/api/v1/images/image_sets/{from}/export/?format={format}"),
            who,
        )
        .await;
    assert_eq!(exported.status, StatusCode::OK, "{exported:?}");
    let bytes = unzip(&exported.bytes)[file].clone();
    let copy = project(app, who, project_name, 1).await;
    image(app, who, copy.set, "slide.png", 300, 200).await;
    let imported = send_file(
        app,
        &format!(
            "/api/v1/images/image_sets/{}/import/?format={format}&create_types=true",
            copy.set
        ),
        who,
        &[],
        file,
        &bytes,
    )
    .await;
    assert_eq!(imported.status, StatusCode::OK, "{format}: {imported:?}");
    let coco = app
        .get(
            &format!("/api/v1/images/image_sets/{}/export/?format=coco", copy.set),
            who,
        )
        .await;
    (copy, imported, coco.bytes)
}

/// Posts `file` to `path` as multipart (`file` field) with `fields`.
async fn send_file(
    app: &TestApp,
    path: &str,
    who: (&str, &str),
    fields: &[(&str, &str)],
    name: &str,
    file: &[u8],
) -> support::Answer {
    app.multipart(path, who, fields, &[("file", name, file)])
        .await
}

async fn imports_check_every_line_and_apply_all_or_nothing(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    app.user("carl").await;
    let (ann, carl) = (("ann", "pw-ann"), ("carl", "pw-carl"));
    let lab = project(&app, ann, "Imports", 1).await;
    let gland = app
        .post(
            "/api/v1/annotations/annotation_types/",
            ann,
            json!({"name": "gland", "product": lab.product, "vector_type": 5}),
        )
        .await;
    assert_eq!(gland.status, StatusCode::CREATED, "{gland:?}");
    let gland = gland.json["id"].as_i64().unwrap();
    image(&app, ann, lab.set, "slide.png", 300, 200).await;
    let slide = app
        .get(
            &format!("/api/v1/images/images/?image_set={}", lab.set),
            ann,
        )
        .await
        .json["results"][0]["id"]
        .as_i64()
        .unwrap();
    for (kind, vector) in [
        (
            lab.annotation_type,
            json!({"x1": 10, "y1": 20, "x2": 40, "y2": 60}),
        ),
        (
            gland,
            json!({"x1": 0, "y1": 0, "x2": 10, "y2": 0, "x3": 10, "y3": 10}),
        ),
    ] {
        let made = app
            .post(
                "/api/v1/annotations/annotations/",
                ann,
                json!({"image": slide, "annotation_type": kind, "vector": vector}),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    }
    let head = || async { app.state.store.last_position().await.unwrap() };
    let label_upload = format!("/images/imageset/{}/label-upload/", lab.set);
    let import = format!("/api/v1/images/image_sets/{}/import/", lab.set);

    // EXACT's default export uploaded back changes nothing.
    let exported = app
        .get(
            &format!("/api/v1/images/image_sets/{}/export/?format=exact", lab.set),
            ann,
        )
        .await;
    let files = unzip(&exported.bytes);
    let (_, lines) = files.iter().find(|(n, _)| n.ends_with(".txt")).unwrap();
    let before = head().await;
    let back = send_file(&app, &label_upload, ann, &[], "export.txt", lines).await;
    assert_eq!(back.status, StatusCode::OK, "{back:?}");
    assert_eq!(
        (
            back.json["applied"].as_i64(),
            back.json["unchanged"].as_i64()
        ),
        (Some(0), Some(2))
    );
    assert_eq!(head().await, before, "nothing appended");

    // A file with refused lines: each named, nothing applied.
    let uuid = "0190aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee";
    let file = format!(
        "slide.png|cell|{{\"x1\": 100,\"y1\": 100,\"x2\": 120,\"y2\": 130,}}|b|{uuid}\n\
         other.png|cell|{{\"x1\": 1,\"y1\": 1,\"x2\": 5,\"y2\": 5}}|\n\
         slide.png|cell|{{\"x1\": 1,|\n\
         \n\
         slide.png|nucleus|not in image\n\
         slide.png|cell|{{\"x1\": 100,\"y1\": 100,\"x2\": 900,\"y2\": 130}}|\n\
         slide.png|cell|{{\"x1\": 1,\"y1\": 1,\"x2\": 5,\"y2\": 5}}|x\n"
    );
    let refused = send_file(&app, &label_upload, ann, &[], "labels.txt", file.as_bytes()).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{refused:?}"
    );
    assert_eq!(refused.json["code"], "import_refused");
    let report = &refused.json["report"];
    let at: Vec<&str> = report["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["at"].as_str().unwrap())
        .collect();
    let mut at = at;
    at.sort_unstable();
    assert_eq!(
        at,
        ["line 2", "line 3", "line 5", "line 6", "line 7"],
        "{report}"
    );
    assert_eq!(report["refused_count"], 5);
    assert!(
        report
            .to_string()
            .contains("no image named \\\"other.png\\\""),
        "{report}"
    );
    assert_eq!(head().await, before, "a refused file applies nothing");

    // Asked to, the valid line is applied, with its UUID and flag; a second time it is there.
    let applied = send_file(
        &app,
        &label_upload,
        ann,
        &[("apply_valid", "true"), ("verify", "true")],
        "labels.txt",
        file.as_bytes(),
    )
    .await;
    assert_eq!(applied.status, StatusCode::OK, "{applied:?}");
    assert_eq!(applied.json["applied"], 1, "{applied:?}");
    let made = app
        .get(
            &format!("/api/v1/annotations/annotations/?unique_identifier={uuid}"),
            ann,
        )
        .await;
    assert_eq!(made.json["results"][0]["blurred"], true, "{made:?}");
    // Accepted in the importer's name in the same append as its creation: one stream, one
    // correlation, the verdict right after.
    let head_now = head().await;
    let last = app.state.store.read_page(head_now - 1, 2).await.unwrap();
    let kinds: Vec<&str> = last.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["AnnotationCreated", "AnnotationVerified"]);
    assert_eq!(last[0].stream, last[1].stream);
    assert_eq!(
        last[0].metadata().unwrap().correlation_id,
        last[1].metadata().unwrap().correlation_id,
        "one append"
    );
    assert_eq!(last[1].payload_value().unwrap()["verified"], true);
    let again = send_file(
        &app,
        &label_upload,
        ann,
        &[("apply_valid", "true")],
        "labels.txt",
        file.as_bytes(),
    )
    .await;
    assert_eq!(
        (
            again.json["applied"].as_i64(),
            again.json["unchanged"].as_i64()
        ),
        (Some(0), Some(1))
    );

    // COCO round trip into another set (its types made on the way): the same shapes.
    let coco = app
        .get(
            &format!("/api/v1/images/image_sets/{}/export/?format=coco", lab.set),
            ann,
        )
        .await;
    let coco_file = unzip(&coco.bytes)["annotations.coco.json"].clone();
    let copy = project(&app, ann, "Copy", 1).await;
    image(&app, ann, copy.set, "slide.png", 300, 200).await;
    let before = app.position().await;
    let imported = send_file(
        &app,
        &format!(
            "/api/v1/images/image_sets/{}/import/?format=coco&create_types=true",
            copy.set
        ),
        ann,
        &[],
        "annotations.coco.json",
        &coco_file,
    )
    .await;
    assert_eq!(imported.status, StatusCode::OK, "{imported:?}");
    assert_eq!(imported.json["applied"], 3, "{imported:?}");
    assert_eq!(imported.json["created_types"], json!(["gland"]));
    // The type and the annotations that use it are one append: one recorded time.
    let appended = app.state.store.read_page(before + 1, 10).await.unwrap();
    let kinds: Vec<&str> = appended.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds[0], "AnnotationTypeCreated", "{kinds:?}");
    assert_eq!(appended.len(), 4, "{kinds:?}");
    assert!(appended
        .iter()
        .all(|e| e.recorded_at == appended[0].recorded_at));
    let shapes = |bytes: &[u8]| -> Vec<(String, Value, Value)> {
        let coco = json_of(&unzip(bytes)["annotations.coco.json"]);
        let names: BTreeMap<i64, String> = coco["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_i64().unwrap(),
                    c["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut shapes: Vec<(String, Value, Value)> = coco["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    names[&a["category_id"].as_i64().unwrap()].clone(),
                    a["bbox"].clone(),
                    a["segmentation"].clone(),
                )
            })
            .collect();
        shapes.sort_by_key(|s| s.1.to_string());
        shapes
    };
    let copied = app
        .get(
            &format!("/api/v1/images/image_sets/{}/export/?format=coco", copy.set),
            ann,
        )
        .await;
    assert_eq!(shapes(&copied.bytes), shapes(&coco.bytes));
    let twice = send_file(
        &app,
        &format!("/api/v1/images/image_sets/{}/import/?format=coco", copy.set),
        ann,
        &[],
        "annotations.coco.json",
        &coco_file,
    )
    .await;
    assert_eq!(
        (
            twice.json["applied"].as_i64(),
            twice.json["unchanged"].as_i64()
        ),
        (Some(0), Some(3))
    );

    // QuPath's GeoJSON round trip: the same shapes again; a multi-part shape is refused by
    // its place in the file.
    let (third, from_qupath, copied) = copy_through(
        &app,
        ann,
        lab.set,
        "qupath",
        "slide.png.geojson",
        "QuPath copy",
    )
    .await;
    assert_eq!(from_qupath.json["applied"], 3, "{from_qupath:?}");
    assert_eq!(shapes(&copied), shapes(&coco.bytes));
    let multi = send_file(
        &app,
        &format!(
            "/api/v1/images/image_sets/{}/import/?format=qupath",
            third.set
        ),
        ann,
        &[],
        "slide.png.geojson",
        br#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]},
             "properties": {"objectType": "annotation", "classification": {"name": "cell"}}},
            {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": []},
             "properties": {"classification": {"name": "cell"}}}]}"#,
    )
    .await;
    assert_eq!(multi.json["code"], "import_refused", "{multi:?}");
    let refusals = multi.json["report"]["refused"].as_array().unwrap();
    assert_eq!(
        refusals[0]["at"], "features[0]",
        "a point is no box: {multi:?}"
    );
    assert_eq!(refusals[1]["at"], "features[1].geometry", "{multi:?}");

    // The CSV export read back into another set: the same shapes, descriptions and flags;
    // the deleted row stays out.
    let (fourth, from_csv, copied) =
        copy_through(&app, ann, lab.set, "csv", "annotations.csv", "CSV copy").await;
    assert_eq!(from_csv.json["applied"], 3, "{from_csv:?}");
    assert_eq!(shapes(&copied), shapes(&coco.bytes));
    let flagged = app
        .get(
            &format!("/api/v1/annotations/annotations/?unique_identifier={uuid}"),
            ann,
        )
        .await;
    let copy_of_flagged = app
        .get(
            &format!(
                "/api/v1/annotations/annotations/?image={}",
                app.get(
                    &format!("/api/v1/images/images/?image_set={}", fourth.set),
                    ann
                )
                .await
                .json["results"][0]["id"]
            ),
            ann,
        )
        .await;
    assert_eq!(flagged.json["results"][0]["blurred"], true);
    let blurred = copy_of_flagged.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["blurred"] == true)
        .count();
    assert_eq!(blurred, 1, "the blurred flag travels: {copy_of_flagged:?}");
    let bad_csv = send_file(
        &app,
        &format!("{import}?format=csv"),
        ann,
        &[],
        "a.csv",
        b"name,vector\nx,{}\n",
    )
    .await;
    assert_eq!(bad_csv.json["code"], "invalid_import", "{bad_csv:?}");

    // Pascal VOC keeps boxes: read back, every annotation is there with its type and box.
    let (_, from_voc, copied) = copy_through(
        &app,
        ann,
        lab.set,
        "voc",
        "Annotations/slide.xml",
        "VOC copy",
    )
    .await;
    assert_eq!(from_voc.json["applied"], 3, "{from_voc:?}");
    let boxes = |bytes: &[u8]| -> Vec<(String, Value)> {
        shapes(bytes)
            .into_iter()
            .map(|(kind, bbox, _)| (kind, bbox))
            .collect()
    };
    assert_eq!(boxes(&copied), boxes(&coco.bytes));

    // ASAP's XML round trip; Aperio ImageScope's XML (`slide.xml` beside `slide.png`) with a
    // rectangle, an outline in a named layer, and a region of no type refused by its place.
    let (fifth, from_asap, copied) =
        copy_through(&app, ann, lab.set, "asap", "slide.png.xml", "ASAP copy").await;
    assert_eq!(from_asap.json["applied"], 3, "{from_asap:?}");
    assert_eq!(shapes(&copied), shapes(&coco.bytes));
    let imagescope = br#"<?xml version="1.0" encoding="ISO-8859-1"?>
<Annotations MicronsPerPixel="0.25">
  <Annotation Id="1" Name="" LineColor="65280">
    <Regions>
      <Region Id="1" Type="1" Text="cell"><Vertices>
        <Vertex X="150" Y="20" Z="0"/><Vertex X="170" Y="20" Z="0"/>
        <Vertex X="170" Y="45" Z="0"/><Vertex X="150" Y="45" Z="0"/></Vertices></Region>
      <Region Id="2" Type="0" Text=""><Vertices>
        <Vertex X="1" Y="1"/><Vertex X="9" Y="1"/></Vertices></Region>
    </Regions>
  </Annotation>
  <Annotation Id="2" Name="gland">
    <Regions><Region Id="3" Type="0" Text=""><Vertices>
      <Vertex X="200" Y="100"/><Vertex X="260" Y="110"/><Vertex X="230" Y="160"/></Vertices></Region></Regions>
  </Annotation>
</Annotations>"#;
    let scope = send_file(
        &app,
        &format!(
            "/api/v1/images/image_sets/{}/import/?format=imagescope",
            fifth.set
        ),
        ann,
        &[],
        "slide.xml",
        imagescope,
    )
    .await;
    assert_eq!(scope.json["code"], "import_refused", "{scope:?}");
    assert_eq!(
        scope.json["report"]["refused"][0]["at"], "Region[1]",
        "{scope:?}"
    );
    let scope = send_file(
        &app,
        &format!(
            "/api/v1/images/image_sets/{}/import/?format=imagescope&apply_valid=true",
            fifth.set
        ),
        ann,
        &[],
        "slide.xml",
        imagescope,
    )
    .await;
    assert_eq!(scope.json["applied"], 2, "{scope:?}");
    let broken = send_file(
        &app,
        &format!("{import}?format=asap"),
        ann,
        &[],
        "slide.png.xml",
        b"<ASAP_Annotations><Annotation></ASAP",
    )
    .await;
    assert_eq!(broken.json["code"], "invalid_import", "{broken:?}");
    assert!(
        broken.json["message"]
            .as_str()
            .unwrap()
            .contains("not XML at byte"),
        "{broken:?}"
    );

    // Files that are not what they say: the place named, nothing applied.
    let before = head().await;
    for (bytes, expect) in [
        (&b"{\"images\": [}"[..], "not a COCO file"),
        (
            &b"{\"images\": [], \"categories\": [], \"annotations\": [{\"image_id\": \"one\"}]}"[..],
            "annotations[0].image_id",
        ),
        (&b"\xff\xfe"[..], "not a COCO file"),
    ] {
        let bad = send_file(
            &app,
            &format!("{import}?format=coco"),
            ann,
            &[],
            "bad.json",
            bytes,
        )
        .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert_eq!(bad.json["code"], "invalid_import", "{bad:?}");
        assert!(
            bad.json["message"].as_str().unwrap().contains(expect),
            "{bad:?}"
        );
    }
    let not_text = send_file(&app, &label_upload, ann, &[], "labels.txt", b"\xff\xfe|x").await;
    assert_eq!(not_text.json["code"], "invalid_import", "{not_text:?}");
    let outside = send_file(
        &app,
        &format!("{import}?format=coco"),
        ann,
        &[],
        "outside.json",
        br#"{"images": [{"id": 1, "file_name": "slide.png"}], "categories": [{"id": 1, "name": "cell"}],
            "annotations": [{"image_id": 1, "category_id": 1, "bbox": [290, 190, 50, 50]},
                            {"image_id": 1, "category_id": 1, "bbox": [1, 1, -5, 5]}]}"#,
    )
    .await;
    assert_eq!(outside.json["code"], "import_refused", "{outside:?}");
    assert_eq!(outside.json["report"]["refused"][0]["at"], "annotations[0]");
    assert_eq!(
        outside.json["report"]["refused"][1]["at"],
        "annotations[1].bbox"
    );
    let unknown = send_file(
        &app,
        &format!("{import}?format=pascal"),
        ann,
        &[],
        "x",
        b"x",
    )
    .await;
    assert_eq!(unknown.json["field"], "format", "{unknown:?}");
    let stranger = send_file(&app, &label_upload, carl, &[], "labels.txt", lines).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "{stranger:?}");
    assert_eq!(head().await, before, "refused files append nothing");
}

/// The field's own tools read the exports: pycocotools loads the COCO file and rasterises its
/// polygons to their areas, shapely finds the GeoJSON polygons valid with the same areas, the
/// VOC boxes are COCO's, and the YOLO rows are normalised with classes in order. One backend:
/// what is checked is the files, which both stores write alike (the test above compares them).
#[tokio::test]
async fn real_tools_read_the_exports() {
    let app = TestApp::new(TestDb::new(exact_store::Backend::Sqlite).await).await;
    app.user("ann").await;
    let ann = ("ann", "pw-ann");
    let lab = project(&app, ann, "Tools", 1).await;
    let mut kinds = vec![lab.annotation_type];
    for (name, vector_type) in [("gland", 5), ("nucleus", 2), ("border", 3)] {
        let made = app
            .post(
                "/api/v1/annotations/annotation_types/",
                ann,
                json!({"name": name, "product": lab.product, "vector_type": vector_type}),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
        kinds.push(made.json["id"].as_i64().unwrap());
    }
    let slide = image(&app, ann, lab.set, "slide.png", 300, 200).await;
    for (kind, vector) in [
        (kinds[0], json!({"x1": 10, "y1": 20, "x2": 40, "y2": 60})),
        (
            kinds[1],
            json!({"x1": 100, "y1": 50, "x2": 160, "y2": 60, "x3": 170, "y3": 120, "x4": 120, "y4": 150, "x5": 90, "y5": 100}),
        ),
        (kinds[2], json!({"x1": 200, "y1": 20, "x2": 220, "y2": 40})),
        (kinds[3], json!({"x1": 10, "y1": 190, "x2": 290, "y2": 150})),
    ] {
        let made = app
            .post(
                "/api/v1/annotations/annotations/",
                ann,
                json!({"image": slide, "annotation_type": kind, "vector": vector}),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (format, file) in [
        ("coco", "annotations.coco.json"),
        ("geojson", "slide.png.geojson"),
        ("voc", "Annotations/slide.xml"),
        ("yolo", "labels/slide.txt"),
        ("yolo", "classes.txt"),
    ] {
        let answer = app
            .get(
                &format!(
                    "/api/v1/images/image_sets/{}/export/?format={format}",
                    lab.set
                ),
                ann,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let path = dir.path().join(file.replace('/', "_"));
        std::fs::write(&path, &unzip(&answer.bytes)[file]).unwrap();
        paths.push(path);
    }
    let python = support::served::venv(
        "pycocotools-2.0.11-shapely-2.2.0",
        &["pycocotools==2.0.11", "shapely==2.2.0"],
    );
    let args: Vec<&std::ffi::OsStr> = paths.iter().map(|p| p.as_os_str()).collect();
    let said = support::served::run_python(
        &python,
        "formats/check_exports.py",
        &args,
        "the field's tools",
    );
    assert_eq!(said.lines().last(), Some("ok"), "{said}");
}

/// Asks for the set's zip until it is ready (202 while it is built); the archive's files.
async fn download_zip(app: &TestApp, set: i64, who: (&str, &str)) -> BTreeMap<String, Vec<u8>> {
    let path = format!("/images/imageset/{set}/download/");
    let first = app.get(&path, who).await;
    assert_eq!(
        first.status,
        StatusCode::ACCEPTED,
        "a fresh archive is built first: {first:?}"
    );
    for _ in 0..400 {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        let answer = app.get(&path, who).await;
        match answer.status {
            StatusCode::ACCEPTED => continue,
            StatusCode::OK => return unzip(&answer.bytes),
            _ => panic!("{answer:?}"),
        }
    }
    panic!("the archive was not ready after 10 s");
}

async fn zip_downloads_answer_as_exact_and_never_go_stale(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    app.user("carl").await;
    let (ann, carl) = (("ann", "pw-ann"), ("carl", "pw-carl"));
    let lab = project(&app, ann, "Zips", 1).await;
    let path = format!("/images/imageset/{}/download/", lab.set);
    let empty = app.get(&path, ann).await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT, "{empty:?}");

    let picture = support::png(64, 48);
    let upload = app
        .upload(
            ann,
            &[("image_set", &lab.set.to_string())],
            &[("file_path", "slide.png", &picture)],
        )
        .await;
    assert_eq!(upload.status, StatusCode::CREATED, "{upload:?}");
    let slide = upload.json["results"][0]["id"].as_i64().unwrap();
    let annotate = |x: i64| {
        let app = &app;
        async move {
            let made = app
                .post(
                    "/api/v1/annotations/annotations/",
                    ann,
                    json!({"image": slide, "annotation_type": lab.annotation_type,
                           "vector": {"x1": x, "y1": 2, "x2": x + 10, "y2": 12}}),
                )
                .await;
            assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
        }
    };
    annotate(1).await;
    let zip_state = || async {
        app.get(&format!("/api/v1/images/image_sets/{}/", lab.set), ann)
            .await
            .json["zip_state"]
            .as_i64()
    };
    assert_eq!(zip_state().await, Some(0));

    let files = download_zip(&app, lab.set, ann).await;
    assert_eq!(
        files["images/slide.png"], picture,
        "the original file, as uploaded"
    );
    let manifest = json_of(&files["manifest.json"]);
    let listed = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "images/slide.png")
        .unwrap();
    assert_eq!(listed["sha256"], hex::encode(Sha256::digest(&picture)));
    let (_, text) = files.iter().find(|(n, _)| n.ends_with(".txt")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(text)
            .lines()
            .filter(|l| !l.is_empty())
            .count(),
        1
    );
    assert_eq!(zip_state().await, Some(1));
    let listed = app
        .get(
            &format!("/api/v1/images/image_sets/?zip_state=1&id={}", lab.set),
            ann,
        )
        .await;
    assert_eq!(listed.json["count"], 1, "{listed:?}");

    // A change makes the archive another one: never the stale one, and the old one goes.
    annotate(30).await;
    assert_eq!(zip_state().await, Some(0));
    let files = download_zip(&app, lab.set, ann).await;
    let (_, text) = files.iter().find(|(n, _)| n.ends_with(".txt")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(text)
            .lines()
            .filter(|l| !l.is_empty())
            .count(),
        2
    );
    let archives = std::fs::read_dir(app.data.path().join("archives"))
        .unwrap()
        .count();
    assert_eq!(archives, 1, "the older archive is removed");

    let stranger = app.get(&path, carl).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "{stranger:?}");
}

/// A server with zip downloads off answers 404, as EXACT's with `ENABLE_ZIP_DOWNLOAD` off.
#[tokio::test]
async fn zip_downloads_can_be_turned_off() {
    let db = TestDb::new(exact_store::Backend::Sqlite).await;
    let app = TestApp::with_config(db, |c| c.zip_downloads = false).await;
    app.user("ann").await;
    let ann = ("ann", "pw-ann");
    let lab = project(&app, ann, "Off", 1).await;
    image(&app, ann, lab.set, "slide.png", 30, 20).await;
    let off = app
        .get(&format!("/images/imageset/{}/download/", lab.set), ann)
        .await;
    assert_eq!(off.status, StatusCode::NOT_FOUND, "{off:?}");
    assert!(off.json["message"].as_str().unwrap().contains("turned off"));
}

/// A team's formats through the API the editor page calls: made, previewed unsaved on a real
/// set (now and as of before its annotations), changed and deleted; each export handed out is
/// recorded, and the set page lists it, marked once its format changed.
async fn team_formats_are_edited_with_a_preview_and_exports_are_listed(db: TestDb) {
    let app = TestApp::new(db).await;
    let ann_id = app.user("ann").await;
    app.user("carl").await;
    let (ann, carl) = (("ann", "pw-ann"), ("carl", "pw-carl"));
    let lab = project(&app, ann, "Formats", 1).await;
    let slide = image(&app, ann, lab.set, "slide.png", 100, 80).await;
    let empty = app.state.store.last_position().await.unwrap();
    box_annotation(&app, ann, slide, lab.annotation_type).await;
    let formats = "/api/v1/administration/export_formats/";

    // A preview of fields not saved anywhere, over EXACT's default format.
    let preview = |body: Value, who: (&'static str, &'static str)| {
        let app = &app;
        async move {
            app.post("/api/v1/administration/export_formats/preview/", who, body)
                .await
        }
    };
    let shown = preview(
        json!({"image_set": lab.set, "annotation_format": "%%type@%%minx,%%miny",
               "name_format": "%%imageset.txt"}),
        ann,
    )
    .await;
    assert_eq!(shown.status, StatusCode::OK, "{shown:?}");
    assert_eq!(shown.json["file_name"], "Formats set.txt");
    assert_eq!(shown.json["text"], "\ncell@1,1\n");
    assert_eq!(shown.json["annotations"], 1);
    assert_eq!(shown.json["truncated"], false);
    let before = preview(
        json!({"image_set": lab.set, "annotation_format": "%%type", "as_of": empty.to_string()}),
        ann,
    )
    .await;
    assert_eq!(before.json["annotations"], 0, "{before:?}");
    assert_eq!(before.json["position"], empty);
    // EXACT's %%view: the image log, as it stood at the moment read.
    let before_open = app.state.store.last_position().await.unwrap();
    let mut entries = Vec::new();
    for action in [1, 2] {
        let logged = app
            .post(
                "/api/v1/annotations/log_image_actions/",
                ann,
                json!({"image": slide, "action": action}),
            )
            .await;
        assert_eq!(logged.status, StatusCode::CREATED, "{logged:?}");
        entries.push(logged.json["id"].as_i64().unwrap());
    }
    let viewed = preview(
        json!({"image_set": lab.set, "base_format": "%%view--%%content", "annotation_format": "x"}),
        ann,
    )
    .await;
    let text = viewed.json["text"].as_str().unwrap();
    let lines: Vec<&str> = text.lines().take(2).collect();
    assert!(
        lines[0].starts_with("[slide.png|ann|20") && lines[0].ends_with("+00:00|1]"),
        "{text}"
    );
    assert!(lines[1].ends_with("|2]"), "{text}");
    let not_yet = preview(
        json!({"image_set": lab.set, "base_format": "%%view--", "as_of": before_open.to_string()}),
        ann,
    )
    .await;
    assert_eq!(not_yet.json["text"], "--", "{not_yet:?}");
    // An entry taken out later (EXACT's delete) is gone from now, not from before.
    let both = app.state.store.last_position().await.unwrap();
    let retracted = app
        .delete(
            &format!("/api/v1/annotations/log_image_actions/{}/", entries[1]),
            support::ADMIN,
        )
        .await;
    assert!(retracted.status.is_success(), "{retracted:?}");
    let view_lines = |body: Value| {
        let app = &app;
        async move {
            let shown = app
                .post("/api/v1/administration/export_formats/preview/", ann, body)
                .await;
            shown.json["text"].as_str().unwrap().lines().count()
        }
    };
    let base = json!({"image_set": lab.set, "base_format": "%%view"});
    assert_eq!(view_lines(base.clone()).await, 1);
    let mut then = base;
    then["as_of"] = json!(both.to_string());
    assert_eq!(view_lines(then).await, 2);
    let nothing_saved = app.get(formats, ann).await;
    assert_eq!(nothing_saved.json["count"], 1, "{nothing_saved:?}");
    assert_eq!(nothing_saved.json["results"][0]["name"], "EXACT default");
    // Not on a set one cannot read; a bad moment names its field.
    let hidden = preview(json!({"image_set": lab.set}), carl).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{hidden:?}");
    let beyond = preview(json!({"image_set": lab.set, "as_of": "999999"}), ann).await;
    assert!(beyond.status.is_client_error(), "{beyond:?}");
    assert_eq!(beyond.json["field"], "as_of");

    // Made by a member of the team; what is not sent is EXACT's default.
    let made = app
        .post(
            formats,
            ann,
            json!({"team": lab.team, "name": "centres", "annotation_format": "%%type;%%cx;%%cy",
                   "annotations_types": [lab.annotation_type]}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    let id = made.json["id"].as_i64().unwrap();
    assert_eq!(
        made.json["vector_format"],
        FormatSettings::default().vector_format
    );
    assert_eq!(made.json["annotations_types"], json!([lab.annotation_type]));
    let first_version = made.json["version"].as_i64().unwrap();
    for (body, field) in [
        (json!({"team": lab.team, "name": "centres"}), "name"),
        (json!({"team": lab.team, "name": "x".repeat(21)}), "name"),
        (
            json!({"team": lab.team, "name": "neg", "min_verifications": -1}),
            "min_verifications",
        ),
        (json!({"team": lab.team}), "name"),
    ] {
        let refused = app.post(formats, ann, body.clone()).await;
        assert!(refused.status.is_client_error(), "{body}: {refused:?}");
        assert_eq!(refused.json["field"], field, "{body}: {refused:?}");
    }
    let outsiders = app
        .post(formats, carl, json!({"team": lab.team, "name": "mine"}))
        .await;
    assert_eq!(outsiders.status, StatusCode::FORBIDDEN, "{outsiders:?}");
    assert_eq!(
        app.get(formats, carl).await.json["count"],
        1,
        "not public: the default format only"
    );
    let one = format!("{formats}{id}/");
    let (status, team_page) = page_html(&app, &format!("/users/team/{}/", lab.team), ann).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        team_page.contains(&format!(
            "<a href=\"/administration/export_formats/?format={id}\">centres</a>"
        )),
        "the team's page lists its formats: {team_page}"
    );
    assert_eq!(app.get(&one, carl).await.status, StatusCode::NOT_FOUND);

    // A saved format previews with changes put over it.
    let over = preview(
        json!({"image_set": lab.set, "format": id, "name_format": "c.txt"}),
        ann,
    )
    .await;
    assert_eq!(over.json["text"], "\ncell;5.0;5.0\n", "{over:?}");

    // Exported, then changed: the set page lists the export, marked as made before the change.
    let export = app
        .get(
            &format!(
                "/api/v1/images/image_sets/{}/export/?format=exact:{id}",
                lab.set
            ),
            ann,
        )
        .await;
    assert_eq!(export.status, StatusCode::OK, "{export:?}");
    let position = json_of(&unzip(&export.bytes)["manifest.json"])["position"]
        .as_i64()
        .unwrap();
    let recorded = app
        .state
        .store
        .read_stream(&format!("image_set_exports-{}", lab.set), 1)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].event_type, "SetExported");
    let payload = recorded[0].payload_value().unwrap();
    assert_eq!(payload["format"], format!("exact:{id}"));
    assert_eq!(payload["format_version"], first_version);
    assert_eq!(payload["position"], position);
    assert_eq!(recorded[0].metadata().unwrap().actor, Some(ann_id));
    let listed = set_page_html(&app, lab.set, ann).await;
    assert!(listed.contains("<td>centres (v1)</td>"), "{listed}");
    assert!(!listed.contains("made before its format changed"));
    let changed = app
        .patch(&one, ann, json!({"annotation_format": "%%type"}))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    assert_eq!(changed.json["annotation_format"], "%%type");
    assert_eq!(
        changed.json["name"], "centres",
        "only what was sent changes"
    );
    assert_eq!(changed.json["version"], first_version + 1);
    assert!(set_page_html(&app, lab.set, ann)
        .await
        .contains("made before its format changed"));
    let deleted = app.delete(&one, ann).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    assert_eq!(app.get(formats, ann).await.json["count"], 1);
    assert!(set_page_html(&app, lab.set, ann)
        .await
        .contains("its format was deleted since"));

    // The editor page: the list, a format's fields, and a new one from EXACT's default.
    let cookie = app.session(ann).await;
    let editor = app
        .send(
            axum::http::Method::GET,
            &format!("/administration/export_formats/?set={}", lab.set),
            None,
            None,
            vec![],
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(editor.status, StatusCode::OK);
    let html = String::from_utf8_lossy(&editor.bytes);
    assert!(html.contains("data-api=\"POST /administration/export_formats/\""));
    assert!(
        html.contains("%%imagename|%%type|{%%vector}|"),
        "EXACT's default to start from"
    );
}

/// EXACT's default format is a stored format of no team, made with the store: every user sees
/// and exports with it (`format=exact`), only superusers change it, a change shows in
/// `format=exact` exports and marks those made before, and a restart makes no second one.
/// Deleted, it stays deleted and `format=exact` exports with the built-in templates.
async fn the_default_format_is_made_with_the_store_and_superusers_change_it(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    let ann = ("ann", "pw-ann");
    let lab = project(&app, ann, "Default", 1).await;
    let slide = image(&app, ann, lab.set, "slide.png", 100, 80).await;
    box_annotation(&app, ann, slide, lab.annotation_type).await;
    let formats = "/api/v1/administration/export_formats/";

    let listed = app.get(formats, ann).await;
    assert_eq!(listed.json["count"], 1, "{listed:?}");
    let default = &listed.json["results"][0];
    assert_eq!(default["name"], "EXACT default");
    assert_eq!(default["team"], Value::Null);
    assert_eq!(default["public"], true);
    assert_eq!(default["creator"], 0, "made by Exact itself");
    assert_eq!(
        default["annotation_format"],
        FormatSettings::default().annotation_format
    );
    let id = default["id"].as_i64().unwrap();
    let one = format!("{formats}{id}/");

    // `format=exact` is this format: its name and version are in the manifest.
    let (manifest, text) = exact_export(&app, lab.set, ann).await;
    assert_eq!(manifest["format"], "exact");
    assert_eq!(manifest["format_name"], "EXACT default");
    assert_eq!(manifest["format_version"], 1);
    assert!(text.contains("slide.png|cell|{"), "{text}");
    let archived = |files: BTreeMap<String, Vec<u8>>| {
        let (_, text) = files
            .into_iter()
            .find(|(n, _)| n.ends_with(".txt"))
            .unwrap();
        String::from_utf8(text).unwrap()
    };
    let zipped = archived(download_zip(&app, lab.set, ann).await);
    assert!(zipped.contains("slide.png|cell|{"), "{zipped}");

    // No team's member changes it, and it names no team's types.
    let refused = app
        .patch(&one, ann, json!({"annotation_format": "%%type"}))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    let typed = app
        .patch(
            &one,
            support::ADMIN,
            json!({"annotations_types": [lab.annotation_type]}),
        )
        .await;
    assert!(typed.status.is_client_error(), "{typed:?}");
    assert_eq!(typed.json["field"], "annotations_types");
    let changed = app
        .patch(
            &one,
            support::ADMIN,
            json!({"annotation_format": "%%type!"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    let (manifest, text) = exact_export(&app, lab.set, ann).await;
    assert_eq!(manifest["format_version"], 2);
    assert_eq!(text.trim(), "cell!");
    let zipped = archived(download_zip(&app, lab.set, ann).await);
    assert_eq!(
        zipped.trim(),
        "cell!",
        "the set's archive is made again, not stale"
    );
    let page = set_page_html(&app, lab.set, ann).await;
    assert!(
        page.contains("<td>EXACT default (v1)</td>")
            && page.contains("made before its format changed"),
        "{page}"
    );
    // A member sees the default format but not the buttons that would change it.
    let (_, shown) = page_html(
        &app,
        &format!("/administration/export_formats/?format={id}"),
        ann,
    )
    .await;
    assert!(shown.contains("id=\"default-format-note\""), "{shown}");
    assert!(
        !shown.contains("DELETE /administration/export_formats/"),
        "{shown}"
    );
    assert!(!shown.contains(">Save</button>"), "{shown}");
    let (_, shown) = page_html(
        &app,
        &format!("/administration/export_formats/?format={id}"),
        support::ADMIN,
    )
    .await;
    assert!(shown.contains(">Save</button>"), "{shown}");
    // A new format starts from the default's templates as they now are.
    let (status, editor) = page_html(&app, "/administration/export_formats/", ann).await;
    assert_eq!(status, StatusCode::OK);
    assert!(editor.contains(">%%type!</textarea>"), "{editor}");

    // A restart makes no second one.
    let head = app.position().await;
    app.state.commands.ensure_default_format().await.unwrap();
    assert_eq!(app.position().await, head);

    // Deleted, it stays deleted; `exact` is EXACT's built-in templates again.
    let deleted = app.delete(&one, support::ADMIN).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    let head = app.position().await;
    app.state.commands.ensure_default_format().await.unwrap();
    assert_eq!(
        app.position().await,
        head,
        "a deleted default is not made again"
    );
    let (manifest, text) = exact_export(&app, lab.set, ann).await;
    assert_eq!(manifest["format_name"], "EXACT default");
    assert!(manifest.get("format_version").is_none(), "{manifest}");
    assert!(text.contains("slide.png|cell|{"), "{text}");
}

/// `format=exact`'s manifest and its one file's text.
async fn exact_export(app: &TestApp, set: i64, who: (&str, &str)) -> (Value, String) {
    let path = format!("/api/v1/images/image_sets/{set}/export/?format=exact");
    let export = app.get(&path, who).await;
    assert_eq!(export.status, StatusCode::OK, "{export:?}");
    let files = unzip(&export.bytes);
    let manifest = json_of(&files["manifest.json"]);
    let text = files
        .iter()
        .find(|(name, _)| name.as_str() != "manifest.json")
        .map(|(_, bytes)| String::from_utf8(bytes.clone()).unwrap())
        .unwrap();
    (manifest, text)
}

/// The set page as `who` sees it in the browser.
async fn set_page_html(app: &TestApp, set: i64, who: (&str, &str)) -> String {
    let (status, html) = page_html(app, &format!("/images/imageset/{set}/"), who).await;
    assert_eq!(status, StatusCode::OK);
    html
}

/// A page as `who` gets it in the browser (signed in by session).
async fn page_html(app: &TestApp, path: &str, who: (&str, &str)) -> (StatusCode, String) {
    let cookie = app.session(who).await;
    let page = app
        .send(
            axum::http::Method::GET,
            path,
            None,
            None,
            vec![],
            &[("cookie", &cookie)],
        )
        .await;
    (
        page.status,
        String::from_utf8_lossy(&page.bytes).into_owned(),
    )
}

/// A zip of `(name, bytes)` entries, deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            zip.start_file(*name, options).unwrap();
            std::io::Write::write_all(&mut zip, bytes).unwrap();
        }
        zip.finish().unwrap();
    }
    out.into_inner()
}

/// (type, [x, y, w, h]) of every annotation of a set's COCO export, by type and place.
fn coco_boxes(export: &[u8]) -> Vec<(String, [f64; 4])> {
    let coco = json_of(&unzip(export)["annotations.coco.json"]);
    let name = |id: &Value| {
        coco["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| &c["id"] == id)
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let mut boxes: Vec<(String, [f64; 4])> = coco["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let b: Vec<f64> = a["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_f64().unwrap())
                .collect();
            (name(&a["category_id"]), [b[0], b[1], b[2], b[3]])
        })
        .collect();
    boxes.sort_by(|a, b| a.partial_cmp(b).unwrap());
    boxes
}

/// Zips of labels: YOLO's (labels with their classes.txt) and any export's zip as it is
/// (its manifest passed over), one import, all or nothing; a refusal names the file in the
/// zip; a bomb, a path out of the archive or YOLO labels without classes are refused whole.
async fn zips_of_labels_are_imported_whole_and_checked(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    let ann = ("ann", "pw-ann");
    let lab = project(&app, ann, "Zips", 1).await;
    let gland = app
        .post(
            "/api/v1/annotations/annotation_types/",
            ann,
            json!({"name": "gland", "product": lab.product, "vector_type": 5}),
        )
        .await;
    let gland = gland.json["id"].as_i64().unwrap();
    let slide = image(&app, ann, lab.set, "slide.png", 300, 200).await;
    for (kind, vector) in [
        (
            lab.annotation_type,
            json!({"x1": 10, "y1": 20, "x2": 40, "y2": 60}),
        ),
        (
            lab.annotation_type,
            json!({"x1": 100.5, "y1": 50, "x2": 120.5, "y2": 80}),
        ),
        (
            gland,
            json!({"x1": 200, "y1": 100, "x2": 260, "y2": 110, "x3": 230, "y3": 160}),
        ),
    ] {
        let made = app
            .post(
                "/api/v1/annotations/annotations/",
                ann,
                json!({"image": slide, "annotation_type": kind, "vector": vector}),
            )
            .await;
        assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    }
    let export = |set: i64, format: &str| {
        let app = &app;
        let format = format.to_owned();
        async move {
            let answer = app
                .get(
                    &format!("/api/v1/images/image_sets/{set}/export/?format={format}"),
                    ann,
                )
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
            answer.bytes
        }
    };
    let import = |set: i64, query: &str, name: &str, bytes: Vec<u8>| {
        let app = &app;
        let (query, name) = (query.to_owned(), name.to_owned());
        async move {
            send_file(
                app,
                &format!("/api/v1/images/image_sets/{set}/import/?{query}"),
                ann,
                &[],
                &name,
                &bytes,
            )
            .await
        }
    };
    let original = coco_boxes(&export(lab.set, "coco").await);

    // YOLO's zip as exported, into a set with an image of the same name: the same boxes and
    // polygon (to YOLO's six decimals of the image's size), types made by name; again: nothing.
    let copy = project(&app, ann, "YOLO copy", 1).await;
    image(&app, ann, copy.set, "slide.png", 300, 200).await;
    let yolo = export(lab.set, "yolo").await;
    let imported = import(
        copy.set,
        "format=yolo&create_types=true",
        "set.zip",
        yolo.clone(),
    )
    .await;
    assert_eq!(imported.status, StatusCode::OK, "{imported:?}");
    assert_eq!(imported.json["applied"], 3, "{imported:?}");
    assert_eq!(
        imported.json["created_types"],
        json!(["gland"]),
        "{imported:?}"
    );
    let copied = coco_boxes(&export(copy.set, "coco").await);
    assert_eq!(copied.len(), original.len());
    for ((kind, b), (kind_then, b_then)) in copied.iter().zip(&original) {
        assert_eq!(kind, kind_then);
        for (n, n_then) in b.iter().zip(b_then) {
            assert!((n - n_then).abs() < 0.01, "{copied:?} vs {original:?}");
        }
    }
    let again = import(copy.set, "format=yolo", "set.zip", yolo.clone()).await;
    assert_eq!(
        (&again.json["applied"], &again.json["unchanged"]),
        (&json!(0), &json!(3)),
        "{again:?}"
    );

    // Any export's zip as it is: COCO's, its manifest passed over.
    let coco_copy = project(&app, ann, "COCO zip copy", 1).await;
    image(&app, ann, coco_copy.set, "slide.png", 300, 200).await;
    let from_zip = import(
        coco_copy.set,
        "format=coco&create_types=true",
        "export.zip",
        export(lab.set, "coco").await,
    )
    .await;
    assert_eq!(from_zip.json["applied"], 3, "{from_zip:?}");

    // A refused line is named by its file in the zip and its line; nothing is applied.
    let before = app.position().await;
    let bad = zip_of(&[
        ("classes.txt", b"cell\ngland\n"),
        (
            "labels/slide.txt",
            b"0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n",
        ),
        ("labels/other.txt", b"0 0.5 0.5 0.1\n"),
    ]);
    let refused = import(copy.set, "format=yolo", "bad.zip", bad).await;
    assert_eq!(refused.json["code"], "import_refused", "{refused:?}");
    let at: Vec<&str> = refused.json["report"]["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["at"].as_str().unwrap())
        .collect();
    assert_eq!(
        at,
        ["labels/other.txt: line 1", "labels/slide.txt: line 2"],
        "{refused:?}"
    );
    assert_eq!(app.position().await, before, "nothing applied");
    // Types it would make are made only if it applies.
    let new_type = zip_of(&[
        ("classes.txt", b"nerve\n"),
        ("labels/slide.txt", b"0 0.5 0.5 0.1 0.1\n"),
        ("labels/nowhere.txt", b"0 0.5 0.5 0.1 0.1\n"),
    ]);
    let refused = import(
        copy.set,
        "format=yolo&create_types=true",
        "new.zip",
        new_type,
    )
    .await;
    assert_eq!(refused.json["code"], "import_refused", "{refused:?}");
    assert_eq!(
        refused.json["report"]["refused"][0]["at"],
        "labels/nowhere.txt: line 1"
    );
    assert_eq!(app.position().await, before, "no type made either");
    let offered = app.state.read.offered_types(copy.set).await.unwrap();
    assert!(offered.iter().all(|t| t.name != "nerve"));

    // Refused whole: no classes, a path out of the archive, a bomb, a zip with nothing to read.
    let no_classes = zip_of(&[("labels/slide.txt", b"0 0.5 0.5 0.1 0.1\n")]);
    let answer = import(copy.set, "format=yolo", "labels.zip", no_classes).await;
    assert_eq!(answer.json["code"], "invalid_import", "{answer:?}");
    assert!(answer.json["message"]
        .as_str()
        .unwrap()
        .contains("classes.txt"));
    let outside = zip_of(&[
        ("../classes.txt", b"cell\n"),
        ("slide.txt", b"0 0.5 0.5 0.1 0.1\n"),
    ]);
    let answer = import(copy.set, "format=yolo", "outside.zip", outside).await;
    assert_eq!(answer.json["code"], "unsafe_archive", "{answer:?}");
    let zeros = vec![b'0'; 64 << 20];
    let bomb = zip_of(&[("classes.txt", b"cell\n"), ("labels/slide.txt", &zeros)]);
    assert!(bomb.len() < 1 << 20, "the bomb is small: {}", bomb.len());
    let answer = import(copy.set, "format=yolo", "bomb.zip", bomb).await;
    assert_eq!(answer.json["code"], "unsafe_archive", "{answer:?}");
    assert!(answer.json["message"]
        .as_str()
        .unwrap()
        .contains("zip bomb"));
    let nothing = zip_of(&[("slide.png", b"not labels")]);
    let answer = import(copy.set, "format=coco", "images.zip", nothing).await;
    assert_eq!(answer.json["code"], "invalid_import", "{answer:?}");
    assert_eq!(
        app.position().await,
        before,
        "nothing applied by any refusal"
    );
    let left = std::fs::read_dir(app.data.path().join("uploads"))
        .map(Iterator::count)
        .unwrap_or(0);
    assert_eq!(left, 0, "no staging folder is left behind");

    // In a clinical set a verdict is a signature: an import asked to accept what it makes is
    // refused before anything is written; without it, it applies.
    let clinical = project(&app, ann, "Clinical zip", 1).await;
    image(&app, ann, clinical.set, "slide.png", 300, 200).await;
    let switched = app
        .patch(
            &format!("/api/v1/images/image_sets/{}/", clinical.set),
            ann,
            json!({"clinical": true}),
        )
        .await;
    assert_eq!(switched.status, StatusCode::OK, "{switched:?}");
    let coco_zip = export(lab.set, "coco").await;
    let before = app.position().await;
    let signed = import(
        clinical.set,
        "format=coco&create_types=true&verify=true",
        "export.zip",
        coco_zip.clone(),
    )
    .await;
    assert_eq!(signed.json["code"], "signature_required", "{signed:?}");
    assert_eq!(app.position().await, before, "nothing written");
    let plain = import(
        clinical.set,
        "format=coco&create_types=true",
        "export.zip",
        coco_zip,
    )
    .await;
    assert_eq!(plain.json["applied"], 3, "{plain:?}");
}

/// A 2 GB file sent to an import, with its length declared and without it (chunked, the
/// server's upload limit set low so that the test reads little): 413 `upload_too_large`,
/// nothing applied, no staging file left; the declared one is refused before its body is read.
#[tokio::test]
async fn a_two_gigabyte_import_is_refused_as_it_arrives() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use futures_util::StreamExt;
    use tower::ServiceExt;

    const TWO_GB: u64 = 2 << 30;
    const CHUNK: usize = 1 << 20;
    let send = |app: &TestApp, set: i64, declared: bool| {
        let router = app.router.clone();
        async move {
            let pulled = Arc::new(AtomicU64::new(0));
            let head = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.json\"\r\nContent-Type: application/json\r\n\r\n";
            let tail = "\r\n--b--\r\n";
            let length = TWO_GB + (head.len() + tail.len()) as u64;
            // A client on a network: each chunk after a pause (an always-ready stream would be
            // buffered by the multipart reader as fast as it can pull).
            let counter = pulled.clone();
            let chunks = futures_util::stream::unfold(0u64, move |sent| {
                let counter = counter.clone();
                async move {
                    if sent >= TWO_GB {
                        return None;
                    }
                    tokio::task::yield_now().await;
                    counter.fetch_add(CHUNK as u64, Ordering::Relaxed);
                    let chunk = axum::body::Bytes::from(vec![b' '; CHUNK]);
                    Some((Ok::<_, std::io::Error>(chunk), sent + CHUNK as u64))
                }
            });
            let body = futures_util::stream::iter([Ok(axum::body::Bytes::from(head))])
                .chain(chunks)
                .chain(futures_util::stream::iter([Ok(axum::body::Bytes::from(
                    tail,
                ))]));
            let mut request = axum::http::Request::builder()
                .method("POST")
                .uri(format!(
                    "/api/v1/images/image_sets/{set}/import/?format=coco"
                ))
                .header("authorization", support::basic("ann", "pw-ann"))
                .header("content-type", "multipart/form-data; boundary=b");
            if declared {
                request = request.header("content-length", length.to_string());
            }
            let mut request = request.body(axum::body::Body::from_stream(body)).unwrap();
            request.extensions_mut().insert(axum::extract::ConnectInfo(
                std::net::SocketAddr::from(([10, 0, 0, 1], 5000)),
            ));
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            let json: Value = serde_json::from_slice(&bytes).unwrap();
            (status, json, pulled.load(Ordering::Relaxed))
        }
    };

    // Declared: refused at once by the import's own limit of 1 GiB.
    let app = TestApp::new(TestDb::new(exact_store::Backend::Sqlite).await).await;
    app.user("ann").await;
    let lab = project(&app, ("ann", "pw-ann"), "Huge", 1).await;
    let before = app.position().await;
    let (status, json, pulled) = send(&app, lab.set, true).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
    assert_eq!(json["code"], "upload_too_large");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("limit of 1073741824 bytes"),
        "{json}"
    );
    assert!(
        pulled < 8 * CHUNK as u64,
        "the body was not read: {pulled} bytes pulled"
    );
    assert_eq!(app.position().await, before);

    // Not declared: read as it comes and refused at the limit, the staged part removed.
    let app = TestApp::with_config(TestDb::new(exact_store::Backend::Sqlite).await, |c| {
        c.max_upload_bytes = 64 << 20;
    })
    .await;
    app.user("ann").await;
    let lab = project(&app, ("ann", "pw-ann"), "Huge", 1).await;
    let before = app.position().await;
    let (status, json, pulled) = send(&app, lab.set, false).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{json}");
    assert_eq!(json["code"], "upload_too_large");
    assert!(
        pulled < 80 << 20,
        "read up to the limit only: {pulled} bytes; {json}"
    );
    assert_eq!(app.position().await, before);
    let staged = std::fs::read_dir(app.data.path().join("uploads"))
        .map(Iterator::count)
        .unwrap_or(0);
    assert_eq!(staged, 0, "no staged file is left");
}

/// A `.mrxs` is its index and its data folder, a `.vms` its index and the tiles named after it:
/// the set's zip holds them all, where OpenSlide looks for them, and nothing of another slide.
async fn multi_file_slides_are_downloaded_with_their_parts(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    let ann = ("ann", "pw-ann");
    let lab = project(&app, ann, "Parts", 1).await;
    let folder = app
        .data
        .path()
        .join("images")
        .join(lab.set.to_string())
        .join("upload");
    let write = |relative: &str, bytes: &[u8]| {
        let path = folder.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    write("scan.mrxs", b"[GENERAL]");
    write("scan/Slidedat.ini", b"[HIERARCHICAL]");
    write("scan/Data0000.dat", b"tiles");
    write("scan/nested/Index.dat", b"index");
    write("liver.vms", b"[Virtual Microscope Specimen]");
    write("liver(0,0).jpg", b"jpeg");
    write("liver_map.jpg", b"map");
    write("other.jpg", b"another slide's file");
    let caller = Caller::new(
        exact_domain::Actor {
            id: app.user("bea").await,
            superuser: true,
            staff: false,
        },
        exact_store::Source::Api,
    );
    for name in ["scan.mrxs", "liver.vms"] {
        let file = exact_domain::image::ImageFile {
            name: name.into(),
            filename: format!("upload/{name}"),
            checksum: hex::encode(Sha256::digest(name.as_bytes())),
            width: 100,
            height: 100,
            mpp: None,
            objective_power: None,
            depth: 1,
            frames: 1,
            channels: 3,
            image_type: 0,
        };
        app.state
            .commands
            .add_image(&caller, lab.set, file)
            .await
            .unwrap();
    }
    let files = download_zip(&app, lab.set, ann).await;
    let images: Vec<&str> = files
        .keys()
        .filter(|name| name.starts_with("images/"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        images,
        [
            "images/liver(0,0).jpg",
            "images/liver.vms",
            "images/liver_map.jpg",
            "images/scan.mrxs",
            "images/scan/Data0000.dat",
            "images/scan/Slidedat.ini",
            "images/scan/nested/Index.dat",
        ]
    );
    assert_eq!(files["images/scan/Data0000.dat"], b"tiles");
    let manifest = json_of(&files["manifest.json"]);
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&"images/scan/nested/Index.dat"),
        "{listed:?}"
    );
}
