//! Browser sessions: tower-sessions with its sqlx stores, so that sessions live in the same
//! database as everything else (SQLite or PostgreSQL) and survive a restart.
//!
//! A session holds the user's id, a fingerprint of their password hash at login (a new password
//! ends every session opened before it; so does deactivation) and a CSRF token that
//! cookie-authenticated writes must echo in `X-CSRFToken` (Django's header name).

use std::str::FromStr;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use exact_store::StoreUrl;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::error::{ApiError, Code};

/// The session cookie's name.
pub const COOKIE: &str = "exact_session";
/// The header a cookie-authenticated write carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrftoken";
/// Inactivity after which a session ends.
const IDLE: time::Duration = time::Duration::hours(12);

/// Refuses a request that a browser sent from a page of another origin (its `Origin`, or else
/// its `Referer`): logging in and out have no CSRF token yet, and a login forced by another
/// site would leave the victim working in the attacker's account. The server's own origin is
/// its public URL when one is set, else the request's `Host`. Clients that are not browsers
/// send neither header and pass.
pub fn check_origin(headers: &HeaderMap, public_url: Option<&str>) -> Result<(), ApiError> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(sent) = text(header::ORIGIN).or_else(|| text(header::REFERER)) else {
        return Ok(());
    };
    let authority = |url: &str| -> Option<String> {
        let rest = url.split_once("://")?.1;
        let authority = rest.split(['/', '?', '#']).next()?;
        (!authority.is_empty()).then(|| authority.to_ascii_lowercase())
    };
    let origin = |url: &str| -> Option<String> {
        let scheme = url.split_once("://")?.0.to_ascii_lowercase();
        Some(format!("{scheme}://{}", authority(url)?))
    };
    let allowed = match public_url {
        Some(public) => origin(sent).is_some() && origin(sent) == origin(public),
        None => {
            let host = text(header::HOST).map(str::to_ascii_lowercase);
            authority(sent).is_some() && authority(sent) == host
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::CrossOrigin,
            "this request came from a page of another site; log in on this server's own pages",
        ))
    }
}

/// Where sessions are kept: the store's own database.
#[derive(Clone, Debug)]
pub enum Sessions {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Sessions {
    /// Opens (and creates, the first time) the session table in the database at `url`.
    pub async fn open(url: &StoreUrl) -> Result<Self, sqlx::Error> {
        let sessions = match url {
            StoreUrl::Sqlite(path) => {
                // A small writer pool of its own; it waits for the event store's writer.
                let options = SqliteConnectOptions::from_str("sqlite://")?
                    .filename(path)
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new()
                    .max_connections(2)
                    .connect_with(options)
                    .await?;
                let store = SqliteStore::new(pool);
                store.migrate().await?;
                Sessions::Sqlite(store)
            }
            StoreUrl::Postgres(url) => {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(exact_store::POSTGRES_ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await?;
                let store = PostgresStore::new(pool);
                store.migrate().await?;
                Sessions::Postgres(store)
            }
        };
        Ok(sessions)
    }

    /// The layer that loads and saves sessions around each request.
    pub fn layer(&self, secure: bool) -> SessionManagerLayer<Sessions> {
        SessionManagerLayer::new(self.clone())
            .with_name(COOKIE)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(secure)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(IDLE))
    }

    /// Deletes expired sessions every hour, for as long as the server runs.
    pub fn spawn_cleanup(&self) {
        let sessions = self.clone();
        tokio::spawn(async move {
            let result = match sessions {
                Sessions::Sqlite(s) => {
                    s.continuously_delete_expired(Duration::from_secs(3600))
                        .await
                }
                Sessions::Postgres(s) => {
                    s.continuously_delete_expired(Duration::from_secs(3600))
                        .await
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "deleting expired sessions stopped");
            }
        });
    }
}

#[async_trait::async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(s) => s.create(record).await,
            Sessions::Postgres(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(s) => s.save(record).await,
            Sessions::Postgres(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Sessions::Sqlite(s) => s.load(id).await,
            Sessions::Postgres(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Sessions::Sqlite(s) => s.delete(id).await,
            Sessions::Postgres(s) => s.delete(id).await,
        }
    }
}
