//! Who is calling. Every route of the main server takes an [`Authenticated`] caller, proven in
//! one of three ways: HTTP Basic (what `exact-sync` sends on every request), a personal access
//! token (`Authorization: Bearer ...`), or a browser session cookie (see [`sessions`]).
//!
//! Basic auth sends the password with every request, and an argon2 check costs tens of
//! milliseconds: EXACT paid that on every call. Here a verified password is remembered as a
//! keyed digest (HMAC-SHA-256 under a key that lives only in this process) next to a fingerprint
//! of the account's stored hash, for a few minutes. A new password changes the fingerprint and a
//! deactivated account is refused before the cache is asked, so the remembered proof stops
//! counting at once.
//!
//! Failed logins are counted per account and per client address; past the limit the caller is
//! told to wait (429) without the password being checked at all, not even against a password
//! remembered from before the lock.

pub mod password;
pub mod sessions;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use base64::Engine;
use exact_projections::catalog_read::UserRow;
use exact_store::Source;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::commands::{Caller, NewUser};
use crate::error::{ApiError, Code};
use crate::AppState;

/// How long a verified password is taken on trust.
const REMEMBER: Duration = Duration::from_secs(300);
/// Failed logins allowed per account within [`FAILURE_WINDOW`]; an address (which a whole lab
/// may share behind one router) gets five times as many.
const MAX_FAILURES: u32 = 10;
const MAX_FAILURES_PER_ADDRESS: u32 = 5 * MAX_FAILURES;
const FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// A caller whose credentials were checked: the account and the command caller built from it.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub user: UserRow,
    pub caller: Caller,
}

/// Verified credentials and failed attempts, in memory.
#[derive(Debug)]
pub struct Credentials {
    key: [u8; 32],
    verified: Mutex<HashMap<i64, Remembered>>,
    failures: Mutex<HashMap<String, Failures>>,
    /// One password check per account at a time: requests that arrive together with the same
    /// credentials (16 clients starting at once) wait for the first check and then find it
    /// remembered, instead of each spending an argon2 hash.
    checking: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug)]
struct Remembered {
    digest: [u8; 32],
    fingerprint: String,
    at: Instant,
}

#[derive(Debug)]
struct Failures {
    count: u32,
    since: Instant,
}

impl Default for Credentials {
    fn default() -> Self {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).expect("the system has a source of randomness");
        Self {
            key,
            verified: Mutex::default(),
            failures: Mutex::default(),
            checking: Mutex::default(),
        }
    }
}

