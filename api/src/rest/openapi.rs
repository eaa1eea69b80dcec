//! The OpenAPI 3.1 document of the REST API, at `/api/v1/openapi.json`, derived with utoipa:
//! each operation from the `#[utoipa::path]` on its handler (method, path, summary and
//! description from the handler's doc comment, path parameters from its extractors, the types
//! it reads and answers), each schema from the Rust type that reads or writes it. What every
//! operation shares is added here by one rule each: stable operation ids, the three body
//! encodings DRF takes, the refusals from the error table, links from a creation to what it
//! made, and the ways in. A snapshot test keeps the document from changing unnoticed, another
//! calls every operation it lists, and the API tests hold every answer they get against it.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use utoipa::OpenApi;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This document
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, body = Object)))]
async fn openapi_json() -> Json<Value> {
    Json(document())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Exact",
        description = "EXACT's REST API (/api/v1), as exact-sync uses it, with history, as_of, in_bbox, ETags and live updates.",
    ),
    paths(
        crate::routes::health::health,
        super::timesync,
        openapi_json,
        super::accounts::login,
        super::accounts::logout,
        super::accounts::current,
        super::accounts::list_tokens,
        super::accounts::create_token,
        super::accounts::revoke_token,
        super::catalog::users::list_users,
        super::catalog::users::create_user,
        super::catalog::users::get_user,
        super::catalog::users::update_user,
        super::catalog::users::deactivate_user,
        super::catalog::teams::list_teams,
        super::catalog::teams::create_team,
        super::catalog::teams::get_team,
        super::catalog::teams::update_team,
        super::catalog::teams::delete_team,
        super::catalog::teams::list_memberships,
        super::catalog::teams::create_membership,
        super::catalog::teams::get_membership,
        super::catalog::teams::update_membership,
        super::catalog::teams::delete_membership,
        super::catalog::products::list_products,
        super::catalog::products::create_product,
        super::catalog::products::get_product,
        super::catalog::products::update_product,
        super::catalog::products::delete_product,
        super::catalog::export_formats::list_formats,
        super::catalog::export_formats::create_format,
        super::catalog::export_formats::get_format,
        super::catalog::export_formats::update_format,
        super::catalog::export_formats::delete_format,
        super::catalog::export_formats::preview_format,
        super::catalog::annotation_types::list_types,
        super::catalog::annotation_types::create_type,
        super::catalog::annotation_types::get_type,
        super::catalog::annotation_types::update_type,
        super::catalog::annotation_types::delete_type,
        super::catalog::image_sets::list_sets,
        super::catalog::image_sets::create_set,
        super::catalog::image_sets::get_set,
        super::catalog::image_sets::update_set,
        super::catalog::image_sets::delete_set,
        super::catalog::image_sets::pin_set,
        super::catalog::image_sets::unpin_set,
        super::images::list::list_images,
        super::images::receive::upload,
        super::images::list::get_image,
        super::images::change::update_image,
        super::images::change::delete_image,
        super::images::pixels::thumbnail,
        super::images::pixels::slide_information,
        super::images::pixels::update_image_cache,
        super::images::pixels::get_patch,
        super::images::pixels::dzi,
        super::images::pixels::tile,
        super::annotations::list::list_annotations,
        super::annotations::write::create_annotations,
        super::annotations::write::multiple_delete,
        super::annotations::list::get_annotation,
        super::annotations::write::update_annotation,
        super::annotations::write::delete_annotation,
        super::annotations::list::history,
        super::annotations::verifications::list_verifications,
        super::annotations::verifications::create_verification,
        super::annotations::verifications::get_verification,
        super::annotations::verifications::update_verification,
        super::annotations::verifications::delete_verification,
        super::annotations::access_log::list_access,
        super::annotations::access_log::create_access,
        super::annotations::access_log::get_access,
        super::annotations::access_log::update_access,
        super::annotations::access_log::delete_access,
        super::set_tags::list_tags,
        super::set_tags::create_tag,
        super::set_tags::get_tag,
        super::set_tags::update_tag,
        super::set_tags::delete_tag,
        super::screening::list_screenings,
        super::screening::create_screening,
        super::screening::get_screening,
        super::screening::update_screening,
        super::screening::delete_screening,
        super::exports::export_set,
        super::exports::diff_set,
        super::imports::import_into_set,
        super::versions::list_set_versions,
        super::versions::create_set_version,
        super::versions::get_set_version,
        super::versions::list_annotation_versions,
        super::versions::get_annotation_version,
        super::media_files::list_media_files,
        super::media_files::upload_media_files,
        super::media_files::get_media_file,
        super::media_files::rename_media_file,
        super::media_files::delete_media_file,
        super::media_files::download_media_file,
        super::events::events,
    )
)]
struct Derived;

/// Every operation of the document as (method, path under `/api/v1`), in the document's order.
pub fn operations() -> Vec<(String, String)> {
    let document = document();
    let mut all = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            let path = path.strip_prefix("/api/v1").unwrap_or(path);
            all.push((method.clone(), path.to_owned()));
        }
    }
    all
}

/// A stable name for an operation, for tools and for links: `get_users_teams_id`.
pub fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .split('/')
        .map(|part| part.trim_start_matches('{').trim_end_matches('}'))
        .filter(|part| !part.is_empty())
        .collect();
    format!("{method}_{}", words.join("_")).replace(['.', '-'], "_")
}

