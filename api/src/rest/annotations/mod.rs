//! Annotations (with EXACT's filters, `in_bbox` from the spatial index and `as_of` from the
//! history), their history, verdicts and the image access log.

pub(in crate::rest) mod access_log;
pub(in crate::rest) mod list;
pub(in crate::rest) mod verifications;
pub(in crate::rest) mod write;

use access_log::{create_access, delete_access, get_access, list_access, update_access};
use list::{get_annotation, history, list_annotations};
use verifications::{
    create_verification, delete_verification, get_verification, list_verifications,
    update_verification,
};
use write::{create_annotations, delete_annotation, multiple_delete, update_annotation};

use axum::routing::{delete, get};
use axum::Router;
use exact_projections::annotations::AnnotationRow;
use serde_json::Value;

use super::shapes::{self, Annotation};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/annotations/annotations/",
            get(list_annotations).post(create_annotations),
        )
        .route(
            "/annotations/annotations/multiple_delete/",
            delete(multiple_delete),
        )
        .route(
            "/annotations/annotations/{id}/",
            get(get_annotation)
                .patch(update_annotation)
                .put(update_annotation)
                .delete(delete_annotation),
        )
        .route("/annotations/annotations/{id}/history/", get(history))
        .route(
            "/annotations/verifications/",
            get(list_verifications).post(create_verification),
        )
        .route(
            "/annotations/verifications/{id}/",
            get(get_verification)
                .patch(update_verification)
                .put(update_verification)
                .delete(delete_verification),
        )
        .route(
            "/annotations/log_image_actions/",
            get(list_access).post(create_access),
        )
        .route(
            "/annotations/log_image_actions/{id}/",
            get(get_access)
                .patch(update_access)
                .put(update_access)
                .delete(delete_access),
        )
}

fn annotation_json(a: &AnnotationRow, verified_by_user: bool) -> Value {
    shapes::value(&Annotation::of(a, verified_by_user))
}

/// Annotation `id` if the caller may read its image (deleted ones included, as EXACT).
async fn readable_annotation(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<AnnotationRow, ApiError> {
    let (row, ..) = state.commands.readable_annotation(&auth.caller, id).await?;
    Ok(row)
}
