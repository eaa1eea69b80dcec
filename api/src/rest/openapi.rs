//! The OpenAPI 3.1 document of the REST API, at `/api/v1/openapi.json`. Its schemas are derived
//! (utoipa) from the types that write the answers (`rest::shapes`) and read the bodies (each
//! handler's request types); its operations come from one table here, with the statuses each
//! answers and links from creations to what they made. A snapshot test keeps it from changing
//! unnoticed, another calls every path it lists (so the document and the router cannot drift
//! apart), and the API tests hold every answer they get against its schema: types, required
//! fields, and no field the document does not list.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::shapes;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

/// (method, path under /api/v1, summary, schema of the answer or `None`, body schema or `None`)
pub type Operation = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

/// Every operation, in the order of the document.
pub const OPERATIONS: &[Operation] = &[
    (
        "get",
        "/health",
        "The server and its store answer",
        Some("Health"),
        None,
    ),
    (
        "get",
        "/timesync/",
        "The server's clock",
        Some("TimeSync"),
        None,
    ),
    ("get", "/openapi.json", "This document", None, None),
    (
        "post",
        "/auth/login/",
        "Log in: a session cookie and its CSRF token",
        Some("Caller"),
        Some("Login"),
    ),
    ("post", "/auth/logout/", "End the session", None, None),
    (
        "get",
        "/auth/session/",
        "Who the caller is",
        Some("Caller"),
        None,
    ),
    (
        "get",
        "/users/tokens/",
        "The caller's personal access tokens",
        Some("TokenPage"),
        None,
    ),
    (
        "post",
        "/users/tokens/",
        "Create a token (shown once)",
        Some("CreatedToken"),
        Some("NewToken"),
    ),
    (
        "delete",
        "/users/tokens/{token}/",
        "Revoke a token",
        None,
        None,
    ),
    ("get", "/users/users/", "Accounts", Some("UserPage"), None),
    (
        "post",
        "/users/users/",
        "Create an account (superusers)",
        Some("User"),
        Some("UserInput"),
    ),
    (
        "get",
        "/users/users/{id}/",
        "One account",
        Some("User"),
        None,
    ),
    (
        "patch",
        "/users/users/{id}/",
        "Password, activity, roles",
        Some("User"),
        Some("UserInput"),
    ),
    (
        "delete",
        "/users/users/{id}/",
        "Deactivate an account",
        None,
        None,
    ),
    (
        "get",
        "/users/teams/",
        "The caller's teams",
        Some("TeamPage"),
        None,
    ),
    (
        "post",
        "/users/teams/",
        "Create a team (the caller becomes its admin)",
        Some("Team"),
        Some("NewTeam"),
    ),
    ("get", "/users/teams/{id}/", "One team", Some("Team"), None),
    (
        "patch",
        "/users/teams/{id}/",
        "Correct a team's name or website (its admins)",
        Some("Team"),
        Some("TeamChange"),
    ),
    (
        "delete",
        "/users/teams/{id}/",
        "Delete a team: its sets stay, public and locked, without a team",
        None,
        None,
    ),
    (
        "get",
        "/users/team_membership/",
        "Memberships of the caller's teams",
        Some("MembershipPage"),
        None,
    ),
    (
        "post",
        "/users/team_membership/",
        "Add a member",
        Some("Membership"),
        Some("NewMembership"),
    ),
    (
        "get",
        "/users/team_membership/{id}/",
        "One membership",
        Some("Membership"),
        None,
    ),
    (
        "patch",
        "/users/team_membership/{id}/",
        "Grant or revoke admin",
        Some("Membership"),
        Some("MembershipChange"),
    ),
    (
        "delete",
        "/users/team_membership/{id}/",
        "Leave, or remove a member",
        None,
        None,
    ),
    (
        "get",
        "/administration/products/",
        "Products",
        Some("ProductPage"),
        None,
    ),
    (
        "post",
        "/administration/products/",
        "Create a product",
        Some("Product"),
        Some("NewProduct"),
    ),
    (
        "get",
        "/administration/products/{id}/",
        "One product",
        Some("Product"),
        None,
    ),
    (
        "patch",
        "/administration/products/{id}/",
        "Change a product, its linked sets",
        Some("Product"),
        Some("ProductChange"),
    ),
    (
        "delete",
        "/administration/products/{id}/",
        "Delete a product, its types and their live annotations (the log keeps them)",
        None,
        None,
    ),
    (
        "get",
        "/annotations/annotation_types/",
        "Annotation types",
        Some("AnnotationTypePage"),
        None,
    ),
    (
        "post",
        "/annotations/annotation_types/",
        "Create a type",
        Some("AnnotationType"),
        Some("NewAnnotationType"),
    ),
    (
        "get",
        "/annotations/annotation_types/{id}/",
        "One type",
        Some("AnnotationType"),
        None,
    ),
    (
        "patch",
        "/annotations/annotation_types/{id}/",
        "Change a type; a new vector_type only while its live annotations fit it",
        Some("AnnotationType"),
        Some("AnnotationTypeChange"),
    ),
    (
        "delete",
        "/annotations/annotation_types/{id}/",
        "Delete a type and its live annotations (the log keeps them)",
        None,
        None,
    ),
    (
        "get",
        "/images/image_sets/",
        "Image sets the caller may read",
        Some("ImageSetPage"),
        None,
    ),
    (
        "post",
        "/images/image_sets/",
        "Create an image set",
        Some("ImageSet"),
        Some("NewImageSet"),
    ),
    (
        "get",
        "/images/image_sets/{id}/",
        "One image set",
        Some("ImageSet"),
        None,
    ),
    (
        "patch",
        "/images/image_sets/{id}/",
        "Change an image set",
        Some("ImageSet"),
        Some("ImageSetChange"),
    ),
    (
        "delete",
        "/images/image_sets/{id}/",
        "Delete an image set",
        None,
        None,
    ),
    (
        "put",
        "/images/image_sets/{id}/pin/",
        "Pin a set to the top of the caller's home page (EXACT's pinned_by)",
        Some("SetPin"),
        None,
    ),
    (
        "delete",
        "/images/image_sets/{id}/pin/",
        "Unpin a set",
        None,
        None,
    ),
    (
        "get",
        "/images/images/",
        "Images the caller may read",
        Some("ImagePage"),
        None,
    ),
    (
        "post",
        "/images/images/",
        "Upload images (multipart: image_set, image_type, files, zip archives)",
        Some("ImagePage"),
        None,
    ),
    (
        "get",
        "/images/images/{id}/",
        "One image",
        Some("Image"),
        None,
    ),
    (
        "patch",
        "/images/images/{id}/",
        "Correct what the file claims: name, mpp, objectivePower, time",
        Some("Image"),
        Some("ImageChange"),
    ),
    (
        "delete",
        "/images/images/{id}/",
        "Delete an image",
        None,
        None,
    ),
    (
        "get",
        "/images/images/{id}/thumbnail/",
        "Thumbnail (PNG)",
        None,
        None,
    ),
    (
        "get",
        "/images/images/{id}/slide_information/",
        "Levels, resolution, properties",
        Some("SlideInformation"),
        None,
    ),
    (
        "patch",
        "/images/images/{id}/update_image_cache/",
        "Render a frame's tiles into the server's cache, up to mem_size_mb",
        Some("CacheReport"),
        None,
    ),
    (
        "get",
        "/images/images/{id}/get_patch/",
        "A region at a level (PNG, at most 2048 x 2048)",
        None,
        None,
    ),
    (
        "get",
        "/images/images/{id}/{z}/{frame}/tile/",
        "DeepZoom descriptor",
        None,
        None,
    ),
    (
        "get",
        "/images/images/{id}/{z}/{frame}/tile_files/{level}/{tile}",
        "A DeepZoom tile (COL_ROW.jpeg)",
        None,
        None,
    ),
    (
        "get",
        "/annotations/annotations/",
        "Annotations: EXACT's filters, in_bbox, as_of",
        Some("AnnotationPage"),
        None,
    ),
    (
        "post",
        "/annotations/annotations/",
        "Create one annotation, or a list in one append",
        Some("AnnotationOrList"),
        Some("NewAnnotationOrList"),
    ),
    (
        "delete",
        "/annotations/annotations/multiple_delete/",
        "Delete the annotations of id__in",
        None,
        None,
    ),
    (
        "get",
        "/annotations/annotations/{id}/",
        "One annotation (ETag: its version)",
        Some("Annotation"),
        None,
    ),
    (
        "patch",
        "/annotations/annotations/{id}/",
        "Change an annotation (If-Match)",
        Some("Annotation"),
        Some("AnnotationChange"),
    ),
    (
        "delete",
        "/annotations/annotations/{id}/",
        "Delete an annotation (soft)",
        None,
        None,
    ),
    (
        "get",
        "/annotations/annotations/{id}/history/",
        "Every version: who, when, why, what changed",
        Some("AnnotationHistory"),
        None,
    ),
    (
        "get",
        "/annotations/verifications/",
        "Current verdicts",
        Some("VerificationPage"),
        None,
    ),
    (
        "post",
        "/annotations/verifications/",
        "Accept or reject an annotation",
        Some("Verification"),
        Some("NewVerification"),
    ),
    (
        "get",
        "/annotations/verifications/{id}/",
        "One verdict",
        Some("Verification"),
        None,
    ),
    (
        "patch",
        "/annotations/verifications/{id}/",
        "Change one's own verdict (it gets a new id)",
        Some("Verification"),
        Some("VerificationChange"),
    ),
    (
        "delete",
        "/annotations/verifications/{id}/",
        "Take one's own verdict back (the log keeps it)",
        None,
        None,
    ),
    (
        "get",
        "/annotations/log_image_actions/",
        "The image access log",
        Some("AccessEntryPage"),
        None,
    ),
    (
        "post",
        "/annotations/log_image_actions/",
        "Report opening (1) or closing (2) an image",
        Some("AccessEntry"),
        Some("NewAccessEntry"),
    ),
    (
        "get",
        "/annotations/log_image_actions/{id}/",
        "One entry of the access log",
        Some("AccessEntry"),
        None,
    ),
    (
        "patch",
        "/annotations/log_image_actions/{id}/",
        "Correct an entry's action (its user or a superuser)",
        Some("AccessEntry"),
        Some("AccessEntryChange"),
    ),
    (
        "delete",
        "/annotations/log_image_actions/{id}/",
        "Take an entry out of the access log (the events keep it)",
        None,
        None,
    ),
    (
        "get",
        "/images/set_tags/",
        "Tags: names on image sets, with ids",
        Some("SetTagPage"),
        None,
    ),
    (
        "post",
        "/images/set_tags/",
        "Give image sets a tag",
        Some("SetTag"),
        Some("SetTagInput"),
    ),
    (
        "get",
        "/images/set_tags/{id}/",
        "One tag",
        Some("SetTag"),
        None,
    ),
    (
        "patch",
        "/images/set_tags/{id}/",
        "Rename a tag or move it to other sets",
        Some("SetTag"),
        Some("SetTagInput"),
    ),
    (
        "delete",
        "/images/set_tags/{id}/",
        "Take a tag off every set",
        None,
        None,
    ),
    (
        "get",
        "/images/screening_modes/",
        "Screenings: a user's walk over an image's tiles",
        Some("ScreeningModePage"),
        None,
    ),
    (
        "post",
        "/images/screening_modes/",
        "Start screening an image",
        Some("ScreeningMode"),
        Some("NewScreeningMode"),
    ),
    (
        "get",
        "/images/screening_modes/{id}/",
        "One screening (ETag: its version)",
        Some("ScreeningMode"),
        None,
    ),
    (
        "patch",
        "/images/screening_modes/{id}/",
        "Move on (current_index marks the tile screened) or change the grid",
        Some("ScreeningMode"),
        Some("ScreeningModeChange"),
    ),
    (
        "delete",
        "/images/screening_modes/{id}/",
        "End a screening (its owner or a superuser)",
        None,
        None,
    ),
    (
        "get",
        "/images/set_versions/",
        "Dataset versions: image sets as they stood at a log position",
        Some("SetVersionPage"),
        None,
    ),
    (
        "post",
        "/images/set_versions/",
        "Name image sets as they stand now (or at `position`)",
        Some("SetVersion"),
        Some("NewSetVersion"),
    ),
    (
        "get",
        "/images/set_versions/{id}/",
        "One dataset version",
        Some("SetVersion"),
        None,
    ),
    (
        "get",
        "/annotations/annotation_versions/",
        "The annotations of a version (`version=`) as they were then",
        Some("AnnotationVersionPage"),
        None,
    ),
    (
        "get",
        "/annotations/annotation_versions/{id}/",
        "One annotation as a version holds it",
        Some("AnnotationVersion"),
        None,
    ),
    (
        "get",
        "/annotations/annotation_media_files/",
        "Files attached to annotations",
        Some("MediaFilePage"),
        None,
    ),
    (
        "post",
        "/annotations/annotation_media_files/",
        "Attach files (multipart: annotation, media_file_type, files)",
        Some("MediaFilePage"),
        None,
    ),
    (
        "get",
        "/annotations/annotation_media_files/{id}/",
        "One attached file",
        Some("MediaFile"),
        None,
    ),
    (
        "patch",
        "/annotations/annotation_media_files/{id}/",
        "Rename an attached file",
        Some("MediaFile"),
        Some("MediaFileChange"),
    ),
    (
        "delete",
        "/annotations/annotation_media_files/{id}/",
        "Detach a file",
        None,
        None,
    ),
    (
        "get",
        "/annotations/annotation_media_files/{id}/file/",
        "The attached file's bytes",
        None,
        None,
    ),
    (
        "get",
        "/events/",
        "Live updates of an image set or image (Server-Sent Events)",
        None,
        None,
    ),
];

