//! Queries on the read models, over a connection pool of their own.

use std::str::FromStr;

use exact_store::{SqliteReaders, StoreUrl};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

use crate::annotation_query::{AnnotationQuery, QueryError};
use crate::annotations::AnnotationRow;

/// A rectangle in level-0 pixels; edges touching count as overlapping.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

/// An annotation as it was at some position: a replaced version from `annotation_history`, or
/// the current one (`valid_to` none) from `annotations`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct AnnotationVersion {
    pub id: i64,
    pub version: i64,
    pub valid_from: i64,
    pub valid_to: Option<i64>,
    pub event_type: String,
    pub actor: Option<i64>,
    pub recorded_at: i64,
    pub reason: Option<String>,
    pub image: i64,
    pub annotation_type: i64,
    pub vector: Option<String>,
    pub description: String,
    pub meta_data: Option<String>,
    pub concealed: bool,
    pub blurred: bool,
    pub deleted: bool,
}

impl AnnotationVersion {
    /// The fields this version changed against the one before it (empty for a verdict, which
    /// changes no field of the annotation itself).
    pub fn changes_from(&self, previous: &AnnotationVersion) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.annotation_type != previous.annotation_type {
            changed.push("annotation_type");
        }
        if self.vector != previous.vector {
            changed.push("vector");
        }
        if self.description != previous.description {
            changed.push("description");
        }
        if self.meta_data != previous.meta_data {
            changed.push("meta_data");
        }
        if self.concealed != previous.concealed {
            changed.push("concealed");
        }
        if self.blurred != previous.blurred {
            changed.push("blurred");
        }
        if self.deleted != previous.deleted {
            changed.push("deleted");
        }
        changed
    }
}

/// The columns of [`AnnotationVersion`], for a query that names `annotation_history` as `h`.
pub(crate) const VERSION_COLUMNS: &str =
    "h.id, h.version, h.valid_from, h.valid_to, h.event_type, h.actor, h.recorded_at, \
     h.reason, h.image, h.annotation_type, h.vector, h.description, h.meta_data, h.concealed, h.blurred, \
     h.deleted";

/// The same columns of the current version, for a query that names `annotations` as `a`.
pub(crate) const CURRENT_VERSION_COLUMNS: &str =
    "a.id, a.version, a.position AS valid_from, CAST(NULL AS BIGINT) AS valid_to, a.event_type, \
     a.last_editor AS actor, a.last_edit_time AS recorded_at, a.reason, a.image, a.annotation_type, a.vector, \
     a.description, a.meta_data, a.concealed, a.blurred, a.deleted";

/// A user's current verdict on an annotation.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct VerificationRow {
    pub annotation: i64,
    pub user_id: i64,
    pub verified: bool,
    pub time: i64,
    /// The log position of the verdict: its id in the API.
    pub position: i64,
    pub image: i64,
    /// An electronic signature's name as shown, meaning and signed annotation version.
    pub signer: Option<String>,
    pub meaning: Option<String>,
    pub signed_version: Option<i64>,
    /// The log position of the first change of the annotation after the signed version.
    pub unsigned_at: Option<i64>,
}

/// Read access to the read models.
#[derive(Clone, Debug)]
pub enum ReadDb {
    /// The store's rusqlite readers for the catalog and annotation queries; the sqlx pool for
    /// the rest (counts, history, overview, verdict rows).
    Sqlite(SqlitePool, SqliteReaders),
    Postgres(PgPool),
}

impl ReadDb {
    /// Connects to the store's database (which `exact_store::open` has created and migrated).
    pub async fn connect(url: &StoreUrl) -> Result<Self, sqlx::Error> {
        Ok(match url {
            StoreUrl::Sqlite(path) => {
                let options = SqliteConnectOptions::from_str("sqlite://")?
                    .filename(path)
                    .read_only(true);
                Self::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(4)
                        .connect_with(options)
                        .await?,
                    SqliteReaders::new(path),
                )
            }
            StoreUrl::Postgres(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(exact_store::POSTGRES_ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await?;
                Self::Postgres(pool)
            }
        })
    }

    /// Annotations of `image` (not deleted) whose bounding box overlaps `rect`, by id, answered
    /// from the spatial index.
    pub async fn viewport(&self, image: i64, rect: Rect) -> Result<Vec<AnnotationRow>, QueryError> {
        let query = AnnotationQuery {
            image: Some(image),
            rect: Some(rect),
            deleted: Some(false),
            ..AnnotationQuery::default()
        };
        self.annotations(&query).await
    }

