//! Read models folded from the event log: the catalog, annotations with their spatial index,
//! verifications, statistics and the annotation history that answers `as_of` queries.
//!
//! A projection reads envelopes from `exact-store` in position order and keeps a checkpoint; it
//! knows nothing of HTTP or of pixels. Its content arrives with the domain and projections issue.
