//! Files attached to an annotation (EXACT's `AnnotationMediaFile`): an image, video or sound
//! that shows what the annotation marks. The file is stored beside the slides; the event names
//! it with its checksum, so the log says which bytes were attached.

use serde::{Deserialize, Serialize};

use crate::error::name_in;
use crate::event::DomainEvent;
use crate::permissions::{Permission, Permissions};
use crate::DomainError;

/// The stream of media file `id`.
pub fn media_file_stream(id: i64) -> String {
    format!("media_file-{id}")
}

/// EXACT's `media_file_type`: 1 undefined, 2 image, 3 video, 4 audio.
pub const MEDIA_FILE_TYPES: std::ops::RangeInclusive<i64> = 1..=4;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum MediaFileEvent {
    MediaFileAdded {
        id: i64,
        annotation: i64,
        name: String,
        media_file_type: i64,
        /// Where the bytes are, relative to the data folder.
        file: String,
        /// SHA-256 of the bytes, lowercase hex.
        checksum: String,
        size: i64,
    },
    MediaFileDeleted {
        id: i64,
    },
    /// EXACT's partial update of a media file: its name (the bytes stay as they are).
    MediaFileRenamed {
        id: i64,
        name: String,
    },
}

impl DomainEvent for MediaFileEvent {
    const NAMES: &'static [&'static str] =
        &["MediaFileAdded", "MediaFileDeleted", "MediaFileRenamed"];
}

/// A file to attach, as received.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMediaFile {
    pub annotation: i64,
    pub name: String,
    pub media_file_type: i64,
    pub file: String,
    pub checksum: String,
    pub size: i64,
}

/// Attaching needs the right to edit the annotation, which must not be deleted.
pub fn add_media_file(
    id: i64,
    new: &NewMediaFile,
    permissions: Permissions,
    annotation_deleted: bool,
) -> Result<MediaFileEvent, DomainError> {
    if !permissions.contains(Permission::EditAnnotation) {
        return Err(DomainError::ForbiddenInSet(Permission::EditAnnotation));
    }
    if annotation_deleted {
        return Err(DomainError::Deleted("annotation"));
    }
    if !MEDIA_FILE_TYPES.contains(&new.media_file_type) {
        return Err(DomainError::invalid(
            "media_file_type",
            "must be 1 (undefined), 2 (image), 3 (video) or 4 (audio)",
        ));
    }
    Ok(MediaFileEvent::MediaFileAdded {
        id,
        annotation: new.annotation,
        name: name_in("name", &new.name, 1, 255)?,
        media_file_type: new.media_file_type,
        file: new.file.clone(),
        checksum: new.checksum.clone(),
        size: new.size,
    })
}

/// Detaching needs the right to edit the annotation.
pub fn delete_media_file(id: i64, permissions: Permissions) -> Result<MediaFileEvent, DomainError> {
    if !permissions.contains(Permission::EditAnnotation) {
        return Err(DomainError::ForbiddenInSet(Permission::EditAnnotation));
    }
    Ok(MediaFileEvent::MediaFileDeleted { id })
}

/// Renaming needs the right to edit the annotation.
pub fn rename_media_file(
    id: i64,
    name: &str,
    permissions: Permissions,
) -> Result<MediaFileEvent, DomainError> {
    if !permissions.contains(Permission::EditAnnotation) {
        return Err(DomainError::ForbiddenInSet(Permission::EditAnnotation));
    }
    Ok(MediaFileEvent::MediaFileRenamed {
        id,
        name: name_in("name", name, 1, 255)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{image_set_permissions, SetFlags, Standing};

    fn new(kind: i64, name: &str) -> NewMediaFile {
        NewMediaFile {
            annotation: 3,
            name: name.into(),
            media_file_type: kind,
            file: "media/3/cell.png".into(),
            checksum: "ab".repeat(32),
            size: 10,
        }
    }

    fn permissions(member: bool) -> Permissions {
        let standing = Standing {
            member,
            ..Standing::default()
        };
        image_set_permissions(standing, SetFlags::default())
    }

    #[test]
    fn a_member_attaches_and_detaches_files() {
        let added = add_media_file(9, &new(2, "cell.png"), permissions(true), false).unwrap();
        assert!(matches!(
            added,
            MediaFileEvent::MediaFileAdded {
                id: 9,
                annotation: 3,
                media_file_type: 2,
                ..
            }
        ));
        assert_eq!(
            delete_media_file(9, permissions(true)),
            Ok(MediaFileEvent::MediaFileDeleted { id: 9 })
        );
    }

    #[test]
    fn refusals() {
        let outsider = add_media_file(9, &new(2, "cell.png"), permissions(false), false);
        assert_eq!(
            outsider,
            Err(DomainError::ForbiddenInSet(Permission::EditAnnotation))
        );
        let deleted = add_media_file(9, &new(2, "cell.png"), permissions(true), true);
        assert_eq!(deleted, Err(DomainError::Deleted("annotation")));
        for kind in [0, 5, -1] {
            assert!(add_media_file(9, &new(kind, "cell.png"), permissions(true), false).is_err());
        }
        assert!(add_media_file(9, &new(2, "  "), permissions(true), false).is_err());
        assert!(delete_media_file(9, permissions(false)).is_err());
        assert_eq!(
            rename_media_file(9, " mitosis.png ", permissions(true)),
            Ok(MediaFileEvent::MediaFileRenamed {
                id: 9,
                name: "mitosis.png".into()
            })
        );
        assert!(rename_media_file(9, "", permissions(true)).is_err());
        assert!(rename_media_file(9, "x.png", permissions(false)).is_err());
    }
}
