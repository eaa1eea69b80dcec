//! `TestApp`: the whole router over a temporary store (either backend) and data folder,
//! called in-process with real HTTP requests, and the helpers the REST tests share.
#![allow(dead_code)]

pub mod served;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use exact_api::{app, AppState, Config};
use exact_store::testing::TestDb;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const ADMIN: (&str, &str) = ("exact", "admin-password");

pub struct TestApp {
    pub db: TestDb,
    pub state: AppState,
    pub router: Router,
    pub data: tempfile::TempDir,
}

/// A response: status, headers and the body (JSON when it is JSON, else as a string; the raw
/// bytes too).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.json)
    }
}

pub fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

impl TestApp {
    pub async fn new(db: TestDb) -> Self {
        Self::with_config(db, |_| {}).await
    }

    pub async fn with_config(db: TestDb, adjust: impl FnOnce(&mut Config)) -> Self {
        let store = db
            .open_with_options(exact_store::OpenOptions {
                clock: db.clock.clone(),
                projections: exact_projections::all(),
                hot_streams: exact_projections::hot_streams(),
                ..exact_store::OpenOptions::default()
            })
            .await
            .expect("open the store");
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::new(data.path().to_owned());
        adjust(&mut config);
        let state = AppState::open(store, &db.url, config).await.unwrap();
        state.ensure_admin(Some(ADMIN.1.to_owned())).await.unwrap();
        state.commands.ensure_default_format().await.unwrap();
        let router = app(state.clone());
        Self {
            db,
            state,
            router,
            data,
        }
    }

    pub async fn position(&self) -> i64 {
        self.state.store.last_position().await.unwrap()
    }

