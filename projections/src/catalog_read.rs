//! Queries on the catalog: what a command needs to know to decide (is a name taken, how does
//! the actor stand to a set) and what the API lists (only what the user may read).

use std::collections::BTreeSet;

use exact_domain::permissions::{
    image_set_permissions, Permission, Permissions, SetFlags, Standing,
};
use exact_domain::{Actor, TeamRole};

use crate::read::ReadDb;
use crate::sqlite_read::sqlite_row;

/// Runs one query on whichever backend `db` is: `query_as` or `query_scalar`, then the fetch.
/// SQLite's go through rusqlite (`sqlite_read`), PostgreSQL's through sqlx.
macro_rules! fetch {
    ($db:expr, $kind:ident, $fetch:ident, $sql:expr $(, $bind:expr)* $(,)?) => {
        match $db {
            ReadDb::Sqlite(_, readers) => {
                let args = vec![$(exact_store::SqlValue::from($bind).into_owned()),*];
                crate::sqlite_read::$kind::$fetch(readers, $sql, args).await
            }
            ReadDb::Postgres(pool) => sqlx::$kind($sql)$(.bind($bind))*.$fetch(pool).await,
        }
    };
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub is_superuser: bool,
    pub is_staff: bool,
    pub is_active: bool,
    pub date_joined: i64,
    pub version: i64,
}

impl UserRow {
    /// The user as the rules see them; an inactive account is allowed nothing special.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.id,
            superuser: self.is_superuser && self.is_active,
            staff: self.is_staff && self.is_active,
        }
    }
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct TeamRow {
    pub id: i64,
    pub name: String,
    pub website: String,
    pub creator: i64,
    pub dissolved: bool,
    pub time: i64,
    pub version: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct MembershipRow {
    pub team: i64,
    pub user_id: i64,
    pub is_admin: bool,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ProductRow {
    pub id: i64,
    pub team: i64,
    pub name: String,
    pub description: String,
    pub creator: i64,
    pub time: i64,
    pub version: i64,
}

/// Serialized as it is for the web app's pages (the REST API has its own shape).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct AnnotationTypeRow {
    pub id: i64,
    pub product: i64,
    pub name: String,
    pub vector_type: i64,
    pub node_count: i64,
    pub color_code: String,
    pub default_width: i64,
    pub default_height: i64,
    pub sort_order: i64,
    pub closed: bool,
    pub area_hit_test: bool,
    pub enable_concealed: bool,
    pub enable_blurred: bool,
    pub active: bool,
    pub version: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ImageSetRow {
    pub id: i64,
    pub team: Option<i64>,
    pub creator: i64,
    pub name: String,
    pub location: String,
    pub description: String,
    pub public: bool,
    pub public_collaboration: bool,
    pub image_lock: bool,
    pub priority: i64,
    pub collaboration_type: i64,
    pub main_annotation_type: Option<i64>,
    pub deleted: bool,
    pub time: i64,
    pub version: i64,
    pub clinical: bool,
}

impl ImageSetRow {
    pub fn flags(&self) -> SetFlags {
        SetFlags {
            freed: self.team.is_none(),
            public: self.public,
            public_collaboration: self.public_collaboration,
            image_lock: self.image_lock,
        }
    }
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ImageRow {
    pub id: i64,
    pub image_set: i64,
    pub name: String,
    pub filename: String,
    pub checksum: String,
    pub width: i64,
    pub height: i64,
    pub mpp: Option<f64>,
    pub objective_power: Option<f64>,
    pub depth: i64,
    pub frames: i64,
    pub channels: i64,
    pub image_type: i64,
    pub deleted: bool,
    pub time: i64,
    pub version: i64,
    /// What each frame shows: a JSON object from frame number to text.
    pub frame_descriptions: String,
}

impl ImageRow {
    /// What each frame shows, by frame number (the column holds them as JSON).
    pub fn described_frames(&self) -> std::collections::BTreeMap<i64, String> {
        serde_json::from_str(&self.frame_descriptions).unwrap_or_default()
    }
}

/// Live annotations by verdict, for an image, a set or a type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Statistics {
    pub total: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub unverified: i64,
}

/// A personal access token, by its public id; the token itself is never stored.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct TokenRow {
    pub token: String,
    pub user_id: i64,
    pub name: String,
    pub created: i64,
    pub revoked: Option<i64>,
}

/// One `LogImageAction`: action 1 opened, 2 closed.
/// A file attached to an annotation.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct MediaFileRow {
    pub id: i64,
    pub annotation: i64,
    pub name: String,
    pub media_file_type: i64,
    pub file: String,
    pub checksum: String,
    pub size: i64,
    pub time: i64,
}

/// One user's screening of one image.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ScreeningRow {
    pub id: i64,
    pub image: i64,
    pub user_id: i64,
    pub screening_tiles: Option<String>,
    pub x_steps: i64,
    pub y_steps: i64,
    pub x_resolution: i64,
    pub y_resolution: i64,
    pub current_index: i64,
    pub version: i64,
}

