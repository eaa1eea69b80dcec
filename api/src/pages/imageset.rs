//! EXACT's set page, `/images/imageset/<id>/`: the images as a grid of thumbnails with their
//! annotation counts, and uploads by drag and drop (the page's script posts each file to the
//! REST API and shows its progress, or the server's error beside it).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use exact_domain::permissions::Permission;
use serde::Serialize;

use super::{error_page, render, Frame, PageUser};
use crate::commands::Caller;
use crate::error::ApiError;
use crate::AppState;

#[derive(Serialize)]
struct Image {
    id: i64,
    name: String,
    width: i64,
    height: i64,
    annotations: i64,
    unverified: i64,
}

#[derive(Serialize)]
struct Set {
    id: i64,
    name: String,
    description: String,
    location: String,
    team: Option<String>,
    may_upload: bool,
}

#[derive(Serialize)]
struct Context<'a> {
    frame: Frame<'a>,
    set: Set,
    images: Vec<Image>,
}

pub async fn imageset_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<i64>,
) -> Response {
    match context(&state, &user, id).await {
        Ok((set, images)) => render(
            StatusCode::OK,
            "imageset.html",
            Context {
                frame: user.frame(),
                set,
                images,
            },
        ),
        Err(e) => error_page(Some(&user), &e),
    }
}

async fn context(
    state: &AppState,
    user: &PageUser,
    id: i64,
) -> Result<(Set, Vec<Image>), ApiError> {
    let caller = Caller::new(user.user.actor(), exact_store::Source::Ui);
    let (set, permissions) = state.commands.set_access(&caller, id).await?;
    let team = match set.team {
        Some(team) => state.read.team(team).await?.map(|t| t.name),
        None => None,
    };
    let mut images = Vec::new();
    for image in state.read.readable_images(caller.actor, Some(id)).await? {
        let counts = state.read.image_statistics(image.id, None).await?;
        images.push(Image {
            id: image.id,
            name: image.name,
            width: image.width,
            height: image.height,
            annotations: counts.total,
            unverified: counts.unverified,
        });
    }
    images.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok((
        Set {
            id: set.id,
            name: set.name,
            description: set.description,
            location: set.location,
            team,
            may_upload: permissions.contains(Permission::AddImages),
        },
        images,
    ))
}
