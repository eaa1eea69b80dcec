//! Users, teams, memberships, products, annotation types and image sets.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use exact_domain::annotation_type::{AnnotationTypeCommand, TypeSettings};
use exact_domain::image_set::{CollaborationType, ImageSetCommand, SetSettings};
use exact_domain::product::ProductCommand;
use exact_domain::team::TeamCommand;
use exact_domain::user::UserCommand;
use exact_domain::DomainError;
use exact_projections::catalog_read::{
    AnnotationTypeRow, ImageSetRow, MembershipRow, ProductRow, TeamRow, UserRow,
};
use serde_json::{json, Value};

use super::input::{wrong, Fields, Input};
use super::params::{format_time, Params};
use super::{caller_for, if_match, with_etag};
use crate::auth::{password, Authenticated};
use crate::commands::NewUser;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users/users/", get(list_users).post(create_user))
        .route(
            "/users/users/{id}/",
            get(get_user)
                .patch(update_user)
                .put(update_user)
                .delete(deactivate_user),
        )
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
        .route(
            "/administration/products/",
            get(list_products).post(create_product),
        )
        .route(
            "/administration/products/{id}/",
            get(get_product)
                .patch(update_product)
                .put(update_product)
                .delete(delete_product),
        )
        .route(
            "/annotations/annotation_types/",
            get(list_types).post(create_type),
        )
        .route(
            "/annotations/annotation_types/{id}/",
            get(get_type)
                .patch(update_type)
                .put(update_type)
                .delete(delete_type),
        )
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

fn created(body: Value, version: i64) -> Response {
    with_etag(StatusCode::CREATED, body, version)
}

fn ok(body: Value, version: i64) -> Response {
    with_etag(StatusCode::OK, body, version)
}

fn not_found(what: &'static str) -> ApiError {
    DomainError::NotFound(what).into()
}

// ---- users ----

/// Who belongs to which team, which decides what a caller sees of an account.
pub(super) struct Memberships {
    teams: BTreeMap<i64, Vec<i64>>,
    admins: BTreeMap<i64, BTreeSet<i64>>,
}

impl Memberships {
    pub(super) async fn load(state: &AppState) -> Result<Self, ApiError> {
        let mut teams: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        let mut admins: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        for m in state.read.all_memberships().await? {
            teams.entry(m.user_id).or_default().push(m.team);
            if m.is_admin {
                admins.entry(m.team).or_default().insert(m.user_id);
            }
        }
        Ok(Self { teams, admins })
    }

    fn teams_of(&self, user: i64) -> &[i64] {
        self.teams.get(&user).map_or(&[][..], Vec::as_slice)
    }

    /// Whether `viewer` may see `user`'s email: their own, a superuser, or an admin of a team
    /// both belong to. Everyone else sees every other field, as in EXACT.
    fn shows_email(&self, viewer: &Authenticated, user: i64) -> bool {
        viewer.user.id == user
            || viewer.user.is_superuser
            || self.teams_of(user).iter().any(|team| {
                self.admins
                    .get(team)
                    .is_some_and(|admins| admins.contains(&viewer.user.id))
            })
    }

    /// An account as EXACT's serializer shows it to `viewer`.
    pub(super) fn user_json(&self, user: &UserRow, viewer: &Authenticated) -> Value {
        let email = if self.shows_email(viewer, user.id) {
            user.email.as_str()
        } else {
            ""
        };
        json!({
            "id": user.id,
            "username": user.username,
            "email": email,
            "is_superuser": user.is_superuser,
            "is_staff": user.is_staff,
            "is_active": user.is_active,
            "last_login": Value::Null,
            "date_joined": format_time(user.date_joined),
            "team_set": self.teams_of(user.id),
        })
    }
}