/// A team's export format in EXACT's language, as it stands.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ExportFormatRow {
    pub id: i64,
    /// None: the store's default format (`format=exact`), every team's.
    pub team: Option<i64>,
    pub creator: i64,
    pub name: String,
    pub public: bool,
    pub base_format: String,
    pub image_format: String,
    pub annotation_format: String,
    pub vector_format: String,
    pub not_in_image_format: String,
    pub name_format: String,
    pub min_verifications: i64,
    pub image_aggregation: bool,
    pub include_blurred: bool,
    pub include_concealed: bool,
    pub last_change_time: i64,
    pub version: i64,
}

impl ExportFormatRow {
    /// The format's settings, with its chosen `types`.
    pub fn settings(
        &self,
        types: std::collections::BTreeSet<i64>,
    ) -> exact_domain::export_format::FormatSettings {
        exact_domain::export_format::FormatSettings {
            name: self.name.clone(),
            public: self.public,
            annotations_types: types,
            base_format: self.base_format.clone(),
            image_format: self.image_format.clone(),
            annotation_format: self.annotation_format.clone(),
            vector_format: self.vector_format.clone(),
            not_in_image_format: self.not_in_image_format.clone(),
            name_format: self.name_format.clone(),
            min_verifications: self.min_verifications,
            image_aggregation: self.image_aggregation,
            include_blurred: self.include_blurred,
            include_concealed: self.include_concealed,
        }
    }
}

/// A name for image sets as they stood at a log position.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct DatasetVersionRow {
    pub id: i64,
    pub name: String,
    pub position: i64,
    pub creator: i64,
    pub time: i64,
}

#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct AccessRow {
    pub position: i64,
    pub image: i64,
    pub user_id: i64,
    pub action: i64,
    pub time: i64,
    pub ip: Option<String>,
}

// Each row type read by column name on SQLite, as sqlx's `FromRow` reads it on PostgreSQL.
sqlite_row!(UserRow {
    id,
    username,
    email,
    password_hash,
    is_superuser,
    is_staff,
    is_active,
    date_joined,
    version
});
sqlite_row!(TeamRow {
    id,
    name,
    website,
    creator,
    dissolved,
    time,
    version
});
sqlite_row!(MembershipRow {
    team,
    user_id,
    is_admin
});
sqlite_row!(ProductRow {
    id,
    team,
    name,
    description,
    creator,
    time,
    version
});
sqlite_row!(AnnotationTypeRow {
    id,
    product,
    name,
    vector_type,
    node_count,
    color_code,
    default_width,
    default_height,
    sort_order,
    closed,
    area_hit_test,
    enable_concealed,
    enable_blurred,
    active,
    version
});
sqlite_row!(ImageSetRow {
    id,
    team,
    creator,
    name,
    location,
    description,
    public,
    public_collaboration,
    image_lock,
    priority,
    collaboration_type,
    main_annotation_type,
    deleted,
    time,
    version,
    clinical
});
sqlite_row!(ImageRow {
    id,
    image_set,
    name,
    filename,
    checksum,
    width,
    height,
    mpp,
    objective_power,
    depth,
    frames,
    channels,
    image_type,
    deleted,
    time,
    version,
    frame_descriptions
});

/// A set with the role of one user in its team (`member_admin`: none when they are not a
/// member), read in one statement.
#[derive(sqlx::FromRow)]
struct SetWithRole {
    #[sqlx(flatten)]
    set: ImageSetRow,
    member_admin: Option<bool>,
}

impl exact_store::SqlRow for SetWithRole {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            set: ImageSetRow::from_sqlite(row)?,
            member_admin: row.get("member_admin")?,
        })
    }
}

/// A type with whether a set offers it, read in one statement.
#[derive(sqlx::FromRow)]
struct TypeOffered {
    #[sqlx(flatten)]
    row: AnnotationTypeRow,
    offered: bool,
}

impl exact_store::SqlRow for TypeOffered {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            row: AnnotationTypeRow::from_sqlite(row)?,
            offered: row.get("offered")?,
        })
    }
}
sqlite_row!(Statistics {
    total,
    accepted,
    rejected,
    unverified
});
sqlite_row!(TokenRow {
    token,
    user_id,
    name,
    created,
    revoked
});
sqlite_row!(MediaFileRow {
    id,
    annotation,
    name,
    media_file_type,
    file,
    checksum,
    size,
    time
});
sqlite_row!(ScreeningRow {
    id,
    image,
    user_id,
    screening_tiles,
    x_steps,
    y_steps,
    x_resolution,
    y_resolution,
    current_index,
    version
});
sqlite_row!(ExportFormatRow {
    id,
    team,
    creator,
    name,
    public,
    base_format,
    image_format,
    annotation_format,
    vector_format,
    not_in_image_format,
    name_format,
    min_verifications,
    image_aggregation,
    include_blurred,
    include_concealed,
    last_change_time,
    version,
});
sqlite_row!(DatasetVersionRow {
    id,
    name,
    position,
    creator,
    time
});
sqlite_row!(AccessRow {
    position,
    image,
    user_id,
    action,
    time,
    ip
});

