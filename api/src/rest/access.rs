//! Reads that more than one resource's handlers (and `expand`) need: what the caller may
//! read, what answers show of it, a set's settings as they stand. Here, so that handlers
//! never depend on each other's modules.

use std::collections::{BTreeMap, BTreeSet};

use exact_domain::image_set::{CollaborationType, SetSettings};
use exact_projections::annotations::AnnotationRow;
use exact_projections::catalog_read::{ImageRow, ImageSetRow, UserRow};
use serde_json::Value;

use super::shapes::{self, User};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::AppState;

/// Image `id` if it is live and the caller may read its set.
pub async fn readable_image(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<ImageRow, ApiError> {
    let image = state
        .read
        .image(id)
        .await?
        .filter(|i| !i.deleted)
        .ok_or(exact_domain::DomainError::NotFound("image"))?;
    state
        .commands
        .set_access(&auth.caller, image.image_set)
        .await?;
    Ok(image)
}

/// The images the caller may read, unless they may read all (`None`).
pub async fn readable_image_ids(
    state: &AppState,
    auth: &Authenticated,
) -> Result<Option<Vec<i64>>, ApiError> {
    if auth.caller.actor.superuser {
        return Ok(None);
    }
    let images = state.read.readable_images(auth.caller.actor, None).await?;
    Ok(Some(images.iter().map(|i| i.id).collect()))
}

/// The annotations of `rows` the caller accepted.
pub async fn accepted(
    state: &AppState,
    auth: &Authenticated,
    rows: &[AnnotationRow],
) -> Result<std::collections::BTreeSet<i64>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    Ok(state.read.accepted_by(auth.caller.actor.id, &ids).await?)
}

/// Who belongs to which team, which decides what a caller sees of an account.
#[derive(Debug)]
pub struct Memberships {
    teams: BTreeMap<i64, Vec<i64>>,
    admins: BTreeMap<i64, BTreeSet<i64>>,
}

impl Memberships {
    pub async fn load(state: &AppState) -> Result<Self, ApiError> {
        let mut teams: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        let mut admins: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        for m in state.read.all_memberships().await? {
            teams.entry(m.user_id).or_default().push(m.team);
            if m.is_admin {
                admins.entry(m.team).or_default().insert(m.user_id);
            }
        }
        Ok(Self { teams, admins })
    }

    pub fn teams_of(&self, user: i64) -> &[i64] {
        self.teams.get(&user).map_or(&[][..], Vec::as_slice)
    }

    /// Whether `viewer` may see `user`'s email: their own, a superuser, or an admin of a team
    /// both belong to. Everyone else sees every other field, as in EXACT.
    fn shows_email(&self, viewer: &Authenticated, user: i64) -> bool {
        viewer.user.id == user
            || viewer.user.is_superuser
            || self.teams_of(user).iter().any(|team| {
                self.admins
                    .get(team)
                    .is_some_and(|admins| admins.contains(&viewer.user.id))
            })
    }

    /// An account as EXACT's serializer shows it to `viewer`, as a value to reshape.
    pub fn user_json(&self, user: &UserRow, viewer: &Authenticated) -> Value {
        let shown = self.shows_email(viewer, user.id);
        shapes::value(&User::of(user, shown, self.teams_of(user.id).to_vec()))
    }
}

/// A set's settings as they stand, tags included.
pub async fn current_settings(
    state: &AppState,
    set: &ImageSetRow,
) -> Result<SetSettings, ApiError> {
    Ok(SetSettings {
        name: set.name.clone(),
        location: set.location.clone(),
        description: set.description.clone(),
        public: set.public,
        public_collaboration: set.public_collaboration,
        image_lock: set.image_lock,
        priority: set.priority,
        collaboration_type: CollaborationType::try_from(set.collaboration_type).unwrap_or_default(),
        main_annotation_type: set.main_annotation_type,
        tags: state.read.set_tags(set.id).await?.into_iter().collect(),
        clinical: set.clinical,
    })
}
