//! The server outlives its faults: a PostgreSQL outage, a full disk, a client or a server gone
//! mid-upload. Each is answered, never hung on; nothing acknowledged is lost and nothing
//! half-done is left.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use exact_store::testing::TestDb;
use exact_store::{AppendContext, Expected, NewEvent, OpenOptions, StoreUrl};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::served::{self, create, Served};
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

/// A tmpfs of `megabytes` mounted on a fresh folder (the test runs as root, as `make test`
/// does); unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            mounted.success(),
            "mounting a tmpfs needs root (make test runs as root)"
        );
        Self { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// A PNG of noise (which does not compress): about 3 bytes a pixel.
fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let image = image::RgbImage::from_fn(w, h, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// The data folder fills up during an upload: 507 with what is wrong, no file left of it, no
/// event, and the server goes on serving reads and, once there is room, uploads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_the_upload_and_keeps_serving() {
    let disk = SmallDisk::mount(4);
    let folder = disk.path().to_owned();
    let app = TestApp::with_config(TestDb::sqlite(), |config| config.data_dir = folder).await;
    let project = project(&app, ADMIN, "full disk", 1).await;
    let first = image(&app, ADMIN, project.set, "small.png", 64, 64).await;
    let kept = files_under(disk.path());
    let before = app.position().await;

    let big = noise_png(1400, 1400);
    assert!(
        big.len() > 5 << 20,
        "larger than the disk: {} bytes",
        big.len()
    );
    let refused = app
        .upload(
            ADMIN,
            &[("image_set", &project.set.to_string())],
            &[("file_path", "big.png", &big)],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::INSUFFICIENT_STORAGE,
        "{refused:?}"
    );
    assert_eq!(refused.json["code"], "insufficient_storage");
    assert_eq!(
        files_under(disk.path()),
        kept,
        "nothing of the upload is left"
    );
    assert_eq!(app.position().await, before, "nothing was stored");

    let list = app
        .get(
            &format!("/api/v1/images/images/?image_set={}", project.set),
            ADMIN,
        )
        .await;
    assert_eq!(support::ids_of(&list), [first]);
    let after = image(&app, ADMIN, project.set, "after.png", 80, 60).await;
    assert!(after > first);
}

/// A team and a set of it to upload into, on a served `exact`: (team, set).
async fn team_and_set(server: &Served) -> (Value, i64) {
    let team = create(
        &server.url,
        "/api/v1/users/teams/",
        json!({"name": "uploads"}),
    )
    .await;
    let set = create(
        &server.url,
        "/api/v1/images/image_sets/",
        json!({"name": "uploads set", "team": team["id"]}),
    )
    .await;
    (team["id"].clone(), set["id"].as_i64().unwrap())
}

/// The log position and the images of `set`, as a signed-in client sees them.
async fn position_and_images(server: &Served, set: i64) -> (i64, Value) {
    let admin = support::basic("exact", "exact");
    let auth = [("authorization", admin.as_str())];
    let health = served::request(&server.url, "GET", "/api/v1/health", &auth, b"").await;
    let images = served::request(
        &server.url,
        "GET",
        &format!("/api/v1/images/images/?image_set={set}"),
        &auth,
        b"",
    )
    .await;
    (
        health.json()["position"].as_i64().unwrap(),
        images.json()["count"].clone(),
    )
}

/// Starts an upload of a large image into `set` and sends half of it, then waits until the
/// server has begun to store it; the connection is left open.
async fn half_an_upload(
    server: &Served,
    set: i64,
    data: &std::path::Path,
) -> tokio::net::TcpStream {
    let admin = support::basic("exact", "exact");
    let (content_type, body) = support::multipart(
        &[("image_set", &set.to_string())],
        &[("file_path", "big.png", &noise_png(1200, 1200))],
    );
    let stream = served::open_with_length(
        &server.url,
        "POST",
        "/api/v1/images/images/",
        &[("authorization", &admin), ("content-type", &content_type)],
        &body[..body.len() / 2],
        body.len(),
    )
    .await;
    let staging = data.join("uploads");
    for _ in 0..200 {
        if !files_under_if_any(&staging).is_empty() {
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server never began to store the upload");
}

fn files_under_if_any(dir: &std::path::Path) -> Vec<String> {
    if dir.is_dir() {
        files_under(dir)
    } else {
        Vec::new()
    }
}

/// A client that goes away in the middle of an upload leaves no file and no event, and the
/// server goes on serving (uploads included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_upload_leaves_no_file() {
    let data = tempfile::tempdir().unwrap();
    let server = Served::start(data.path());
    let (_, set) = team_and_set(&server).await;
    let before = position_and_images(&server, set).await;
    let stream = half_an_upload(&server, set, data.path()).await;
    drop(stream);
    let staging = data.path().join("uploads");
    for _ in 0..200 {
        if files_under_if_any(&staging).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        files_under_if_any(&staging),
        Vec::<String>::new(),
        "the partial upload is gone"
    );
    assert_eq!(position_and_images(&server, set).await, before);
    let (content_type, body) = support::multipart(
        &[("image_set", &set.to_string())],
        &[("file_path", "small.png", &support::png(64, 64))],
    );
    let admin = support::basic("exact", "exact");
    let uploaded = served::request(
        &server.url,
        "POST",
        "/api/v1/images/images/",
        &[("authorization", &admin), ("content-type", &content_type)],
        &body,
    )
    .await;
    assert_eq!(uploaded.status, 201, "{uploaded:?}");
}

/// The server is killed (SIGKILL) in the middle of an upload: what it had received stays on
/// disk until it starts again, which removes it; no image and no event of it are ever seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_upload_leaves_nothing_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = Served::start(data.path());
    let (_, set) = team_and_set(&server).await;
    let before = position_and_images(&server, set).await;
    let stream = half_an_upload(&server, set, data.path()).await;
    drop(server); // SIGKILL
    drop(stream);
    let staging = data.path().join("uploads");
    assert!(
        !files_under_if_any(&staging).is_empty(),
        "the killed server left its partial upload"
    );
    let server = Served::start(data.path());
    assert_eq!(
        files_under_if_any(&staging),
        Vec::<String>::new(),
        "swept at start"
    );
    assert_eq!(position_and_images(&server, set).await, before);
}

/// A request dropped mid-upload (by a layer's timeout, a reset stream, a shutdown) does not
/// cut the upload's work off: when the connection then fails, the work fails as an upload
/// whose body broke, and removes what it had stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_request_is_dropped_still_cleans_up() {
    use tower::ServiceExt;
    let app = TestApp::new(TestDb::sqlite()).await;
    let project = project(&app, ADMIN, "dropped", 1).await;
    let (content_type, body) = support::multipart(
        &[("image_set", &project.set.to_string())],
        &[("file_path", "big.png", &noise_png(600, 600))],
    );
    let before = app.position().await;
    // Half the body, then nothing until the connection "breaks".
    let (broken, breaks) = tokio::sync::oneshot::channel::<()>();
    let half = axum::body::Bytes::copy_from_slice(&body[..body.len() / 2]);
    let chunks = futures_util::stream::once(async move { Ok::<_, std::io::Error>(half) }).chain(
        futures_util::stream::once(async move {
            let _ = breaks.await;
            Err(std::io::Error::other("the connection broke"))
        }),
    );
    let mut request = axum::http::Request::post("/api/v1/images/images/")
        .header("authorization", support::basic(ADMIN.0, ADMIN.1))
        .header("content-type", content_type)
        .body(axum::body::Body::from_stream(chunks))
        .unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [10, 0, 0, 1],
            5000,
        ))));
    let in_flight = tokio::spawn(app.router.clone().oneshot(request));
    let staging = app.data.path().join("uploads");
    for _ in 0..200 {
        if !files_under_if_any(&staging).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!files_under_if_any(&staging).is_empty(), "the upload began");
    in_flight.abort();
    let _ = in_flight.await;
    let _ = broken.send(()); // (nobody hears it if the work was dropped with the request)
    for _ in 0..200 {
        if files_under_if_any(&staging).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(files_under_if_any(&staging), Vec::<String>::new());
    assert_eq!(app.position().await, before);
}

