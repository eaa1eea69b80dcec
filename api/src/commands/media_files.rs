//! Files attached to annotations.

use exact_domain::media_file::{
    add_media_file, delete_media_file, media_file_stream, rename_media_file, MediaFileEvent,
    NewMediaFile,
};
use exact_domain::permissions::Permission;
use exact_domain::{DomainError, DomainEvent};
use exact_projections::catalog_read::MediaFileRow;
use exact_store::{Expected, NewEvent, StreamAppend};

use super::{Caller, Commands, Written};
use crate::error::ApiError;

impl Commands {
    /// Whether the caller may attach files to annotation `id` (it is readable, live, and theirs
    /// to edit): checked before any file is moved into place.
    pub async fn may_attach(&self, caller: &Caller, annotation: i64) -> Result<(), ApiError> {
        let (row, _, permissions) = self.readable_annotation(caller, annotation).await?;
        if !permissions.contains(Permission::EditAnnotation) {
            return Err(DomainError::ForbiddenInSet(Permission::EditAnnotation).into());
        }
        if row.deleted {
            return Err(DomainError::Deleted("annotation").into());
        }
        Ok(())
    }

    /// Attaches the files, all in one append.
    pub async fn add_media_files(
        &self,
        caller: &Caller,
        files: Vec<NewMediaFile>,
    ) -> Result<Vec<Written>, ApiError> {
        let mut checked = Vec::with_capacity(files.len());
        for new in files {
            let (row, _, permissions) = self.readable_annotation(caller, new.annotation).await?;
            add_media_file(0, &new, permissions, row.deleted)?;
            checked.push((new, permissions, row.deleted));
        }
        if checked.is_empty() {
            return Ok(Vec::new());
        }
        let build = Box::new(move |ids: &mut exact_store::IdAllocator| {
            checked
                .iter()
                .map(|(new, permissions, deleted)| {
                    let id = ids.next("media_file");
                    let event = add_media_file(id, new, *permissions, *deleted)
                        .expect("decided above with the same input");
                    let (name, payload) = event.to_parts();
                    StreamAppend::new(
                        media_file_stream(id),
                        Expected::NoStream,
                        vec![NewEvent::new(name, payload)],
                    )
                })
                .collect()
        });
        let written = self
            .store
            .append_built(caller.append_context(), build)
            .await?;
        Ok(written.iter().map(Written::stored).collect())
    }

    /// Detaches file `row` (its bytes stay: the log still names them).
    pub async fn delete_media_file(
        &self,
        caller: &Caller,
        row: &MediaFileRow,
    ) -> Result<(), ApiError> {
        let (_, _, permissions) = self.readable_annotation(caller, row.annotation).await?;
        self.append_to_media_file(caller, row.id, delete_media_file(row.id, permissions)?)
            .await
    }

    /// Renames file `row`.
    pub async fn rename_media_file(
        &self,
        caller: &Caller,
        row: &MediaFileRow,
        name: &str,
    ) -> Result<(), ApiError> {
        let (_, _, permissions) = self.readable_annotation(caller, row.annotation).await?;
        let event = rename_media_file(row.id, name, permissions)?;
        self.append_to_media_file(caller, row.id, event).await
    }

    /// Appends to file `id`'s stream after the events read (a concurrent change is a 412).
    async fn append_to_media_file(
        &self,
        caller: &Caller,
        id: i64,
        event: MediaFileEvent,
    ) -> Result<(), ApiError> {
        let stream = media_file_stream(id);
        let version = self
            .store
            .read_stream(&stream, 1)
            .await?
            .last()
            .map_or(0, |e| e.version);
        let (name, payload) = event.to_parts();
        self.store
            .append(
                &stream,
                Expected::Exact(version),
                vec![NewEvent::new(name, payload)],
                caller.append_context(),
            )
            .await?;
        Ok(())
    }
}