    /// Every version of one annotation, oldest first: who, when, why, and the state it left.
    pub async fn history(&self, id: i64) -> Result<Vec<AnnotationVersion>, sqlx::Error> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM annotation_history h WHERE h.id = $1 \
             UNION ALL SELECT {CURRENT_VERSION_COLUMNS} FROM annotations a WHERE a.id = $1 ORDER BY version"
        );
        match self {
            ReadDb::Sqlite(pool, _) => sqlx::query_as(&sql).bind(id).fetch_all(pool).await,
            ReadDb::Postgres(pool) => sqlx::query_as(&sql).bind(id).fetch_all(pool).await,
        }
    }

    /// How many live annotations of `image` (of one type, or all) have their centre in each
    /// cell of a grid of `cell_multiple` x 1024 px cells: the level-of-detail answer for the
    /// whole-image overview. Returns (column, row, count) for the cells that hold any.
    pub async fn overview(
        &self,
        image: i64,
        annotation_type: Option<i64>,
        cell_multiple: i64,
    ) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
        let sql = "SELECT col / $2 AS c, row_index / $2 AS r, CAST(SUM(count) AS BIGINT) FROM annotation_density \
                   WHERE image = $1 AND ($3 IS NULL OR annotation_type = $3) GROUP BY c, r \
                   HAVING SUM(count) > 0 ORDER BY c, r";
        let multiple = cell_multiple.max(1);
        match self {
            ReadDb::Sqlite(pool, _) => {
                sqlx::query_as(sql)
                    .bind(image)
                    .bind(multiple)
                    .bind(annotation_type)
                    .fetch_all(pool)
                    .await
            }
            ReadDb::Postgres(pool) => {
                let sql = sql.replace("$3 IS NULL", "$3::bigint IS NULL");
                sqlx::query_as(&sql)
                    .bind(image)
                    .bind(multiple)
                    .bind(annotation_type)
                    .fetch_all(pool)
                    .await
            }
        }
    }

    /// The image annotation `id` is on (annotations never move between images).
    pub async fn image_of_annotation(&self, id: i64) -> Result<Option<i64>, sqlx::Error> {
        let sql = "SELECT image FROM annotations WHERE id = $1";
        match self {
            ReadDb::Sqlite(pool, _) => sqlx::query_scalar(sql).bind(id).fetch_optional(pool).await,
            ReadDb::Postgres(pool) => sqlx::query_scalar(sql).bind(id).fetch_optional(pool).await,
        }
    }

    /// Which of `annotations` `user` accepted (EXACT's per-caller `verified_by_user`).
    ///
    /// First the caller's accepted annotations within the page's id range, by the
    /// `(user_id, annotation)` index: one range scan, whose cost is what the caller accepted
    /// there. Only a caller who accepted more there than the page holds is asked for the
    /// page's ids one by one (bound as one value however many), after a scan that cost less
    /// than those probes. On a viewport of 2,130 rows spread over a million annotations, with
    /// 520,000 verdicts in the table: 0.008 against 0.38 ms for a caller with none, 0.57
    /// against 0.89 ms for one with 2,000, at most the probes and a page-long scan for one who
    /// accepted half of everything.
    pub async fn accepted_by(
        &self,
        user: i64,
        annotations: &[i64],
    ) -> Result<std::collections::BTreeSet<i64>, sqlx::Error> {
        let (Some(first), Some(last)) = (annotations.iter().min(), annotations.iter().max()) else {
            return Ok(Default::default());
        };
        let enough = annotations.len() as i64 + 1;
        let in_range = "SELECT annotation FROM verifications WHERE user_id = $1 AND verified \
                        AND annotation BETWEEN $2 AND $3 ORDER BY annotation LIMIT $4";
        let near: Vec<i64> = match self {
            ReadDb::Sqlite(pool, _) => {
                sqlx::query_scalar(in_range)
                    .bind(user)
                    .bind(first)
                    .bind(last)
                    .bind(enough)
                    .fetch_all(pool)
                    .await?
            }
            ReadDb::Postgres(pool) => {
                sqlx::query_scalar(in_range)
                    .bind(user)
                    .bind(first)
                    .bind(last)
                    .bind(enough)
                    .fetch_all(pool)
                    .await?
            }
        };
        if (near.len() as i64) < enough {
            let wanted: std::collections::BTreeSet<i64> = annotations.iter().copied().collect();
            return Ok(near.into_iter().filter(|id| wanted.contains(id)).collect());
        }
        let rows: Vec<i64> = match self {
            ReadDb::Sqlite(pool, _) => {
                let ids = serde_json::to_string(annotations).expect("ids serialize");
                sqlx::query_scalar(
                    "SELECT annotation FROM verifications WHERE user_id = $1 AND verified \
                     AND annotation IN (SELECT value FROM json_each($2))",
                )
                .bind(user)
                .bind(ids)
                .fetch_all(pool)
                .await?
            }
            ReadDb::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT annotation FROM verifications WHERE user_id = $1 AND verified \
                     AND annotation = ANY($2)",
                )
                .bind(user)
                .bind(annotations)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows.into_iter().collect())
    }

    /// Current verdicts, of one annotation and/or one user (0: any), by the position that gave
    /// them, with the annotation's image (for permission checks).
    pub async fn verification_rows(
        &self,
        annotation: i64,
        user: i64,
    ) -> Result<Vec<VerificationRow>, sqlx::Error> {
        let sql =
            "SELECT v.annotation, v.user_id, v.verified, v.time, v.position, a.image, v.signer, \
                   v.meaning, v.signed_version, v.unsigned_at \
                   FROM verifications v JOIN annotations a ON a.id = v.annotation \
                   WHERE ($1 = 0 OR v.annotation = $1) AND ($2 = 0 OR v.user_id = $2) \
                   ORDER BY v.position";
        match self {
            ReadDb::Sqlite(pool, _) => {
                sqlx::query_as(sql)
                    .bind(annotation)
                    .bind(user)
                    .fetch_all(pool)
                    .await
            }
            ReadDb::Postgres(pool) => {
                sqlx::query_as(sql)
                    .bind(annotation)
                    .bind(user)
                    .fetch_all(pool)
                    .await
            }
        }
    }

    /// Each user's current verdict on an annotation: (user, accepted).
    pub async fn verifications(&self, annotation: i64) -> Result<Vec<(i64, bool)>, sqlx::Error> {
        let sql =
            "SELECT user_id, verified FROM verifications WHERE annotation = $1 ORDER BY user_id";
        match self {
            ReadDb::Sqlite(pool, _) => sqlx::query_as(sql).bind(annotation).fetch_all(pool).await,
            ReadDb::Postgres(pool) => sqlx::query_as(sql).bind(annotation).fetch_all(pool).await,
        }
    }

    /// The verdict events (type, payload) on annotations of `images` up to `position`, in log
    /// order: found through the versions they made (replaced ones in the history, current
    /// ones in `annotations`), read from the log.
    pub async fn verdict_events(
        &self,
        images: &[i64],
        position: i64,
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let list = crate::timeline::sql_list(images);
        let kinds = "('AnnotationVerified', 'AnnotationVerdictWithdrawn')";
        let sql = format!(
            "SELECT e.type, e.payload FROM (\
             SELECT h.valid_from AS p FROM annotation_history h WHERE h.image IN ({list}) \
             AND h.event_type IN {kinds} AND h.valid_from <= $1 \
             UNION ALL SELECT a.position FROM annotations a WHERE a.image IN ({list}) \
             AND a.event_type IN {kinds} AND a.position <= $1) v \
             JOIN events e ON e.position = v.p ORDER BY v.p"
        );
        match self {
            ReadDb::Sqlite(pool, _) => sqlx::query_as(&sql).bind(position).fetch_all(pool).await,
            ReadDb::Postgres(pool) => sqlx::query_as(&sql).bind(position).fetch_all(pool).await,
        }
    }

    /// The log position of the last change to any annotation of `images` (0 if none).
    pub async fn last_annotation_change(&self, images: &[i64]) -> Result<i64, sqlx::Error> {
        if images.is_empty() {
            return Ok(0);
        }
        let list = crate::timeline::sql_list(images);
        let sql =
            format!("SELECT COALESCE(MAX(position), 0) FROM annotations WHERE image IN ({list})");
        match self {
            ReadDb::Sqlite(pool, _) => sqlx::query_scalar(&sql).fetch_one(pool).await,
            ReadDb::Postgres(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await,
        }
    }
}
