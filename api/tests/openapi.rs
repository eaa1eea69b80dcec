//! The OpenAPI document: its snapshot (a change to the API shows in review), and every path it
//! lists is a route of the server (the document and the router cannot drift apart).

mod support;

use axum::http::{Method, StatusCode};
use exact_api::rest::openapi::{document, OPERATIONS};
use exact_store::testing::TestDb;
use support::{TestApp, ADMIN};

#[test]
fn the_document_matches_its_snapshot() {
    insta::assert_json_snapshot!("openapi", document());
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_json() {
    let app = TestApp::new(TestDb::sqlite()).await;
    let served = app.get("/api/v1/openapi.json", ADMIN).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.json, document());
    for (method, path, ..) in OPERATIONS {
        if *path == "/events/" || *path == "/auth/logout/" {
            continue; // a stream, and a logout that ends the test's own session: covered in rest.rs
        }
        let concrete = path
            .replace("{id}", "987654")
            .replace("{token}", "00000000-0000-0000-0000-000000000000")
            .replace("{z}", "0")
            .replace("{frame}", "0")
            .replace("{level}", "0")
            .replace("{tile}", "0_0.jpeg");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let answer = app
            .send(
                method.clone(),
                &format!("/api/v1{concrete}"),
                Some(ADMIN),
                Some("application/json"),
                b"{}".to_vec(),
                &[],
            )
            .await;
        let routed = answer.json.get("message").and_then(|m| m.as_str()) != Some("no such route")
            && answer.status != StatusCode::METHOD_NOT_ALLOWED;
        assert!(
            routed,
            "{method} {path} is documented but not routed: {answer:?}"
        );
        assert!(
            answer.status.is_success() || answer.json["code"].is_string(),
            "{method} {path}: an error must be JSON: {answer:?}"
        );
    }
    // And what axum answers itself is JSON too.
    let nowhere = app.get("/api/v1/no/such/thing/", ADMIN).await;
    assert_eq!(
        (nowhere.status, nowhere.json["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let not_a_number = app.get("/api/v1/images/images/abc/", ADMIN).await;
    assert_eq!(not_a_number.status, StatusCode::BAD_REQUEST);
    assert!(not_a_number.json["code"].is_string(), "{not_a_number:?}");
    let wrong_method = app
        .send(
            Method::PUT,
            "/api/v1/users/tokens/",
            Some(ADMIN),
            None,
            vec![],
            &[],
        )
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.json["code"], "method_not_allowed");
}
