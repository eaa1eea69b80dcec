//! Image sets: `images/image_sets/`, and pins to one's home page.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, put};
use axum::{Json, Router};
use exact_domain::image_set::{CollaborationType, ImageSetCommand, SetSettings};
use exact_domain::user::UserCommand;
use exact_projections::catalog_read::ImageSetRow;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::teams::readable_team;
use super::{created, ok};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::rest::access::current_settings;
use crate::rest::body::{lenient, Body};
use crate::rest::filters::{
    DescriptionFilter, IdFilter, LocationFilter, NameFilter, PathFilter, TimeFilter,
};
use crate::rest::input::{missing, wrong};
use crate::rest::params::Params;
use crate::rest::shapes::{self, ImageSet, LinkedToSet};
use crate::rest::{caller_for, if_match};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/images/image_sets/", get(list_sets).post(create_set))
        .route(
            "/images/image_sets/{id}/",
            get(get_set)
                .patch(update_set)
                .put(update_set)
                .delete(delete_set),
        )
        .route(
            "/images/image_sets/{id}/pin/",
            put(pin_set).delete(unpin_set),
        )
}

struct SetLinks {
    images: BTreeMap<i64, Vec<i64>>,
    products: BTreeMap<i64, Vec<i64>>,
    tags: BTreeMap<i64, Vec<String>>,
    tag_ids: BTreeMap<String, i64>,
}

async fn set_links(state: &AppState, auth: &Authenticated) -> Result<SetLinks, ApiError> {
    let mut images: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for image in state.read.readable_images(auth.caller.actor, None).await? {
        images.entry(image.image_set).or_default().push(image.id);
    }
    let mut products: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (product, set) in state.read.product_links().await? {
        products.entry(set).or_default().push(product);
    }
    let mut tags: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (set, name) in state.read.all_set_tags().await? {
        tags.entry(set).or_default().push(name);
    }
    let tag_ids = tags
        .values()
        .flatten()
        .map(|name| (name.clone(), shapes::tag_id(name)))
        .collect();
    Ok(SetLinks {
        images,
        products,
        tags,
        tag_ids,
    })
}

fn set_json(s: &ImageSetRow, links: &SetLinks) -> Value {
    let tags = links.tags.get(&s.id).map_or(&[][..], Vec::as_slice);
    shapes::value(&ImageSet::of(
        s,
        LinkedToSet {
            images: links.images.get(&s.id).cloned().unwrap_or_default(),
            products: links.products.get(&s.id).cloned().unwrap_or_default(),
            tags: tags
                .iter()
                .filter_map(|name| Some((name.clone(), *links.tag_ids.get(name)?)))
                .collect(),
        },
    ))
}

/// The filters of the set list.
#[derive(Debug, Deserialize)]
struct SetFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    name: NameFilter,
    #[serde(flatten)]
    location: LocationFilter,
    #[serde(flatten)]
    description: DescriptionFilter,
    #[serde(flatten)]
    path: PathFilter,
    #[serde(flatten)]
    time: TimeFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    team: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    creator: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    public: Option<bool>,
    #[serde(default, deserialize_with = "lenient::int")]
    main_annotation_type: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    product: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    collaboration_type: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    priority: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    images: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    zip_state: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    set_tags: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    set_versions: Option<i64>,
}

