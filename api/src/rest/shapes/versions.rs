//! A dataset version (a named log position over some sets) and an annotation as it was in one.

use exact_projections::annotations::AnnotationRow;
use exact_projections::catalog_read::DatasetVersionRow;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::rest::params::format_time;

/// A dataset version; EXACT's `file` (an export made with it) is always null here: exports
/// are made from the version when asked.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetVersion {
    pub id: i64,
    pub name: String,
    pub imagesets: Vec<i64>,
    #[schema(format = DateTime)]
    pub time: String,
    pub creator: i64,
    pub position: i64,
    pub file: Option<String>,
}

impl SetVersion {
    pub fn of(row: &DatasetVersionRow, imagesets: &[i64]) -> Self {
        SetVersion {
            id: row.id,
            name: row.name.clone(),
            imagesets: imagesets.to_vec(),
            time: format_time(row.time),
            creator: row.creator,
            position: row.position,
            file: None,
        }
    }
}

/// An annotation as it was in a version, and whether it has changed since.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnnotationVersion {
    pub id: i64,
    pub version: i64,
    pub annotation: i64,
    pub image: i64,
    pub annotation_type: i64,
    pub deleted: bool,
    pub vector: Option<Value>,
    pub has_changes: bool,
}

impl AnnotationVersion {
    /// `then` as of `version`, against `now` (none: it is gone).
    pub fn of(version: i64, then: &AnnotationRow, now: Option<&AnnotationRow>) -> Self {
        let has_changes = now.is_none_or(|now| {
            now.vector != then.vector
                || now.annotation_type != then.annotation_type
                || now.deleted != then.deleted
        });
        AnnotationVersion {
            id: version_row_id(version, then.id),
            version,
            annotation: then.id,
            image: then.image,
            annotation_type: then.annotation_type,
            deleted: then.deleted,
            vector: then
                .vector
                .as_deref()
                .and_then(|v| serde_json::from_str(v).ok()),
            has_changes,
        }
    }
}

/// An annotation version's id: its dataset version and annotation, as one number.
fn version_row_id(version: i64, annotation: i64) -> i64 {
    (version << 32) | annotation
}

/// The dataset version and the annotation an annotation version's id names.
pub fn version_row_parts(id: i64) -> (i64, i64) {
    (id >> 32, id & 0xffff_ffff)
}
