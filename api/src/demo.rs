//! `exact demo`: an empty store filled with what a newcomer needs to see the viewer at work: a
//! team with the superuser in it, an image set, a product with a type of each common kind, a
//! generated whole-slide image and a few annotations on it.
//!
//! Everything goes through the REST API in-process, as the superuser `exact` with an access
//! token made for the purpose and revoked at the end: the demo is made of ordinary events, by
//! the same rules as any client's.

use std::path::Path;

use anyhow::{bail, Context};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use exact_domain::user::UserCommand;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::commands::Caller;
use crate::AppState;

/// What the demo made, for the message at the end.
#[derive(Debug)]
pub struct Demo {
    pub image_set: i64,
    pub image: i64,
}

/// Fills the store behind `state` (which must hold no team, set or image yet).
pub async fn fill(state: &AppState, data_dir: &Path) -> anyhow::Result<Demo> {
    let admin = state.read.user_by_username("exact").await?;
    let Some(admin) = admin else {
        bail!("the superuser `exact` is missing; the demo is made in its name");
    };
    let sets = state.read.readable_sets(admin.actor()).await?;
    let teams = state.read.readable_teams(admin.actor()).await?;
    if !sets.is_empty() || !teams.is_empty() {
        bail!(
            "this store already holds data ({} teams, {} image sets): `exact demo` fills only an \
             empty store; give it another --data-dir or --database-url",
            teams.len(),
            sets.len()
        );
    }

    let token_id = uuid::Uuid::now_v7();
    let token = format!(
        "exact_{}_{}",
        token_id.simple(),
        crate::auth::password::random_secret()
    );
    let caller = Caller::new(admin.actor(), exact_store::Source::Cli);
    let command = UserCommand::CreateToken {
        token: token_id,
        name: "exact demo".into(),
        token_hash: crate::auth::token_hash(&token),
    };
    state
        .commands
        .user_command(&caller, admin.id, &command)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let client = Client {
        router: crate::app(state.clone()),
        token,
    };
    let made = build(&client, data_dir).await;
    state
        .commands
        .user_command(
            &caller,
            admin.id,
            &UserCommand::RevokeToken { token: token_id },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    made
}

async fn build(client: &Client, data_dir: &Path) -> anyhow::Result<Demo> {
    let team = client
        .post("/api/v1/users/teams/", json!({"name": "Demo lab"}))
        .await?;
    let set = client
        .post(
            "/api/v1/images/image_sets/",
            json!({"name": "Demo slides", "team": team["id"],
                   "description": "A generated slide to try the viewer on: press 1 and drag a box."}),
        )
        .await?;
    let product = client
        .post(
            "/api/v1/administration/products/",
            json!({"name": "Demo cells", "team": team["id"], "imagesets": [set["id"]]}),
        )
        .await?;
    let mut types = Vec::new();
    for (order, (name, vector_type, colour)) in [
        ("mitotic figure", 1, "#D92D20"),
        ("nucleus", 2, "#12B76A"),
        ("tumour region", 5, "#2E90FA"),
        ("fibre", 4, "#F79009"),
        ("well stained", 7, "#7A5AF8"),
    ]
    .into_iter()
    .enumerate()
    {
        let made = client
            .post(
                "/api/v1/annotations/annotation_types/",
                json!({"name": name, "product": product["id"], "vector_type": vector_type,
                       "color_code": colour, "sort_order": order, "default_width": 60,
                       "default_height": 60}),
            )
            .await?;
        types.push(made["id"].clone());
    }

    let staging = data_dir.join("uploads").join("demo");
    std::fs::create_dir_all(&staging)?;
    let slide = staging.join("demo-biopsy.svs");
    exact_tiles::fixture::write_slide(
        &slide,
        &exact_tiles::fixture::SlideSpec::aperio(8_000, 6_000),
    )
    .context("generating the demo slide")?;
    let bytes = std::fs::read(&slide)?;
    let _ = std::fs::remove_dir_all(&staging);
    let uploaded = client
        .upload(&set["id"].to_string(), "demo-biopsy.svs", bytes)
        .await?;
    let image = uploaded["results"][0]["id"]
        .as_i64()
        .context("the upload answered no image")?;

    let annotations = json!([
        {"image": image, "annotation_type": types[0],
         "vector": {"x1": 5200, "y1": 3900, "x2": 5420, "y2": 4080}},
        {"image": image, "annotation_type": types[0],
         "vector": {"x1": 6100, "y1": 4300, "x2": 6290, "y2": 4470}},
        {"image": image, "annotation_type": types[1],
         "vector": {"x1": 5650, "y1": 4550, "x2": 5710, "y2": 4610}},
        {"image": image, "annotation_type": types[2],
         "vector": {"x1": 4600, "y1": 3300, "x2": 7000, "y2": 3500, "x3": 7300, "y3": 5400,
                    "x4": 5000, "y4": 5700}},
    ]);
    client
        .post("/api/v1/annotations/annotations/", annotations)
        .await?;
    Ok(Demo {
        image_set: set["id"].as_i64().unwrap_or_default(),
        image,
    })
}

/// The server's own router, called in-process with the demo's token.
struct Client {
    router: axum::Router,
    token: String,
}

impl Client {
    async fn send(&self, request: Request<Body>) -> anyhow::Result<Value> {
        let response = self.router.clone().oneshot(request).await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status != StatusCode::CREATED && status != StatusCode::OK {
            bail!("the server refused a demo step ({status}): {body}");
        }
        Ok(body)
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&body)?))?;
        self.send(request).await
    }

    async fn upload(&self, image_set: &str, name: &str, bytes: Vec<u8>) -> anyhow::Result<Value> {
        let boundary = "exact-demo-boundary-3f1c";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"image_set\"\r\n\r\n{image_set}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file_path\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/images/images/")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))?;
        self.send(request).await
    }
}