const USER: &str =
    "SELECT id, username, email, password_hash, is_superuser, is_staff, is_active, date_joined, \
                    version FROM users";
const TOKEN: &str = "SELECT token, user_id, name, created, revoked FROM access_tokens";
const TEAM: &str = "SELECT id, name, website, creator, dissolved, time, version FROM teams";
const PRODUCT: &str = "SELECT id, team, name, description, creator, time, version FROM products";
const TYPE: &str = "SELECT t.id, t.product, t.name, t.vector_type, t.node_count, t.color_code, t.default_width, \
                    t.default_height, t.sort_order, t.closed, t.area_hit_test, t.enable_concealed, t.enable_blurred, \
                    t.active, t.version FROM annotation_types t";
const SET: &str = "SELECT s.id, s.team, s.creator, s.name, s.location, s.description, s.public, \
                   s.public_collaboration, s.image_lock, s.priority, s.collaboration_type, s.main_annotation_type, \
                   s.deleted, s.time, s.version, s.clinical FROM image_sets s";
const IMAGE: &str = "SELECT i.id, i.image_set, i.name, i.filename, i.checksum, i.width, i.height, i.mpp, \
                     i.objective_power, i.depth, i.frames, i.channels, i.image_type, i.deleted, i.time, i.version, \
                     i.frame_descriptions FROM images i";
/// [`SET`] with `member_admin`: user `$2`'s membership of the set's team (NULL: none).
const SET_WITH_ROLE: &str = "SELECT s.id, s.team, s.creator, s.name, s.location, s.description, s.public, \
                   s.public_collaboration, s.image_lock, s.priority, s.collaboration_type, s.main_annotation_type, \
                   s.deleted, s.time, s.version, s.clinical, (SELECT m.is_admin FROM team_memberships m \
                   WHERE m.team = s.team AND m.user_id = $2) AS member_admin FROM image_sets s";
/// The sets user `$1` may read, unless `$2` (a superuser) may read all: public sets, sets of
/// their teams, and sets they created that still belong to a team.
const READABLE_SET: &str =
    "($2 OR s.public OR s.team IN (SELECT team FROM team_memberships WHERE user_id = $1) \
                            OR (s.team IS NOT NULL AND s.creator = $1))";

impl ReadDb {
    pub async fn user(&self, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
        fetch!(
            self,
            query_as,
            fetch_optional,
            &format!("{USER} WHERE id = $1"),
            id
        )
    }

    /// Usernames compare without case, as logins do.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
        let sql = format!("{USER} WHERE lower(username) = lower($1)");
        fetch!(self, query_as, fetch_optional, &sql, username)
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, sqlx::Error> {
        fetch!(self, query_as, fetch_all, &format!("{USER} ORDER BY id"))
    }

    pub async fn team(&self, id: i64) -> Result<Option<TeamRow>, sqlx::Error> {
        fetch!(
            self,
            query_as,
            fetch_optional,
            &format!("{TEAM} WHERE id = $1"),
            id
        )
    }

    /// A team that still exists with this name.
    pub async fn team_by_name(&self, name: &str) -> Result<Option<TeamRow>, sqlx::Error> {
        let sql = format!("{TEAM} WHERE name = $1 AND NOT dissolved");
        fetch!(self, query_as, fetch_optional, &sql, name.trim())
    }

    /// The teams `user` is a member of.
    pub async fn teams_of(&self, user: i64) -> Result<Vec<TeamRow>, sqlx::Error> {
        let sql = format!(
            "{TEAM} WHERE id IN (SELECT team FROM team_memberships WHERE user_id = $1) ORDER BY id"
        );
        fetch!(self, query_as, fetch_all, &sql, user)
    }

    pub async fn memberships(&self, team: i64) -> Result<Vec<MembershipRow>, sqlx::Error> {
        let sql =
            "SELECT team, user_id, is_admin FROM team_memberships WHERE team = $1 ORDER BY user_id";
        fetch!(self, query_as, fetch_all, sql, team)
    }

    pub async fn team_role(&self, team: i64, user: i64) -> Result<TeamRole, sqlx::Error> {
        let sql = "SELECT is_admin FROM team_memberships WHERE team = $1 AND user_id = $2";
        let admin: Option<bool> = fetch!(self, query_scalar, fetch_optional, sql, team, user)?;
        Ok(match admin {
            None => TeamRole::None,
            Some(false) => TeamRole::Member,
            Some(true) => TeamRole::Admin,
        })
    }

    pub async fn product(&self, id: i64) -> Result<Option<ProductRow>, sqlx::Error> {
        fetch!(
            self,
            query_as,
            fetch_optional,
            &format!("{PRODUCT} WHERE id = $1"),
            id
        )
    }

    pub async fn product_by_name(
        &self,
        team: i64,
        name: &str,
    ) -> Result<Option<ProductRow>, sqlx::Error> {
        let sql = format!("{PRODUCT} WHERE team = $1 AND name = $2");
        fetch!(self, query_as, fetch_optional, &sql, team, name.trim())
    }

