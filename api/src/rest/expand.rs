//! drf-flex-fields' `expand=`, as EXACT's viewer and clients send it (`expand=user,last_editor,
//! uploaded_media_files` on annotation lists): a related object's id is replaced by that object
//! as its own route shows it. Only what the caller may read is expanded (anything else keeps
//! its id); a name the resource cannot expand is refused with a 400, not ignored.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use serde_json::Value;

use super::access::{self, Memberships};
use super::input::wrong;
use super::params::Params;
use super::shapes::{self, Annotation, AnnotationType, Image, MediaFile};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::AppState;

/// What a field of a resource refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Related {
    User,
    AnnotationType,
    Image,
    Annotation,
    /// The files attached to the annotation itself (a list, found by the result's own `id`).
    MediaFiles,
    /// A list this server keeps empty (EXACT's per-annotation set-version rows).
    Empty,
}

/// Expands, in every object of `results`, the fields `expand=` names.
pub(super) async fn expand(
    state: &AppState,
    auth: &Authenticated,
    params: &Params,
    results: &mut [Value],
    expandable: &[(&str, Related)],
) -> Result<(), ApiError> {
    let Some(text) = params.str("expand") else {
        return Ok(());
    };
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(&(_, related)) = expandable.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = expandable.iter().map(|(n, _)| *n).collect();
            let expected = if names.is_empty() {
                "nothing: this resource has no expandable fields".to_owned()
            } else {
                format!("a comma-separated list of {}", names.join(", "))
            };
            return Err(wrong("expand", &expected));
        };
        // A list of what refers to the result finds it by the result's own id.
        let key = if related == Related::MediaFiles {
            "id"
        } else {
            name
        };
        let ids: BTreeSet<i64> = results
            .iter()
            .filter_map(|r| r.get(key)?.as_i64())
            .collect();
        let objects = related_objects(state, auth, related, &ids).await?;
        for result in results.iter_mut() {
            let Some(slot) = result.get_mut(name) else {
                continue;
            };
            if related == Related::Empty {
                *slot = Value::Array(Vec::new());
            } else if related == Related::MediaFiles {
                let own = result.get("id").and_then(Value::as_i64);
                let files = own.and_then(|id| objects.get(&id)).cloned();
                if let Some(slot) = result.get_mut(name) {
                    *slot = files.unwrap_or_else(|| Value::Array(Vec::new()));
                }
            } else if let Some(object) = slot.as_i64().and_then(|id| objects.get(&id)) {
                *slot = object.clone();
            }
        }
    }
    Ok(())
}

/// [`expand`] on the `results` of a page.
pub(super) async fn expand_results(
    state: &AppState,
    auth: &Authenticated,
    params: &Params,
    page: &mut Value,
    expandable: &[(&str, Related)],
) -> Result<(), ApiError> {
    match page.get_mut("results").and_then(Value::as_array_mut) {
        Some(results) => expand(state, auth, params, results, expandable).await,
        None => Ok(()),
    }
}

/// The objects with these ids that the caller may read, by id.
async fn related_objects(
    state: &AppState,
    auth: &Authenticated,
    related: Related,
    ids: &BTreeSet<i64>,
) -> Result<BTreeMap<i64, Value>, ApiError> {
    let mut objects = BTreeMap::new();
    match related {
        Related::Empty => {}
        Related::MediaFiles => {
            // The ids are those of the results themselves, annotations the caller was just
            // allowed to read: their files need no second permission check each.
            for &id in ids {
                let files = state.read.media_files(Some(id)).await?;
                let files = files
                    .iter()
                    .map(|m| shapes::value(&MediaFile::of(m)))
                    .collect();
                objects.insert(id, Value::Array(files));
            }
        }
        Related::User => {
            // Every signed-in user may read accounts, as on the users route.
            let memberships = Memberships::load(state).await?;
            for &id in ids {
                if let Some(user) = state.read.user(id).await? {
                    objects.insert(id, memberships.user_json(&user, auth));
                }
            }
        }
        Related::AnnotationType => {
            for t in state.read.readable_types(auth.caller.actor).await? {
                if ids.contains(&t.id) {
                    objects.insert(t.id, shapes::value(&AnnotationType::of(&t)));
                }
            }
        }
        Related::Image => {
            for &id in ids {
                if let Some(image) = unless_hidden(access::readable_image(state, auth, id).await)? {
                    objects.insert(id, shapes::value(&Image::of(&image, None)));
                }
            }
        }
        Related::Annotation => {
            let mut rows = Vec::new();
            for &id in ids {
                let found = state.commands.readable_annotation(&auth.caller, id).await;
                rows.extend(unless_hidden(found)?.map(|(row, ..)| row));
            }
            // The caller's verdicts on all of them in one query.
            let mine = access::accepted(state, auth, &rows).await?;
            for row in &rows {
                objects.insert(
                    row.id,
                    shapes::value(&Annotation::of(row, mine.contains(&row.id))),
                );
            }
        }
    }
    Ok(objects)
}

/// A lookup's answer, with "not found" (what the caller may not read) as `None`.
fn unless_hidden<T>(found: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
    match found {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.status() == StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(e),
    }
}
