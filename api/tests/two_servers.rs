//! Two `exact serve` processes on one PostgreSQL database and one data folder, as behind a load
//! balancer: one log, the same read models, sessions and live updates across both.

mod support;

use std::time::Duration;

use exact_store::testing::TestDb;
use exact_store::{OpenOptions, StoreUrl};
use serde_json::json;
use support::served::{self, create, Served};
use tokio::io::AsyncReadExt;

/// Reads a live-update stream's answer up to the end of its head, and returns what it read:
/// once the head is out, the server has fixed where the stream starts, so writes after it are
/// on it (a request merely sent may be handled after a write that follows it).
async fn started(stream: &mut tokio::net::TcpStream, server: &str) -> String {
    let mut text = String::new();
    let mut buffer = [0; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !text.contains("\r\n\r\n") {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("{server}'s live-update stream did not answer: {text}"))
            .unwrap();
        assert!(read > 0, "{server}'s live-update stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
    text
}

/// Reads a live-update stream (of which `text` was read already) until it has carried the
/// creation of every one of `ids`.
async fn until_all_seen(
    stream: &mut tokio::net::TcpStream,
    mut text: String,
    ids: &[i64],
    server: &str,
) {
    let mut buffer = [0; 8192];
    // Each creation's data carries its payload, whose `"id"` is the annotation's.
    let unseen = |text: &str| {
        ids.iter()
            .filter(|id| {
                !text.contains(&format!(r#""id":{id},"#))
                    && !text.contains(&format!(r#""id":{id}}}"#))
            })
            .count()
    };
    // Well within the minute after which a stream looks at the log again without being told.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while unseen(&text) > 0 {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("{server}'s live updates missed some of {ids:?}: {text}"))
            .unwrap();
        assert!(read > 0, "{server}'s live-update stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgresql_database_act_as_one() {
    let db = TestDb::postgres().await;
    let url = db.url_string();
    // Shared storage: both serve the same data folder.
    let data = tempfile::tempdir().unwrap();
    let a = Served::start_on(data.path(), Some(&url));
    let b = Served::start_on(data.path(), Some(&url));

    // The catalog through either server.
    let team = create(&a.url, "/api/v1/users/teams/", json!({"name": "Both"})).await["id"].clone();
    let set = create(
        &b.url,
        "/api/v1/images/image_sets/",
        json!({"name": "both set", "team": team}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let product = create(
        &a.url,
        "/api/v1/administration/products/",
        json!({"name": "both product", "team": team, "imagesets": [set]}),
    )
    .await["id"]
        .clone();
    let annotation_type = create(
        &b.url,
        "/api/v1/annotations/annotation_types/",
        json!({"name": "cell", "product": product, "vector_type": 1}),
    )
    .await["id"]
        .clone();
    let admin = support::basic("exact", "exact");
    let (content_type, body) = support::multipart(
        &[("image_set", &set.to_string())],
        &[("file_path", "cells.png", &support::png(300, 200))],
    );
    let uploaded = served::request(
        &a.url,
        "POST",
        "/api/v1/images/images/",
        &[("authorization", &admin), ("content-type", &content_type)],
        &body,
    )
    .await;
    assert_eq!(uploaded.status, 201, "{uploaded:?}");
    let image = uploaded.json()["results"][0]["id"].as_i64().unwrap();
    // The file written through A is served through B (the shared folder).
    let thumbnail = served::request(
        &b.url,
        "GET",
        &format!("/api/v1/images/images/{image}/thumbnail/"),
        &[("authorization", &admin)],
        b"",
    )
    .await;
    assert_eq!(thumbnail.status, 200, "{thumbnail:?}");

    // Live updates of the set, one stream on each server.
    let events = format!("/api/v1/events/?image_set={set}");
    let mut live_a = served::open(&a.url, "GET", &events, &[("authorization", &admin)], b"").await;
    let mut live_b = served::open(&b.url, "GET", &events, &[("authorization", &admin)], b"").await;
    let read_a = started(&mut live_a, "A").await;
    let read_b = started(&mut live_b, "B").await;

    // Writes through either, each read at once through the other (read-your-writes across).
    let mut ids = Vec::new();
    for n in 0..20_i64 {
        let (through, other) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let box_at = json!({"image": image, "annotation_type": annotation_type,
                            "vector": {"x1": n * 10, "y1": 5, "x2": n * 10 + 8, "y2": 13}});
        let id = create(&through.url, "/api/v1/annotations/annotations/", box_at).await["id"]
            .as_i64()
            .unwrap();
        let read = served::request(
            &other.url,
            "GET",
            &format!("/api/v1/annotations/annotations/{id}/"),
            &[("authorization", &admin)],
            b"",
        )
        .await;
        assert_eq!(
            read.status, 200,
            "{id} written through one, read through the other: {read:?}"
        );
        ids.push(id);
    }

    // A session opened on A works on B, for reads and for writes, and ends on both.
    let login = served::request(
        &a.url,
        "POST",
        "/api/v1/auth/login/",
        &[("content-type", "application/json")],
        br#"{"username": "exact", "password": "exact"}"#,
    )
    .await;
    assert_eq!(login.status, 200, "{login:?}");
    let cookie = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("the login sets a session cookie")
        .to_owned();
    let csrf = login.json()["csrf_token"].as_str().unwrap().to_owned();
    let current = served::request(
        &b.url,
        "GET",
        "/api/v1/auth/session/",
        &[("cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(current.status, 200, "{current:?}");
    assert_eq!(current.json()["username"], "exact");
    assert_eq!(current.json()["csrf_token"], csrf.as_str());
    let box_by_session = json!({"image": image, "annotation_type": annotation_type,
                                "vector": {"x1": 250, "y1": 150, "x2": 260, "y2": 160}});
    let created = served::request(
        &b.url,
        "POST",
        "/api/v1/annotations/annotations/",
        &[
            ("cookie", &cookie),
            ("x-csrftoken", &csrf),
            ("content-type", "application/json"),
        ],
        box_by_session.to_string().as_bytes(),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    ids.push(created.json()["id"].as_i64().unwrap());
    let logout = served::request(
        &b.url,
        "POST",
        "/api/v1/auth/logout/",
        &[("cookie", &cookie), ("x-csrftoken", &csrf)],
        b"",
    )
    .await;
    assert_eq!(logout.status, 204, "{logout:?}");
    let ended = served::request(
        &a.url,
        "GET",
        "/api/v1/auth/session/",
        &[("cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(
        ended.status, 401,
        "a session ended on B is ended on A: {ended:?}"
    );

    // Both streams carried every creation, whichever server took it.
    until_all_seen(&mut live_a, read_a, &ids, "A").await;
    until_all_seen(&mut live_b, read_b, &ids, "B").await;

    // One list, the same through both; one log, gapless and chained.
    let list = format!("/api/v1/annotations/annotations/?image={image}&limit=100");
    let mut listed = Vec::new();
    for server in [&a, &b] {
        let reply =
            served::request(&server.url, "GET", &list, &[("authorization", &admin)], b"").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let mut found: Vec<i64> = reply.json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        found.sort_unstable();
        listed.push(found);
    }
    let mut expected = ids.clone();
    expected.sort_unstable();
    assert_eq!(listed, [expected.clone(), expected]);
    let store = exact_store::open(&StoreUrl::Postgres(url), OpenOptions::default())
        .await
        .unwrap();
    let report = store.verify(1, None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
    assert_eq!(report.last, Some(store.last_position().await.unwrap()));
    assert_eq!(report.checked as i64, store.last_position().await.unwrap());
    drop((a, b));
}
