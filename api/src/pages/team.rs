//! EXACT's team page, `/users/team/<id>/`: the members and their roles; admins add members by
//! username, grant and revoke admin, and remove members; anyone may leave. The page's script
//! makes each change through the REST API (`users/team_membership`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{error_page, render, Frame, PageUser};
use crate::error::ApiError;
use crate::AppState;

#[derive(Serialize)]
struct Member {
    membership: i64,
    user: i64,
    username: String,
    is_admin: bool,
}

#[derive(Serialize)]
struct Context<'a> {
    frame: Frame<'a>,
    team: i64,
    name: String,
    members: Vec<Member>,
    /// Whether the user may manage members: an admin, a superuser, or anyone when the team
    /// has no admin (EXACT's rule).
    manages: bool,
    sets: Vec<(i64, String)>,
    /// The team's export formats the user may see (members: all; others: the public ones).
    formats: Vec<(i64, String)>,
}

pub async fn team_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<i64>,
) -> Response {
    match context(&state, &user, id).await {
        Ok(context) => render(StatusCode::OK, "team.html", context),
        Err(e) => error_page(Some(&user), &e),
    }
}

async fn context<'a>(
    state: &AppState,
    user: &'a PageUser,
    id: i64,
) -> Result<Context<'a>, ApiError> {
    let actor = user.user.actor();
    let team = state
        .read
        .readable_teams(actor)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or(exact_domain::DomainError::NotFound("team"))?;
    let mut members = Vec::new();
    for m in state.read.memberships(id).await? {
        let username = state
            .read
            .user(m.user_id)
            .await?
            .map(|u| u.username)
            .unwrap_or_default();
        members.push(Member {
            membership: crate::rest::membership_id(m.team, m.user_id),
            user: m.user_id,
            username,
            is_admin: m.is_admin,
        });
    }
    members.sort_by(|a, b| {
        b.is_admin
            .cmp(&a.is_admin)
            .then(a.username.cmp(&b.username))
    });
    let manages = user.user.is_superuser
        || members.iter().all(|m| !m.is_admin)
        || members.iter().any(|m| m.user == user.user.id && m.is_admin);
    let sets = state
        .read
        .image_sets_of_team(id)
        .await?
        .into_iter()
        .filter(|s| !s.deleted)
        .map(|s| (s.id, s.name))
        .collect();
    let formats = crate::exports::visible_formats(state, actor)
        .await?
        .into_iter()
        .filter(|(row, _)| row.team == Some(id))
        .map(|(row, _)| (row.id, row.name))
        .collect();
    Ok(Context {
        frame: user.frame(),
        team: team.id,
        name: team.name,
        members,
        manages,
        sets,
        formats,
    })
}