/// The statuses an operation answers besides its success, from what it is: every one may
/// meet a request it cannot read (400), name something that is not there, in its path or a
/// filter (404), or fail (500); all that read the database may find it out of reach (503, with
/// `Retry-After`); all but the anonymous ones need credentials (401), which are
/// throttled after failures (429); writes may be forbidden (403), clash (409), break a rule
/// (422) or come in a form not taken (415); writes to one thing may find it deleted (410) or
/// changed since `If-Match` (412); bodies may be too large (413), and uploads may find the disk
/// full (507). The login refuses a wrong
/// password (401), another origin (403) and too many failures (429). The API tests hold every
/// refusal they meet against this list.
fn error_statuses(method: &str, path: &str) -> Vec<u16> {
    // Routes that store the files they are sent: a full disk refuses them (507).
    const UPLOADS: &[&str] = &["/images/images/", "/annotations/annotation_media_files/"];
    let anonymous = matches!(path, "/openapi.json" | "/timesync/");
    let login = path == "/auth/login/";
    let write = method != "get";
    let one = path.contains('{');
    let mut statuses = vec![400, 404, 500];
    if !anonymous {
        statuses.extend([401, 429, 503]);
    }
    if write && !anonymous {
        statuses.push(403);
    }
    if write && !anonymous && !login {
        statuses.extend([409, 415, 422]);
    }
    if write && one {
        statuses.extend([410, 412]);
    }
    if method == "post" || method == "patch" || method == "put" {
        statuses.push(413);
    }
    if method == "post" && UPLOADS.contains(&path) {
        statuses.push(507);
    }
    statuses.sort_unstable();
    statuses
}

pub fn document() -> Value {
    let mut document = serde_json::to_value(Derived::openapi()).expect("the document serializes");
    let derived = std::mem::take(&mut document["paths"]);
    let mut paths = Map::new();
    for (path, item) in derived.as_object().into_iter().flatten() {
        let mut item = item.clone();
        for (method, operation) in item.as_object_mut().into_iter().flatten() {
            shared_conventions(method, path, operation);
            links_from_creation(method, path, operation, &derived);
        }
        // The REST router is nested at /api/v1.
        paths.insert(format!("/api/v1{path}"), item);
    }
    document["paths"] = Value::Object(paths);
    document["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    if let Some(info) = document["info"].as_object_mut() {
        info.remove("license");
    }
    document["components"]["schemas"]["Error"] = error_schema();
    document["components"]["securitySchemes"] = json!({
        "basicAuth": {"type": "http", "scheme": "basic"},
        "bearerAuth": {"type": "http", "scheme": "bearer"},
        "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::sessions::COOKIE},
    });
    document["security"] = json!([{"basicAuth": []}, {"bearerAuth": []}, {"session": []}]);
    document
}

/// What every operation has by the same rule: a stable id, a description of its success, the
/// body encodings DRF takes (`Body<T>` reads JSON, form and multipart alike), and the refusals
/// of [`error_statuses`] with the codes behind each.
fn shared_conventions(method: &str, path: &str, operation: &mut Value) {
    operation["operationId"] = json!(operation_id(method, path));
    if let Some(operation) = operation.as_object_mut() {
        operation.remove("tags"); // utoipa's are module paths, an implementation detail
    }
    for response in operation["responses"]
        .as_object_mut()
        .into_iter()
        .flat_map(|r| r.values_mut())
    {
        if response["description"].as_str().is_none_or(str::is_empty) {
            response["description"] = json!("done");
        }
    }
    if method == "patch" {
        // A change sends only what changes; an empty one changes nothing.
        if let Some(body) = operation["requestBody"].as_object_mut() {
            body.remove("required");
        }
    }
    if let Some(json_body) = operation["requestBody"]["content"]["application/json"].get("schema") {
        let schema = json_body.clone();
        for media in ["application/x-www-form-urlencoded", "multipart/form-data"] {
            operation["requestBody"]["content"][media] = json!({"schema": schema});
        }
    }
    for status in error_statuses(method, path) {
        let codes: Vec<String> = crate::error::Code::ALL
            .iter()
            .filter(|c| c.status().as_u16() == status)
            .map(|c| format!("`{}`", c.name()))
            .collect();
        operation["responses"][status.to_string()] = json!({
            "description": format!("refused: {}", codes.join(", ")),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        });
    }
}

/// What a creation made can be read, changed and deleted by its id (OpenAPI links).
fn links_from_creation(method: &str, path: &str, operation: &mut Value, paths: &Value) {
    if method != "post" {
        return;
    }
    let item = format!("{path}{{id}}/");
    let mut links = Map::new();
    for (verb, name) in [("get", "read"), ("patch", "change"), ("delete", "delete")] {
        if paths[&item].get(verb).is_some() {
            links.insert(
                name.into(),
                json!({"operationId": operation_id(verb, &item),
                       "parameters": {"id": "$response.body#/id"}}),
            );
        }
    }
    if links.is_empty() {
        return;
    }
    for (status, response) in operation["responses"].as_object_mut().into_iter().flatten() {
        if status.starts_with('2') {
            response["links"] = Value::Object(links.clone());
        }
    }
}

/// The answer of every refusal, with the codes a client may meet (README: "error codes").
fn error_schema() -> Value {
    let codes: Vec<&str> = crate::error::Code::ALL.iter().map(|c| c.name()).collect();
    json!({"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "enum": codes},
        "message": {"type": "string"},
        "field": {"type": ["string", "null"]},
    }})
}