/// Every signed-in user may list accounts (to add members by name), as in EXACT.
async fn list_users(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let memberships = Memberships::load(&state).await?;
    let ids = params.id_filter("id")?;
    let team = params.int("team")?;
    let (superuser, staff, active) = (
        params.bool("is_superuser")?,
        params.bool("is_staff")?,
        params.bool("is_active")?,
    );
    // Logins are not recorded: every `last_login` is null, so a filter on it keeps all or none.
    let login_kept = match params.bool("last_login__isnull")? {
        Some(null) => null,
        None => [
            "last_login",
            "last_login__gte",
            "last_login__lte",
            "last_login__range",
        ]
        .iter()
        .all(|name| params.str(name).is_none()),
    };
    let rows: Vec<Value> = state
        .read
        .users()
        .await?
        .iter()
        .filter(|u| ids.as_ref().is_none_or(|ids| ids.contains(&u.id)))
        .filter(|u| params.text_matches("username", &u.username))
        .filter(|u| superuser.is_none_or(|v| v == u.is_superuser))
        .filter(|u| staff.is_none_or(|v| v == u.is_staff))
        .filter(|u| active.is_none_or(|v| v == u.is_active))
        .filter(|u| team.is_none_or(|t| memberships.teams_of(u.id).contains(&t)))
        .filter(|_| login_kept)
        .map(|u| memberships.user_json(u, &auth))
        .collect();
    Ok(Json(params.page_of(rows)?))
}

async fn get_user(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let user = state
        .read
        .user(id)
        .await?
        .ok_or_else(|| not_found("user"))?;
    let body = Memberships::load(&state).await?.user_json(&user, &auth);
    Ok(ok(params.shape(body), user.version))
}

async fn create_user(
    State(state): State<AppState>,
    auth: Authenticated,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let username = fields.required_string("username")?;
    // Without a password the account cannot log in until one is set: a random one is hashed.
    let password_text = match fields.string("password")? {
        Some(p) => p,
        None => random_secret(),
    };
    let new = NewUser {
        username,
        email: fields.string("email")?.unwrap_or_default(),
        password_hash: password::hash(password_text).await?,
        is_superuser: fields.bool("is_superuser")?.unwrap_or(false),
        is_staff: fields.bool("is_staff")?.unwrap_or(false),
    };
    let caller = caller_for(&auth, &body);
    let written = state.commands.create_user(&caller, new).await?;
    let user = state
        .read
        .user(written.id)
        .await?
        .ok_or_else(|| not_found("user"))?;
    let body = Memberships::load(&state).await?.user_json(&user, &auth);
    Ok(created(body, written.version))
}

pub fn random_secret() -> String {
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).expect("the system has a source of randomness");
    hex::encode(bytes)
}

async fn update_user(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let current = state
        .read
        .user(id)
        .await?
        .ok_or_else(|| not_found("user"))?;
    let caller = caller_for(&auth, &body);
    let mut commands = Vec::new();
    if let Some(password_text) = fields.string("password")? {
        commands.push(UserCommand::ChangePassword {
            password_hash: password::hash(password_text).await?,
        });
    }
    if let Some(active) = fields.bool("is_active")? {
        commands.push(UserCommand::SetActive(active));
    }
    let superuser = fields.bool("is_superuser")?;
    let staff = fields.bool("is_staff")?;
    if superuser.is_some() || staff.is_some() {
        commands.push(UserCommand::SetRoles {
            is_superuser: superuser.unwrap_or(current.is_superuser),
            is_staff: staff.unwrap_or(current.is_staff),
        });
    }
    for command in &commands {
        state.commands.user_command(&caller, id, command).await?;
    }
    let user = state
        .read
        .user(id)
        .await?
        .ok_or_else(|| not_found("user"))?;
    let body = Memberships::load(&state).await?.user_json(&user, &auth);
    Ok(ok(body, user.version))
}

/// Accounts are never erased (their events name them): DELETE deactivates.
async fn deactivate_user(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .commands
        .user_command(&auth.caller, id, &UserCommand::SetActive(false))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- teams and memberships ----

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
    json!({
        "id": team.id,
        "name": team.name,
        "website": team.website,
        "members": members.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        "memberships": members.iter().map(membership_json).collect::<Vec<_>>(),
        "image_sets": links.sets.get(&team.id).cloned().unwrap_or_default(),
        "product_set": links.products.get(&team.id).cloned().unwrap_or_default(),
    })
}

