//! Types that exist for the API document only: what utoipa cannot name from the types that
//! write the answers. Each mirrors a writer exactly; the API tests hold every answer against the
//! document (no field missing, none extra), so a mirror that drifts fails them.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::*;

/// DRF's page of each shape under the name the document gives it (`TeamPage`). Answers are
/// written by [`Page`](crate::rest::params::Page); utoipa names a generic's instances
/// `Page_Team`, so the document has one type per page.
macro_rules! pages {
    ($($page:ident of $item:ty;)*) => {$(
        #[derive(Debug, ToSchema)]
        #[allow(dead_code)] // documents `Page<$item>`, which is what is written
        pub struct $page {
            count: i64,
            #[schema(required)]
            next: Option<String>,
            #[schema(required)]
            previous: Option<String>,
            results: Vec<$item>,
        }
    )*};
}

pages! {
    UserPage of User;
    TeamPage of Team;
    MembershipPage of Membership;
    ProductPage of Product;
    AnnotationTypePage of AnnotationType;
    ImageSetPage of ImageSet;
    ImagePage of Image;
    AnnotationPage of Annotation<'static>;
    VerificationPage of Verification;
    AccessEntryPage of AccessEntry;
    MediaFilePage of MediaFile;
    ScreeningModePage of Screening;
    SetTagPage of SetTag;
    SetVersionPage of SetVersion;
    AnnotationVersionPage of AnnotationVersion;
    TokenPage of Token;
}

/// A list POST of annotations answers a list; one annotation answers one.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documents what `create_annotations` writes
pub enum AnnotationOrList {
    One(Annotation<'static>),
    List(Vec<Annotation<'static>>),
}

/// Bytes: an image, a tile, an attached file.
#[derive(Debug)]
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::Custom("binary".into())))
            .into()
    }
}

impl ToSchema for Binary {}
