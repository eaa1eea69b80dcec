//! Work over the whole log: rebuilding read models from position 0, reading a dataset as it was
//! at any position, and diffing two positions.
//!
//! It drives `exact-store` and `exact-projections`; it knows nothing of HTTP. The chain check
//! itself (`verify`) lives in `exact-store`, next to the hash it checks.