impl Credentials {
    fn digest(&self, user: i64, password: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length works");
        mac.update(&user.to_le_bytes());
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn remembers(&self, user: &UserRow, password: &str) -> bool {
        let digest = self.digest(user.id, password);
        let verified = self.verified.lock().expect("not poisoned");
        verified.get(&user.id).is_some_and(|r| {
            r.fingerprint == fingerprint(&user.password_hash)
                && r.at.elapsed() < REMEMBER
                && constant_time_eq(&r.digest, &digest)
        })
    }

    /// The turn to check a password of `user`.
    fn check_turn(&self, user: i64) -> Arc<tokio::sync::Mutex<()>> {
        let mut checking = self.checking.lock().expect("not poisoned");
        checking.retain(|_, turn| Arc::strong_count(turn) > 1);
        checking.entry(user).or_default().clone()
    }

    fn remember(&self, user: &UserRow, password: &str) {
        let digest = self.digest(user.id, password);
        let mut verified = self.verified.lock().expect("not poisoned");
        verified.retain(|_, r| r.at.elapsed() < REMEMBER);
        verified.insert(
            user.id,
            Remembered {
                digest,
                fingerprint: fingerprint(&user.password_hash),
                at: Instant::now(),
            },
        );
    }

    /// Refuses when `keys` (the account, the address) failed too often lately.
    fn check_throttle(&self, keys: &[String]) -> Result<(), ApiError> {
        let failures = self.failures.lock().expect("not poisoned");
        for key in keys {
            if let Some(f) = failures.get(key) {
                let limit = if key.starts_with("addr:") {
                    MAX_FAILURES_PER_ADDRESS
                } else {
                    MAX_FAILURES
                };
                if f.count >= limit && f.since.elapsed() < FAILURE_WINDOW {
                    let wait = FAILURE_WINDOW.saturating_sub(f.since.elapsed()).as_secs() + 1;
                    return Err(ApiError::new(
                        Code::TooManyAttempts,
                        format!("too many failed logins; try again in {wait} s"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn failed(&self, keys: &[String]) {
        let mut failures = self.failures.lock().expect("not poisoned");
        failures.retain(|_, f| f.since.elapsed() < FAILURE_WINDOW);
        for key in keys {
            let entry = failures.entry(key.clone()).or_insert(Failures {
                count: 0,
                since: Instant::now(),
            });
            entry.count += 1;
        }
    }
}

/// A short digest of a stored password hash: it changes with the password, and reveals nothing
/// of it (sessions keep it in the database).
pub fn fingerprint(password_hash: &str) -> String {
    hex::encode(&<Sha256 as sha2::Digest>::digest(password_hash.as_bytes())[..16])
}

/// Compares without stopping at the first difference, so timing tells nothing of a secret.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(Code::Unauthorized, message)
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        // The log says through which door a change came: a browser session is the web app.
        let (user, source) = if let Some(token) = bearer_token(&parts.headers) {
            (state.token_user(token).await?, Source::Api)
        } else if let Some((username, password)) = basic_credentials(&parts.headers)? {
            let user = state
                .login(&username, &password, address.as_deref())
                .await?;
            (user, Source::Api)
        } else {
            (session_user(parts, state).await?, Source::Ui)
        };
        let mut caller = Caller::new(user.actor(), source).with_reason(reason(&parts.headers)?);
        caller.client_addr = address;
        Ok(Authenticated { user, caller })
    }
}

/// The user of the session cookie, if the session is logged in and the account unchanged since;
/// a write must carry the session's CSRF token.
async fn session_user(parts: &mut Parts, state: &AppState) -> Result<UserRow, ApiError> {
    let Some((user, login)) = session_login(parts, state).await? else {
        return Err(unauthorized(
            "log in: HTTP Basic, a personal access token (Authorization: Bearer ...), \
             or a session (POST /api/v1/auth/login/)",
        ));
    };
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        check_csrf(&parts.headers, &login)?;
    }
    Ok(user)
}

/// The account logged in through the request's session cookie and what the session holds, if
/// the session is logged in and the account unchanged since (a new password or a deactivation
/// ends the session here).
pub async fn session_login(
    parts: &Parts,
    state: &AppState,
) -> Result<Option<(UserRow, SessionLogin)>, ApiError> {
    let Some(session) = parts.extensions.get::<tower_sessions::Session>().cloned() else {
        return Ok(None);
    };
    let login: Option<SessionLogin> = session
        .get(SESSION_KEY)
        .await
        .map_err(|e| ApiError::internal("reading the session failed", &e))?;
    let Some(login) = login else {
        return Ok(None);
    };
    let user = state.read.user(login.user).await?;
    let current = |u: &UserRow| u.is_active && fingerprint(&u.password_hash) == login.password;
    let Some(user) = user.filter(current) else {
        // The password changed or the account was deactivated since this login.
        let _ = session.flush().await;
        return Err(unauthorized("the session ended; log in again"));
    };
    Ok(Some((user, login)))
}

/// Logs `user` in on `session`: a new session id (an id planted before the login is worth
/// nothing), the account's password fingerprint, and a fresh CSRF token, which it returns.
pub async fn start_session(
    session: &tower_sessions::Session,
    user: &UserRow,
) -> Result<String, ApiError> {
    let failed = |e: &dyn std::fmt::Display| ApiError::internal("storing the session failed", e);
    session.cycle_id().await.map_err(|e| failed(&e))?;
    let csrf = password::random_secret();
    let login = SessionLogin {
        user: user.id,
        password: fingerprint(&user.password_hash),
        csrf: csrf.clone(),
    };
    session
        .insert(SESSION_KEY, &login)
        .await
        .map_err(|e| failed(&e))?;
    Ok(csrf)
}

/// A write through a session must echo the session's CSRF token in `X-CSRFToken`: another
/// site can make a browser send the cookie, but cannot read the token.
pub fn check_csrf(headers: &HeaderMap, login: &SessionLogin) -> Result<(), ApiError> {
    let sent = headers
        .get(sessions::CSRF_HEADER)
        .map(axum::http::HeaderValue::as_bytes)
        .unwrap_or_default();
    if constant_time_eq(sent, login.csrf.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::CsrfFailed,
            "a write with a session cookie must carry the session's CSRF token in X-CSRFToken",
        ))
    }
}

/// What a logged-in session holds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SessionLogin {
    pub user: i64,
    /// The [`fingerprint`] of the password hash at login.
    pub password: String,
    pub csrf: String,
}

pub const SESSION_KEY: &str = "login";

/// `Authorization: Bearer TOKEN`, if present.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// SHA-256 of a token, lowercase hex: what the read model keeps. Tokens carry 256 random bits,
/// so a fast hash is enough (a password hash protects guessable secrets).
pub fn token_hash(token: &str) -> String {
    hex::encode(<Sha256 as sha2::Digest>::digest(token.as_bytes()))
}

/// `Authorization: Basic base64(user:password)`, if present; malformed is an error.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || unauthorized("the Authorization header is not valid Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(unauthorized(
            "this server accepts Authorization: Basic or Bearer credentials",
        ));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (user, password) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok(Some((user.to_owned(), password.to_owned())))
}

