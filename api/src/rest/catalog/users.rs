//! Accounts: `users/users/` (EXACT's fields; emails shown to whom may see them).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use exact_domain::user::UserCommand;
use exact_projections::catalog_read::UserRow;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{created, not_found, ok};
use crate::auth::{password, Authenticated};
use crate::commands::NewUser;
use crate::error::ApiError;
use crate::rest::access::Memberships;
use crate::rest::body::{lenient, Body};
use crate::rest::caller_for;
use crate::rest::filters::{IdFilter, UsernameFilter};
use crate::rest::input::missing;
use crate::rest::params::Params;
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/users/users/", get(list_users).post(create_user))
        .route(
            "/users/users/{id}/",
            get(get_user)
                .patch(update_user)
                .put(update_user)
                .delete(deactivate_user),
        )
}

/// The filters of the account list.
#[derive(Debug, Deserialize)]
struct UserFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    username: UsernameFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    team: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    is_superuser: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    is_staff: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    is_active: Option<bool>,
    #[serde(
        rename = "last_login__isnull",
        default,
        deserialize_with = "lenient::bool"
    )]
    last_login_isnull: Option<bool>,
    /// `last_login`, `__gte`, `__lte`, `__range`: any of them keeps nobody (see below).
    #[serde(default, deserialize_with = "lenient::string")]
    last_login: Option<String>,
    #[serde(
        rename = "last_login__gte",
        default,
        deserialize_with = "lenient::string"
    )]
    last_login_gte: Option<String>,
    #[serde(
        rename = "last_login__lte",
        default,
        deserialize_with = "lenient::string"
    )]
    last_login_lte: Option<String>,
    #[serde(
        rename = "last_login__range",
        default,
        deserialize_with = "lenient::string"
    )]
    last_login_range: Option<String>,
}

/// Accounts
///
/// Every signed-in user may list accounts (to add members by name), as in EXACT.
#[utoipa::path(get, path = "/users/users/", responses((status = 200, body = crate::rest::shapes::UserPage)))]
async fn list_users(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let memberships = Memberships::load(&state).await?;
    let f: UserFilters = params.filters()?;
    let ids = f.id.allowed();
    let (team, superuser, staff, active) = (f.team, f.is_superuser, f.is_staff, f.is_active);
    // Logins are not recorded: every `last_login` is null, so a filter on it keeps all or none.
    let login_kept = match f.last_login_isnull {
        Some(null) => null,
        None => [
            &f.last_login,
            &f.last_login_gte,
            &f.last_login_lte,
            &f.last_login_range,
        ]
        .iter()
        .all(|bound| bound.is_none()),
    };
    let rows: Vec<Value> = state
        .read
        .users()
        .await?
        .iter()
        .filter(|u| ids.as_ref().is_none_or(|ids| ids.contains(&u.id)))
        .filter(|u| f.username.keeps(&u.username))
        .filter(|u| superuser.is_none_or(|v| v == u.is_superuser))
        .filter(|u| staff.is_none_or(|v| v == u.is_staff))
        .filter(|u| active.is_none_or(|v| v == u.is_active))
        .filter(|u| team.is_none_or(|t| memberships.teams_of(u.id).contains(&t)))
        .filter(|_| login_kept)
        .map(|u| memberships.user_json(u, &auth))
        .collect();
    Ok(Json(params.page_of(rows)?))
}

/// Account `id`, and its answer as `viewer` may see it.
async fn user_answer(
    state: &AppState,
    viewer: &Authenticated,
    id: i64,
) -> Result<(UserRow, Value), ApiError> {
    let user = state
        .read
        .user(id)
        .await?
        .ok_or_else(|| not_found("user"))?;
    let body = Memberships::load(state).await?.user_json(&user, viewer);
    Ok((user, body))
}

/// One account
#[utoipa::path(get, path = "/users/users/{id}/", responses((status = 200, body = crate::rest::shapes::User)))]
async fn get_user(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let (user, body) = user_answer(&state, &auth, id).await?;
    Ok(ok(params.shape(body), user.version))
}

/// What an account's creation or update reads (the username only on creation).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = UserInput)]
pub(in crate::rest) struct UserBody {
    #[serde(default, deserialize_with = "lenient::string")]
    username: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    password: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    is_superuser: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    is_staff: Option<bool>,
    #[serde(default, deserialize_with = "lenient::bool")]
    is_active: Option<bool>,
}

/// Create an account (superusers)
#[utoipa::path(post, path = "/users/users/", request_body = UserBody, responses((status = 201, body = crate::rest::shapes::User)))]
async fn create_user(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<UserBody>,
) -> Result<Response, ApiError> {
    let username = fields.username.ok_or_else(|| missing("username"))?;
    // Without a password the account cannot log in until one is set: a random one is hashed.
    let password_text = fields.password.unwrap_or_else(password::random_secret);
    let new = NewUser {
        username,
        email: fields.email.unwrap_or_default(),
        password_hash: password::hash(password_text).await?,
        is_superuser: fields.is_superuser.unwrap_or(false),
        is_staff: fields.is_staff.unwrap_or(false),
    };
    let caller = caller_for(&auth, &body);
    let written = state.commands.create_user(&caller, new).await?;
    let (_, body) = user_answer(&state, &auth, written.id).await?;
    Ok(created(body, written.version))
}

/// Password, activity, roles
#[utoipa::path(patch, path = "/users/users/{id}/", request_body = UserBody, responses((status = 200, body = crate::rest::shapes::User)))]
async fn update_user(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<UserBody>,
) -> Result<Response, ApiError> {
    let current = state
        .read
        .user(id)
        .await?
        .ok_or_else(|| not_found("user"))?;
    let caller = caller_for(&auth, &body);
    let mut commands = Vec::new();
    if let Some(password_text) = fields.password {
        commands.push(UserCommand::ChangePassword {
            password_hash: password::hash(password_text).await?,
        });
    }
    if let Some(active) = fields.is_active {
        commands.push(UserCommand::SetActive(active));
    }
    let (superuser, staff) = (fields.is_superuser, fields.is_staff);
    if superuser.is_some() || staff.is_some() {
        commands.push(UserCommand::SetRoles {
            is_superuser: superuser.unwrap_or(current.is_superuser),
            is_staff: staff.unwrap_or(current.is_staff),
        });
    }
    for command in &commands {
        state.commands.user_command(&caller, id, command).await?;
    }
    let (user, body) = user_answer(&state, &auth, id).await?;
    Ok(ok(body, user.version))
}

/// Deactivate an account
///
/// Accounts are never erased (their events name them): DELETE deactivates.
#[utoipa::path(delete, path = "/users/users/{id}/", responses((status = 204)))]
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
