//! EXACT's `images/set_tags`: a tag with an id and the image sets it is on. Here a tag is a
//! name on image sets (part of each set's settings, changed by the set's own events), its id a
//! digest of the name ([`tag_id`]), and these routes read and change the sets. A change
//! touching several sets checks every one of them before changing any.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use exact_domain::image_set::ImageSetCommand;
use exact_domain::permissions::Permission;
use exact_domain::DomainError;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::access::current_settings;
use super::body::{lenient, Body};
use super::caller_for;
use super::filters::{IdFilter, NameFilter};
use super::input::{missing, wrong};
use super::params::Params;
use super::shapes::{self, tag_id, SetTag};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/images/set_tags/", get(list_tags).post(create_tag))
        .route(
            "/images/set_tags/{id}/",
            get(get_tag)
                .patch(update_tag)
                .put(update_tag)
                .delete(delete_tag),
        )
}

/// A tag name with the readable sets that carry it.
struct Tag {
    id: i64,
    name: String,
    sets: Vec<i64>,
}

fn tag_json(tag: &Tag) -> Value {
    shapes::value(&SetTag {
        id: tag.id,
        name: tag.name.clone(),
        imagesets: tag.sets.clone(),
    })
}

/// Every numbered tag that some set the caller may read carries, by id.
async fn visible_tags(
    state: &AppState,
    auth: &Authenticated,
) -> Result<BTreeMap<i64, Tag>, ApiError> {
    let readable = state.read.readable_set_ids(auth.caller.actor).await?;
    let mut sets: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (set, name) in state.read.all_set_tags().await? {
        if readable.contains(&set) {
            sets.entry(name).or_default().push(set);
        }
    }
    Ok(sets
        .into_iter()
        .map(|(name, sets)| {
            let id = tag_id(&name);
            (id, Tag { id, name, sets })
        })
        .collect())
}

async fn visible_tag(state: &AppState, auth: &Authenticated, id: i64) -> Result<Tag, ApiError> {
    visible_tags(state, auth)
        .await?
        .remove(&id)
        .ok_or_else(|| DomainError::NotFound("set tag").into())
}

/// The filters of the set tag list.
#[derive(Debug, Deserialize)]
struct TagFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    name: NameFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    imagesets: Option<i64>,
}

/// Tags: names on image sets, with ids
#[utoipa::path(get, path = "/images/set_tags/", responses((status = 200, body = crate::rest::shapes::SetTagPage)))]
async fn list_tags(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: TagFilters = params.filters()?;
    let (ids, set) = (f.id.allowed(), f.imagesets);
    let rows = visible_tags(&state, &auth)
        .await?
        .values()
        .filter(|t| ids.as_ref().is_none_or(|ids| ids.contains(&t.id)))
        .filter(|t| f.name.keeps(&t.name))
        .filter(|t| set.is_none_or(|s| t.sets.contains(&s)))
        .map(tag_json)
        .collect();
    Ok(Json(params.page_of(rows)?))
}

/// One tag
#[utoipa::path(get, path = "/images/set_tags/{id}/", responses((status = 200, body = crate::rest::shapes::SetTag)))]
async fn get_tag(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let tag = visible_tag(&state, &auth, id).await?;
    Ok(Json(params.shape(tag_json(&tag))))
}

/// Gives each of `sets` the tags `change` makes of its own, after checking that the caller may
/// edit every one of them.
async fn retag(
    state: &AppState,
    auth: &Authenticated,
    body: &Value,
    sets: &BTreeSet<i64>,
    change: impl Fn(i64, &mut BTreeSet<String>),
) -> Result<(), ApiError> {
    let mut changes = Vec::with_capacity(sets.len());
    for &id in sets {
        let (set, permissions) = state.commands.set_access(&auth.caller, id).await?;
        if !permissions.contains(Permission::EditSet) {
            return Err(DomainError::ForbiddenInSet(Permission::EditSet).into());
        }
        let mut settings = current_settings(state, &set).await?;
        let before = settings.tags.clone();
        change(id, &mut settings.tags);
        if settings.tags != before {
            changes.push((id, settings));
        }
    }
    let caller = caller_for(auth, body);
    for (id, settings) in changes {
        state
            .commands
            .image_set_command(&caller, id, None, &ImageSetCommand::Change(settings))
            .await?;
    }
    Ok(())
}

