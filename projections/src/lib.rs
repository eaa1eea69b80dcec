//! Read models folded from the event log: the catalog, annotations with their spatial index,
//! verifications, statistics and the annotation history that answers `as_of` queries.
//!
//! A projection reads envelopes from `exact-store` in position order and keeps a checkpoint; it
//! knows nothing of HTTP or of pixels. Built so far: the annotations read model
//! ([`annotations`]), kept inline in the append's transaction, and its queries ([`read`]).

/// Runs one statement with its binds on whichever backend `tx` is; the rows it touched.
macro_rules! execute {
    ($tx:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        $tx.execute($sql, &[$(exact_store::SqlValue::from($bind)),*]).await?
    };
}

pub mod annotation_query;
pub mod annotations;
pub mod catalog;
pub mod catalog_read;
pub mod export;
pub mod read;
pub mod spatial_cell;
mod sqlite_read;
pub mod timeline;

use std::sync::Arc;

use exact_store::InlineProjection;

pub use annotations::AnnotationsProjection;
pub use catalog::CatalogProjection;
pub use read::{AnnotationVersion, ReadDb, Rect, VerificationRow};

/// Every read model Exact keeps, in the order they are applied: what `exact` opens its store
/// with.
pub fn all() -> Vec<Arc<dyn InlineProjection>> {
    vec![Arc::new(CatalogProjection), Arc::new(AnnotationsProjection)]
}

/// The streams whose events change the annotations' read models alone (`OpenOptions::
/// hot_streams`): a server may keep what it read of the catalog (accounts, teams, sets,
/// images, types) while only they commit.
pub fn hot_streams() -> Vec<String> {
    vec![exact_domain::annotation::STREAM_PREFIX.to_owned()]
}

/// A stored event a read model cannot decode: the projection fails, and the append with it.
pub(crate) fn undecodable(
    projection: &str,
    envelope: &exact_store::Envelope,
    error: &dyn std::fmt::Display,
) -> exact_store::StoreError {
    exact_store::StoreError::Projection {
        name: projection.into(),
        reason: format!(
            "event at position {} does not decode: {error}",
            envelope.position
        ),
    }
}
