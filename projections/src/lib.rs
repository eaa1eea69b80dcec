//! Read models folded from the event log: the catalog, annotations with their spatial index,
//! verifications, statistics and the annotation history that answers `as_of` queries.
//!
//! A projection reads envelopes from `exact-store` in position order and keeps a checkpoint; it
//! knows nothing of HTTP or of pixels. Built so far: the annotations read model
//! ([`annotations`]), kept inline in the append's transaction, and its queries ([`read`]).

pub mod annotations;
pub mod read;

use std::sync::Arc;

use exact_store::InlineProjection;

pub use annotations::AnnotationsProjection;
pub use read::{ReadDb, Rect};

/// Every read model Exact keeps, in the order they are applied: what `exact` opens its store
/// with.
pub fn all() -> Vec<Arc<dyn InlineProjection>> {
    vec![Arc::new(AnnotationsProjection)]
}