/// Image sets the caller may read
#[utoipa::path(get, path = "/images/image_sets/", responses((status = 200, body = crate::rest::shapes::ImageSetPage)))]
async fn list_sets(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let links = set_links(&state, &auth).await?;
    let f: SetFilters = params.filters()?;
    let ids = f.id.allowed();
    let (team, creator, public, main_type) = (f.team, f.creator, f.public, f.main_annotation_type);
    let (product, collaboration, priority, image) =
        (f.product, f.collaboration_type, f.priority, f.images);
    let zip_state = f.zip_state;
    // A tag by its id: the name it numbers.
    let tag = match f.set_tags {
        Some(id) => Some(
            links
                .tag_ids
                .iter()
                .find(|(_, tag_id)| **tag_id == id)
                .map(|(name, _)| name.clone())
                .unwrap_or_default(),
        ),
        None => None,
    };
    let version_sets: Option<Vec<i64>> = match f.set_versions {
        Some(version) => Some(
            state
                .read
                .dataset_version_links()
                .await?
                .into_iter()
                .filter(|(v, _)| *v == version)
                .map(|(_, set)| set)
                .collect(),
        ),
        None => None,
    };
    let rows = state
        .read
        .readable_sets(auth.caller.actor)
        .await?
        .iter()
        .filter(|s| ids.as_ref().is_none_or(|ids| ids.contains(&s.id)))
        .filter(|s| f.name.keeps(&s.name))
        .filter(|s| f.location.keeps(&s.location))
        .filter(|s| f.description.keeps(&s.description))
        .filter(|s| f.path.keeps(&format!("imagesets/{}", s.id)))
        .filter(|s| team.is_none_or(|t| s.team == Some(t)))
        .filter(|s| creator.is_none_or(|c| c == s.creator))
        .filter(|s| public.is_none_or(|p| p == s.public))
        .filter(|s| main_type.is_none_or(|t| s.main_annotation_type == Some(t)))
        .filter(|s| collaboration.is_none_or(|c| c == s.collaboration_type))
        .filter(|s| priority.is_none_or(|p| p == s.priority))
        .filter(|s| {
            product.is_none_or(|p| links.products.get(&s.id).is_some_and(|v| v.contains(&p)))
        })
        .filter(|s| image.is_none_or(|i| links.images.get(&s.id).is_some_and(|v| v.contains(&i))))
        .filter(|s| f.time.keeps(s.time))
        .filter(|s| {
            tag.as_ref()
                .is_none_or(|t| links.tags.get(&s.id).is_some_and(|v| v.contains(t)))
        })
        .filter(|s| version_sets.as_ref().is_none_or(|v| v.contains(&s.id)))
        .cloned()
        .collect::<Vec<_>>();
    // EXACT's zip state, as it is: an archive of the set as it stands is ready, being built,
    // or neither.
    let mut shown = Vec::with_capacity(rows.len());
    for s in &rows {
        let state_of_zip = crate::set_archives::zip_state(&state, s.id).await?;
        if zip_state.is_none_or(|z| z == state_of_zip) {
            let mut json = set_json(s, &links);
            json["zip_state"] = state_of_zip.into();
            shown.push(json);
        }
    }
    Ok(Json(params.page_of(shown)?))
}

/// One image set
#[utoipa::path(get, path = "/images/image_sets/{id}/", responses((status = 200, body = crate::rest::shapes::ImageSet)))]
async fn get_set(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (set, _) = state.commands.set_access(&auth.caller, id).await?;
    let links = set_links(&state, &auth).await?;
    let mut json = set_json(&set, &links);
    json["zip_state"] = crate::set_archives::zip_state(&state, id).await?.into();
    Ok(ok(params.shape(json), set.version))
}

/// The settings a set's creation or update may send; only what is sent changes.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ImageSetChange)]
pub(in crate::rest) struct SetFields {
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    location: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    public: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    public_collaboration: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    image_lock: Option<bool>,
    #[serde(default, deserialize_with = "lenient::int")]
    priority: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    collaboration_type: Option<i64>,
    #[serde(default, deserialize_with = "lenient::nullable_int")]
    main_annotation_type: Option<Option<i64>>,
    #[serde(default, deserialize_with = "lenient::strings")]
    tags: Option<Vec<String>>,
    /// Clinical mode: verdicts are electronic signatures, and changing an annotation that has
    /// a verdict needs a reason.
    #[serde(default, deserialize_with = "lenient::bool")]
    clinical: Option<bool>,
}