/// `T`'s schema as derived from its type (utoipa), under `name`, with every schema it refers
/// to under that one's own name.
fn derived<T: ToSchema>(all: &mut Map<String, Value>, name: &str) {
    let to_json = |schema| serde_json::to_value(schema).expect("schemas serialize");
    all.insert(name.to_owned(), to_json(T::schema()));
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    for (nested_name, schema) in nested {
        all.insert(nested_name, to_json(schema));
    }
}

/// DRF's page of `name`s.
fn page(all: &mut Map<String, Value>, name: &str) {
    all.insert(
        format!("{name}Page"),
        json!({"type": "object", "required": ["count", "next", "previous", "results"], "properties": {
            "count": {"type": "integer"},
            "next": {"type": ["string", "null"]},
            "previous": {"type": ["string", "null"]},
            "results": {"type": "array", "items": {"$ref": format!("#/components/schemas/{name}")}},
        }}),
    );
}

/// Every schema of the document: answers from `rest::shapes`, bodies from the handlers'
/// request types, both derived from the Rust types that read and write them.
fn schemas() -> Map<String, Value> {
    use super::catalog::{annotation_types, image_sets, products, teams, users};
    use super::{accounts, annotations, images, media_files, screening, set_tags, versions};
    let mut all = Map::new();
    derived::<shapes::User>(&mut all, "User");
    derived::<shapes::Team>(&mut all, "Team");
    derived::<shapes::Membership>(&mut all, "Membership");
    derived::<shapes::Product>(&mut all, "Product");
    derived::<shapes::AnnotationType>(&mut all, "AnnotationType");
    derived::<shapes::ImageSet>(&mut all, "ImageSet");
    derived::<shapes::Image>(&mut all, "Image");
    derived::<shapes::Annotation<'_>>(&mut all, "Annotation");
    derived::<shapes::Verification>(&mut all, "Verification");
    derived::<shapes::AccessEntry>(&mut all, "AccessEntry");
    derived::<shapes::AnnotationHistory>(&mut all, "AnnotationHistory");
    derived::<shapes::MediaFile>(&mut all, "MediaFile");
    derived::<shapes::Screening>(&mut all, "ScreeningMode");
    derived::<shapes::SetTag>(&mut all, "SetTag");
    derived::<shapes::SetVersion>(&mut all, "SetVersion");
    derived::<shapes::AnnotationVersion>(&mut all, "AnnotationVersion");
    derived::<shapes::Token>(&mut all, "Token");
    for name in [
        "User",
        "Team",
        "Membership",
        "Product",
        "AnnotationType",
        "ImageSet",
        "Image",
        "Annotation",
        "Verification",
        "AccessEntry",
        "MediaFile",
        "ScreeningMode",
        "SetTag",
        "SetVersion",
        "AnnotationVersion",
        "Token",
    ] {
        page(&mut all, name);
    }
    derived::<shapes::CreatedToken>(&mut all, "CreatedToken");

    derived::<accounts::LoginBody>(&mut all, "Login");
    derived::<accounts::NewTokenBody>(&mut all, "NewToken");
    derived::<users::UserBody>(&mut all, "UserInput");
    derived::<teams::NewTeamBody>(&mut all, "NewTeam");
    derived::<teams::TeamChange>(&mut all, "TeamChange");
    derived::<teams::NewMembershipBody>(&mut all, "NewMembership");
    derived::<teams::MembershipChangeBody>(&mut all, "MembershipChange");
    derived::<products::NewProductBody>(&mut all, "NewProduct");
    derived::<products::ProductChangeBody>(&mut all, "ProductChange");
    derived::<annotation_types::NewTypeBody>(&mut all, "NewAnnotationType");
    derived::<annotation_types::TypeFields>(&mut all, "AnnotationTypeChange");
    derived::<image_sets::NewSetBody>(&mut all, "NewImageSet");
    derived::<image_sets::SetFields>(&mut all, "ImageSetChange");
    derived::<images::ImageChange>(&mut all, "ImageChange");
    derived::<annotations::NewAnnotationBody>(&mut all, "NewAnnotation");
    derived::<annotations::AnnotationChangeBody>(&mut all, "AnnotationChange");
    derived::<annotations::NewVerdictBody>(&mut all, "NewVerification");
    derived::<annotations::VerdictChange>(&mut all, "VerificationChange");
    derived::<set_tags::TagBody>(&mut all, "SetTagInput");
    derived::<screening::NewScreeningBody>(&mut all, "NewScreeningMode");
    derived::<screening::ScreeningFields>(&mut all, "ScreeningModeChange");
    derived::<versions::NewVersionBody>(&mut all, "NewSetVersion");
    derived::<media_files::MediaFileChange>(&mut all, "MediaFileChange");
    derived::<annotations::NewAccessBody>(&mut all, "NewAccessEntry");
    derived::<annotations::AccessChange>(&mut all, "AccessEntryChange");
    all.insert(
        "NewAnnotationOrList".into(),
        json!({"oneOf": [
            {"$ref": "#/components/schemas/NewAnnotation"},
            {"type": "array", "items": {"$ref": "#/components/schemas/NewAnnotation"}},
        ]}),
    );
    all.insert(
        "AnnotationOrList".into(),
        json!({"oneOf": [
            {"$ref": "#/components/schemas/Annotation"},
            {"type": "array", "items": {"$ref": "#/components/schemas/Annotation"}},
        ]}),
    );
    derived::<shapes::SetPin>(&mut all, "SetPin");
    derived::<shapes::Caller>(&mut all, "Caller");
    derived::<shapes::TimeSync>(&mut all, "TimeSync");
    derived::<shapes::SlideInformation>(&mut all, "SlideInformation");
    derived::<shapes::CachedLevel>(&mut all, "CachedLevel");
    all.insert(
        "CacheReport".into(),
        json!({"type": "object", "description": "Per level, by its number as text.",
               "additionalProperties": {"$ref": "#/components/schemas/CachedLevel"}}),
    );
    derived::<crate::routes::health::Health>(&mut all, "Health");
    all.insert(
        "Error".into(),
        json!({"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "field": {"type": ["string", "null"]},
        }}),
    );
    // The codes a client may meet, each with its one status (README: "error codes").
    let codes: Vec<&str> = crate::error::Code::ALL.iter().map(|c| c.name()).collect();
    all["Error"]["properties"]["code"]["enum"] = json!(codes);
    all
}

