//! A user's walk over the tiles of an image (EXACT's screening mode).

use exact_domain::screening::ScreeningState;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A screening and the viewer's grid.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ScreeningMode)]
pub struct Screening {
    pub id: i64,
    pub image: i64,
    pub user: i64,
    pub screening_tiles: Value,
    pub x_steps: i64,
    pub y_steps: i64,
    pub x_resolution: i64,
    pub y_resolution: i64,
    pub current_index: i64,
}

impl Screening {
    pub fn of(id: i64, image: i64, user: i64, state: ScreeningState) -> Self {
        Screening {
            id,
            image,
            user,
            screening_tiles: state.screening_tiles,
            x_steps: state.x_steps,
            y_steps: state.y_steps,
            x_resolution: state.x_resolution,
            y_resolution: state.y_resolution,
            current_index: state.current_index,
        }
    }
}