/// The server is killed (SIGKILL) while it writes a bulk import of 20,000 annotations: after
/// a restart the import is there whole or not at all, what was acknowledged before is there,
/// and the chain verifies. Run at several moments of the import, on each store (on PostgreSQL
/// the server dies while the database lives on, holding the half-written transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_import_shows_all_of_it_or_none() {
    killed_mid_import(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_import_on_postgresql_shows_all_of_it_or_none() {
    killed_mid_import(TestDb::postgres().await).await;
}

async fn killed_mid_import(db: TestDb) {
    let data = tempfile::tempdir().unwrap();
    let database_url = match &db.url {
        StoreUrl::Postgres(url) => Some(url.clone()),
        StoreUrl::Sqlite(_) => None,
    };
    let start = || Served::start_on(data.path(), database_url.as_deref());
    let mut server = start();
    let (team, set) = team_and_set(&server).await;
    let product = create(
        &server.url,
        "/api/v1/administration/products/",
        json!({"name": "import product", "team": team, "imagesets": [set]}),
    )
    .await;
    let annotation_type = create(
        &server.url,
        "/api/v1/annotations/annotation_types/",
        json!({"name": "cell", "product": product["id"], "vector_type": 1}),
    )
    .await["id"]
        .clone();
    let admin = support::basic("exact", "exact");
    let (content_type, body) = support::multipart(
        &[("image_set", &set.to_string())],
        &[("file_path", "field.png", &support::png(2000, 2000))],
    );
    let uploaded = served::request(
        &server.url,
        "POST",
        "/api/v1/images/images/",
        &[("authorization", &admin), ("content-type", &content_type)],
        &body,
    )
    .await;
    assert_eq!(uploaded.status, 201, "{uploaded:?}");
    let image = uploaded.json()["results"][0]["id"].as_i64().unwrap();
    let one = json!({"image": image, "annotation_type": annotation_type,
                     "vector": {"x1": 1, "y1": 1, "x2": 9, "y2": 9}});
    let acknowledged = create(&server.url, "/api/v1/annotations/annotations/", one).await["id"]
        .as_i64()
        .unwrap();
    let import: Vec<Value> = (0..20_000)
        .map(|n| {
            let (x, y) = ((n % 190) * 10 + 1, (n / 190) * 10 + 1);
            json!({"image": image, "annotation_type": annotation_type,
                   "vector": {"x1": x, "y1": y % 1990, "x2": x + 6, "y2": y % 1990 + 6}})
        })
        .collect();
    let import = Value::Array(import).to_string();
    let count = |server: &Served| {
        let url = server.url.clone();
        let admin = admin.clone();
        async move {
            let reply = served::request(
                &url,
                "GET",
                &format!("/api/v1/annotations/annotations/?image={image}&limit=1"),
                &[("authorization", &admin)],
                b"",
            )
            .await;
            reply.json()["count"].as_i64().unwrap()
        }
    };
    let mut expected = 1;
    let mut outcomes = Vec::new();
    for wait_ms in [30_u64, 150, 400, 900] {
        let stream = served::open(
            &server.url,
            "POST",
            "/api/v1/annotations/annotations/",
            &[
                ("authorization", &admin),
                ("content-type", "application/json"),
            ],
            import.as_bytes(),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        drop(server); // SIGKILL
        drop(stream);
        server = start();
        let now = count(&server).await;
        assert!(
            now == expected || now == expected + 20_000,
            "after a kill {wait_ms} ms into the import: {now} annotations, not {expected} or {}",
            expected + 20_000
        );
        outcomes.push(now > expected);
        expected = now;
        let read = served::request(
            &server.url,
            "GET",
            &format!("/api/v1/annotations/annotations/{acknowledged}/"),
            &[("authorization", &admin)],
            b"",
        )
        .await;
        assert_eq!(
            read.status, 200,
            "the acknowledged annotation is there: {read:?}"
        );
    }
    // Acknowledged, then killed at once: all of it is there after the restart.
    let answered = served::request(
        &server.url,
        "POST",
        "/api/v1/annotations/annotations/",
        &[
            ("authorization", &admin),
            ("content-type", "application/json"),
        ],
        import.as_bytes(),
    )
    .await;
    assert_eq!(answered.status, 201, "{answered:?}");
    drop(server);
    let server = start();
    assert_eq!(count(&server).await, expected + 20_000);
    drop(server);
    let url = match &database_url {
        Some(url) => StoreUrl::Postgres(url.clone()),
        None => StoreUrl::in_data_dir(data.path()),
    };
    let store = exact_store::open(&url, OpenOptions::default())
        .await
        .unwrap();
    let report = store.verify(1, None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
    eprintln!("imports stored whole after a kill at 30/150/400/900 ms: {outcomes:?}");
}

/// Clients that never finish a request head (slowloris: a few bytes now and then) are cut off
/// once the header timeout has passed, and while they hang on, everyone else is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_others_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_exact"));
    command
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--header-timeout-secs",
            "2",
            "--data-dir",
        ])
        .arg(data.path())
        .env_remove("EXACT_DATABASE_URL")
        .env("EXACT_LOG", "warn");
    let server = Served::launch(command);
    let address = server.url.trim_start_matches("http://").to_owned();
    // Fifty that stop half-way through their head, and one that drips a byte every 300 ms.
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        stalled.push(stream);
    }
    let dripping = tokio::spawn({
        let address = address.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            stream
                .write_all(b"GET /api/v1/health HTTP/1.1\r\nX-Slow: ")
                .await
                .unwrap();
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if stream.write_all(b"a").await.is_err() {
                    return true; // cut off
                }
                let mut byte = [0; 1];
                if let Ok(Ok(0)) =
                    tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await
                {
                    return true; // closed by the server
                }
            }
            false
        }
    });
    let health = served::request(&server.url, "GET", "/api/v1/health", &[], b"").await;
    assert_eq!(
        health.status, 200,
        "served beside the stalled clients: {health:?}"
    );
    for mut stream in stalled {
        let mut rest = Vec::new();
        // Closed (an end of stream or a reset, either will do) well within the test's patience.
        let _closed = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut rest))
            .await
            .expect("a stalled client is cut off, not kept");
        let text = String::from_utf8_lossy(&rest);
        assert!(
            !text.contains("200 OK"),
            "a stalled request was answered: {text}"
        );
    }
    let cut = tokio::time::timeout(Duration::from_secs(30), dripping)
        .await
        .expect("the dripping client is cut off within its 30 s")
        .unwrap();
    assert!(cut, "a client dripping its head is cut off too");
    let health = served::request(&server.url, "GET", "/api/v1/health", &[], b"").await;
    assert_eq!(health.status, 200);
}