impl SetFields {
    /// `s` with every field sent replaced.
    fn applied_to(self, mut s: SetSettings) -> Result<SetSettings, ApiError> {
        s.name = self.name.unwrap_or(s.name);
        s.location = self.location.unwrap_or(s.location);
        s.description = self.description.unwrap_or(s.description);
        s.public = self.public.unwrap_or(s.public);
        s.public_collaboration = self.public_collaboration.unwrap_or(s.public_collaboration);
        s.image_lock = self.image_lock.unwrap_or(s.image_lock);
        s.priority = self.priority.unwrap_or(s.priority);
        if let Some(code) = self.collaboration_type {
            s.collaboration_type = CollaborationType::try_from(code).map_err(|_| {
                wrong(
                    "collaboration_type",
                    "0 (collaborative), 1 (competitive) or 2",
                )
            })?;
        }
        s.main_annotation_type = self.main_annotation_type.unwrap_or(s.main_annotation_type);
        if let Some(tags) = self.tags {
            s.tags = tags.into_iter().collect();
        }
        s.clinical = self.clinical.unwrap_or(s.clinical);
        Ok(s)
    }
}

/// What a set's creation reads: its team and name, and any settings.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewImageSet)]
pub(in crate::rest) struct NewSetBody {
    #[serde(deserialize_with = "lenient::required_int")]
    team: i64,
    #[serde(flatten)]
    settings: SetFields,
}

/// Create an image set
#[utoipa::path(post, path = "/images/image_sets/", request_body = NewSetBody, responses((status = 201, body = crate::rest::shapes::ImageSet)))]
async fn create_set(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<NewSetBody>,
) -> Result<Response, ApiError> {
    let NewSetBody { team, settings } = fields;
    if settings.name.is_none() {
        return Err(missing("name"));
    }
    readable_team(&state, &auth, team).await?;
    let settings = settings.applied_to(SetSettings::default())?;
    let caller = caller_for(&auth, &body);
    let written = state
        .commands
        .create_image_set(&caller, team, settings)
        .await?;
    let (set, _) = state.commands.set_access(&auth.caller, written.id).await?;
    let links = set_links(&state, &auth).await?;
    Ok(created(set_json(&set, &links), written.version))
}

/// Change an image set
#[utoipa::path(patch, path = "/images/image_sets/{id}/", request_body = SetFields, responses((status = 200, body = crate::rest::shapes::ImageSet)))]
async fn update_set(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<SetFields>,
) -> Result<Response, ApiError> {
    let (set, _) = state.commands.set_access(&auth.caller, id).await?;
    let settings = fields.applied_to(current_settings(&state, &set).await?)?;
    let caller = caller_for(&auth, &body);
    state
        .commands
        .image_set_command(
            &caller,
            id,
            if_match(&headers)?,
            &ImageSetCommand::Change(settings),
        )
        .await?;
    let (set, _) = state.commands.set_access(&auth.caller, id).await?;
    let links = set_links(&state, &auth).await?;
    Ok(ok(set_json(&set, &links), set.version))
}

/// Pin a set to the top of the caller's home page (EXACT's pinned_by)
///
/// Pins a set to the top of the caller's home page, or unpins it (EXACT's `pinned_by`; not in
/// EXACT's REST API, which left it to a page). Both are idempotent.
#[utoipa::path(put, path = "/images/image_sets/{id}/pin/", responses((status = 200, body = crate::rest::shapes::SetPin)))]
async fn pin_set(
    state: State<AppState>,
    auth: Authenticated,
    id: Path<i64>,
) -> Result<Json<shapes::SetPin>, ApiError> {
    let id = set_pin(state, auth, id, true).await?;
    Ok(Json(shapes::SetPin {
        image_set: id,
        pinned: true,
    }))
}

/// Unpin a set
#[utoipa::path(delete, path = "/images/image_sets/{id}/pin/", responses((status = 204)))]
async fn unpin_set(
    state: State<AppState>,
    auth: Authenticated,
    id: Path<i64>,
) -> Result<StatusCode, ApiError> {
    set_pin(state, auth, id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_pin(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    pinned: bool,
) -> Result<i64, ApiError> {
    state
        .commands
        .user_command(
            &auth.caller,
            auth.user.id,
            &UserCommand::Pin {
                image_set: id,
                pinned,
            },
        )
        .await?;
    Ok(id)
}

/// Delete an image set
#[utoipa::path(delete, path = "/images/image_sets/{id}/", responses((status = 204)))]
async fn delete_set(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .commands
        .image_set_command(
            &auth.caller,
            id,
            if_match(&headers)?,
            &ImageSetCommand::Delete,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
