//! A file attached to an annotation.

use exact_projections::catalog_read::MediaFileRow;
use serde::Serialize;
use utoipa::ToSchema;

/// A media file; `file` is where its bytes are served.
#[derive(Debug, Serialize, ToSchema)]
pub struct MediaFile {
    pub id: i64,
    pub name: String,
    pub media_file_type: i64,
    pub file: String,
    pub annotation: i64,
    pub size: i64,
    pub checksum: String,
}

impl MediaFile {
    pub fn of(m: &MediaFileRow) -> Self {
        MediaFile {
            id: m.id,
            name: m.name.clone(),
            media_file_type: m.media_file_type,
            file: format!("/api/v1/annotations/annotation_media_files/{}/file/", m.id),
            annotation: m.annotation,
            size: m.size,
            checksum: m.checksum.clone(),
        }
    }
}