/// The tag's id, once some set carries `name`.
async fn tag_named(state: &AppState, auth: &Authenticated, name: &str) -> Result<Tag, ApiError> {
    visible_tags(state, auth)
        .await?
        .into_values()
        .find(|t| t.name == name)
        .ok_or_else(|| DomainError::NotFound("set tag").into())
}

/// What a tag's create and update read: its name and the sets that carry it.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = SetTagInput)]
pub(in crate::rest) struct TagBody {
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::ids")]
    imagesets: Option<Vec<i64>>,
}

impl TagBody {
    /// The name, trimmed; a blank one is refused.
    fn name(&self) -> Result<Option<String>, ApiError> {
        match &self.name {
            Some(name) if name.trim().is_empty() => Err(wrong("name", "a tag name")),
            Some(name) => Ok(Some(name.trim().to_owned())),
            None => Ok(None),
        }
    }

    fn sets(&self) -> Option<BTreeSet<i64>> {
        self.imagesets
            .as_ref()
            .map(|ids| ids.iter().copied().collect())
    }
}

/// Give image sets a tag
///
/// `name` and `imagesets` (at least one): the sets are given the tag.
#[utoipa::path(post, path = "/images/set_tags/", request_body = TagBody, responses((status = 201, body = crate::rest::shapes::SetTag)))]
async fn create_tag(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<TagBody>,
) -> Result<Response, ApiError> {
    let name = fields.name()?.ok_or_else(|| missing("name"))?;
    let sets = fields.sets().ok_or_else(|| missing("imagesets"))?;
    if sets.is_empty() {
        // A tag is a name on image sets: one on none would not exist.
        return Err(wrong(
            "imagesets",
            "at least one image set: a tag is a name on image sets",
        ));
    }
    retag(&state, &auth, &body, &sets, |_, tags| {
        tags.insert(name.clone());
    })
    .await?;
    let tag = tag_named(&state, &auth, &name).await?;
    Ok((StatusCode::CREATED, Json(tag_json(&tag))).into_response())
}

/// Rename a tag or move it to other sets
///
/// A new `name` renames the tag on every set that carries it (a name is numbered on its own,
/// so the renamed tag answers with the new name's id); `imagesets` moves it to exactly those
/// sets, none included (EXACT keeps an unused tag; here it is gone from every set and so from
/// the list, and given to a set again it has its id again).
#[utoipa::path(patch, path = "/images/set_tags/{id}/", request_body = TagBody, responses((status = 200, body = crate::rest::shapes::SetTag)))]
async fn update_tag(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<TagBody>,
) -> Result<Json<Value>, ApiError> {
    let tag = visible_tag(&state, &auth, id).await?;
    let name = fields.name()?.unwrap_or_else(|| tag.name.clone());
    let carrying: BTreeSet<i64> = tag.sets.iter().copied().collect();
    let wanted = fields.sets().unwrap_or_else(|| carrying.clone());
    let touched: BTreeSet<i64> = carrying.union(&wanted).copied().collect();
    retag(&state, &auth, &body, &touched, |set, tags| {
        tags.remove(&tag.name);
        if wanted.contains(&set) {
            tags.insert(name.clone());
        }
    })
    .await?;
    if wanted.is_empty() {
        let unused = Tag {
            id: tag_id(&name),
            name,
            sets: Vec::new(),
        };
        return Ok(Json(tag_json(&unused)));
    }
    Ok(Json(tag_json(&tag_named(&state, &auth, &name).await?)))
}

/// Take a tag off every set
#[utoipa::path(delete, path = "/images/set_tags/{id}/", responses((status = 204)))]
async fn delete_tag(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let tag = visible_tag(&state, &auth, id).await?;
    let sets: BTreeSet<i64> = tag.sets.iter().copied().collect();
    retag(&state, &auth, &Value::Null, &sets, |_, tags| {
        tags.remove(&tag.name);
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