    pub async fn annotation_type(&self, id: i64) -> Result<Option<AnnotationTypeRow>, sqlx::Error> {
        fetch!(
            self,
            query_as,
            fetch_optional,
            &format!("{TYPE} WHERE t.id = $1 AND NOT t.deleted"),
            id
        )
    }

    pub async fn annotation_type_by_name(
        &self,
        product: i64,
        name: &str,
    ) -> Result<Option<AnnotationTypeRow>, sqlx::Error> {
        let sql = format!("{TYPE} WHERE t.product = $1 AND t.name = $2 AND NOT t.deleted");
        fetch!(self, query_as, fetch_optional, &sql, product, name.trim())
    }

    /// The active types a set offers: those of every product linked to it, in sort order.
    pub async fn offered_types(
        &self,
        image_set: i64,
    ) -> Result<Vec<AnnotationTypeRow>, sqlx::Error> {
        let sql = format!(
            "{TYPE} WHERE t.active AND NOT t.deleted AND t.product IN (SELECT product FROM product_image_sets WHERE image_set = $1) \
             ORDER BY t.sort_order, t.id"
        );
        fetch!(self, query_as, fetch_all, &sql, image_set)
    }

    /// Whether `annotation_type` is active and linked to `image_set` through a product.
    pub async fn type_offered(
        &self,
        image_set: i64,
        annotation_type: i64,
    ) -> Result<bool, sqlx::Error> {
        let sql = "SELECT COUNT(*) FROM annotation_types t JOIN product_image_sets p ON p.product = t.product \
                   WHERE NOT t.deleted AND p.image_set = $1 AND t.id = $2";
        let n: i64 = fetch!(
            self,
            query_scalar,
            fetch_one,
            sql,
            image_set,
            annotation_type
        )?;
        Ok(n > 0)
    }

