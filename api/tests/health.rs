//! The router answers through `tower::ServiceExt::oneshot`, on both backends.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use exact_api::{app, AppState};
use exact_store::testing::TestDb;
use exact_store::{AppendContext, Expected, NewEvent};
use http_body_util::BodyExt;
use tower::ServiceExt;

exact_store::on_both_backends!(health_reports_store_and_position);

async fn get(router: axum::Router, path: &str) -> (StatusCode, String) {
    let response = router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn health_reports_store_and_position(db: TestDb) {
    let store = db.open().await;
    let data = tempfile::tempdir().unwrap();
    let config = exact_api::Config::new(data.path().to_owned());
    let state = AppState::open(store.clone(), &db.url, config)
        .await
        .unwrap();
    let router = app(state);
    let (status, body) = get(router.clone(), "/api/v1/health").await;
    assert_eq!(status, StatusCode::OK);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (health["store"].as_str(), health["position"].as_i64()),
        (Some(db.backend().name()), Some(1))
    );

    store
        .append(
            "a",
            Expected::NoStream,
            vec![NewEvent::new("Noted", serde_json::json!({}))],
            AppendContext::system(),
        )
        .await
        .unwrap();
    let (_, body) = get(router.clone(), "/api/v1/health").await;
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        health["position"], 2,
        "health reads the store, not a cached number"
    );

    let (status, _) = get(router, "/api/v1/no-such-route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
