//! Pixels for the viewer: OpenSlide and image pyramids behind one trait, served as DeepZoom,
//! IIIF, thumbnails and regions, with handle and tile caches.
//!
//! Given a file, it answers pixels. It knows nothing of events, users, permissions or
//! annotations. Its content arrives with the tiles issue.