    /// Whether every type in `types` belongs to a product of `team`.
    pub async fn types_in_team(&self, team: i64, types: &[i64]) -> Result<bool, sqlx::Error> {
        for t in types {
            let sql =
                "SELECT COUNT(*) FROM annotation_types t JOIN products p ON p.id = t.product \
                       WHERE t.id = $1 AND p.team = $2";
            let n: i64 = fetch!(self, query_scalar, fetch_one, sql, t, team)?;
            if n == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub async fn image_set(&self, id: i64) -> Result<Option<ImageSetRow>, sqlx::Error> {
        fetch!(
            self,
            query_as,
            fetch_optional,
            &format!("{SET} WHERE s.id = $1"),
            id
        )
    }

    /// A live set of `team` with this name.
    pub async fn image_set_by_name(
        &self,
        team: i64,
        name: &str,
    ) -> Result<Option<ImageSetRow>, sqlx::Error> {
        let sql = format!("{SET} WHERE s.team = $1 AND s.name = $2 AND NOT s.deleted");
        fetch!(self, query_as, fetch_optional, &sql, team, name.trim())
    }

    /// The live sets of `team`.
    pub async fn image_sets_of_team(&self, team: i64) -> Result<Vec<ImageSetRow>, sqlx::Error> {
        let sql = format!("{SET} WHERE s.team = $1 AND NOT s.deleted ORDER BY s.id");
        fetch!(self, query_as, fetch_all, &sql, team)
    }

    /// What `actor` may do with `set`: EXACT's rule, from memberships and the set's flags.
    pub async fn set_permissions(
        &self,
        actor: Actor,
        set: &ImageSetRow,
    ) -> Result<Permissions, sqlx::Error> {
        let role = match set.team {
            Some(team) => self.team_role(team, actor.id).await?,
            None => TeamRole::None,
        };
        Ok(permissions_in(actor, set, role))
    }

    /// The live set and `actor`'s permissions on it; `None` if it is gone or unreadable (the
    /// API answers both with 404).
    pub async fn readable_set(
        &self,
        actor: Actor,
        id: i64,
    ) -> Result<Option<(ImageSetRow, Permissions)>, sqlx::Error> {
        // The set and the caller's role in its team in one statement: every request on a set
        // asks this first.
        let sql = format!("{SET_WITH_ROLE} WHERE s.id = $1",);
        let found: Option<SetWithRole> =
            fetch!(self, query_as, fetch_optional, &sql, id, actor.id)?;
        let Some(SetWithRole { set, member_admin }) = found.filter(|s| !s.set.deleted) else {
            return Ok(None);
        };
        let role = match member_admin {
            None => TeamRole::None,
            Some(false) => TeamRole::Member,
            Some(true) => TeamRole::Admin,
        };
        let permissions = permissions_in(actor, &set, role);
        Ok(permissions
            .contains(Permission::Read)
            .then_some((set, permissions)))
    }

    /// Live type `id` and whether `image_set` offers it (a product of the set's has it), in
    /// one statement.
    pub async fn annotation_type_offered(
        &self,
        id: i64,
        image_set: i64,
    ) -> Result<Option<(AnnotationTypeRow, bool)>, sqlx::Error> {
        let sql = "SELECT t.id, t.product, t.name, t.vector_type, t.node_count, t.color_code, t.default_width, \
             t.default_height, t.sort_order, t.closed, t.area_hit_test, t.enable_concealed, t.enable_blurred, \
             t.active, t.version, EXISTS (SELECT 1 FROM product_image_sets p \
             WHERE p.product = t.product AND p.image_set = $2) AS offered \
             FROM annotation_types t WHERE t.id = $1 AND NOT t.deleted";
        let found: Option<TypeOffered> =
            fetch!(self, query_as, fetch_optional, sql, id, image_set)?;
        Ok(found.map(|t| (t.row, t.offered)))
    }

    /// The live sets `actor` may read, by id.
    pub async fn readable_sets(&self, actor: Actor) -> Result<Vec<ImageSetRow>, sqlx::Error> {
        let sql = format!("{SET} WHERE NOT s.deleted AND {READABLE_SET} ORDER BY s.id");
        fetch!(self, query_as, fetch_all, &sql, actor.id, actor.superuser)
    }

    /// The sets `user` pinned, live or not (the caller keeps those it may read).
    pub async fn pinned_sets(&self, user: i64) -> Result<BTreeSet<i64>, sqlx::Error> {
        let rows: Vec<(i64,)> = fetch!(
            self,
            query_as,
            fetch_all,
            "SELECT image_set FROM image_set_pins WHERE user_id = $1",
            user
        )?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The ids of the live sets `actor` may read.
    pub async fn readable_set_ids(&self, actor: Actor) -> Result<BTreeSet<i64>, sqlx::Error> {
        Ok(self
            .readable_sets(actor)
            .await?
            .iter()
            .map(|s| s.id)
            .collect())
    }

    /// The tags of a set, by name.
    pub async fn set_tags(&self, image_set: i64) -> Result<Vec<String>, sqlx::Error> {
        let sql = "SELECT name FROM set_tags WHERE image_set = $1 ORDER BY name";
        fetch!(self, query_scalar, fetch_all, sql, image_set)
    }

    pub async fn image(&self, id: i64) -> Result<Option<ImageRow>, sqlx::Error> {
        fetch!(
            self,
            query_as,
            fetch_optional,
            &format!("{IMAGE} WHERE i.id = $1"),
            id
        )
    }

    /// A live image of `image_set` with this name or this checksum.
    pub async fn duplicate_image(
        &self,
        image_set: i64,
        name: &str,
        checksum: &str,
    ) -> Result<Option<ImageRow>, sqlx::Error> {
        let sql = format!(
            "{IMAGE} WHERE i.image_set = $1 AND NOT i.deleted AND (i.name = $2 OR i.checksum = $3) LIMIT 1"
        );
        fetch!(
            self,
            query_as,
            fetch_optional,
            &sql,
            image_set,
            name.trim(),
            checksum.to_ascii_lowercase()
        )
    }

    /// The live images of the sets `actor` may read, by id; of one set if `image_set` is given.
    pub async fn readable_images(
        &self,
        actor: Actor,
        image_set: Option<i64>,
    ) -> Result<Vec<ImageRow>, sqlx::Error> {
        let sql = format!(
            "{IMAGE} JOIN image_sets s ON s.id = i.image_set WHERE NOT i.deleted AND NOT s.deleted \
             AND {READABLE_SET} AND ($3 = 0 OR i.image_set = $3) ORDER BY i.id"
        );
        fetch!(
            self,
            query_as,
            fetch_all,
            &sql,
            actor.id,
            actor.superuser,
            image_set.unwrap_or(0)
        )
    }

    /// The types offered in the sets `actor` may read and those of their teams' products (staff
    /// and superusers, who manage every product's types: all), by id.
    pub async fn readable_types(
        &self,
        actor: Actor,
    ) -> Result<Vec<AnnotationTypeRow>, sqlx::Error> {
        let sql = format!(
            "{TYPE} WHERE NOT t.deleted AND (t.product IN (SELECT p.product FROM product_image_sets p JOIN image_sets s \
             ON s.id = p.image_set WHERE NOT s.deleted AND {READABLE_SET}) \
             OR t.product IN (SELECT id FROM products WHERE team IN \
             (SELECT team FROM team_memberships WHERE user_id = $1)) OR $2 OR $3) ORDER BY t.id"
        );
        fetch!(
            self,
            query_as,
            fetch_all,
            &sql,
            actor.id,
            actor.superuser,
            actor.staff
        )
    }

    /// The live teams `actor` belongs to (a superuser: every live team), by id.
    pub async fn readable_teams(&self, actor: Actor) -> Result<Vec<TeamRow>, sqlx::Error> {
        let sql = format!(
            "{TEAM} WHERE NOT dissolved AND ($2 OR id IN \
             (SELECT team FROM team_memberships WHERE user_id = $1)) ORDER BY id"
        );
        fetch!(self, query_as, fetch_all, &sql, actor.id, actor.superuser)
    }

    /// Every membership, by team and user.
    pub async fn all_memberships(&self) -> Result<Vec<MembershipRow>, sqlx::Error> {
        let sql = "SELECT team, user_id, is_admin FROM team_memberships ORDER BY team, user_id";
        fetch!(self, query_as, fetch_all, sql)
    }

    /// The products `actor` may see: those of their teams and those linked to a set they may
    /// read (staff and superusers, who manage every product: all), by id.
    pub async fn readable_products(&self, actor: Actor) -> Result<Vec<ProductRow>, sqlx::Error> {
        let sql = format!(
            "{PRODUCT} WHERE $2 OR $3 OR team IN (SELECT team FROM team_memberships WHERE user_id = $1) \
             OR id IN (SELECT p.product FROM product_image_sets p JOIN image_sets s \
             ON s.id = p.image_set WHERE NOT s.deleted AND {READABLE_SET}) ORDER BY id"
        );
        fetch!(
            self,
            query_as,
            fetch_all,
            &sql,
            actor.id,
            actor.superuser,
            actor.staff
        )
    }

    /// Every product–set link, as (product, image set).
    pub async fn product_links(&self) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        let sql = "SELECT product, image_set FROM product_image_sets ORDER BY product, image_set";
        fetch!(self, query_as, fetch_all, sql)
    }

    /// Every set's tags, as (image set, name).
    pub async fn all_set_tags(&self) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let sql = "SELECT image_set, name FROM set_tags ORDER BY name, image_set";
        fetch!(self, query_as, fetch_all, sql)
    }

    /// The access token whose SHA-256 is `token_hash`, revoked or not.
    pub async fn access_token(&self, token_hash: &str) -> Result<Option<TokenRow>, sqlx::Error> {
        let sql = format!("{TOKEN} WHERE token_hash = $1");
        fetch!(self, query_as, fetch_optional, &sql, token_hash)
    }

    /// `user`'s access tokens, revoked ones included, oldest first.
    pub async fn access_tokens(&self, user: i64) -> Result<Vec<TokenRow>, sqlx::Error> {
        let sql = format!("{TOKEN} WHERE user_id = $1 ORDER BY created, token");
        fetch!(self, query_as, fetch_all, &sql, user)
    }

    /// Whether a live export format has this name (names are global).
    pub async fn export_format_named(&self, name: &str) -> Result<Option<i64>, sqlx::Error> {
        let sql = "SELECT id FROM export_formats WHERE name = $1 AND NOT deleted";
        fetch!(self, query_scalar, fetch_optional, sql, name.trim())
    }

    /// The team of an export format (None: the default format, of no team), if it exists and
    /// is not deleted.
    pub async fn export_format_team(&self, id: i64) -> Result<Option<Option<i64>>, sqlx::Error> {
        let sql = "SELECT team FROM export_formats WHERE id = $1 AND NOT deleted";
        fetch!(self, query_scalar, fetch_optional, sql, id)
    }

    /// The store's default format (`format=exact`), if it is live.
    pub async fn default_export_format(&self) -> Result<Option<i64>, sqlx::Error> {
        let sql =
            "SELECT id FROM export_formats WHERE team IS NULL AND NOT deleted ORDER BY id LIMIT 1";
        fetch!(self, query_scalar, fetch_optional, sql)
    }

    /// Whether the store ever had a default format (one deleted since stays deleted).
    pub async fn default_export_format_made(&self) -> Result<bool, sqlx::Error> {
        let sql = "SELECT COUNT(*) FROM export_formats WHERE team IS NULL";
        let n: i64 = fetch!(self, query_scalar, fetch_one, sql)?;
        Ok(n > 0)
    }

    /// Every live export format, by name.
    pub async fn export_formats(&self) -> Result<Vec<ExportFormatRow>, sqlx::Error> {
        let sql = "SELECT id, team, creator, name, public, base_format, image_format, \
                   annotation_format, vector_format, not_in_image_format, name_format, \
                   min_verifications, image_aggregation, include_blurred, include_concealed, \
                   last_change_time, version FROM export_formats WHERE NOT deleted ORDER BY name, id";
        fetch!(self, query_as, fetch_all, sql)
    }

    /// (export format, annotation type) of every format's chosen types.
    pub async fn export_format_type_links(&self) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        let sql = "SELECT export_format, annotation_type FROM export_format_types \
                   ORDER BY export_format, annotation_type";
        fetch!(self, query_as, fetch_all, sql)
    }

