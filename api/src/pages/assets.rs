//! The browser's files: ES modules and the stylesheet (`web/static/`) and pinned third-party
//! libraries (`web/vendor/`), embedded in the binary. Their URLs carry a version made from
//! their contents (`/static/<version>/viewer.js`), so a browser keeps them for a year and a new
//! build is fetched at once; modules import each other by relative path within one version.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, Code};

#[derive(rust_embed::Embed)]
#[folder = "../web/static/"]
struct Static;

#[derive(rust_embed::Embed)]
#[folder = "../web/vendor/"]
struct Vendor;

/// The bytes of `path`: `vendor/...` from the pinned libraries, anything else from ours.
fn file(path: &str) -> Option<rust_embed::EmbeddedFile> {
    match path.strip_prefix("vendor/") {
        Some(vendored) => Vendor::get(vendored),
        None => Static::get(path),
    }
}

/// A digest of every embedded file, names and contents: it changes with any of them.
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = Sha256::new();
        let names = Static::iter()
            .map(std::borrow::Cow::into_owned)
            .chain(Vendor::iter().map(|n| format!("vendor/{n}")));
        for name in names {
            hasher.update(name.as_bytes());
            if let Some(file) = self::file(&name) {
                hasher.update(file.metadata.sha256_hash());
            }
        }
        hex::encode(&hasher.finalize()[..6])
    })
}

/// The URL a page uses for `path`.
pub fn url(path: &str) -> String {
    format!("/static/{}/{path}", version())
}

pub async fn asset(Path((asked, path)): Path<(String, String)>) -> Response {
    let Some(found) = file(&path) else {
        return ApiError::new(Code::NotFound, "no such file").into_response();
    };
    let content_type = mime_guess::from_path(&path)
        .first_raw()
        .unwrap_or("application/octet-stream");
    // An old version's URL gets today's file, but only for a moment.
    let cache = if asked == version() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        found.data,
    )
        .into_response()
}