async fn list_teams(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let links = team_links(&state, &auth).await?;
    let ids = params.id_filter("id")?;
    let member = params.int("members")?;
    let set = params.int("image_sets")?;
    let rows = state
        .read
        .readable_teams(auth.caller.actor)
        .await?
        .iter()
        .filter(|t| ids.as_ref().is_none_or(|ids| ids.contains(&t.id)))
        .filter(|t| params.text_matches("name", &t.name))
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

async fn readable_team(
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

/// A team needs only its name (EXACT's server demanded `memberships` and so refused its own
/// client). The creator becomes its admin.
async fn create_team(
    State(state): State<AppState>,
    auth: Authenticated,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let name = fields.required_string("name")?;
    let website = fields.string("website")?.unwrap_or_default();
    let caller = caller_for(&auth, &body);
    let written = state.commands.create_team(&caller, name, website).await?;
    let team = readable_team(&state, &auth, written.id).await?;
    let links = team_links(&state, &auth).await?;
    Ok(created(team_json(&team, &links), written.version))
}

/// EXACT's team update: the name and website, by the team's admins.
async fn update_team(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    readable_team(&state, &auth, id).await?;
    let command = TeamCommand::Change {
        name: fields.string("name")?,
        website: fields.string("website")?,
    };
    state
        .commands
        .team_command(&caller_for(&auth, &body), id, if_match(&headers)?, &command)
        .await?;
    let team = readable_team(&state, &auth, id).await?;
    let links = team_links(&state, &auth).await?;
    Ok(ok(team_json(&team, &links), team.version))
}

/// EXACT's team delete: the team ends with its members in it, as when the last one leaves;
/// its sets stay, public and locked, without a team.
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

/// A membership's id: the team and the user in one number (`team * 2^32 + user`), since a
/// membership is a pair and has no id of its own.
pub fn membership_id(team: i64, user: i64) -> i64 {
    (team << 32) | (user & 0xffff_ffff)
}

fn membership_json(m: &MembershipRow) -> Value {
    json!({
        "id": membership_id(m.team, m.user_id),
        "is_admin": m.is_admin,
        "team": m.team,
        "user": m.user_id,
    })
}

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
    let (team, user, admin) = (
        params.int("team")?,
        params.int("user")?,
        params.bool("is_admin")?,
    );
    let id = params.int("id")?;
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
    let (team, user) = (id >> 32, id & 0xffff_ffff);
    readable_team(state, auth, team).await?;
    state
        .read
        .memberships(team)
        .await?
        .into_iter()
        .find(|m| m.user_id == user)
        .ok_or_else(|| not_found("team membership"))
}

async fn get_membership(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(membership_json(
        &find_membership(&state, &auth, id).await?,
    )))
}

async fn create_membership(
    State(state): State<AppState>,
    auth: Authenticated,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let team = fields.required_int("team")?;
    let user = fields.required_int("user")?;
    readable_team(&state, &auth, team).await?;
    let caller = caller_for(&auth, &body);
    state
        .commands
        .team_command(&caller, team, None, &TeamCommand::AddMember { user })
        .await?;
    if fields.bool("is_admin")? == Some(true) {
        state
            .commands
            .team_command(&caller, team, None, &TeamCommand::GrantAdmin { user })
            .await?;
    }
    let m = find_membership(&state, &auth, membership_id(team, user)).await?;
    Ok((StatusCode::CREATED, Json(membership_json(&m))).into_response())
}

async fn update_membership(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Input(body): Input,
) -> Result<Json<Value>, ApiError> {
    let fields = Fields::of(&body)?;
    let m = find_membership(&state, &auth, id).await?;
    let caller = caller_for(&auth, &body);
    if let Some(admin) = fields.bool("is_admin")? {
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

/// Leaving (one's own membership) or removing a member (an admin's).
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

// ---- products ----

fn product_json(p: &ProductRow, sets: &[i64], types: &[i64]) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "team": p.team,
        "creator": p.creator,
        "time": format_time(p.time),
        "imagesets": sets,
        "annotationtype_set": types,
    })
}