    /// The stream version of an export format, deleted ones included.
    pub async fn export_format_version(&self, id: i64) -> Result<Option<(i64, bool)>, sqlx::Error> {
        let sql = "SELECT version, deleted FROM export_formats WHERE id = $1";
        fetch!(self, query_as, fetch_optional, sql, id)
    }

    /// The live export formats `user` may export with: their teams' and the public ones, by
    /// name: (id, name, team).
    pub async fn usable_export_formats(
        &self,
        user: i64,
    ) -> Result<Vec<(i64, String, Option<i64>)>, sqlx::Error> {
        let sql = "SELECT f.id, f.name, f.team FROM export_formats f WHERE NOT f.deleted \
                   AND (f.public OR f.team IN (SELECT team FROM team_memberships WHERE user_id = $1)) \
                   ORDER BY f.name, f.id";
        fetch!(self, query_as, fetch_all, sql, user)
    }

    pub async fn dataset_version_named(&self, name: &str) -> Result<Option<i64>, sqlx::Error> {
        let sql = "SELECT id FROM dataset_versions WHERE name = $1";
        fetch!(self, query_scalar, fetch_optional, sql, name.trim())
    }

    pub async fn dataset_versions(&self) -> Result<Vec<DatasetVersionRow>, sqlx::Error> {
        let sql = "SELECT id, name, position, creator, time FROM dataset_versions ORDER BY id";
        fetch!(self, query_as, fetch_all, sql)
    }

