//! The web app: server-rendered pages (minijinja templates from `web/templates/`) and the
//! browser code and libraries they load (`web/static/`, `web/vendor/`), all embedded in the
//! binary, so running the server needs no Node and no network.
//!
//! Pages read the read models directly and check permissions as the REST API does; every write
//! goes through the REST API (the pages' scripts send the session's CSRF token) or, for login
//! and logout, through the same functions the API uses. Paths are EXACT's, so its users find
//! their way at once: `/accounts/login/`, `/images/imageset/<id>/`, `/annotations/<id>/`.

mod administration;
mod assets;
mod audit;
mod audit_catalog;
mod diff;
mod export_formats;
mod home;
mod imageset;
mod login;
mod settings;
mod team;
mod viewer;

use std::sync::OnceLock;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use exact_projections::catalog_read::UserRow;
use minijinja::Environment;
use serde::Serialize;

use crate::auth::session_login;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::home))
        .route(
            "/accounts/login/",
            get(login::login_page).post(login::login),
        )
        .route("/accounts/logout/", axum::routing::post(login::logout))
        .route("/images/imageset/{id}/", get(imageset::imageset_page))
        .route("/images/imageset/{id}/diff/", get(diff::diff_page))
        .route("/users/team/{id}/", get(team::team_page))
        .route("/users/settings/", get(settings::settings_page))
        .route("/administration/", get(administration::administration_page))
        .route(
            "/administration/export_formats/",
            get(export_formats::export_formats_page),
        )
        .route(
            "/users/settings/password/",
            axum::routing::post(settings::change_password),
        )
        .route("/annotations/{image}/", get(viewer::viewer_page))
        .route("/annotations/{image}/verify/", get(viewer::verify_page))
        .route("/audit/", get(audit::timeline_page))
        .route("/audit/report/", get(audit::report_page))
        .route("/static/{version}/{*path}", get(assets::asset))
}

#[derive(rust_embed::Embed)]
#[folder = "../web/templates/"]
struct Templates;

/// The templates, loaded once; names and descriptions are escaped everywhere (`.html`
/// templates escape by default).
fn templates() -> &'static Environment<'static> {
    static TEMPLATES: OnceLock<Environment<'static>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut env = Environment::new();
        env.set_loader(|name| {
            Ok(Templates::get(name).map(|file| String::from_utf8_lossy(&file.data).into_owned()))
        });
        env.add_function("asset", |path: &str| assets::url(path));
        env
    })
}

/// The Content-Security-Policy of every page: nothing from another origin, no inline script
/// or style (user-supplied text can never become code), no framing. The one hash is that of an
/// empty `<style>` element (the viewer's, which keeps OpenSeadragon from injecting its own).
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='; \
     img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// `template` filled with `context`, as a page that is never cached.
fn render(status: StatusCode, template: &str, context: impl Serialize) -> Response {
    let html = templates()
        .get_template(template)
        .and_then(|t| t.render(context));
    match html {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_POLICY),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => ApiError::internal("rendering a page failed", &e).into_response(),
    }
}

/// The account signed in through the browser's session, and the token its writes carry.
/// A page asked for without a session sends the browser to the login page, and back after.
#[derive(Debug)]
pub struct PageUser {
    pub user: UserRow,
    pub csrf: String,
}

impl PageUser {
    /// What every page's frame shows of the user.
    fn frame(&self) -> Frame<'_> {
        Frame {
            username: &self.user.username,
            user_id: self.user.id,
            is_staff: self.user.is_staff || self.user.is_superuser,
            csrf: &self.csrf,
        }
    }
}

#[derive(Serialize)]
struct Frame<'a> {
    username: &'a str,
    user_id: i64,
    is_staff: bool,
    csrf: &'a str,
}

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match session_login(parts, state).await {
            Ok(Some((user, login))) => Ok(PageUser {
                user,
                csrf: login.csrf,
            }),
            Ok(None) | Err(_) => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map_or("/", axum::http::uri::PathAndQuery::as_str);
                let next = form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>();
                Err(Redirect::to(&format!("/accounts/login/?next={next}")).into_response())
            }
        }
    }
}

impl axum::extract::OptionalFromRequestParts<AppState> for PageUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(match session_login(parts, state).await {
            Ok(Some((user, login))) => Some(PageUser {
                user,
                csrf: login.csrf,
            }),
            _ => None,
        })
    }
}

/// A page that says what went wrong (a set or image that does not exist for this user, ...).
fn error_page(user: Option<&PageUser>, error: &ApiError) -> Response {
    #[derive(Serialize)]
    struct Context<'a> {
        frame: Option<Frame<'a>>,
        status: u16,
        message: &'a str,
    }
    render(
        error.status(),
        "error.html",
        Context {
            frame: user.map(PageUser::frame),
            status: error.status().as_u16(),
            message: &error.message,
        },
    )
}
