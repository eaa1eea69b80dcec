//! The server outlives its faults: a PostgreSQL outage is answered, not hung on, and nothing
//! acknowledged is lost across it.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use exact_store::testing::TestDb;
use exact_store::{AppendContext, Expected, NewEvent, OpenOptions, StoreUrl};
use http_body_util::BodyExt;
use serde_json::json;
use support::{box_annotation, ids_of, image, project, TestApp, ADMIN};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy in front of PostgreSQL that can be cut: to the server behind it, an outage (its
/// connections break, new ones are refused) without stopping the cluster other tests share.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cuts: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let cuts = watch::Sender::new(0);
        let (accepting, cut) = (up.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let (target, mut cut) = (target.clone(), cut.subscribe());
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { port, up, cuts }
    }

    /// Breaks every connection and refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// The live-update stream of `set` (Server-Sent Events), open.
async fn live_updates(app: &TestApp, set: i64) -> axum::body::Body {
    use tower::ServiceExt;
    let mut request = axum::http::Request::get(format!("/api/v1/events/?image_set={set}"))
        .header("authorization", support::basic(ADMIN.0, ADMIN.1))
        .body(axum::body::Body::empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [10, 0, 0, 1],
            5000,
        ))));
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body()
}

/// `postgres://user:password@host:port/name` -> ("host:port", the URL through `port` on
/// loopback).
fn through_proxy(url: &str, port: u16) -> (String, String) {
    let (credentials, rest) = url.rsplit_once('@').unwrap();
    let (address, database) = rest.split_once('/').unwrap();
    (
        address.replace("localhost", "127.0.0.1"),
        format!("{credentials}@127.0.0.1:{port}/{database}"),
    )
}

/// PostgreSQL goes away under a running server and comes back: meanwhile reads and writes are
/// answered 503 with `Retry-After` (never a hang, never a 500) and change nothing; afterwards
/// the server serves again by itself, every acknowledged write is there exactly once, and
/// live updates from other processes reach it again (its LISTEN connection came back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_outage_is_answered_503_and_outlived() {
    let mut db = TestDb::postgres().await;
    let real = db.url_string();
    let proxy = Proxy::start(through_proxy(&real, 0).0).await;
    db.url = StoreUrl::Postgres(through_proxy(&real, proxy.port).1);
    let app = TestApp::new(db).await;
    let project = project(&app, ADMIN, "outage", 1).await;
    let image = image(&app, ADMIN, project.set, "cells.png", 200, 200).await;
    let mut acknowledged = Vec::new();
    for _ in 0..3 {
        acknowledged.push(box_annotation(&app, ADMIN, image, project.annotation_type).await);
    }
    let list = format!("/api/v1/annotations/annotations/?image={image}");
    let before = app.position().await;
    let mut live = live_updates(&app, project.set).await;

    proxy.cut();
    let create = json!({"image": image, "annotation_type": project.annotation_type,
                        "vector": {"x1": 20, "y1": 20, "x2": 40, "y2": 40}});
    let requests = [
        (
            Method::POST,
            "/api/v1/annotations/annotations/".to_owned(),
            create.clone(),
        ),
        (Method::GET, list.clone(), json!(null)),
        (
            Method::GET,
            format!("/api/v1/images/images/{image}/"),
            json!(null),
        ),
        (Method::GET, "/api/v1/health".to_owned(), json!(null)),
    ];
    for (method, path, body) in requests {
        let answer = tokio::time::timeout(
            Duration::from_secs(60),
            app.json(method.clone(), &path, ADMIN, body),
        )
        .await
        .unwrap_or_else(|_| panic!("{method} {path} hung while the database was away"));
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{method} {path}: {answer:?}"
        );
        assert_eq!(answer.json["code"], "database_unavailable", "{path}");
        assert_eq!(answer.headers["retry-after"], "5", "{path}");
    }

    proxy.restore();
    let mut listed = app.get(&list, ADMIN).await;
    for _ in 0..120 {
        if listed.status == StatusCode::OK {
            break;
        }
        assert_eq!(listed.status, StatusCode::SERVICE_UNAVAILABLE, "{listed:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
        listed = app.get(&list, ADMIN).await;
    }
    let mut ids = ids_of(&listed);
    ids.sort_unstable();
    assert_eq!(
        ids, acknowledged,
        "what was acknowledged, and nothing refused"
    );
    assert_eq!(
        app.position().await,
        before,
        "nothing was stored during the outage"
    );
    let after = box_annotation(&app, ADMIN, image, project.annotation_type).await;
    assert!(after > acknowledged[2]);
    // The live-update stream opened before the outage is still open and goes on.
    let mut text = String::new();
    let created = format!(r#""id":{after}"#);
    while !text.contains(&created) {
        let frame = tokio::time::timeout(Duration::from_secs(30), live.frame())
            .await
            .expect("the live-update stream goes on after the outage")
            .expect("the stream is still open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(!text.contains("event: closed"), "{text}");

    // Another server on the same database writes: this one hears of it again.
    let other = exact_store::open(
        &StoreUrl::Postgres(real),
        OpenOptions {
            projections: exact_projections::all(),
            ..OpenOptions::default()
        },
    )
    .await
    .unwrap();
    let mut committed = app.state.store.subscribe();
    let written = other
        .append(
            "outage-probe",
            Expected::NoStream,
            vec![NewEvent::new("Probed", json!({}))],
            AppendContext::system(),
        )
        .await
        .unwrap();
    let position = written[0].position;
    tokio::time::timeout(
        Duration::from_secs(30),
        committed.wait_for(|p| *p >= position),
    )
    .await
    .expect("the notification of another process's append arrives after the outage")
    .unwrap();
    let report = app.state.store.verify(1, None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
}