struct ProductLinks {
    sets: BTreeMap<i64, Vec<i64>>,
    types: BTreeMap<i64, Vec<i64>>,
}

async fn product_links(state: &AppState, auth: &Authenticated) -> Result<ProductLinks, ApiError> {
    let readable = state.read.readable_set_ids(auth.caller.actor).await?;
    let mut sets: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (product, set) in state.read.product_links().await? {
        if readable.contains(&set) {
            sets.entry(product).or_default().push(set);
        }
    }
    let mut types: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for t in state.read.readable_types(auth.caller.actor).await? {
        types.entry(t.product).or_default().push(t.id);
    }
    Ok(ProductLinks { sets, types })
}

fn product_with(p: &ProductRow, links: &ProductLinks) -> Value {
    product_json(
        p,
        links.sets.get(&p.id).map_or(&[][..], Vec::as_slice),
        links.types.get(&p.id).map_or(&[][..], Vec::as_slice),
    )
}

async fn list_products(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let links = product_links(&state, &auth).await?;
    let ids = params.id_filter("id")?;
    let (team, creator, set, annotation_type) = (
        params.int("team")?,
        params.int("creator")?,
        params.int("imagesets")?,
        params.int("annotationtype")?,
    );
    let rows = state
        .read
        .readable_products(auth.caller.actor)
        .await?
        .iter()
        .filter(|p| ids.as_ref().is_none_or(|ids| ids.contains(&p.id)))
        .filter(|p| params.text_matches("name", &p.name))
        .filter(|p| params.text_matches("description", &p.description))
        .filter(|p| team.is_none_or(|t| t == p.team))
        .filter(|p| creator.is_none_or(|c| c == p.creator))
        .filter(|p| set.is_none_or(|s| links.sets.get(&p.id).is_some_and(|v| v.contains(&s))))
        .filter(|p| {
            annotation_type.is_none_or(|t| links.types.get(&p.id).is_some_and(|v| v.contains(&t)))
        })
        .map(|p| product_with(p, &links))
        .collect();
    Ok(Json(params.page_of(rows)?))
}

async fn readable_product(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<ProductRow, ApiError> {
    state
        .read
        .readable_products(auth.caller.actor)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| not_found("product"))
}

async fn get_product(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let product = readable_product(&state, &auth, id).await?;
    let links = product_links(&state, &auth).await?;
    Ok(ok(
        params.shape(product_with(&product, &links)),
        product.version,
    ))
}

async fn create_product(
    State(state): State<AppState>,
    auth: Authenticated,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let name = fields.required_string("name")?;
    let team = fields.required_int("team")?;
    let description = fields.string("description")?.unwrap_or_default();
    let sets = fields.ids("imagesets")?.unwrap_or_default();
    let caller = caller_for(&auth, &body);
    readable_team(&state, &auth, team).await?;
    let written = state
        .commands
        .create_product(&caller, team, name, description)
        .await?;
    let mut version = written.version;
    for image_set in sets {
        version = state
            .commands
            .product_command(
                &caller,
                written.id,
                None,
                &ProductCommand::Link { image_set },
            )
            .await?
            .version;
    }
    let product = readable_product(&state, &auth, written.id).await?;
    let links = product_links(&state, &auth).await?;
    Ok(created(product_with(&product, &links), version))
}

async fn update_product(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    readable_product(&state, &auth, id).await?;
    let caller = caller_for(&auth, &body);
    let mut expected = if_match(&headers)?;
    let (name, description) = (fields.string("name")?, fields.string("description")?);
    if name.is_some() || description.is_some() {
        let written = state
            .commands
            .product_command(
                &caller,
                id,
                expected,
                &ProductCommand::Change { name, description },
            )
            .await?;
        expected = expected.map(|_| written.version);
    }
    if let Some(wanted) = fields.ids("imagesets")? {
        let links = product_links(&state, &auth).await?;
        let now: BTreeSet<i64> = links
            .sets
            .get(&id)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let wanted: BTreeSet<i64> = wanted.into_iter().collect();
        for image_set in wanted.difference(&now) {
            let w = state
                .commands
                .product_command(
                    &caller,
                    id,
                    expected,
                    &ProductCommand::Link {
                        image_set: *image_set,
                    },
                )
                .await?;
            expected = expected.map(|_| w.version);
        }
        for image_set in now.difference(&wanted) {
            let w = state
                .commands
                .product_command(
                    &caller,
                    id,
                    expected,
                    &ProductCommand::Unlink {
                        image_set: *image_set,
                    },
                )
                .await?;
            expected = expected.map(|_| w.version);
        }
    }
    let product = readable_product(&state, &auth, id).await?;
    let links = product_links(&state, &auth).await?;
    Ok(ok(product_with(&product, &links), product.version))
}

