//! The OpenAPI document: its snapshot (a change to the API shows in review), every path it
//! lists is a route of the server (the document and the router cannot drift apart), and every
//! operation answers a success and a refusal the document describes.

mod support;

use axum::http::{Method, StatusCode};
use exact_api::rest::openapi::{document, operations};
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
    for (method, path) in operations() {
        if path == "/events/" || path == "/auth/logout/" {
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
            // Each `{name}` of the path is a parameter, typed from the handler's extractor.
            let named: Vec<&str> = path
                .split('/')
                .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let documented: Vec<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path" && p["schema"]["type"].is_string())
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(documented, named, "{method} {path}: path parameters");
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

/// The operations a walk met, as (method, template, success or refusal).
type Met = std::collections::BTreeSet<(String, String, bool)>;

/// Sends `method path` as `who` with a JSON `body` (none for `Value::Null`) and notes which
/// documented operation it met and how. `TestApp::send` holds every success against the
/// operation's schema and every refusal against its listed statuses.
async fn call(
    app: &TestApp,
    met: &mut Met,
    method: Method,
    path: &str,
    who: Option<(&str, &str)>,
    body: serde_json::Value,
    headers: &[(&str, &str)],
) -> support::Answer {
    let (content_type, bytes) = if body.is_null() {
        (None, vec![])
    } else {
        (Some("application/json"), serde_json::to_vec(&body).unwrap())
    };
    let answer = app
        .send(method.clone(), path, who, content_type, bytes, headers)
        .await;
    let name = method.as_str().to_ascii_lowercase();
    let (template, _) = support::operation(&name, path)
        .unwrap_or_else(|| panic!("{method} {path} is no documented operation"));
    met.insert((name, template, answer.status.is_success()));
    answer
}

/// Every operation of the document answers a success and a refusal that the document
/// describes (the success's body fits the operation's schema: its types, its required fields,
/// no field it does not list; the refusal's status is one the operation lists). One walk
/// through everything EXACT's clients do, then every operation again without credentials.
#[tokio::test]
async fn every_operation_answers_a_success_and_a_refusal_the_document_describes() {
    use serde_json::json;
    let app = TestApp::new(TestDb::sqlite()).await;
    let mut met = Met::new();
    let m = &mut met;
    let admin = Some(ADMIN);
    let id = |answer: &support::Answer| {
        answer.json["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{answer:?}"))
    };
    macro_rules! ok {
        ($method:ident, $path:expr) => {
            ok!($method, $path, serde_json::Value::Null)
        };
        ($method:ident, $path:expr, $body:expr) => {{
            let path: String = $path;
            let answer = call(&app, m, Method::$method, &path, admin, $body, &[]).await;
            assert!(
                answer.status.is_success(),
                "{} {path}: {answer:?}",
                stringify!($method)
            );
            answer
        }};
    }

    ok!(GET, "/api/v1/health".into());
    ok!(GET, "/api/v1/timesync/".into());
    ok!(GET, "/api/v1/openapi.json".into());
    ok!(GET, "/api/v1/auth/session/".into());
    let login = call(
        &app,
        m,
        Method::POST,
        "/api/v1/auth/login/",
        None,
        json!({"username": ADMIN.0, "password": ADMIN.1}),
        &[],
    )
    .await;
    assert!(login.status.is_success(), "{login:?}");
    let cookie = login.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = login.json["csrf_token"].as_str().unwrap().to_owned();
    // A logout whose CSRF token is not the session's is refused (and ends nothing).
    let forged_token = "0".repeat(48);
    let forged = [
        ("cookie", cookie.as_str()),
        ("x-csrftoken", forged_token.as_str()),
    ];
    let refused = call(
        &app,
        m,
        Method::POST,
        "/api/v1/auth/logout/",
        None,
        serde_json::Value::Null,
        &forged,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    let session = [("cookie", cookie.as_str()), ("x-csrftoken", csrf.as_str())];
    let out = call(
        &app,
        m,
        Method::POST,
        "/api/v1/auth/logout/",
        None,
        serde_json::Value::Null,
        &session,
    )
    .await;
    assert!(out.status.is_success(), "{out:?}");

    let token = ok!(
        POST,
        "/api/v1/users/tokens/".into(),
        json!({"name": "walk"})
    );
    ok!(GET, "/api/v1/users/tokens/".into());
    ok!(
        DELETE,
        format!(
            "/api/v1/users/tokens/{}/",
            token.json["id"].as_str().unwrap()
        )
    );

    let bob = id(&ok!(
        POST,
        "/api/v1/users/users/".into(),
        json!({"username": "bob", "password": "pw-bob"})
    ));
    let carl = id(&ok!(
        POST,
        "/api/v1/users/users/".into(),
        json!({"username": "carl"})
    ));
    ok!(GET, "/api/v1/users/users/".into());
    ok!(GET, format!("/api/v1/users/users/{bob}/"));
    ok!(
        PATCH,
        format!("/api/v1/users/users/{bob}/"),
        json!({"is_staff": true})
    );
    ok!(DELETE, format!("/api/v1/users/users/{carl}/"));

    let team = id(&ok!(
        POST,
        "/api/v1/users/teams/".into(),
        json!({"name": "Walk"})
    ));
    let other_team = id(&ok!(
        POST,
        "/api/v1/users/teams/".into(),
        json!({"name": "Gone"})
    ));
    ok!(GET, "/api/v1/users/teams/".into());
    ok!(GET, format!("/api/v1/users/teams/{team}/"));
    ok!(
        PATCH,
        format!("/api/v1/users/teams/{team}/"),
        json!({"website": "https://example.org"})
    );
    ok!(DELETE, format!("/api/v1/users/teams/{other_team}/"));
    let membership = id(&ok!(
        POST,
        "/api/v1/users/team_membership/".into(),
        json!({"team": team, "user": bob})
    ));
    ok!(GET, "/api/v1/users/team_membership/".into());
    ok!(GET, format!("/api/v1/users/team_membership/{membership}/"));
    ok!(
        PATCH,
        format!("/api/v1/users/team_membership/{membership}/"),
        json!({"is_admin": true})
    );
    ok!(
        DELETE,
        format!("/api/v1/users/team_membership/{membership}/")
    );

    let set = id(&ok!(
        POST,
        "/api/v1/images/image_sets/".into(),
        json!({"team": team, "name": "Walk set"})
    ));
    let other_set = id(&ok!(
        POST,
        "/api/v1/images/image_sets/".into(),
        json!({"team": team, "name": "Gone set"})
    ));
    ok!(GET, "/api/v1/images/image_sets/".into());
    ok!(GET, format!("/api/v1/images/image_sets/{set}/"));
    ok!(
        PATCH,
        format!("/api/v1/images/image_sets/{set}/"),
        json!({"description": "walked"})
    );
    ok!(PUT, format!("/api/v1/images/image_sets/{set}/pin/"));
    ok!(DELETE, format!("/api/v1/images/image_sets/{set}/pin/"));
    ok!(DELETE, format!("/api/v1/images/image_sets/{other_set}/"));

    let product = id(&ok!(
        POST,
        "/api/v1/administration/products/".into(),
        json!({"name": "Walk", "team": team, "imagesets": [set]})
    ));
    let other_product = id(&ok!(
        POST,
        "/api/v1/administration/products/".into(),
        json!({"name": "Gone", "team": team})
    ));
    ok!(GET, "/api/v1/administration/products/".into());
    ok!(GET, format!("/api/v1/administration/products/{product}/"));
    ok!(
        PATCH,
        format!("/api/v1/administration/products/{product}/"),
        json!({"description": "walked"})
    );
    ok!(
        DELETE,
        format!("/api/v1/administration/products/{other_product}/")
    );
    let format = id(&ok!(
        POST,
        "/api/v1/administration/export_formats/".into(),
        json!({"name": "Walk format", "team": team})
    ));
    ok!(GET, "/api/v1/administration/export_formats/".into());
    ok!(
        GET,
        format!("/api/v1/administration/export_formats/{format}/")
    );
    ok!(
        PATCH,
        format!("/api/v1/administration/export_formats/{format}/"),
        json!({"annotation_format": "%%type"})
    );
    ok!(
        PATCH,
        format!("/api/v1/administration/export_formats/{format}/"),
        json!({"public": true})
    );
    ok!(
        POST,
        "/api/v1/administration/export_formats/preview/".into(),
        json!({"image_set": set, "format": format})
    );
    ok!(
        DELETE,
        format!("/api/v1/administration/export_formats/{format}/")
    );
    let kind = id(&ok!(
        POST,
        "/api/v1/annotations/annotation_types/".into(),
        json!({"product": product, "name": "cell", "vector_type": 1})
    ));
    let other_kind = id(&ok!(
        POST,
        "/api/v1/annotations/annotation_types/".into(),
        json!({"product": product, "name": "gone", "vector_type": 1})
    ));
    ok!(GET, "/api/v1/annotations/annotation_types/".into());
    ok!(GET, format!("/api/v1/annotations/annotation_types/{kind}/"));
    ok!(
        PATCH,
        format!("/api/v1/annotations/annotation_types/{kind}/"),
        json!({"color_code": "#00ff00"})
    );
    ok!(
        DELETE,
        format!("/api/v1/annotations/annotation_types/{other_kind}/")
    );

    let (png, other_png) = (support::png(64, 48), support::png(32, 24));
    let (content_type, body) = support::multipart(
        &[("image_set", &set.to_string())],
        &[
            ("file_path", "walk.png", &png),
            ("file_path", "gone.png", &other_png),
        ],
    );
    let uploaded = call_raw(
        &app,
        m,
        Method::POST,
        "/api/v1/images/images/",
        &content_type,
        body,
    )
    .await;
    let images: Vec<i64> = uploaded.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    let (image, other_image) = (images[0], images[1]);
    ok!(GET, "/api/v1/images/images/".into());
    ok!(GET, format!("/api/v1/images/images/{image}/"));
    ok!(
        PATCH,
        format!("/api/v1/images/images/{image}/"),
        json!({"objectivePower": 20})
    );
    ok!(GET, format!("/api/v1/images/images/{image}/thumbnail/"));
    ok!(
        GET,
        format!("/api/v1/images/images/{image}/slide_information/")
    );
    ok!(
        PATCH,
        format!("/api/v1/images/images/{image}/update_image_cache/"),
        json!({"mem_size_mb": 1})
    );
    ok!(
        GET,
        format!("/api/v1/images/images/{image}/get_patch/?x=0&y=0&width=8&height=8")
    );
    ok!(GET, format!("/api/v1/images/images/{image}/1/1/tile/"));
    ok!(
        GET,
        format!("/api/v1/images/images/{image}/1/1/tile_files/0/0_0.jpeg")
    );
    ok!(DELETE, format!("/api/v1/images/images/{other_image}/"));
    ok!(
        GET,
        format!("/api/v1/images/image_sets/{set}/export/?format=csv")
    );
    ok!(GET, format!("/api/v1/images/image_sets/{set}/diff/?from=1"));

    let new_box = |x: i64| json!({"image": image, "annotation_type": kind, "vector": {"x1": x, "y1": 1, "x2": x + 8, "y2": 9}});
    let annotation = id(&ok!(
        POST,
        "/api/v1/annotations/annotations/".into(),
        new_box(1)
    ));
    let gone = id(&ok!(
        POST,
        "/api/v1/annotations/annotations/".into(),
        new_box(20)
    ));
    let gone_too = id(&ok!(
        POST,
        "/api/v1/annotations/annotations/".into(),
        new_box(30)
    ));
    ok!(
        GET,
        format!("/api/v1/annotations/annotations/?image={image}")
    );
    ok!(
        GET,
        format!("/api/v1/annotations/annotations/{annotation}/")
    );
    ok!(
        PATCH,
        format!("/api/v1/annotations/annotations/{annotation}/"),
        json!({"description": "walked"})
    );
    ok!(
        GET,
        format!("/api/v1/annotations/annotations/{annotation}/history/")
    );
    ok!(DELETE, format!("/api/v1/annotations/annotations/{gone}/"));
    ok!(
        DELETE,
        format!("/api/v1/annotations/annotations/multiple_delete/?id__in={gone_too}")
    );

    let verdict = id(&ok!(
        POST,
        "/api/v1/annotations/verifications/".into(),
        json!({"annotation": annotation, "verified": true})
    ));
    ok!(GET, "/api/v1/annotations/verifications/".into());
    ok!(GET, format!("/api/v1/annotations/verifications/{verdict}/"));
    let verdict = id(&ok!(
        PATCH,
        format!("/api/v1/annotations/verifications/{verdict}/"),
        json!({"verified": false})
    ));
    ok!(
        DELETE,
        format!("/api/v1/annotations/verifications/{verdict}/")
    );

    let entry = id(&ok!(
        POST,
        "/api/v1/annotations/log_image_actions/".into(),
        json!({"image": image, "action": 1})
    ));
    ok!(GET, "/api/v1/annotations/log_image_actions/".into());
    ok!(
        GET,
        format!("/api/v1/annotations/log_image_actions/{entry}/")
    );
    let entry = id(&ok!(
        PATCH,
        format!("/api/v1/annotations/log_image_actions/{entry}/"),
        json!({"action": 2})
    ));
    ok!(
        DELETE,
        format!("/api/v1/annotations/log_image_actions/{entry}/")
    );

    let tag = id(&ok!(
        POST,
        "/api/v1/images/set_tags/".into(),
        json!({"name": "walked", "imagesets": [set]})
    ));
    ok!(GET, "/api/v1/images/set_tags/".into());
    ok!(GET, format!("/api/v1/images/set_tags/{tag}/"));
    let tag = id(&ok!(
        PATCH,
        format!("/api/v1/images/set_tags/{tag}/"),
        json!({"name": "walked-2"})
    ));
    ok!(DELETE, format!("/api/v1/images/set_tags/{tag}/"));

    let screening = id(&ok!(
        POST,
        "/api/v1/images/screening_modes/".into(),
        json!({"image": image, "x_steps": 2, "y_steps": 2})
    ));
    ok!(GET, "/api/v1/images/screening_modes/".into());
    ok!(GET, format!("/api/v1/images/screening_modes/{screening}/"));
    ok!(
        PATCH,
        format!("/api/v1/images/screening_modes/{screening}/"),
        json!({"current_index": 1})
    );
    ok!(
        DELETE,
        format!("/api/v1/images/screening_modes/{screening}/")
    );

    let version = id(&ok!(
        POST,
        "/api/v1/images/set_versions/".into(),
        json!({"name": "v1", "imagesets": [set]})
    ));
    ok!(GET, "/api/v1/images/set_versions/".into());
    ok!(GET, format!("/api/v1/images/set_versions/{version}/"));
    let rows = ok!(
        GET,
        format!("/api/v1/annotations/annotation_versions/?version={version}")
    );
    let row = rows.json["results"][0]["id"].as_i64().unwrap();
    ok!(
        GET,
        format!("/api/v1/annotations/annotation_versions/{row}/")
    );

    let (content_type, body) = support::multipart(
        &[("annotation", &annotation.to_string())],
        &[("file", "note.txt", b"walked")],
    );
    let attached = call_raw(
        &app,
        m,
        Method::POST,
        "/api/v1/annotations/annotation_media_files/",
        &content_type,
        body,
    )
    .await;
    let media = attached.json["results"][0]["id"].as_i64().unwrap();
    // EXACT's default export of the set, imported back: changes nothing, answers its report.
    let (content_type, body) = support::multipart(&[], &[("file", "labels.txt", b"\n")]);
    call_raw(
        &app,
        m,
        Method::POST,
        &format!("/api/v1/images/image_sets/{set}/import/?format=exact"),
        &content_type,
        body,
    )
    .await;
    ok!(GET, "/api/v1/annotations/annotation_media_files/".into());
    ok!(
        GET,
        format!("/api/v1/annotations/annotation_media_files/{media}/")
    );
    ok!(
        PATCH,
        format!("/api/v1/annotations/annotation_media_files/{media}/"),
        json!({"name": "renamed.txt"})
    );
    ok!(
        GET,
        format!("/api/v1/annotations/annotation_media_files/{media}/file/")
    );
    ok!(
        DELETE,
        format!("/api/v1/annotations/annotation_media_files/{media}/")
    );

    // Refusals: every operation again, without credentials (the login with nothing to log in
    // with); ids of things that exist, so that the refusal is the credentials'.
    for (method, template) in operations() {
        let concrete = template
            .replace("{id}", &image.to_string())
            .replace("{token}", "00000000-0000-0000-0000-000000000000")
            .replace("{z}", "1")
            .replace("{frame}", "1")
            .replace("{level}", "0")
            .replace("{tile}", "0_0.jpeg");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = if method == Method::GET || method == Method::DELETE {
            serde_json::Value::Null
        } else {
            json!({})
        };
        call(
            &app,
            m,
            method,
            &format!("/api/v1{concrete}"),
            None,
            body,
            &[],
        )
        .await;
    }

    // What the walk cannot meet, and why.
    let cannot = [
        (
            "get",
            "/events/",
            true,
            "a stream that does not end: rest.rs reads it over a socket",
        ),
        (
            "get",
            "/health",
            false,
            "anonymous and reads nothing of the request",
        ),
        (
            "get",
            "/timesync/",
            false,
            "anonymous and reads nothing of the request",
        ),
        (
            "get",
            "/openapi.json",
            false,
            "anonymous and reads nothing of the request",
        ),
    ];
    let mut unmet = Vec::new();
    for (method, template) in operations() {
        for success in [true, false] {
            let excused = cannot
                .iter()
                .any(|(m, t, s, _)| *m == method && *t == template && *s == success);
            if !excused && !met.contains(&(method.clone(), template.clone(), success)) {
                unmet.push(format!(
                    "{method} {template}: no {}",
                    if success { "success" } else { "refusal" }
                ));
            }
        }
    }
    assert!(
        unmet.is_empty(),
        "operations the walk did not meet:\n{}",
        unmet.join("\n")
    );
}

/// A multipart POST as the admin that must succeed, noted like [`call`].
async fn call_raw(
    app: &TestApp,
    met: &mut Met,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> support::Answer {
    let answer = app
        .send(
            method.clone(),
            path,
            Some(ADMIN),
            Some(content_type),
            body,
            &[],
        )
        .await;
    assert!(answer.status.is_success(), "{method} {path}: {answer:?}");
    let name = method.as_str().to_ascii_lowercase();
    let (template, _) = support::operation(&name, path).unwrap();
    met.insert((name, template, true));
    answer
}
