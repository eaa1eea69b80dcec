//! EXACT's viewer, `/annotations/<image>/`, and its verification page: each page is a frame and
//! the facts its script needs (the image, the types offered in its set, the images before and
//! after it, what the user may do); the scripts (`web/static/viewer.js`, `verify.js`) read
//! pixels, annotations and verdicts through the API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use exact_domain::permissions::Permission;
use serde::Serialize;

use exact_projections::catalog_read::AnnotationTypeRow;

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
    mpp: Option<f64>,
    frames: i64,
    /// What each frame shows, by frame number as text.
    frame_descriptions: std::collections::BTreeMap<i64, String>,
}

#[derive(Serialize)]
struct Set {
    id: i64,
    name: String,
    /// EXACT's COMPETITIVE sets (1) show each user only their own annotations.
    collaboration_type: i64,
    /// Clinical mode: verdicts are signed with the password, and changes of verified
    /// annotations ask for a reason.
    clinical: bool,
}

#[derive(Serialize)]
struct Facts {
    image: Image,
    set: Set,
    types: Vec<AnnotationTypeRow>,
    previous: Option<i64>,
    next: Option<i64>,
    user: i64,
    may_annotate: bool,
    may_edit: bool,
    may_delete: bool,
    may_verify: bool,
}

#[derive(Serialize)]
struct Context<'a> {
    frame: Frame<'a>,
    title: String,
    set_id: i64,
    set_name: String,
    facts: Facts,
}

pub async fn viewer_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(image): Path<i64>,
) -> Response {
    page(&state, &user, image, "viewer.html").await
}

/// EXACT's verification page, `/annotations/<image>/verify/`: one annotation at a time, cropped
/// with context, accepted with J and rejected with K. It needs the same facts as the viewer.
pub async fn verify_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(image): Path<i64>,
) -> Response {
    page(&state, &user, image, "verify.html").await
}

async fn page(state: &AppState, user: &PageUser, image: i64, template: &str) -> Response {
    match facts(state, user, image).await {
        Ok(facts) => render(
            StatusCode::OK,
            template,
            Context {
                frame: user.frame(),
                title: facts.image.name.clone(),
                set_id: facts.set.id,
                set_name: facts.set.name.clone(),
                facts,
            },
        ),
        Err(e) => error_page(Some(user), &e),
    }
}

async fn facts(state: &AppState, user: &PageUser, id: i64) -> Result<Facts, ApiError> {
    let caller = Caller::new(user.user.actor(), exact_store::Source::Ui);
    let not_found = || ApiError::from(exact_domain::DomainError::NotFound("image"));
    let image = state
        .read
        .image(id)
        .await?
        .filter(|i| !i.deleted)
        .ok_or_else(not_found)?;
    let (set, permissions) = state
        .commands
        .set_access(&caller, image.image_set)
        .await
        .map_err(|_| not_found())?;
    let mut siblings = state
        .read
        .readable_images(caller.actor, Some(set.id))
        .await?;
    siblings.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let at = siblings.iter().position(|i| i.id == id);
    let sibling = |index: Option<usize>| index.and_then(|i| siblings.get(i)).map(|i| i.id);
    let types = state.read.offered_types(set.id).await?;
    let frame_descriptions = image.described_frames();
    Ok(Facts {
        previous: sibling(at.and_then(|i| i.checked_sub(1))),
        next: sibling(at.map(|i| i + 1)),
        image: Image {
            id: image.id,
            name: image.name,
            width: image.width,
            height: image.height,
            mpp: image.mpp,
            frames: image.frames,
            frame_descriptions,
        },
        set: Set {
            id: set.id,
            name: set.name,
            collaboration_type: set.collaboration_type,
            clinical: set.clinical,
        },
        types,
        user: user.user.id,
        may_annotate: permissions.contains(Permission::Annotate),
        may_edit: permissions.contains(Permission::EditAnnotation),
        may_delete: permissions.contains(Permission::DeleteAnnotation),
        may_verify: permissions.contains(Permission::Verify),
    })
}