/// EXACT's product delete: gone from lists, its types offered and listed nowhere.
async fn delete_product(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    readable_product(&state, &auth, id).await?;
    state
        .commands
        .product_command(
            &auth.caller,
            id,
            if_match(&headers)?,
            &ProductCommand::Delete,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- annotation types ----

pub(super) fn type_json(t: &AnnotationTypeRow) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "vector_type": t.vector_type,
        "node_count": t.node_count,
        "enable_concealed": t.enable_concealed,
        "enable_blurred": t.enable_blurred,
        "color_code": t.color_code,
        "default_width": t.default_width,
        "default_height": t.default_height,
        "sort_order": t.sort_order,
        "closed": t.closed,
        "area_hit_test": t.area_hit_test,
        "product": t.product,
        "active": t.active,
    })
}

async fn list_types(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let ids = params.id_filter("id")?;
    let vector_types = params.id_filter("vector_type")?;
    let (low, high) = (
        params.int("vector_type__gte")?,
        params.int("vector_type__lte")?,
    );
    let range = params.float_range("vector_type")?;
    let (active, product) = (params.bool("active")?, params.int("product")?);
    let rows = state
        .read
        .readable_types(auth.caller.actor)
        .await?
        .iter()
        .filter(|t| ids.as_ref().is_none_or(|ids| ids.contains(&t.id)))
        .filter(|t| params.text_matches("name", &t.name))
        .filter(|t| {
            vector_types
                .as_ref()
                .is_none_or(|v| v.contains(&t.vector_type))
        })
        .filter(|t| {
            low.is_none_or(|l| t.vector_type >= l) && high.is_none_or(|h| t.vector_type <= h)
        })
        .filter(|t| {
            range.is_none_or(|(a, b)| (t.vector_type as f64) >= a && (t.vector_type as f64) <= b)
        })
        .filter(|t| active.is_none_or(|a| a == t.active))
        .filter(|t| product.is_none_or(|p| p == t.product))
        .map(type_json)
        .collect();
    Ok(Json(params.page_of(rows)?))
}

async fn readable_type(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<AnnotationTypeRow, ApiError> {
    state
        .read
        .readable_types(auth.caller.actor)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| not_found("annotation type"))
}

async fn get_type(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let t = readable_type(&state, &auth, id).await?;
    Ok(ok(params.shape(type_json(&t)), t.version))
}

/// `settings` with every field the body names replaced.
fn type_settings(
    fields: &Fields<'_>,
    mut settings: TypeSettings,
) -> Result<TypeSettings, ApiError> {
    if let Some(v) = fields.string("name")? {
        settings.name = v;
    }
    if let Some(v) = fields.int("node_count")? {
        settings.node_count = u32::try_from(v).map_err(|_| wrong("node_count", "0 or more"))?;
    }
    if let Some(v) = fields.string("color_code")? {
        settings.color_code = v;
    }
    macro_rules! take {
        ($($field:ident: $kind:ident),*) => {$(
            if let Some(v) = fields.$kind(stringify!($field))? {
                settings.$field = v;
            }
        )*};
    }
    take!(default_width: int, default_height: int, sort_order: int, closed: bool,
          area_hit_test: bool, enable_concealed: bool, enable_blurred: bool, active: bool);
    Ok(settings)
}