/// Why the caller makes this change: the `X-Exact-Reason` header, stored with the events.
fn reason(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("x-exact-reason") else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::new(
            Code::InvalidHeader,
            "X-Exact-Reason must be visible ASCII; percent-encode other characters",
        )
        .with_field("X-Exact-Reason")
    })?;
    // Other characters arrive percent-encoded (headers are ASCII); a `%` that starts no
    // escape stays as it is.
    let text = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.chars().take(1000).collect()))
}

impl AppState {
    /// The active owner of a personal access token that is not revoked.
    pub async fn token_user(&self, token: &str) -> Result<UserRow, ApiError> {
        let refused = || unauthorized("unknown or revoked access token");
        let row = self.read.access_token(&token_hash(token)).await?;
        let row = row.filter(|t| t.revoked.is_none()).ok_or_else(refused)?;
        let user = self.read.user(row.user_id).await?;
        user.filter(|u| u.is_active).ok_or_else(refused)
    }

    /// The active account `username` proven by `password`.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        address: Option<&str>,
    ) -> Result<UserRow, ApiError> {
        let mut keys = vec![format!("user:{}", username.to_lowercase())];
        if let Some(address) = address {
            keys.push(format!("addr:{address}"));
        }
        let refused = || unauthorized("unknown username or wrong password");
        // The lock comes first, whatever is remembered: otherwise a locked account would still
        // tell a right guess (200) from a wrong one (429).
        self.credentials.check_throttle(&keys)?;
        let user = self.commands.user_by_username(username).await?;
        if let Some(user) = &user {
            if user.is_active && self.credentials.remembers(user, password) {
                return Ok(user.clone());
            }
        }
        let Some(user) = user else {
            // Spend the time a real check takes, so that timing does not reveal usernames.
            let _ = password::verify(password.to_owned(), DUMMY_HASH.to_owned()).await;
            self.credentials.failed(&keys);
            return Err(refused());
        };
        let turn = self.credentials.check_turn(user.id);
        let _turn = turn.lock().await;
        if user.is_active && self.credentials.remembers(&user, password) {
            return Ok(user);
        }
        if !password::verify(password.to_owned(), user.password_hash.clone()).await? {
            self.credentials.failed(&keys);
            return Err(refused());
        }
        if !user.is_active {
            return Err(unauthorized("this account is deactivated"));
        }
        self.credentials.remember(&user, password);
        Ok(user)
    }

    /// On first start with no account at all: the superuser `exact`, as EXACT's setup creates
    /// it, with `EXACT_ADMIN_PASSWORD` or else the password `exact`.
    pub async fn ensure_admin(&self, password_from_env: Option<String>) -> Result<(), ApiError> {
        if !self.read.users().await?.is_empty() {
            return Ok(());
        }
        let default = password_from_env.is_none();
        let password = password_from_env.unwrap_or_else(|| "exact".to_owned());
        let hash = password::hash(password).await?;
        self.commands
            .create_user(
                &Caller::system(),
                NewUser {
                    username: "exact".into(),
                    email: String::new(),
                    password_hash: hash,
                    is_superuser: true,
                    is_staff: true,
                },
            )
            .await?;
        if default {
            tracing::warn!(
                "created the superuser `exact` with the password `exact`: change it now \
                 (`exact user passwd exact`) or set EXACT_ADMIN_PASSWORD before the first start"
            );
        } else {
            tracing::warn!(
                "created the superuser `exact` with the password from EXACT_ADMIN_PASSWORD"
            );
        }
        Ok(())
    }
}

/// A valid argon2 hash of a random password, checked against when the username is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8sQ8W8mW+6r4yGqk0uGQF0h3y6uB1o5pJz8Yy3C5y6E";

/// The client's address, where the server knows it (not in in-process tests).
#[derive(Clone, Debug)]
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}
