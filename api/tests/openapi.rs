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

/// What generic tools walk by: each operation has its own id, every link names one of them,
/// each create links to the read of what it made, and every operation lists its refusals
/// with the Error schema (the API tests hold real answers against both).
#[test]
fn operations_have_ids_links_and_refusals_tools_can_follow() {
    let document = document();
    let mut ids = std::collections::BTreeSet::new();
    let mut links = Vec::new();
    let mut creates_linked = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "{id} is used twice");
            let responses = operation["responses"].as_object().unwrap();
            for status in ["400", "404", "500"] {
                assert_eq!(
                    responses[status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
            for response in responses.values() {
                if let Some(found) = response.get("links").and_then(|l| l.as_object()) {
                    links.extend(
                        found
                            .values()
                            .map(|l| l["operationId"].as_str().unwrap().to_owned()),
                    );
                    if method == "post" && found.contains_key("read") {
                        creates_linked += 1;
                    }
                }
            }
        }
    }
    for link in &links {
        assert!(
            ids.contains(link),
            "a link names {link}, which no operation is"
        );
    }
    assert!(
        creates_linked >= 10,
        "only {creates_linked} creates link to a read"
    );
    assert_eq!(
        document["components"]["securitySchemes"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["basicAuth", "bearerAuth", "session"]
    );
}
