//! Screening: one user's walk over a grid of tiles of one image (EXACT's screening mode).

use exact_domain::screening::{
    change_screening, end_screening, screening_stream, start_screening, ScreeningContext,
    ScreeningState,
};
use exact_domain::{DomainError, DomainEvent};
use exact_projections::catalog_read::ScreeningRow;
use exact_store::{Expected, NewEvent, StreamAppend};

use super::{Caller, Commands, Written};
use crate::error::ApiError;

/// The state a screening row holds.
pub fn screening_state(row: &ScreeningRow) -> ScreeningState {
    ScreeningState {
        screening_tiles: row
            .screening_tiles
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default(),
        x_steps: row.x_steps,
        y_steps: row.y_steps,
        x_resolution: row.x_resolution,
        y_resolution: row.y_resolution,
        current_index: row.current_index,
    }
}

impl Commands {
    /// The caller's standing on `image` for a screening of `user`.
    async fn screening_context(
        &self,
        caller: &Caller,
        image: i64,
        user: i64,
    ) -> Result<ScreeningContext, ApiError> {
        let image = self
            .read
            .image(image)
            .await?
            .filter(|i| !i.deleted)
            .ok_or(DomainError::NotFound("image"))?;
        let (_, permissions) = self.set_access(caller, image.image_set).await?;
        let taken = self
            .read
            .screenings(Some(image.id))
            .await?
            .iter()
            .any(|s| s.user_id == user);
        Ok(ScreeningContext {
            actor: caller.actor,
            permissions,
            taken,
        })
    }

    /// Starts `user`'s screening of `image` with the viewer's grid.
    pub async fn start_screening(
        &self,
        caller: &Caller,
        image: i64,
        user: i64,
        state: ScreeningState,
    ) -> Result<Written, ApiError> {
        let context = self.screening_context(caller, image, user).await?;
        start_screening(0, image, user, state.clone(), &context)?;
        let build = Box::new(move |ids: &mut exact_store::IdAllocator| {
            let id = ids.next("screening");
            let event = start_screening(id, image, user, state.clone(), &context)
                .expect("decided above with the same input");
            let (name, payload) = event.to_parts();
            vec![StreamAppend::new(
                screening_stream(id),
                Expected::NoStream,
                vec![NewEvent::new(name, payload)],
            )]
        });
        let written = self
            .store
            .append_built(caller.append_context(), build)
            .await?;
        Ok(Written::stored(&written[0]))
    }

    /// Changes screening `row` to `state`, if `expected` (an ETag) is still its version.
    pub async fn change_screening(
        &self,
        caller: &Caller,
        row: &ScreeningRow,
        expected: Option<i64>,
        state: ScreeningState,
    ) -> Result<Written, ApiError> {
        let context = self
            .screening_context(caller, row.image, row.user_id)
            .await?;
        if let Some(seen) = expected.filter(|seen| *seen != row.version) {
            return Err(ApiError::stale(
                &screening_stream(row.id),
                seen,
                row.version,
            ));
        }
        let current = screening_state(row);
        let Some(event) = change_screening(row.id, row.user_id, &current, state, &context)? else {
            return Ok(Written {
                id: row.id,
                version: row.version,
                position: None,
            });
        };
        let (name, payload) = event.to_parts();
        let written = self
            .store
            .append(
                &screening_stream(row.id),
                // A writer between the read and now makes this a conflict (409).
                Expected::Exact(row.version),
                vec![NewEvent::new(name, payload)],
                caller.append_context(),
            )
            .await?;
        Ok(Written::stored(&written[0]))
    }

    /// Ends screening `row` (its events stay in the log).
    pub async fn end_screening(
        &self,
        caller: &Caller,
        row: &ScreeningRow,
        expected: Option<i64>,
    ) -> Result<(), ApiError> {
        let context = self
            .screening_context(caller, row.image, row.user_id)
            .await?;
        if let Some(seen) = expected.filter(|seen| *seen != row.version) {
            return Err(ApiError::stale(
                &screening_stream(row.id),
                seen,
                row.version,
            ));
        }
        let (name, payload) = end_screening(row.id, row.user_id, &context)?.to_parts();
        self.store
            .append(
                &screening_stream(row.id),
                Expected::Exact(row.version),
                vec![NewEvent::new(name, payload)],
                caller.append_context(),
            )
            .await?;
        Ok(())
    }
}