async fn create_type(
    State(state): State<AppState>,
    auth: Authenticated,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let product = fields.required_int("product")?;
    let vector_type = fields.required_int("vector_type")?;
    fields.required_string("name")?;
    readable_product(&state, &auth, product).await?;
    let settings = type_settings(&fields, TypeSettings::default())?;
    let caller = caller_for(&auth, &body);
    let written = state
        .commands
        .create_annotation_type(&caller, product, vector_type, settings)
        .await?;
    let t = readable_type(&state, &auth, written.id).await?;
    Ok(created(type_json(&t), written.version))
}

fn settings_of(t: &AnnotationTypeRow) -> TypeSettings {
    TypeSettings {
        name: t.name.clone(),
        node_count: u32::try_from(t.node_count).unwrap_or(0),
        color_code: t.color_code.clone(),
        default_width: t.default_width,
        default_height: t.default_height,
        sort_order: t.sort_order,
        closed: t.closed,
        area_hit_test: t.area_hit_test,
        enable_concealed: t.enable_concealed,
        enable_blurred: t.enable_blurred,
        active: t.active,
    }
}

async fn update_type(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let current = readable_type(&state, &auth, id).await?;
    let settings = type_settings(&fields, settings_of(&current))?;
    let caller = caller_for(&auth, &body);
    let mut expected = if_match(&headers)?;
    // A new vector type first: refused (409, naming the annotations) while live annotations
    // of the type would not fit it, and then nothing else changes either.
    if let Some(code) = fields.int("vector_type")? {
        let written = state
            .commands
            .annotation_type_command(
                &caller,
                id,
                expected,
                &AnnotationTypeCommand::ChangeVectorType(code),
            )
            .await?;
        expected = expected.map(|_| written.version);
    }
    state
        .commands
        .change_annotation_type(&caller, id, expected, settings)
        .await?;
    let t = readable_type(&state, &auth, id).await?;
    Ok(ok(type_json(&t), t.version))
}

/// EXACT's type delete: the type leaves lists and retrieves, and its live annotations are
/// deleted with it (EXACT's cascade); the log keeps all of it for reads as of earlier moments.
async fn delete_type(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    readable_type(&state, &auth, id).await?;
    state
        .commands
        .annotation_type_command(
            &auth.caller,
            id,
            if_match(&headers)?,
            &AnnotationTypeCommand::Delete,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- image sets ----

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
        .map(|name| (name.clone(), super::set_tags::tag_id(name)))
        .collect();
    Ok(SetLinks {
        images,
        products,
        tags,
        tag_ids,
    })
}

fn set_json(s: &ImageSetRow, links: &SetLinks) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "path": format!("imagesets/{}", s.id),
        "location": s.location,
        "description": s.description,
        "images": links.images.get(&s.id).cloned().unwrap_or_default(),
        "product_set": links.products.get(&s.id).cloned().unwrap_or_default(),
        "main_annotation_type": s.main_annotation_type,
        // EXACT's tags are rows with ids (`images/set_tags`); here they are names of the set,
        // in `tags`, with their ids in `set_tags`.
        "set_tags": links.tags.get(&s.id).map_or_else(Vec::new, |names| {
            names.iter().filter_map(|n| links.tag_ids.get(n).copied()).collect()
        }),
        "tags": links.tags.get(&s.id).cloned().unwrap_or_default(),
        "team": s.team,
        "creator": s.creator,
        "public": s.public,
        "public_collaboration": s.public_collaboration,
        "image_lock": s.image_lock,
        "priority": s.priority,
        "collaboration_type": s.collaboration_type,
        "zip_state": 0,
        "time": format_time(s.time),
    })
}

