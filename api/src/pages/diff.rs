//! `/images/imageset/<id>/diff/`: what changed in a set between two moments (log positions,
//! times or dataset versions naming the set), as the REST route and `exact diff` tell it:
//! counts in all, per type and per image, and the annotations added, removed and changed, each
//! linked to its audit trail.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use exact_projections::export::diff::Diff;
use serde::Serialize;

use super::{error_page, render, Frame, PageUser};
use crate::error::ApiError;
use crate::rest::exports::{set_diff, DiffParams};
use crate::AppState;

/// The most ids of each kind the page lists (the counts are whole).
const SHOWN: usize = 200;

#[derive(Serialize)]
struct Context<'a> {
    frame: Frame<'a>,
    set: i64,
    name: String,
    /// The moments as the form sent them.
    asked: HashMap<String, String>,
    versions: Vec<(i64, String)>,
    diff: Option<Diff>,
    /// A refusal of the moments, said next to the form.
    error: Option<String>,
    shown: usize,
}

pub async fn diff_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<i64>,
    Query(asked): Query<HashMap<String, String>>,
) -> Response {
    match context(&state, &user, id, asked).await {
        Ok(context) => render(StatusCode::OK, "diff.html", context),
        Err(e) => error_page(Some(&user), &e),
    }
}

async fn context<'a>(
    state: &AppState,
    user: &'a PageUser,
    id: i64,
    asked: HashMap<String, String>,
) -> Result<Context<'a>, ApiError> {
    let caller = crate::commands::Caller::new(user.user.actor(), exact_store::Source::Ui);
    let set = state
        .read
        .readable_set(caller.actor, id)
        .await?
        .ok_or(exact_domain::DomainError::NotFound("image set"))?;
    let versions = state
        .read
        .dataset_versions_of_set(id)
        .await?
        .into_iter()
        .map(|v| (v.id, v.name))
        .collect();
    let field = |name: &str| asked.get(name).filter(|v| !v.trim().is_empty()).cloned();
    let params = DiffParams {
        from: field("from"),
        to: field("to"),
        from_version: field("from_version"),
        to_version: field("to_version"),
    };
    let (diff, error) = if params.from.is_none() && params.from_version.is_none() {
        (None, None)
    } else {
        match set_diff(state, &caller, id, params).await {
            Ok(diff) => (Some(diff), None),
            // The moments are the user's input: said beside the form, the page still shown.
            Err(e) if e.status().is_client_error() && e.status() != StatusCode::NOT_FOUND => {
                let at = e
                    .field
                    .as_deref()
                    .map(|f| format!("{f}: "))
                    .unwrap_or_default();
                (None, Some(format!("{at}{}", e.message)))
            }
            Err(e) => return Err(e),
        }
    };
    Ok(Context {
        frame: user.frame(),
        set: id,
        name: set.0.name,
        asked,
        versions,
        diff,
        error,
        shown: SHOWN,
    })
}
