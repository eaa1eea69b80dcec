//! EXACT's screening mode: one user's walk over a grid of tiles of one image, remembering which
//! tiles they have looked at. The viewer computes the grid and sends it; the server keeps it,
//! one per user and image, and marks a tile screened when the user moves to it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::allow;
use crate::event::{Actor, DomainEvent};
use crate::permissions::{Permission, Permissions};
use crate::DomainError;

/// The stream of screening `id`.
pub fn screening_stream(id: i64) -> String {
    format!("screening-{id}")
}

/// Where a user stands in screening an image, as EXACT's `ScreeningMode` holds it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScreeningState {
    /// `{"0": {"Screened": false, "x_min": .., "y_min": .., "x_max": .., "y_max": ..}, ...}`,
    /// or null before the viewer has made the grid.
    pub screening_tiles: Value,
    pub x_steps: i64,
    pub y_steps: i64,
    pub x_resolution: i64,
    pub y_resolution: i64,
    pub current_index: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum ScreeningEvent {
    ScreeningStarted {
        id: i64,
        image: i64,
        user: i64,
        state: ScreeningState,
    },
    ScreeningChanged {
        id: i64,
        state: ScreeningState,
    },
    /// EXACT's screening delete: the walk is over; the user may start a new one.
    ScreeningEnded {
        id: i64,
    },
}

impl DomainEvent for ScreeningEvent {
    const NAMES: &'static [&'static str] =
        &["ScreeningStarted", "ScreeningChanged", "ScreeningEnded"];
}

/// What deciding a screening command needs to know.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScreeningContext {
    pub actor: Actor,
    /// The actor's permissions in the image's set.
    pub permissions: Permissions,
    /// The user screens this image already (one screening per user and image).
    pub taken: bool,
}

/// Tiles are an object of objects (or null), counts and the index are not negative, and a
/// current index names a tile when there are tiles.
fn checked(state: ScreeningState) -> Result<ScreeningState, DomainError> {
    match &state.screening_tiles {
        Value::Null => {}
        Value::Object(tiles) => {
            if let Some((key, _)) = tiles.iter().find(|(_, tile)| !tile.is_object()) {
                return Err(DomainError::invalid(
                    "screening_tiles",
                    format!("tile {key} must be an object"),
                ));
            }
            if !tiles.is_empty() && !tiles.contains_key(&state.current_index.to_string()) {
                return Err(DomainError::invalid(
                    "current_index",
                    format!("names no tile of screening_tiles: {}", state.current_index),
                ));
            }
        }
        _ => {
            return Err(DomainError::invalid(
                "screening_tiles",
                "must be an object of tiles, or null",
            ))
        }
    }
    for (field, value) in [
        ("x_steps", state.x_steps),
        ("y_steps", state.y_steps),
        ("x_resolution", state.x_resolution),
        ("y_resolution", state.y_resolution),
        ("current_index", state.current_index),
    ] {
        if value < 0 {
            return Err(DomainError::invalid(field, "must not be negative"));
        }
    }
    Ok(state)
}

/// Marks the tile `current_index` names as screened, as EXACT does when the index moves.
pub fn mark_current_screened(state: &mut ScreeningState) {
    let key = state.current_index.to_string();
    if let Some(tile) = state
        .screening_tiles
        .get_mut(&key)
        .and_then(Value::as_object_mut)
    {
        tile.insert("Screened".into(), Value::Bool(true));
    }
}

/// Starts `user`'s screening of `image`: the actor screens for themselves (a superuser may
/// start one for anyone) and may annotate in the image's set.
pub fn start_screening(
    id: i64,
    image: i64,
    user: i64,
    state: ScreeningState,
    context: &ScreeningContext,
) -> Result<ScreeningEvent, DomainError> {
    allow(
        user == context.actor.id || context.actor.superuser,
        "screen for another user",
    )?;
    if !context.permissions.contains(Permission::Annotate) {
        return Err(DomainError::ForbiddenInSet(Permission::Annotate));
    }
    if context.taken {
        return Err(DomainError::AlreadyExists(
            "screening of this image by this user",
        ));
    }
    Ok(ScreeningEvent::ScreeningStarted {
        id,
        image,
        user,
        state: checked(state)?,
    })
}

/// Changes screening `id` of `owner` to `state`; nothing when nothing changes.
pub fn change_screening(
    id: i64,
    owner: i64,
    current: &ScreeningState,
    state: ScreeningState,
    context: &ScreeningContext,
) -> Result<Option<ScreeningEvent>, DomainError> {
    allow(
        owner == context.actor.id || context.actor.superuser,
        "change another user's screening",
    )?;
    if !context.permissions.contains(Permission::Annotate) {
        return Err(DomainError::ForbiddenInSet(Permission::Annotate));
    }
    let state = checked(state)?;
    Ok((state != *current).then_some(ScreeningEvent::ScreeningChanged { id, state }))
}