async fn list_sets(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let links = set_links(&state, &auth).await?;
    let ids = params.id_filter("id")?;
    let (team, creator, public, main_type) = (
        params.int("team")?,
        params.int("creator")?,
        params.bool("public")?,
        params.int("main_annotation_type")?,
    );
    let (product, collaboration, priority, image) = (
        params.int("product")?,
        params.int("collaboration_type")?,
        params.int("priority")?,
        params.int("images")?,
    );
    let (from, to) = params.time_range("time")?;
    let zip_state = params.int("zip_state")?;
    // A tag by its id: the name it numbers.
    let tag = match params.int("set_tags")? {
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
    let version_sets: Option<Vec<i64>> = match params.int("set_versions")? {
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
        .filter(|s| params.text_matches("name", &s.name))
        .filter(|s| params.text_matches("location", &s.location))
        .filter(|s| params.text_matches("description", &s.description))
        .filter(|s| params.text_matches("path", &format!("imagesets/{}", s.id)))
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
        .filter(|s| from.is_none_or(|f| s.time >= f) && to.is_none_or(|t| s.time <= t))
        .filter(|s| {
            tag.as_ref()
                .is_none_or(|t| links.tags.get(&s.id).is_some_and(|v| v.contains(t)))
        })
        .filter(|s| version_sets.as_ref().is_none_or(|v| v.contains(&s.id)))
        // No zip of a set is ever made here (`zip_state` 0, EXACT's "invalid").
        .filter(|_| zip_state.is_none_or(|z| z == 0))
        .map(|s| set_json(s, &links))
        .collect();
    Ok(Json(params.page_of(rows)?))
}

async fn get_set(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (set, _) = state.commands.set_access(&auth.caller, id).await?;
    let links = set_links(&state, &auth).await?;
    Ok(ok(params.shape(set_json(&set, &links)), set.version))
}

fn set_settings(fields: &Fields<'_>, mut s: SetSettings) -> Result<SetSettings, ApiError> {
    macro_rules! take {
        ($($field:ident: $kind:ident),*) => {$(
            if let Some(v) = fields.$kind(stringify!($field))? {
                s.$field = v;
            }
        )*};
    }
    take!(name: string, location: string, description: string, public: bool,
          public_collaboration: bool, image_lock: bool, priority: int);
    if let Some(code) = fields.int("collaboration_type")? {
        s.collaboration_type = CollaborationType::try_from(code).map_err(|_| {
            wrong(
                "collaboration_type",
                "0 (collaborative), 1 (competitive) or 2",
            )
        })?;
    }
    if fields.has("main_annotation_type") {
        s.main_annotation_type = fields.int("main_annotation_type")?;
    }
    if let Some(Value::Array(tags)) = fields.value("tags") {
        s.tags = tags
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| wrong("tags", "a list of names"))
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(s)
}

async fn create_set(
    State(state): State<AppState>,
    auth: Authenticated,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let team = fields.required_int("team")?;
    fields.required_string("name")?;
    readable_team(&state, &auth, team).await?;
    let settings = set_settings(&fields, SetSettings::default())?;
    let caller = caller_for(&auth, &body);
    let written = state
        .commands
        .create_image_set(&caller, team, settings)
        .await?;
    let (set, _) = state.commands.set_access(&auth.caller, written.id).await?;
    let links = set_links(&state, &auth).await?;
    Ok(created(set_json(&set, &links), written.version))
}

/// A set's settings as they stand, tags included.
pub(super) async fn current_settings(
    state: &AppState,
    set: &ImageSetRow,
) -> Result<SetSettings, ApiError> {
    Ok(SetSettings {
        name: set.name.clone(),
        location: set.location.clone(),
        description: set.description.clone(),
        public: set.public,
        public_collaboration: set.public_collaboration,
        image_lock: set.image_lock,
        priority: set.priority,
        collaboration_type: CollaborationType::try_from(set.collaboration_type).unwrap_or_default(),
        main_annotation_type: set.main_annotation_type,
        tags: state.read.set_tags(set.id).await?.into_iter().collect(),
    })
}

async fn update_set(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Input(body): Input,
) -> Result<Response, ApiError> {
    let fields = Fields::of(&body)?;
    let (set, _) = state.commands.set_access(&auth.caller, id).await?;
    let settings = set_settings(&fields, current_settings(&state, &set).await?)?;
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

/// Pins a set to the top of the caller's home page, or unpins it (EXACT's `pinned_by`; not in
/// EXACT's REST API, which left it to a page). Both are idempotent.
async fn pin_set(
    state: State<AppState>,
    auth: Authenticated,
    id: Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let id = set_pin(state, auth, id, true).await?;
    Ok(Json(json!({ "image_set": id, "pinned": true })))
}

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
