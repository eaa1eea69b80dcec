//! Teams and their memberships: `users/teams/` and `users/team_membership/`.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use exact_domain::team::TeamCommand;
use exact_projections::catalog_read::{MembershipRow, TeamRow};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{created, not_found, ok};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::rest::body::{lenient, Body};
use crate::rest::filters::{IdFilter, NameFilter};
use crate::rest::params::Params;
use crate::rest::shapes::{self, membership_id, Membership, Team};
use crate::rest::{caller_for, if_match};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/users/teams/", get(list_teams).post(create_team))
        .route(
            "/users/teams/{id}/",
            get(get_team)
                .patch(update_team)
                .put(update_team)
                .delete(delete_team),
        )
        .route(
            "/users/team_membership/",
            get(list_memberships).post(create_membership),
        )
        .route(
            "/users/team_membership/{id}/",
            get(get_membership)
                .patch(update_membership)
                .put(update_membership)
                .delete(delete_membership),
        )
}

struct TeamLinks {
    members: BTreeMap<i64, Vec<MembershipRow>>,
    sets: BTreeMap<i64, Vec<i64>>,
    products: BTreeMap<i64, Vec<i64>>,
}

async fn team_links(state: &AppState, auth: &Authenticated) -> Result<TeamLinks, ApiError> {
    let mut members: BTreeMap<i64, Vec<MembershipRow>> = BTreeMap::new();
    for m in state.read.all_memberships().await? {
        members.entry(m.team).or_default().push(m);
    }
    let mut sets: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for s in state.read.readable_sets(auth.caller.actor).await? {
        if let Some(team) = s.team {
            sets.entry(team).or_default().push(s.id);
        }
    }
    let mut products: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for p in state.read.readable_products(auth.caller.actor).await? {
        products.entry(p.team).or_default().push(p.id);
    }
    Ok(TeamLinks {
        members,
        sets,
        products,
    })
}

fn team_json(team: &TeamRow, links: &TeamLinks) -> Value {
    let members = links.members.get(&team.id).map_or(&[][..], Vec::as_slice);
    shapes::value(&Team::of(
        team,
        members,
        links.sets.get(&team.id).cloned().unwrap_or_default(),
        links.products.get(&team.id).cloned().unwrap_or_default(),
    ))
}

/// The filters of the team list.
#[derive(Debug, Deserialize)]
struct TeamFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    name: NameFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    members: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    image_sets: Option<i64>,
}

/// The caller's teams
#[utoipa::path(get, path = "/users/teams/", responses((status = 200, body = crate::rest::shapes::TeamPage)))]
async fn list_teams(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let links = team_links(&state, &auth).await?;
    let filters: TeamFilters = params.filters()?;
    let ids = filters.id.allowed();
    let (member, set) = (filters.members, filters.image_sets);
    let rows = state
        .read
        .readable_teams(auth.caller.actor)
        .await?
        .iter()
        .filter(|t| ids.as_ref().is_none_or(|ids| ids.contains(&t.id)))
        .filter(|t| filters.name.keeps(&t.name))
        .map(|t| team_json(t, &links))
        .filter(|t| {
            member.is_none_or(|m| {
                t["members"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!(m)))
            })
        })
        .filter(|t| {
            set.is_none_or(|s| {
                t["image_sets"]
                    .as_array()
                    .is_some_and(|a| a.contains(&json!(s)))
            })
        })
        .collect();
    Ok(Json(params.page_of(rows)?))
}

pub(super) async fn readable_team(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<TeamRow, ApiError> {
    let teams = state.read.readable_teams(auth.caller.actor).await?;
    teams
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| not_found("team"))
}

/// One team
#[utoipa::path(get, path = "/users/teams/{id}/", responses((status = 200, body = crate::rest::shapes::Team)))]
async fn get_team(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let team = readable_team(&state, &auth, id).await?;
    let links = team_links(&state, &auth).await?;
    Ok(ok(params.shape(team_json(&team, &links)), team.version))
}

/// What a team's creation reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewTeam)]
pub(in crate::rest) struct NewTeamBody {
    #[serde(deserialize_with = "lenient::required_string")]
    name: String,
    #[serde(default, deserialize_with = "lenient::string")]
    website: Option<String>,
}

/// Create a team (the caller becomes its admin)
///
/// A team needs only its name (EXACT's server demanded `memberships` and so refused its own
/// client). The creator becomes its admin.
#[utoipa::path(post, path = "/users/teams/", request_body = NewTeamBody, responses((status = 201, body = crate::rest::shapes::Team)))]
async fn create_team(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<NewTeamBody>,
) -> Result<Response, ApiError> {
    let NewTeamBody { name, website } = fields;
    let website = website.unwrap_or_default();
    let caller = caller_for(&auth, &body);
    let written = state.commands.create_team(&caller, name, website).await?;
    let team = readable_team(&state, &auth, written.id).await?;
    let links = team_links(&state, &auth).await?;
    Ok(created(team_json(&team, &links), written.version))
}

/// What a team's update reads.
#[derive(Debug, Deserialize, ToSchema)]
pub(in crate::rest) struct TeamChange {
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    website: Option<String>,
}

/// Correct a team's name or website (its admins)
///
/// EXACT's team update: the name and website, by the team's admins.
#[utoipa::path(patch, path = "/users/teams/{id}/", request_body = TeamChange, responses((status = 200, body = crate::rest::shapes::Team)))]
async fn update_team(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<TeamChange>,
) -> Result<Response, ApiError> {
    readable_team(&state, &auth, id).await?;
    let command = TeamCommand::Change {
        name: fields.name,
        website: fields.website,
    };
    state
        .commands
        .team_command(&caller_for(&auth, &body), id, if_match(&headers)?, &command)
        .await?;
    let team = readable_team(&state, &auth, id).await?;
    let links = team_links(&state, &auth).await?;
    Ok(ok(team_json(&team, &links), team.version))
}