    /// Sends a request as `who` (user, password), from 10.0.0.1.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        who: Option<(&str, &str)>,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let method_name = method.as_str().to_ascii_lowercase();
        let mut request = Request::builder().method(method).uri(path);
        if let Some((user, password)) = who {
            request = request.header(header::AUTHORIZATION, basic(user, password));
        }
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(Body::from(body)).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5000))));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        // Every success of every test holds the API document: the route is documented and
        // what it answers has the types its schema says.
        if status.is_success() && path.starts_with("/api/v1/") {
            conforms(&method_name, path, status, &json);
        }
        // And every refusal is one the document says the operation may answer.
        if (status.is_client_error() || status.is_server_error()) && path.starts_with("/api/v1/") {
            documented_refusal(&method_name, path, status);
        }
        // Every error of every test holds the one table: its code is listed, with this status.
        if let Some(code) = json.get("code").and_then(Value::as_str) {
            if status.is_client_error() || status.is_server_error() {
                let listed = exact_api::error::Code::named(code)
                    .unwrap_or_else(|| panic!("{path}: code {code:?} is not in the table"));
                assert_eq!(
                    listed.status(),
                    status,
                    "{path}: {code} answered with {status}"
                );
            }
        }
        Answer {
            status,
            headers,
            json,
            bytes,
        }
    }

    pub async fn get(&self, path: &str, who: (&str, &str)) -> Answer {
        self.send(Method::GET, path, Some(who), None, vec![], &[])
            .await
    }

    pub async fn delete(&self, path: &str, who: (&str, &str)) -> Answer {
        self.send(Method::DELETE, path, Some(who), None, vec![], &[])
            .await
    }

    pub async fn post(&self, path: &str, who: (&str, &str), body: Value) -> Answer {
        self.json(Method::POST, path, who, body).await
    }

    pub async fn patch(&self, path: &str, who: (&str, &str), body: Value) -> Answer {
        self.json(Method::PATCH, path, who, body).await
    }

    pub async fn json(&self, method: Method, path: &str, who: (&str, &str), body: Value) -> Answer {
        self.send(
            method,
            path,
            Some(who),
            Some("application/json"),
            serde_json::to_vec(&body).unwrap(),
            &[],
        )
        .await
    }

    /// Logs `who` in as a browser does; returns the `exact_session=...` cookie pair.
    pub async fn session(&self, who: (&str, &str)) -> String {
        let answer = self
            .send(
                Method::POST,
                "/api/v1/auth/login/",
                None,
                Some("application/x-www-form-urlencoded"),
                format!("username={}&password={}", who.0, who.1).into_bytes(),
                &[],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let cookie = answer.headers["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }

    /// Creates an account `name` (password `pw-NAME`) as the admin; returns its id.
    pub async fn user(&self, name: &str) -> i64 {
        let answer = self
            .post(
                "/api/v1/users/users/",
                ADMIN,
                json!({"username": name, "password": format!("pw-{name}")}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        answer.json["id"].as_i64().unwrap()
    }

    /// Posts files (field name, file name, bytes) and fields as multipart form data to the
    /// image upload.
    pub async fn upload(
        &self,
        who: (&str, &str),
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> Answer {
        self.multipart("/api/v1/images/images/", who, fields, files)
            .await
    }

    /// Posts files (field name, file name, bytes) and fields as multipart form data.
    pub async fn multipart(
        &self,
        path: &str,
        who: (&str, &str),
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> Answer {
        let (content_type, body) = multipart(fields, files);
        self.send(
            Method::POST,
            path,
            Some(who),
            Some(&content_type),
            body,
            &[],
        )
        .await
    }
}

pub fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "exact-test-boundary-7d9f";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    for (name, file_name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A PNG of `w` × `h` with a gradient, as bytes.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// A team (owned by `who`) with a product, a set linked to it and a type of `vector_type`.
pub struct Project {
    pub team: i64,
    pub product: i64,
    pub set: i64,
    pub annotation_type: i64,
}

pub async fn project(app: &TestApp, who: (&str, &str), name: &str, vector_type: i64) -> Project {
    let team = app
        .post("/api/v1/users/teams/", who, json!({"name": name}))
        .await;
    assert_eq!(team.status, StatusCode::CREATED, "{team:?}");
    let team = team.json["id"].as_i64().unwrap();
    let set = app
        .post(
            "/api/v1/images/image_sets/",
            who,
            json!({"name": format!("{name} set"), "team": team}),
        )
        .await;
    assert_eq!(set.status, StatusCode::CREATED, "{set:?}");
    let set = set.json["id"].as_i64().unwrap();
    let product = app
        .post(
            "/api/v1/administration/products/",
            who,
            json!({"name": format!("{name} product"), "team": team, "imagesets": [set]}),
        )
        .await;
    assert_eq!(product.status, StatusCode::CREATED, "{product:?}");
    let product = product.json["id"].as_i64().unwrap();
    let annotation_type = app
        .post(
            "/api/v1/annotations/annotation_types/",
            who,
            json!({"name": "cell", "product": product, "vector_type": vector_type}),
        )
        .await;
    assert_eq!(
        annotation_type.status,
        StatusCode::CREATED,
        "{annotation_type:?}"
    );
    Project {
        team,
        product,
        set,
        annotation_type: annotation_type.json["id"].as_i64().unwrap(),
    }
}

/// Uploads a PNG into `set`; returns the image id.
pub async fn image(app: &TestApp, who: (&str, &str), set: i64, name: &str, w: u32, h: u32) -> i64 {
    let answer = app
        .upload(
            who,
            &[("image_set", &set.to_string())],
            &[("file_path", name, &png(w, h))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    answer.json["results"][0]["id"].as_i64().unwrap()
}

/// Adds `user` to `team` as `who` (one of its admins).
pub async fn add_member(app: &TestApp, who: (&str, &str), team: i64, user: i64) {
    let answer = app
        .post(
            "/api/v1/users/team_membership/",
            who,
            json!({"team": team, "user": user}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
}

/// Creates a small box of `annotation_type` on `image`; returns the annotation's id.
pub async fn box_annotation(
    app: &TestApp,
    who: (&str, &str),
    image: i64,
    annotation_type: i64,
) -> i64 {
    let answer = app
        .post(
            "/api/v1/annotations/annotations/",
            who,
            json!({"image": image, "annotation_type": annotation_type,
                   "vector": {"x1": 1, "y1": 1, "x2": 9, "y2": 9}}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    answer.json["id"].as_i64().unwrap()
}

/// The ids of a list's results (the answer must be a 200).
pub fn ids_of(answer: &Answer) -> Vec<i64> {
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    answer.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

/// The API document, built once per test binary (every answer of every test is held to it).
fn document() -> &'static Value {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(exact_api::rest::openapi::document)
}

/// The operation `method path` is, if the document has it, as (its path template under
/// `/api/v1`, its description): a literal route (`multiple_delete/`) before a template
/// (`{id}/`).
pub fn operation(method: &str, path: &str) -> Option<(String, &'static Value)> {
    let route = path
        .split('?')
        .next()
        .unwrap_or(path)
        .trim_start_matches("/api/v1");
    let same = |template: &str| {
        let (a, b): (Vec<&str>, Vec<&str>) =
            (template.split('/').collect(), route.split('/').collect());
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(t, r)| t == r || (t.starts_with('{') && t.ends_with('}')))
    };
    document()["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(template, item)| Some((template.strip_prefix("/api/v1")?, item.get(method)?)))
        .filter(|(template, _)| same(template))
        .min_by_key(|(template, _)| template.matches('{').count())
        .map(|(template, operation)| (template.to_owned(), operation))
}

/// Holds a success of `method path` against the OpenAPI document: the route is one of its
/// operations, the status is one it lists, and every field the answer has has the type the
/// operation's schema gives it (`expand=` answers replace ids by objects on purpose and are
/// left out; streams too).
fn conforms(method: &str, path: &str, status: StatusCode, answer: &Value) {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    if route == "/api/v1/events/" {
        return;
    }
    let Some((template, operation)) = operation(method, path) else {
        panic!("{method} {route} answered but is not in the API document");
    };
    let response = &operation["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{method} {template} answered {status}, which its document does not list"
    );
    let Some(schema) = response["content"]["application/json"].get("schema") else {
        return; // not JSON: the media type is checked where the bytes are
    };
    // `expand`, `fields` and `omit` reshape each result (DRF flex-fields): any property may
    // be added or left out.
    let reshaped = form_urlencoded::parse(query.as_bytes())
        .any(|(name, _)| matches!(&*name, "expand" | "fields" | "omit"));
    if reshaped {
        return;
    }
    let schemas = &document()["components"]["schemas"];
    if let Err(wrong) = matches_schema(answer, schema, schemas, "") {
        let shown: String = answer.to_string().chars().take(300).collect();
        panic!("{method} {route} ({template}): the answer does not fit {schema}: {wrong}\n{shown}");
    }
}

/// A refusal of a documented operation has a status the document lists for it.
fn documented_refusal(method: &str, path: &str, status: StatusCode) {
    let Some((template, operation)) = operation(method, path) else {
        return; // no such route, or a method the route does not take: not an operation
    };
    assert!(
        operation["responses"].get(status.as_str()).is_some(),
        "{method} {template} answered {status}, which its document does not list"
    );
}

fn matches_schema(value: &Value, schema: &Value, schemas: &Value, at: &str) -> Result<(), String> {
    fits_schema(value, schema, schemas, at, true)
}

/// Whether `value` fits `schema`: its types, its required properties, and (`closed`) no
/// property the schema does not document, so that the document lists every field it answers.
fn fits_schema(
    value: &Value,
    schema: &Value,
    schemas: &Value,
    at: &str,
    closed: bool,
) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        assert!(
            schemas.get(name).is_some(),
            "{reference} is not in the document"
        );
        return fits_schema(value, &schemas[name], schemas, at, closed);
    }
    if let Some(choices) = schema["oneOf"].as_array() {
        let tried: Vec<String> = choices
            .iter()
            .filter_map(|choice| fits_schema(value, choice, schemas, at, closed).err())
            .collect();
        return if tried.len() < choices.len() {
            Ok(())
        } else {
            Err(tried.join(" / "))
        };
    }
    if let Some(parts) = schema["allOf"].as_array() {
        // Each part documents some of the properties: none is closed on its own.
        for part in parts {
            fits_schema(value, part, schemas, at, false)?;
        }
        return Ok(());
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()), // any JSON
    };
    let fits = types.iter().any(|t| match *t {
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => false,
    });
    if !fits {
        let shown: String = value.to_string().chars().take(120).collect();
        return Err(format!("{at}: {shown} is not {types:?}"));
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, item) in values.iter().enumerate() {
            fits_schema(item, items, schemas, &format!("{at}[{i}]"), true)?;
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}.{name} is required but missing"));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, field) in object {
                match properties.get(name) {
                    Some(property) => {
                        fits_schema(field, property, schemas, &format!("{at}.{name}"), true)?;
                    }
                    None if closed => {
                        return Err(format!("{at}.{name} is answered but not documented"));
                    }
                    None => {}
                }
            }
        }
    }
    Ok(())
}
