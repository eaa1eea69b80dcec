//! The auditor's pages (issue 19), on both backends: the timeline of an image, a set, an
//! annotation and a user is the log's own list of their events, newest first and paged, with
//! old and new values, reasons, sources and addresses; the printable report names the head of
//! the log and its chain hash; nobody sees what they may not read.

mod support;

use axum::http::{Method, StatusCode};
use exact_store::testing::TestDb;
use serde_json::json;
use support::{add_member, box_annotation, image, project, TestApp};

exact_store::on_both_backends!(timelines_are_the_logs_own_and_reports_name_their_head);

/// (position, event type, annotation) of each row of a timeline page, in page order.
fn rows(html: &str) -> Vec<(i64, String, i64)> {
    html.split("<tr data-position=\"")
        .skip(1)
        .map(|row| {
            let attribute = |name: &str| {
                let start = row
                    .find(&format!("{name}=\""))
                    .map_or(0, |i| i + name.len() + 2);
                row[start..].split('"').next().unwrap().to_owned()
            };
            let position = row.split('"').next().unwrap().parse().unwrap();
            (
                position,
                attribute("data-event"),
                attribute("data-annotation").parse().unwrap(),
            )
        })
        .collect()
}

/// The href of the element with `id`, unescaped.
fn link(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..at].rfind("href=\"")? + 6;
    Some(
        html[start..]
            .split('"')
            .next()
            .unwrap()
            .replace("&#x2f;", "/")
            .replace("&amp;", "&"),
    )
}

