//! The router answers through `tower::ServiceExt::oneshot`, on both backends.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use exact_api::{app, AppState};
use exact_store::testing::TestDb;
use exact_store::{AppendContext, Expected, NewEvent};
use http_body_util::BodyExt;
use tower::ServiceExt;

exact_store::on_both_backends!(health_reports_store_and_position);

/// As the superuser `exact` (password `pass`), or anonymously.
async fn get(router: axum::Router, path: &str, signed_in: bool) -> (StatusCode, String) {
    let mut request = Request::get(path);
    if signed_in {
        // exact:pass
        request = request.header("authorization", "Basic ZXhhY3Q6cGFzcw==");
    }
    let response = router
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn health_reports_store_and_position(db: TestDb) {
    let store = db.open_with_projections(exact_projections::all()).await;
    let data = tempfile::tempdir().unwrap();
    let config = exact_api::Config::new(data.path().to_owned());
    let state = AppState::open(store.clone(), &db.url, config)
        .await
        .unwrap();
    let router = app(state.clone());
    // A load balancer learns that the server and its store answer, nothing more.
    let (status, body) = get(router.clone(), "/api/v1/health", false).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"ok"}"#)
    );
    state.ensure_admin(Some("pass".into())).await.unwrap();
    let position = store.last_position().await.unwrap();
    let (status, body) = get(router.clone(), "/api/v1/health", true).await;
    assert_eq!(status, StatusCode::OK);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (health["store"].as_str(), health["position"].as_i64()),
        (Some(db.backend().name()), Some(position))
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
    let (_, body) = get(router.clone(), "/api/v1/health", true).await;
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        health["position"],
        position + 1,
        "health reads the store, not a cached number"
    );

    let (status, _) = get(router, "/api/v1/no-such-route", false).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
