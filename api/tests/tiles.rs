//! `exact tiles`: the tile routes answer only with the token, name files under the data folder
//! only, and turn every kind of bad request or bad file into a JSON error.

use std::path::Path;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use exact_api::{tile_server, TilesState};
use exact_tiles::fixture::{self, Breakage, SlideSpec};
use http_body_util::BodyExt;
use tower::ServiceExt;

const TOKEN: &str = "a-test-token-of-some-length";

fn server(dir: &Path) -> axum::Router {
    tile_server(TilesState {
        data_dir: dir.to_owned(),
        service: exact_tiles::TileService::new(exact_tiles::TileConfig::default()),
        token: TOKEN.into(),
    })
}

async fn get(
    router: &axum::Router,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, String, Vec<u8>) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, kind, body)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slides_are_served_to_token_holders_as_deepzoom_and_pngs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("set-1")).unwrap();
    fixture::write_slide(
        &dir.path().join("set-1/slide.svs"),
        &SlideSpec::aperio(3_000, 2_000),
    )
    .unwrap();
    let router = server(dir.path());

    for token in [None, Some("wrong-token-of-the-same-size!")] {
        let (status, _, body) = get(&router, "/tiles/set-1/slide.svs.dzi", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(json(&body)["code"], "unauthorized");
    }
    let ok = Some(TOKEN);
    let (status, kind, body) = get(&router, "/tiles/set-1/slide.svs.dzi", ok).await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "application/xml"));
    let dzi = String::from_utf8(body).unwrap();
    assert!(
        dzi.contains("TileSize=\"240\"") && dzi.contains("Height=\"2000\" Width=\"3000\""),
        "{dzi}"
    );

    let (status, _, body) = get(&router, "/slides/set-1/slide.svs/info", ok).await;
    assert_eq!(status, StatusCode::OK);
    let info = json(&body);
    assert_eq!(
        (
            info["vendor"].as_str(),
            info["mpp_x"].as_f64(),
            info["width"].as_u64()
        ),
        (Some("aperio"), Some(0.499), Some(3_000))
    );
    let top = info["deepzoom"]["levels"].as_u64().unwrap() - 1;

    let (status, kind, body) = get(
        &router,
        &format!("/tiles/set-1/slide.svs_files/{top}/2_3.jpeg"),
        ok,
    )
    .await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "image/jpeg"));
    assert_eq!(image::load_from_memory(&body).unwrap().width(), 240);
    let (status, kind, _) = get(
        &router,
        &format!("/tiles/set-1/slide.svs_files/{top}/2_3.png"),
        ok,
    )
    .await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "image/png"));

    let (status, _, body) = get(&router, "/slides/set-1/slide.svs/thumbnail?size=150", ok).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(image::load_from_memory(&body).unwrap().width(), 150);
    let (status, _, body) = get(&router, "/slides/set-1/slide.svs/associated/label", ok).await;
    assert_eq!(
        (status, image::load_from_memory(&body).unwrap().height()),
        (StatusCode::OK, 200)
    );
    let (status, _, body) = get(
        &router,
        "/slides/set-1/slide.svs/region?x=100&y=200&level=0&width=64&height=32",
        ok,
    )
    .await;
    assert_eq!(
        (status, image::load_from_memory(&body).unwrap().width()),
        (StatusCode::OK, 64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_bad_files_are_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    fixture::write_slide(&data.join("slide.tif"), &SlideSpec::generic(1_000, 800)).unwrap();
    fixture::write_broken(
        &data.join("broken.svs"),
        &SlideSpec::aperio(600, 400),
        Breakage::Garbage,
    )
    .unwrap();
    // A slide outside the data folder, reachable only through `..` or a link.
    fixture::write_slide(
        &dir.path().join("secret.tif"),
        &SlideSpec::generic(300, 300),
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.tif"), data.join("link.tif")).unwrap();
    let router = server(&data);
    let ok = Some(TOKEN);
    let cases = [
        (
            "/tiles/../secret.tif.dzi",
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "/tiles/link.tif.dzi",
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        ("/tiles/missing.svs.dzi", StatusCode::NOT_FOUND, "not_found"),
        (
            "/tiles/broken.svs.dzi",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_file",
        ),
        (
            "/tiles/slide.tif_files/99/0_0.jpeg",
            StatusCode::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/tiles/slide.tif_files/10/9_0.jpeg",
            StatusCode::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/tiles/slide.tif_files/11/0_0.gif",
            StatusCode::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/tiles/slide.tif_files/x/0_0.jpeg",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/slides/slide.tif/region?x=0&y=0&width=5000&height=10",
            StatusCode::BAD_REQUEST,
            "out_of_range",
        ),
        (
            "/slides/slide.tif/region?y=0",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/slides/slide.tif/associated/label",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/slides/slide.tif/whatever",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (path, status, code) in cases {
        let (got, _, body) = get(&router, path, ok).await;
        assert_eq!(
            (got, json(&body)["code"].as_str()),
            (status, Some(code)),
            "{path}"
        );
    }
    let (_, _, body) = get(&router, "/tiles/broken.svs.dzi", ok).await;
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .contains("broken.svs"),
        "the error names the file"
    );
    // The server is still up and serving.
    let (status, _, _) = get(&router, "/tiles/slide.tif_files/10/0_0.jpeg", ok).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iiif_viewers_get_info_and_images() {
    let dir = tempfile::tempdir().unwrap();
    fixture::write_slide(
        &dir.path().join("slide.svs"),
        &SlideSpec::aperio(3_000, 2_000),
    )
    .unwrap();
    let router = server(dir.path());
    let ok = Some(TOKEN);
    let (status, kind, body) = get(&router, "/iiif/slide.svs/info.json", ok).await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("application/ld+json"), "{kind}");
    let info = json(&body);
    assert_eq!(
        (info["type"].as_str(), info["profile"].as_str()),
        (Some("ImageService3"), Some("level1"))
    );
    assert_eq!(
        (info["width"].as_u64(), info["height"].as_u64()),
        (Some(3_000), Some(2_000))
    );
    assert!(info["id"].as_str().unwrap().ends_with("/iiif/slide.svs"));
    assert_eq!(
        info["tiles"][0]["scaleFactors"].as_array().unwrap().len(),
        5
    );
    let cases = [
        ("/iiif/slide.svs/full/max/0/default.jpg", 2_048, 1_365),
        ("/iiif/slide.svs/full/300,/0/default.jpg", 300, 200),
        (
            "/iiif/slide.svs/1000,500,480,240/240,120/0/default.png",
            240,
            120,
        ),
        ("/iiif/slide.svs/square/,100/0/default.jpg", 100, 100),
    ];
    for (path, w, h) in cases {
        let (status, _, body) = get(&router, path, ok).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let decoded = image::load_from_memory(&body).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (w, h), "{path}");
    }
    for path in [
        "/iiif/slide.svs/full/max/90/default.jpg",
        "/iiif/slide.svs/full/6000,/0/default.jpg",
        "/iiif/slide.svs/full/max/0/bitonal.png",
    ] {
        let (status, _, body) = get(&router, path, ok).await;
        assert_eq!(
            (status, json(&body)["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("out_of_range")),
            "{path}"
        );
    }
    let (status, _, _) = get(&router, "/iiif/slide.svs/info.json", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
