//! Accounts, teams and their memberships, products, annotation types and image sets. Each
//! takes what it links to (members, sets, ...) from its caller, which read it once for a whole
//! list.

use exact_projections::catalog_read::{
    AnnotationTypeRow, ImageSetRow, MembershipRow, ProductRow, TeamRow, UserRow,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::rest::params::format_time;

/// An account as EXACT's serializer shows it to someone; `email` is `""` for whoever may not
/// see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub is_superuser: bool,
    pub is_staff: bool,
    pub is_active: bool,
    /// Logins are not recorded.
    #[schema(format = DateTime)]
    pub last_login: Option<String>,
    #[schema(format = DateTime)]
    pub date_joined: String,
    pub team_set: Vec<i64>,
}

impl User {
    pub fn of(user: &UserRow, email_shown: bool, team_set: Vec<i64>) -> Self {
        User {
            id: user.id,
            username: user.username.clone(),
            email: if email_shown {
                user.email.clone()
            } else {
                String::new()
            },
            is_superuser: user.is_superuser,
            is_staff: user.is_staff,
            is_active: user.is_active,
            last_login: None,
            date_joined: format_time(user.date_joined),
            team_set,
        }
    }
}

/// A team with its members, sets and products.
#[derive(Debug, Serialize, ToSchema)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub website: String,
    pub members: Vec<i64>,
    pub memberships: Vec<Membership>,
    pub image_sets: Vec<i64>,
    pub product_set: Vec<i64>,
}

impl Team {
    pub fn of(
        team: &TeamRow,
        members: &[MembershipRow],
        image_sets: Vec<i64>,
        product_set: Vec<i64>,
    ) -> Self {
        Team {
            id: team.id,
            name: team.name.clone(),
            website: team.website.clone(),
            members: members.iter().map(|m| m.user_id).collect(),
            memberships: members.iter().map(Membership::of).collect(),
            image_sets,
            product_set,
        }
    }
}

/// A user's membership of a team; its id is the two ids in one number.
#[derive(Debug, Serialize, ToSchema)]
pub struct Membership {
    pub id: i64,
    pub is_admin: bool,
    pub team: i64,
    pub user: i64,
}

impl Membership {
    pub fn of(m: &MembershipRow) -> Self {
        Membership {
            id: membership_id(m.team, m.user_id),
            is_admin: m.is_admin,
            team: m.team,
            user: m.user_id,
        }
    }
}

/// A membership's id: the team in the high 32 bits, the user in the low ones.
pub fn membership_id(team: i64, user: i64) -> i64 {
    (team << 32) | (user & 0xffff_ffff)
}

/// The team and the user a membership's id names.
pub fn membership_parts(id: i64) -> (i64, i64) {
    (id >> 32, id & 0xffff_ffff)
}

/// A product with the sets it is linked to and its annotation types.
#[derive(Debug, Serialize, ToSchema)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub team: i64,
    pub creator: i64,
    #[schema(format = DateTime)]
    pub time: String,
    pub imagesets: Vec<i64>,
    pub annotationtype_set: Vec<i64>,
}

impl Product {
    pub fn of(p: &ProductRow, imagesets: &[i64], annotation_types: &[i64]) -> Self {
        Product {
            id: p.id,
            name: p.name.clone(),
            description: p.description.clone(),
            team: p.team,
            creator: p.creator,
            time: format_time(p.time),
            imagesets: imagesets.to_vec(),
            annotationtype_set: annotation_types.to_vec(),
        }
    }
}

/// An annotation type.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnnotationType {
    pub id: i64,
    pub name: String,
    pub vector_type: i64,
    pub node_count: i64,
    pub enable_concealed: bool,
    pub enable_blurred: bool,
    pub color_code: String,
    pub default_width: i64,
    pub default_height: i64,
    pub sort_order: i64,
    pub closed: bool,
    pub area_hit_test: bool,
    pub product: i64,
    pub active: bool,
}

impl AnnotationType {
    pub fn of(t: &AnnotationTypeRow) -> Self {
        AnnotationType {
            id: t.id,
            name: t.name.clone(),
            vector_type: t.vector_type,
            node_count: t.node_count,
            enable_concealed: t.enable_concealed,
            enable_blurred: t.enable_blurred,
            color_code: t.color_code.clone(),
            default_width: t.default_width,
            default_height: t.default_height,
            sort_order: t.sort_order,
            closed: t.closed,
            area_hit_test: t.area_hit_test,
            product: t.product,
            active: t.active,
        }
    }
}

/// An image set with its images, products and tags.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageSet {
    pub id: i64,
    pub name: String,
    pub path: String,
    pub location: String,
    pub description: String,
    pub images: Vec<i64>,
    pub product_set: Vec<i64>,
    pub main_annotation_type: Option<i64>,
    /// EXACT's tags are rows with ids (`images/set_tags`); here they are names of the set, in
    /// `tags`, with their ids in `set_tags`.
    pub set_tags: Vec<i64>,
    pub tags: Vec<String>,
    pub team: Option<i64>,
    pub creator: i64,
    pub public: bool,
    pub public_collaboration: bool,
    pub image_lock: bool,
    pub priority: i64,
    pub collaboration_type: i64,
    /// Clinical mode (not EXACT's): verdicts are electronic signatures, and changing an
    /// annotation that has a verdict needs a reason.
    pub clinical: bool,
    /// EXACT's zip state: 1 an archive of the set as it stands is ready, 2 one is being built
    /// (`/images/imageset/{id}/download/` starts it), 0 neither.
    pub zip_state: i64,
    #[schema(format = DateTime)]
    pub time: String,
}

/// What an image set links to.
#[derive(Debug, Default)]
pub struct LinkedToSet {
    pub images: Vec<i64>,
    pub products: Vec<i64>,
    /// Its tags' names and ids.
    pub tags: Vec<(String, i64)>,
}

impl ImageSet {
    pub fn of(s: &ImageSetRow, links: LinkedToSet) -> Self {
        ImageSet {
            id: s.id,
            name: s.name.clone(),
            path: format!("imagesets/{}", s.id),
            location: s.location.clone(),
            description: s.description.clone(),
            images: links.images,
            product_set: links.products,
            main_annotation_type: s.main_annotation_type,
            set_tags: links.tags.iter().map(|(_, id)| *id).collect(),
            tags: links.tags.into_iter().map(|(name, _)| name).collect(),
            team: s.team,
            creator: s.creator,
            public: s.public,
            public_collaboration: s.public_collaboration,
            image_lock: s.image_lock,
            priority: s.priority,
            collaboration_type: s.collaboration_type,
            clinical: s.clinical,
            zip_state: 0,
            time: format_time(s.time),
        }
    }
}
