//! EXACT's `/accounts/login/`: a plain form (`username`, `password`, and `next`, where to go
//! after), checked by the same function as every other way in (throttling included), and
//! logout. Both are refused from pages of another origin, as on the API.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::{render, PageUser};
use crate::auth::{sessions, start_session, ClientAddr};
use crate::error::Code;
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct Next {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

#[derive(Serialize)]
struct Context<'a> {
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

/// Where to go after logging in: a path on this server, never another site (`//host`,
/// `/\\host` and `https://...` are other sites to a browser, and browsers drop tabs and line
/// breaks, so `/\t/host` is one too). Only visible ASCII passes, which is also what a
/// `Location` header may hold.
fn local(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/",
    }
}

pub async fn login_page(user: Option<PageUser>, Query(query): Query<Next>) -> Response {
    let next = local(query.next.as_deref());
    if user.is_some() {
        return Redirect::to(next).into_response();
    }
    render(
        StatusCode::OK,
        "login.html",
        Context {
            next,
            username: "",
            error: None,
        },
    )
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = local(form.next.as_deref());
    let refused = |status: StatusCode, message: &str| {
        render(
            status,
            "login.html",
            Context {
                next,
                username: &form.username,
                error: Some(message),
            },
        )
    };
    if let Err(e) = sessions::check_origin(&headers, state.config.public_url.as_deref()) {
        return refused(e.status(), &e.message);
    }
    let user = match state
        .login(form.username.trim(), &form.password, address.as_deref())
        .await
    {
        Ok(user) => user,
        Err(e) => return refused(e.status(), &e.message),
    };
    match start_session(&session, &user).await {
        Ok(_) => Redirect::to(next).into_response(),
        Err(e) => refused(e.status(), &e.message),
    }
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrfmiddlewaretoken: String,
}

/// The page's logout button posts the session's token (Django's field name).
pub async fn logout(
    State(state): State<AppState>,
    user: PageUser,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let allowed = sessions::check_origin(&headers, state.config.public_url.as_deref()).is_ok()
        && crate::auth::constant_time_eq(form.csrfmiddlewaretoken.as_bytes(), user.csrf.as_bytes());
    if !allowed {
        return super::error_page(
            Some(&user),
            &crate::error::ApiError::new(
                Code::CsrfFailed,
                "this logout did not come from this server's own page",
            ),
        );
    }
    // The session layer tells the browser to forget the cookie of a flushed session.
    let _ = session.flush().await;
    Redirect::to("/accounts/login/").into_response()
}

#[cfg(test)]
mod tests {
    use super::local;

    #[test]
    fn next_stays_on_this_server() {
        for kept in ["/", "/annotations/3/", "/images/imageset/1/?x=1&y=%2F"] {
            assert_eq!(local(Some(kept)), kept);
        }
        for refused in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil",
            "/é",
            "",
            "evil",
        ] {
            assert_eq!(local(Some(refused)), "/", "{refused:?}");
        }
        assert_eq!(local(None), "/");
    }
}
