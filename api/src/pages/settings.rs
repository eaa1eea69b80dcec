//! `/users/settings/`: the signed-in user's own settings: a new password (the current one is
//! asked again, so a borrowed session cannot lock its owner out) and personal access tokens
//! for scripts (made and revoked by the page's script through the REST API, each shown once).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use exact_domain::user::UserCommand;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::{render, Frame, PageUser};
use crate::auth::{constant_time_eq, password, sessions, start_session, ClientAddr};
use crate::commands::Caller;
use crate::error::{ApiError, Code};
use crate::AppState;

#[derive(Serialize)]
struct Context<'a> {
    frame: Frame<'a>,
    email: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    changed: Option<String>,
}

pub async fn settings_page(
    user: PageUser,
    axum::extract::Query(notice): axum::extract::Query<Notice>,
) -> Response {
    let notice = notice
        .changed
        .is_some()
        .then_some("Your password is changed.");
    page(&user, StatusCode::OK, notice, None)
}

fn page(
    user: &PageUser,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    render(
        status,
        "settings.html",
        Context {
            frame: user.frame(),
            email: &user.user.email,
            notice,
            error,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrfmiddlewaretoken: String,
    current: String,
    new: String,
    repeated: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    user: PageUser,
    session: Session,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    match change(&state, &user, &session, address.as_deref(), &headers, &form).await {
        Ok(()) => Redirect::to("/users/settings/?changed=1").into_response(),
        Err(e) => page(&user, e.status(), None, Some(&e.message)),
    }
}

async fn change(
    state: &AppState,
    user: &PageUser,
    session: &Session,
    address: Option<&str>,
    headers: &HeaderMap,
    form: &PasswordForm,
) -> Result<(), ApiError> {
    sessions::check_origin(headers, state.config.public_url.as_deref())?;
    if !constant_time_eq(form.csrfmiddlewaretoken.as_bytes(), user.csrf.as_bytes()) {
        return Err(ApiError::new(
            Code::CsrfFailed,
            "this change did not come from this server's own page",
        ));
    }
    if form.new != form.repeated {
        return Err(
            ApiError::new(Code::Invalid, "the new password and its repetition differ")
                .with_field("repeated"),
        );
    }
    // The current password, checked (and throttled) as at login.
    state
        .login(&user.user.username, &form.current, address)
        .await
        .map_err(|e| ApiError::new(e.code, "the current password is not right"))?;
    let hash = password::hash(form.new.clone()).await?;
    let caller = Caller::new(user.user.actor(), exact_store::Source::Ui);
    state
        .commands
        .user_command(
            &caller,
            user.user.id,
            &UserCommand::ChangePassword {
                password_hash: hash,
            },
        )
        .await?;
    // A new password ends every session opened before it; this one goes on under a new id.
    let changed = state
        .read
        .user(user.user.id)
        .await?
        .ok_or(exact_domain::DomainError::NotFound("user"))?;
    start_session(session, &changed).await?;
    Ok(())
}