/// Ends screening `id` of `owner`: by its owner (or a superuser).
pub fn end_screening(
    id: i64,
    owner: i64,
    context: &ScreeningContext,
) -> Result<ScreeningEvent, DomainError> {
    allow(
        owner == context.actor.id || context.actor.superuser,
        "end another user's screening",
    )?;
    Ok(ScreeningEvent::ScreeningEnded { id })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::permissions::{image_set_permissions, SetFlags, Standing};

    fn grid() -> ScreeningState {
        ScreeningState {
            screening_tiles: json!({
                "0": {"Screened": false, "x_min": 0, "y_min": 0, "x_max": 100, "y_max": 100},
                "1": {"Screened": false, "x_min": 90, "y_min": 0, "x_max": 190, "y_max": 100},
            }),
            x_steps: 2,
            y_steps: 1,
            x_resolution: 100,
            y_resolution: 100,
            current_index: 0,
        }
    }

    fn context(member: bool, taken: bool) -> ScreeningContext {
        let standing = Standing {
            member,
            ..Standing::default()
        };
        ScreeningContext {
            actor: Actor::user(7),
            permissions: image_set_permissions(standing, SetFlags::default()),
            taken,
        }
    }

    #[test]
    fn a_member_starts_their_own_screening_once() {
        let started = start_screening(1, 5, 7, grid(), &context(true, false));
        assert!(matches!(
            started,
            Ok(ScreeningEvent::ScreeningStarted {
                id: 1,
                image: 5,
                user: 7,
                ..
            })
        ));
        let again = start_screening(2, 5, 7, grid(), &context(true, true));
        assert_eq!(
            again,
            Err(DomainError::AlreadyExists(
                "screening of this image by this user"
            ))
        );
        let for_other = start_screening(1, 5, 8, grid(), &context(true, false));
        assert_eq!(
            for_other,
            Err(DomainError::Forbidden("screen for another user"))
        );
        let outsider = start_screening(1, 5, 7, grid(), &context(false, false));
        assert_eq!(
            outsider,
            Err(DomainError::ForbiddenInSet(Permission::Annotate))
        );
    }

    #[test]
    fn a_grid_is_checked() {
        let member = context(true, false);
        let mut bad_tile = grid();
        bad_tile.screening_tiles["1"] = json!(3);
        assert!(start_screening(1, 5, 7, bad_tile, &member).is_err());
        let mut not_an_object = grid();
        not_an_object.screening_tiles = json!([1, 2]);
        assert!(start_screening(1, 5, 7, not_an_object, &member).is_err());
        let mut off_grid = grid();
        off_grid.current_index = 9;
        assert!(start_screening(1, 5, 7, off_grid, &member).is_err());
        let mut negative = grid();
        negative.x_steps = -1;
        assert!(start_screening(1, 5, 7, negative, &member).is_err());
        let empty = ScreeningState::default();
        assert!(start_screening(1, 5, 7, empty, &member).is_ok());
    }

    #[test]
    fn moving_on_marks_the_tile_and_only_the_owner_moves() {
        let member = context(true, false);
        let mut next = grid();
        next.current_index = 1;
        mark_current_screened(&mut next);
        assert_eq!(next.screening_tiles["1"]["Screened"], true);
        assert_eq!(next.screening_tiles["0"]["Screened"], false);
        let changed = change_screening(1, 7, &grid(), next.clone(), &member).unwrap();
        assert_eq!(
            changed,
            Some(ScreeningEvent::ScreeningChanged {
                id: 1,
                state: next.clone()
            })
        );
        assert_eq!(
            change_screening(1, 7, &next, next.clone(), &member),
            Ok(None)
        );
        assert_eq!(
            change_screening(1, 8, &grid(), next, &member),
            Err(DomainError::Forbidden("change another user's screening"))
        );
    }

    #[test]
    fn only_the_owner_or_a_superuser_ends_a_screening() {
        assert_eq!(
            end_screening(4, 7, &context(true, true)),
            Ok(ScreeningEvent::ScreeningEnded { id: 4 })
        );
        assert!(matches!(
            end_screening(4, 8, &context(true, true)),
            Err(DomainError::Forbidden(_))
        ));
        let superuser = ScreeningContext {
            actor: Actor::SYSTEM,
            ..context(false, false)
        };
        assert!(end_screening(4, 8, &superuser).is_ok());
    }
}
