//! `/`: the user's teams, the image sets they may read (pinned first, then by priority) with a search
//! over set and image names, and the images they opened last.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{error_page, render, Frame, PageUser};
use crate::error::ApiError;
use crate::AppState;

#[derive(Serialize)]
struct Team {
    id: i64,
    name: String,
}

#[derive(Serialize)]
struct Set {
    id: i64,
    name: String,
    description: String,
    team: Option<String>,
    priority: i64,
    /// Pinned by this user: listed first.
    pinned: bool,
    images: usize,
    /// Image names, for the search.
    image_names: Vec<String>,
    tags: Vec<String>,
}

#[derive(Serialize)]
struct Recent {
    id: i64,
    name: String,
    set: String,
}

#[derive(Serialize)]
struct Context<'a> {
    frame: Frame<'a>,
    teams: Vec<Team>,
    tags: Vec<String>,
    sets: Vec<Set>,
    recent: Vec<Recent>,
}

pub async fn home(State(state): State<AppState>, user: PageUser) -> Response {
    match context(&state, &user).await {
        Ok(context) => render(StatusCode::OK, "home.html", context),
        Err(e) => error_page(Some(&user), &e),
    }
}

async fn context<'a>(state: &AppState, user: &'a PageUser) -> Result<Context<'a>, ApiError> {
    let actor = user.user.actor();
    let teams: Vec<Team> = state
        .read
        .teams_of(user.user.id)
        .await?
        .into_iter()
        .filter(|t| !t.dissolved)
        .map(|t| Team {
            id: t.id,
            name: t.name,
        })
        .collect();
    let images = state.read.readable_images(actor, None).await?;
    // Every set's tags in one query, in name order; team names asked for once each.
    let mut tags_of: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (set, name) in state.read.all_set_tags().await? {
        tags_of.entry(set).or_default().push(name);
    }
    let mut team_names: BTreeMap<i64, Option<String>> = BTreeMap::new();
    let pinned = state.read.pinned_sets(user.user.id).await?;
    let mut sets = Vec::new();
    for set in state.read.readable_sets(actor).await? {
        let team = match set.team {
            Some(id) => match team_names.get(&id) {
                Some(name) => name.clone(),
                None => {
                    let name = state.read.team(id).await?.map(|t| t.name);
                    team_names.insert(id, name.clone());
                    name
                }
            },
            None => None,
        };
        let names: Vec<String> = images
            .iter()
            .filter(|i| i.image_set == set.id)
            .map(|i| i.name.clone())
            .collect();
        sets.push(Set {
            tags: tags_of.remove(&set.id).unwrap_or_default(),
            id: set.id,
            name: set.name,
            description: set.description,
            team,
            priority: set.priority,
            pinned: pinned.contains(&set.id),
            images: names.len(),
            image_names: names,
        });
    }
    // EXACT's order: pinned first, then by priority, then by name.
    sets.sort_by(|a, b| {
        (b.pinned, b.priority)
            .cmp(&(a.pinned, a.priority))
            .then(a.name.cmp(&b.name))
    });
    let tags = sets
        .iter()
        .flat_map(|s| s.tags.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Opened images the user may still read, with their set's name.
    let mut recent = Vec::new();
    for id in state.read.recently_opened(user.user.id, 8).await? {
        if let Some(image) = images.iter().find(|i| i.id == id) {
            let set = sets
                .iter()
                .find(|s| s.id == image.image_set)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            recent.push(Recent {
                id,
                name: image.name.clone(),
                set,
            });
        }
    }
    Ok(Context {
        frame: user.frame(),
        teams,
        tags,
        sets,
        recent,
    })
}
