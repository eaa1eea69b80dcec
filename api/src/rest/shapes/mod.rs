//! What the API answers: one `#[derive(Serialize)]` struct per resource shape, in one file per
//! resource, each built from its read-model rows. Handlers serialize them as they are;
//! `fields`, `omit` and `expand` reshape the serialized value only when asked. Handlers and
//! `expand` both depend on these shapes, never on each other.

mod accounts;
mod annotations;
mod catalog;
mod documented;
mod images;
mod media_files;
mod screening;
mod server;
mod set_tags;
mod versions;

pub use accounts::{CreatedToken, Token};
pub use annotations::{AccessEntry, Annotation, AnnotationHistory, Verification};
pub use catalog::{
    membership_id, membership_parts, AnnotationType, ImageSet, LinkedToSet, Membership, Product,
    Team, User,
};
pub use documented::*;
pub use images::Image;
pub use media_files::MediaFile;
pub use screening::Screening;
pub use server::{
    CacheReport, CachedLevel, Caller, DeepZoomGrid, SetPin, SlideInformation, TimeSync,
};
pub use set_tags::{tag_id, SetTag};
pub use versions::{version_row_parts, AnnotationVersion, SetVersion};

use serde::Serialize;
use serde_json::Value;

/// A shape as a JSON value, for `fields`/`omit`/`expand` to reshape.
pub fn value<T: Serialize>(shape: &T) -> Value {
    serde_json::to_value(shape).expect("response shapes always serialize")
}