/// Operations whose success is not JSON, with what they answer.
const NOT_JSON: &[(&str, &str)] = &[
    ("/images/images/{id}/thumbnail/", "image/png"),
    ("/images/images/{id}/get_patch/", "image/png"),
    ("/images/images/{id}/{z}/{frame}/tile/", "application/xml"),
    (
        "/images/images/{id}/{z}/{frame}/tile_files/{level}/{tile}",
        "image/jpeg",
    ),
    (
        "/annotations/annotation_media_files/{id}/file/",
        "application/octet-stream",
    ),
    ("/events/", "text/event-stream"),
];

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
/// filter (404), or fail (500); all but the anonymous ones need credentials (401), which are
/// throttled after failures (429); writes may be forbidden (403), clash (409), break a rule
/// (422) or come in a form not taken (415); writes to one thing may find it deleted (410) or
/// changed since `If-Match` (412); bodies may be too large (413). The login refuses a wrong
/// password (401), another origin (403) and too many failures (429). The API tests hold every
/// refusal they meet against this list.
fn error_statuses(method: &str, path: &str) -> Vec<u16> {
    let anonymous = matches!(path, "/openapi.json" | "/timesync/");
    let login = path == "/auth/login/";
    let write = method != "get";
    let one = path.contains('{');
    let mut statuses = vec![400, 404, 500];
    if !anonymous {
        statuses.extend([401, 429]);
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
    statuses.sort_unstable();
    statuses
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, answer, body) in OPERATIONS {
        let mut parameters = Vec::new();
        for part in path.split('/') {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                parameters.push(json!({"name": name, "in": "path", "required": true,
                                       "schema": {"type": "string"}}));
            }
        }
        let ok = if *method == "post" { "201" } else { "200" };
        let mut responses = Map::new();
        let answer_schema = answer.map_or(
            json!({}),
            |a| json!({"$ref": format!("#/components/schemas/{a}")}),
        );
        let media = NOT_JSON
            .iter()
            .find(|(p, _)| p == path)
            .map_or("application/json", |(_, media)| *media);
        let answer_schema = if media.starts_with("image/") || media.ends_with("octet-stream") {
            json!({"type": "string", "format": "binary"})
        } else {
            answer_schema
        };
        let mut success =
            json!({"description": "done", "content": {media: {"schema": answer_schema}}});
        // What a create made can be read, changed and deleted by its id (OpenAPI links).
        if *method == "post" {
            let item = format!("{path}{{id}}/");
            let mut links = Map::new();
            for (verb, name) in [("get", "read"), ("patch", "change"), ("delete", "delete")] {
                if OPERATIONS.iter().any(|(m, p, ..)| *m == verb && *p == item) {
                    links.insert(
                        name.into(),
                        json!({"operationId": operation_id(verb, &item),
                               "parameters": {"id": "$response.body#/id"}}),
                    );
                }
            }
            if !links.is_empty() {
                success["links"] = Value::Object(links);
            }
        }
        responses.insert(
            if *method == "delete" {
                "204".into()
            } else {
                ok.into()
            },
            success,
        );
        for status in error_statuses(method, path) {
            let codes: Vec<String> = crate::error::Code::ALL
                .iter()
                .filter(|c| c.status().as_u16() == status)
                .map(|c| format!("`{}`", c.name()))
                .collect();
            responses.insert(
                status.to_string(),
                json!({"description": format!("refused: {}", codes.join(", ")),
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
        let mut operation = json!({"operationId": operation_id(method, path), "summary": summary,
                                   "parameters": parameters, "responses": responses});
        if let Some(body) = body {
            operation["requestBody"] = json!({"content": {
                "application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}},
                "application/x-www-form-urlencoded": {"schema": {"$ref": format!("#/components/schemas/{body}")}},
                "multipart/form-data": {"schema": {"$ref": format!("#/components/schemas/{body}")}},
            }});
        }
        let entry = paths
            .entry(format!("/api/v1{path}"))
            .or_insert_with(|| json!({}));
        entry[*method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Exact",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "EXACT's REST API (/api/v1), as exact-sync uses it, with history, as_of, in_bbox, ETags and live updates.",
        },
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::sessions::COOKIE},
            },
        },
        "security": [{"basicAuth": []}, {"bearerAuth": []}, {"session": []}],
        "paths": paths,
    })
}
