//! Logging in from a browser (a session cookie and its CSRF token), logging out, and personal
//! access tokens for scripts (`Authorization: Bearer ...`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use exact_domain::user::UserCommand;
use exact_projections::catalog_read::TokenRow;
use serde::Deserialize;
use serde_json::Value;
use tower_sessions::Session;
use utoipa::ToSchema;

use super::body::{lenient, Body};
use super::input::wrong;
use super::shapes::{self, Caller, CreatedToken, Token};
use super::{caller_for, params::Params};
use crate::auth::{
    check_csrf, sessions, start_session, token_hash, Authenticated, ClientAddr, SessionLogin,
    SESSION_KEY,
};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login/", post(login))
        .route("/auth/logout/", post(logout))
        .route("/auth/session/", get(current))
        .route("/users/tokens/", get(list_tokens).post(create_token))
        .route("/users/tokens/{token}/", delete(revoke_token))
}

fn session_failed(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::internal("storing the session failed", e)
}

/// What a login reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Login)]
pub(in crate::rest) struct LoginBody {
    #[serde(deserialize_with = "lenient::required_string")]
    username: String,
    #[serde(deserialize_with = "lenient::required_string")]
    password: String,
}

/// Log in: a session cookie and its CSRF token
///
/// `{username, password}` (JSON or form) → a session cookie; answers the user and the CSRF
/// token that writes through this session must send in `X-CSRFToken`.
#[utoipa::path(post, path = "/auth/login/", request_body = LoginBody, responses((status = 200, body = crate::rest::shapes::Caller)))]
async fn login(
    State(state): State<AppState>,
    session: Session,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Body { fields, .. }: Body<LoginBody>,
) -> Result<Json<Caller>, ApiError> {
    sessions::check_origin(&headers, state.config.public_url.as_deref())?;
    let LoginBody { username, password } = fields;
    let user = state
        .login(&username, &password, address.as_deref())
        .await?;
    let csrf = start_session(&session, &user).await?;
    Ok(Json(Caller {
        id: user.id,
        username: user.username.clone(),
        is_superuser: user.is_superuser,
        is_staff: user.is_staff,
        csrf_token: Some(csrf),
    }))
}

/// End the session
///
/// Ends the session (which must send its CSRF token, like every write through it); the session
/// layer then tells the browser to forget the cookie.
#[utoipa::path(post, path = "/auth/logout/", responses((status = 204)))]
async fn logout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    sessions::check_origin(&headers, state.config.public_url.as_deref())?;
    let login: Option<SessionLogin> = session
        .get(SESSION_KEY)
        .await
        .map_err(|e| session_failed(&e))?;
    if let Some(login) = &login {
        check_csrf(&headers, login)?;
    }
    session.flush().await.map_err(|e| session_failed(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the caller is
///
/// Who the caller is (by any way in), and the session's CSRF token if they came by cookie.
#[utoipa::path(get, path = "/auth/session/", responses((status = 200, body = crate::rest::shapes::Caller)))]
async fn current(auth: Authenticated, session: Session) -> Result<Json<Caller>, ApiError> {
    let login: Option<SessionLogin> = session
        .get(SESSION_KEY)
        .await
        .map_err(|e| session_failed(&e))?;
    Ok(Json(Caller {
        id: auth.user.id,
        username: auth.user.username.clone(),
        is_superuser: auth.user.is_superuser,
        is_staff: auth.user.is_staff,
        csrf_token: login.map(|l| l.csrf),
    }))
}

fn token_json(t: &TokenRow) -> Value {
    shapes::value(&Token::of(t))
}

/// The caller's personal access tokens
#[utoipa::path(get, path = "/users/tokens/", responses((status = 200, body = crate::rest::shapes::TokenPage)))]
async fn list_tokens(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let rows = state.read.access_tokens(auth.user.id).await?;
    Ok(Json(params.page_of(rows.iter().map(token_json).collect())?))
}

/// What a token's creation reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewToken)]
pub(in crate::rest) struct NewTokenBody {
    #[serde(deserialize_with = "lenient::required_string")]
    name: String,
}

/// Create a token (shown once)
///
/// `{name}` → a new token, shown in this answer only: the server keeps its SHA-256.
#[utoipa::path(post, path = "/users/tokens/", request_body = NewTokenBody, responses((status = 201, body = crate::rest::shapes::CreatedToken)))]
async fn create_token(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<NewTokenBody>,
) -> Result<Response, ApiError> {
    let name = fields.name;
    let id = uuid::Uuid::now_v7();
    let token = format!(
        "exact_{}_{}",
        id.simple(),
        crate::auth::password::random_secret()
    );
    let command = UserCommand::CreateToken {
        token: id,
        name,
        token_hash: token_hash(&token),
    };
    state
        .commands
        .user_command(&caller_for(&auth, &body), auth.user.id, &command)
        .await?;
    let rows = state.read.access_tokens(auth.user.id).await?;
    let row = rows
        .iter()
        .find(|t| t.token == id.to_string())
        .ok_or(exact_domain::DomainError::NotFound("access token"))?;
    let answer = CreatedToken {
        shown: Token::of(row),
        token,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Revoke a token
#[utoipa::path(delete, path = "/users/tokens/{token}/", responses((status = 204)))]
async fn revoke_token(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(token): Path<String>,
) -> Result<StatusCode, ApiError> {
    let token: uuid::Uuid = token.parse().map_err(|_| wrong("token", "a token id"))?;
    state
        .commands
        .user_command(
            &auth.caller,
            auth.user.id,
            &UserCommand::RevokeToken { token },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