async fn timelines_are_the_logs_own_and_reports_name_their_head(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("ann").await;
    let bob_id = app.user("bob").await;
    app.user("carl").await;
    let (ann, bob) = (("ann", "pw-ann"), ("bob", "pw-bob"));
    let lab = project(&app, ann, "Audit", 1).await;
    add_member(&app, ann, lab.team, bob_id).await;
    let image_id = image(&app, ann, lab.set, "audit.png", 300, 200).await;
    let other_image = image(&app, ann, lab.set, "other.png", 320, 200).await;
    let first = box_annotation(&app, ann, image_id, lab.annotation_type).await;
    let second = box_annotation(&app, bob, image_id, lab.annotation_type).await;
    let elsewhere = box_annotation(&app, ann, other_image, lab.annotation_type).await;
    let changed = app
        .patch(
            &format!("/api/v1/annotations/annotations/{first}/"),
            ann,
            json!({"description": "mitosis", "reason": "second look"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    let verdict = app
        .post(
            "/api/v1/annotations/verifications/",
            bob,
            json!({"annotation": first, "verified": true}),
        )
        .await;
    assert_eq!(verdict.status, StatusCode::CREATED, "{verdict:?}");
    let deleted = app
        .delete(&format!("/api/v1/annotations/annotations/{second}/"), bob)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");

    // The set renamed, with a reason: its own event in its timeline, old and new side by side.
    let renamed = app
        .patch(
            &format!("/api/v1/images/image_sets/{}/", lab.set),
            ann,
            json!({"name": "Audit renamed", "reason": "the study's name"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{renamed:?}");

    // What the log says, newest first: the annotations' events (their id), and those of the
    // images and of the set (0).
    let log = app.state.store.read_page(1, 10_000).await.unwrap();
    let of_log = |annotations: &[i64], images: &[i64], set: Option<i64>| {
        let id_in = |prefix: &str, stream: &str| -> Option<i64> {
            stream.strip_prefix(prefix)?.parse().ok()
        };
        let mut events: Vec<(i64, String, i64)> = log
            .iter()
            .filter_map(|e| {
                let row = |id| Some((e.position, e.event_type.clone(), id));
                match (
                    id_in("annotation-", &e.stream),
                    id_in("image-", &e.stream),
                    id_in("image_set-", &e.stream),
                ) {
                    (Some(id), _, _) if annotations.contains(&id) => row(id),
                    (_, Some(id), _) if images.contains(&id) => row(0),
                    (_, _, Some(id)) if set == Some(id) => row(0),
                    _ => None,
                }
            })
            .collect();
        events.reverse();
        events
    };
    let of_annotations = |ids: &[i64]| of_log(ids, &[], None);
    let expected = of_log(&[first, second], &[image_id], None);
    assert_eq!(
        expected.len(),
        6,
        "the image added; its annotations created twice, changed, verified, deleted"
    );

    let (ann_cookie, bob_cookie, carl_cookie) = (
        app.session(ann).await,
        app.session(bob).await,
        app.session(("carl", "pw-carl")).await,
    );
    let page = |path: String, cookie: &String| {
        let app = &app;
        let cookie = cookie.clone();
        async move {
            app.send(
                Method::GET,
                &path,
                None,
                None,
                vec![],
                &[("cookie", &cookie)],
            )
            .await
        }
    };
    let html = |answer: &support::Answer| String::from_utf8_lossy(&answer.bytes).into_owned();

    // The image's timeline is the log's list, and a page shows old and new values and why.
    let timeline = page(format!("/audit/?image={image_id}"), &ann_cookie).await;
    assert_eq!(timeline.status, StatusCode::OK, "{timeline:?}");
    let text = html(&timeline);
    assert_eq!(rows(&text), expected);
    assert!(
        text.contains("<b>description</b>: <del></del> → <ins>mitosis</ins>"),
        "{text}"
    );
    assert!(
        text.contains("<td class=\"reason\">second look</td>"),
        "{text}"
    );
    assert!(text.contains("accepted by bob"), "{text}");
    assert!(text.contains("api · 10.0.0.1"), "{text}");
    // Paged by position: two at a time, the pages together are the whole.
    let mut paged = Vec::new();
    let mut next = Some(format!("/audit/?image={image_id}&limit=2"));
    while let Some(path) = next {
        let answer = page(path, &ann_cookie).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let text = html(&answer);
        let got = rows(&text);
        assert!(got.len() <= 2);
        paged.extend(got);
        next = link(&text, "older");
    }
    assert_eq!(paged, expected);
    // Filtered by type and time.
    let changes = page(
        format!("/audit/?image={image_id}&type=AnnotationChanged&type=AnnotationDeleted"),
        &ann_cookie,
    )
    .await;
    let kept: Vec<String> = rows(&html(&changes)).into_iter().map(|r| r.1).collect();
    assert_eq!(kept, ["AnnotationDeleted", "AnnotationChanged"]);
    let none_yet = page(
        format!("/audit/?image={image_id}&until=2000-01-01"),
        &ann_cookie,
    )
    .await;
    assert_eq!(rows(&html(&none_yet)), vec![]);
    assert!(html(&none_yet).contains("No changes match."));

    // The set's covers both images, their own events and the set's; an annotation's, its own
    // events; a user's, what they did.
    let whole_set = of_log(
        &[first, second, elsewhere],
        &[image_id, other_image],
        Some(lab.set),
    );
    let set = page(format!("/audit/?set={}", lab.set), &ann_cookie).await;
    let set_text = html(&set);
    assert_eq!(rows(&set_text), whole_set);
    assert!(
        set_text.contains("<b>name</b>: <del>Audit set</del> → <ins>Audit renamed</ins>"),
        "{set_text}"
    );
    assert!(set_text.contains("<td class=\"reason\">the study&#x27;s name</td>"));
    let set_changes = page(
        format!(
            "/audit/?set={}&type=ImageSetChanged&type=ImageAdded",
            lab.set
        ),
        &ann_cookie,
    )
    .await;
    let kept: Vec<String> = rows(&html(&set_changes)).into_iter().map(|r| r.1).collect();
    assert_eq!(kept, ["ImageSetChanged", "ImageAdded", "ImageAdded"]);
    // Paged, the set's annotation and catalog rows interleave without loss or repeat.
    let mut paged = Vec::new();
    let mut next = Some(format!("/audit/?set={}&limit=3", lab.set));
    while let Some(path) = next {
        let text = html(&page(path, &ann_cookie).await);
        paged.extend(rows(&text));
        next = link(&text, "older");
    }
    assert_eq!(paged, whole_set);
    let one = page(format!("/audit/?annotation={first}"), &bob_cookie).await;
    assert_eq!(rows(&html(&one)), of_annotations(&[first]));
    let bobs = page("/audit/".to_owned(), &bob_cookie).await;
    let bobs: Vec<(String, i64)> = rows(&html(&bobs))
        .into_iter()
        .map(|(_, event, id)| (event, id))
        .collect();
    assert_eq!(
        bobs,
        [
            ("AnnotationDeleted".to_owned(), second),
            ("AnnotationVerified".to_owned(), first),
            ("AnnotationCreated".to_owned(), second)
        ]
    );
    let refused = page(format!("/audit/?user={bob_id}"), &carl_cookie).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", html(&refused));

    // The report: oldest first, naming the head it was read at and its chain hash.
    let report = page(format!("/audit/report/?set={}", lab.set), &ann_cookie).await;
    assert_eq!(report.status, StatusCode::OK, "{report:?}");
    let text = html(&report);
    let mut oldest_first = whole_set.clone();
    oldest_first.reverse();
    assert_eq!(rows(&text), oldest_first);
    let head = app.position().await;
    let head_hash = hex::encode(app.state.store.read_page(head, 1).await.unwrap()[0].hash);
    assert!(
        text.contains(&format!("<span id=\"head-position\">{head}</span>")),
        "{text}"
    );
    assert!(
        text.contains(&format!("<code id=\"head-hash\">{head_hash}</code>")),
        "{text}"
    );

    // Nobody reads what they may not: an outsider finds nothing; bad filters are named.
    for path in [
        format!("/audit/?image={image_id}"),
        format!("/audit/?set={}", lab.set),
        format!("/audit/?annotation={first}"),
        format!("/audit/report/?set={}", lab.set),
    ] {
        let answer = page(path.clone(), &carl_cookie).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}: {answer:?}");
        assert!(!html(&answer).contains("data-position"), "{path}");
    }
    let before = app.position().await;
    for (path, status) in [
        (
            format!("/audit/?image={image_id}&type=Bogus"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/audit/?image={image_id}&since=yesterday"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/audit/?image={image_id}&set={}", lab.set),
            StatusCode::BAD_REQUEST,
        ),
        ("/audit/report/".to_owned(), StatusCode::BAD_REQUEST),
    ] {
        let answer = page(path.clone(), &ann_cookie).await;
        assert_eq!(answer.status, status, "{path}: {answer:?}");
    }
    assert_eq!(app.position().await, before, "reading wrote nothing");
}