    /// The dataset versions that name `image_set`, newest first.
    pub async fn dataset_versions_of_set(
        &self,
        image_set: i64,
    ) -> Result<Vec<DatasetVersionRow>, sqlx::Error> {
        let sql = "SELECT v.id, v.name, v.position, v.creator, v.time FROM dataset_versions v \
                   JOIN dataset_version_sets s ON s.dataset_version = v.id \
                   WHERE s.image_set = $1 ORDER BY v.id DESC";
        fetch!(self, query_as, fetch_all, sql, image_set)
    }

    /// (dataset version, image set) of every version.
    pub async fn dataset_version_links(&self) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        let sql = "SELECT dataset_version, image_set FROM dataset_version_sets \
                   ORDER BY dataset_version, image_set";
        fetch!(self, query_as, fetch_all, sql)
    }

    /// Every image of these sets, deleted ones included (a version may name them).
    pub async fn image_ids_of_sets(&self, sets: &[i64]) -> Result<Vec<i64>, sqlx::Error> {
        let mut ids = Vec::new();
        for set in sets {
            let sql = "SELECT id FROM images WHERE image_set = $1 ORDER BY id";
            let found: Vec<i64> = fetch!(self, query_scalar, fetch_all, sql, set)?;
            ids.extend(found);
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// Files attached (and not detached), all or those of one annotation.
    pub async fn media_files(
        &self,
        annotation: Option<i64>,
    ) -> Result<Vec<MediaFileRow>, sqlx::Error> {
        const COLUMNS: &str =
            "SELECT id, annotation, name, media_file_type, file, checksum, size, time \
                               FROM annotation_media_files WHERE NOT deleted";
        match annotation {
            Some(annotation) => {
                let sql = format!("{COLUMNS} AND annotation = $1 ORDER BY id");
                fetch!(self, query_as, fetch_all, &sql, annotation)
            }
            None => fetch!(self, query_as, fetch_all, &format!("{COLUMNS} ORDER BY id")),
        }
    }

    /// Screenings, all or those of one image.
    pub async fn screenings(&self, image: Option<i64>) -> Result<Vec<ScreeningRow>, sqlx::Error> {
        const COLUMNS: &str = "SELECT id, image, user_id, screening_tiles, x_steps, y_steps, \
                               x_resolution, y_resolution, current_index, version FROM screening_modes";
        match image {
            Some(image) => {
                let sql = format!("{COLUMNS} WHERE image = $1 ORDER BY id");
                fetch!(self, query_as, fetch_all, &sql, image)
            }
            None => fetch!(self, query_as, fetch_all, &format!("{COLUMNS} ORDER BY id")),
        }
    }

    /// The position and sets a dataset version names.
    pub async fn dataset_version(&self, id: i64) -> Result<Option<(i64, Vec<i64>)>, sqlx::Error> {
        let sql = "SELECT position FROM dataset_versions WHERE id = $1";
        let Some(position): Option<i64> = fetch!(self, query_scalar, fetch_optional, sql, id)?
        else {
            return Ok(None);
        };
        let sql = "SELECT image_set FROM dataset_version_sets WHERE dataset_version = $1 ORDER BY image_set";
        let sets = fetch!(self, query_scalar, fetch_all, sql, id)?;
        Ok(Some((position, sets)))
    }

    /// Live annotations of one image by verdict, over all types or one.
    /// (image, annotation type, total, accepted) of every image and type with live annotations.
    pub async fn all_image_type_counts(&self) -> Result<Vec<(i64, i64, i64, i64)>, sqlx::Error> {
        let sql = "SELECT image, annotation_type, total, accepted FROM annotation_statistics \
                   WHERE total > 0";
        fetch!(self, query_as, fetch_all, sql)
    }

    pub async fn image_statistics(
        &self,
        image: i64,
        annotation_type: Option<i64>,
    ) -> Result<Statistics, sqlx::Error> {
        let sql = "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT) AS total, \
                   CAST(COALESCE(SUM(accepted), 0) AS BIGINT) AS accepted, \
                   CAST(COALESCE(SUM(rejected), 0) AS BIGINT) AS rejected, \
                   CAST(COALESCE(SUM(unverified), 0) AS BIGINT) AS unverified \
                   FROM annotation_statistics WHERE image = $1 AND ($2 = 0 OR annotation_type = $2)";
        fetch!(
            self,
            query_as,
            fetch_one,
            sql,
            image,
            annotation_type.unwrap_or(0)
        )
    }

    /// Live annotations on the live images of one set by verdict, over all types or one.
    pub async fn set_statistics(
        &self,
        image_set: i64,
        annotation_type: Option<i64>,
    ) -> Result<Statistics, sqlx::Error> {
        let sql = "SELECT CAST(COALESCE(SUM(a.total), 0) AS BIGINT) AS total, \
                   CAST(COALESCE(SUM(a.accepted), 0) AS BIGINT) AS accepted, \
                   CAST(COALESCE(SUM(a.rejected), 0) AS BIGINT) AS rejected, \
                   CAST(COALESCE(SUM(a.unverified), 0) AS BIGINT) AS unverified \
                   FROM annotation_statistics a JOIN images i ON i.id = a.image \
                   WHERE i.image_set = $1 AND NOT i.deleted AND ($2 = 0 OR a.annotation_type = $2)";
        fetch!(
            self,
            query_as,
            fetch_one,
            sql,
            image_set,
            annotation_type.unwrap_or(0)
        )
    }

    /// Live annotations of one type over every live image.
    pub async fn type_statistics(&self, annotation_type: i64) -> Result<Statistics, sqlx::Error> {
        let sql = "SELECT CAST(COALESCE(SUM(a.total), 0) AS BIGINT) AS total, \
                   CAST(COALESCE(SUM(a.accepted), 0) AS BIGINT) AS accepted, \
                   CAST(COALESCE(SUM(a.rejected), 0) AS BIGINT) AS rejected, \
                   CAST(COALESCE(SUM(a.unverified), 0) AS BIGINT) AS unverified \
                   FROM annotation_statistics a JOIN images i ON i.id = a.image \
                   WHERE a.annotation_type = $1 AND NOT i.deleted";
        fetch!(self, query_as, fetch_one, sql, annotation_type)
    }

    /// Who opened and closed `image`, oldest first.
    pub async fn image_access(&self, image: i64) -> Result<Vec<AccessRow>, sqlx::Error> {
        let sql = "SELECT position, image, user_id, action, time, ip FROM image_access_log WHERE image = $1 \
                   ORDER BY position";
        fetch!(self, query_as, fetch_all, sql, image)
    }

    /// The access log of `images` (of every image for `None`), oldest first: one query, the
    /// ids bound as one JSON value however many.
    pub async fn access_log_of(
        &self,
        images: Option<&[i64]>,
    ) -> Result<Vec<AccessRow>, sqlx::Error> {
        const ROWS: &str =
            "SELECT position, image, user_id, action, time, ip FROM image_access_log";
        let Some(images) = images else {
            let sql = format!("{ROWS} ORDER BY position");
            return fetch!(self, query_as, fetch_all, &sql);
        };
        let ids = serde_json::to_string(images).expect("ids serialize");
        let among = match self {
            ReadDb::Sqlite(..) => "SELECT value FROM json_each($1)",
            ReadDb::Postgres(_) => "SELECT value::bigint FROM json_array_elements_text($1::json)",
        };
        let sql = format!("{ROWS} WHERE image IN ({among}) ORDER BY position");
        fetch!(self, query_as, fetch_all, &sql, ids)
    }

    /// One entry of the access log, by its position.
    pub async fn image_access_entry(
        &self,
        position: i64,
    ) -> Result<Option<AccessRow>, sqlx::Error> {
        let sql = "SELECT position, image, user_id, action, time, ip FROM image_access_log \
                   WHERE position = $1";
        fetch!(self, query_as, fetch_optional, sql, position)
    }

    /// The images `user` opened last, newest first, each once.
    pub async fn recently_opened(&self, user: i64, limit: i64) -> Result<Vec<i64>, sqlx::Error> {
        let sql = "SELECT image FROM image_access_log WHERE user_id = $1 AND action = 1 \
                   GROUP BY image ORDER BY MAX(position) DESC LIMIT $2";
        fetch!(self, query_scalar, fetch_all, sql, user, limit)
    }

    /// (image, annotation type, live annotations, of them not yet judged) for every live
    /// image of `image_set` and type it has annotations of.
    pub async fn set_type_counts(
        &self,
        image_set: i64,
    ) -> Result<Vec<(i64, i64, i64, i64)>, sqlx::Error> {
        let sql = "SELECT a.image, a.annotation_type, a.total, a.unverified \
                   FROM annotation_statistics a JOIN images i ON i.id = a.image \
                   WHERE i.image_set = $1 AND NOT i.deleted AND a.total > 0 \
                   ORDER BY a.image, a.annotation_type";
        fetch!(self, query_as, fetch_all, sql, image_set)
    }
}

/// `actor`'s permissions on `set`, where `role` is theirs in its team.
fn permissions_in(actor: Actor, set: &ImageSetRow, role: TeamRole) -> Permissions {
    let standing = Standing {
        superuser: actor.superuser,
        member: role.is_member(),
        team_admin: role == TeamRole::Admin,
        creator: set.creator == actor.id,
    };
    image_set_permissions(standing, set.flags())
}