/// Delete a team: its sets stay, public and locked, without a team
///
/// EXACT's team delete: the team ends with its members in it, as when the last one leaves;
/// its sets stay, public and locked, without a team.
#[utoipa::path(delete, path = "/users/teams/{id}/", responses((status = 204)))]
async fn delete_team(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    readable_team(&state, &auth, id).await?;
    state
        .commands
        .team_command(
            &auth.caller,
            id,
            if_match(&headers)?,
            &TeamCommand::Dissolve,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn membership_json(m: &MembershipRow) -> Value {
    shapes::value(&Membership::of(m))
}

/// The filters of the membership list.
#[derive(Debug, Deserialize)]
struct MembershipFilters {
    #[serde(default, deserialize_with = "lenient::int")]
    id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    team: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    is_admin: Option<bool>,
}

/// Memberships of the caller's teams
#[utoipa::path(get, path = "/users/team_membership/", responses((status = 200, body = crate::rest::shapes::MembershipPage)))]
async fn list_memberships(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let teams: BTreeSet<i64> = state
        .read
        .readable_teams(auth.caller.actor)
        .await?
        .iter()
        .map(|t| t.id)
        .collect();
    let MembershipFilters {
        id,
        team,
        user,
        is_admin: admin,
    } = params.filters()?;
    let rows = state
        .read
        .all_memberships()
        .await?
        .iter()
        .filter(|m| teams.contains(&m.team))
        .filter(|m| team.is_none_or(|t| t == m.team))
        .filter(|m| user.is_none_or(|u| u == m.user_id))
        .filter(|m| admin.is_none_or(|a| a == m.is_admin))
        .filter(|m| id.is_none_or(|id| id == membership_id(m.team, m.user_id)))
        .map(membership_json)
        .collect();
    Ok(Json(params.page_of(rows)?))
}

async fn find_membership(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<MembershipRow, ApiError> {
    let (team, user) = shapes::membership_parts(id);
    readable_team(state, auth, team).await?;
    state
        .read
        .memberships(team)
        .await?
        .into_iter()
        .find(|m| m.user_id == user)
        .ok_or_else(|| not_found("team membership"))
}

/// One membership
#[utoipa::path(get, path = "/users/team_membership/{id}/", responses((status = 200, body = crate::rest::shapes::Membership)))]
async fn get_membership(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(membership_json(
        &find_membership(&state, &auth, id).await?,
    )))
}

/// What a membership's creation reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewMembership)]
pub(in crate::rest) struct NewMembershipBody {
    #[serde(deserialize_with = "lenient::required_int")]
    team: i64,
    #[serde(deserialize_with = "lenient::required_int")]
    user: i64,
    #[serde(default, deserialize_with = "lenient::bool")]
    is_admin: Option<bool>,
}

/// What a membership's update reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = MembershipChange)]
pub(in crate::rest) struct MembershipChangeBody {
    #[serde(default, deserialize_with = "lenient::bool")]
    is_admin: Option<bool>,
}

/// Add a member
#[utoipa::path(post, path = "/users/team_membership/", request_body = NewMembershipBody, responses((status = 201, body = crate::rest::shapes::Membership)))]
async fn create_membership(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<NewMembershipBody>,
) -> Result<Response, ApiError> {
    let NewMembershipBody {
        team,
        user,
        is_admin,
    } = fields;
    readable_team(&state, &auth, team).await?;
    let caller = caller_for(&auth, &body);
    state
        .commands
        .team_command(&caller, team, None, &TeamCommand::AddMember { user })
        .await?;
    if is_admin == Some(true) {
        state
            .commands
            .team_command(&caller, team, None, &TeamCommand::GrantAdmin { user })
            .await?;
    }
    let m = find_membership(&state, &auth, membership_id(team, user)).await?;
    Ok((StatusCode::CREATED, Json(membership_json(&m))).into_response())
}

/// Grant or revoke admin
#[utoipa::path(patch, path = "/users/team_membership/{id}/", request_body = MembershipChangeBody, responses((status = 200, body = crate::rest::shapes::Membership)))]
async fn update_membership(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<MembershipChangeBody>,
) -> Result<Json<Value>, ApiError> {
    let m = find_membership(&state, &auth, id).await?;
    let caller = caller_for(&auth, &body);
    if let Some(admin) = fields.is_admin {
        let command = if admin {
            TeamCommand::GrantAdmin { user: m.user_id }
        } else {
            TeamCommand::RevokeAdmin { user: m.user_id }
        };
        if admin != m.is_admin {
            state
                .commands
                .team_command(&caller, m.team, None, &command)
                .await?;
        }
    }
    Ok(Json(membership_json(
        &find_membership(&state, &auth, id).await?,
    )))
}

/// Leave, or remove a member
///
/// Leaving (one's own membership) or removing a member (an admin's).
#[utoipa::path(delete, path = "/users/team_membership/{id}/", responses((status = 204)))]
async fn delete_membership(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let m = find_membership(&state, &auth, id).await?;
    let command = if m.user_id == auth.caller.actor.id {
        TeamCommand::Leave
    } else {
        TeamCommand::RemoveMember { user: m.user_id }
    };
    state
        .commands
        .team_command(&auth.caller, m.team, None, &command)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
