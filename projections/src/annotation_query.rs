//! The one annotation query the API needs: an image's (or every) annotations filtered by type,
//! creator, last editor, deleted, verdict, creation and edit time, a viewport rectangle and
//! ids, now or `as_of` a log position, paged. Each filter is optional; the spatial index
//! answers the rectangle, the history table answers `as_of`.

use exact_domain::annotation::Consensus;
use sqlx::{Database, Encode, QueryBuilder, Type};

use crate::annotations::AnnotationRow;
use crate::read::{ReadDb, Rect};

/// What to ask for. `Default` is every annotation, deleted or not, now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnnotationQuery {
    pub image: Option<i64>,
    pub ids: Vec<i64>,
    /// Any of these types (empty: all).
    pub annotation_types: Vec<i64>,
    /// The creator (EXACT's `user`).
    pub user: Option<i64>,
    pub last_editor: Option<i64>,
    pub deleted: Option<bool>,
    pub unique_identifier: Option<uuid::Uuid>,
    /// Where the current verdicts leave the annotation; not available with `as_of`.
    pub consensus: Option<Consensus>,
    /// Creation time, microseconds since 1970, both ends included.
    pub created: TimeRange,
    /// Time of the last change (as of `as_of`, if given).
    pub edited: TimeRange,
    pub rect: Option<Rect>,
    /// The log position to read at; `None` for now.
    pub as_of: Option<i64>,
    /// Rows to return (`None`: all) and to skip, in id order.
    pub limit: Option<i64>,
    pub offset: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// Why a query was not run.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// An annotation as of a position: the history's state with what never changes (creator,
/// creation time, UUID) from the current row, so that both answers have one shape.
const AS_OF_COLUMNS: &str =
    "h.id, h.image, h.annotation_type, h.vector, h.description, h.meta_data, h.concealed, \
     h.blurred, h.deleted, a.unique_identifier, a.user_id, h.actor AS last_editor, a.time, \
     h.recorded_at AS last_edit_time, h.version, h.valid_from AS position";

impl ReadDb {
    /// The annotations that match, by id.
    pub async fn annotations(
        &self,
        query: &AnnotationQuery,
    ) -> Result<Vec<AnnotationRow>, QueryError> {
        query.check()?;
        Ok(match self {
            ReadDb::Sqlite(pool) => {
                let mut sql = QueryBuilder::new("");
                query.build(&mut sql, false, false);
                sql.build_query_as().fetch_all(pool).await?
            }
            ReadDb::Postgres(pool) => {
                let mut sql = QueryBuilder::new("");
                query.build(&mut sql, true, false);
                sql.build_query_as().fetch_all(pool).await?
            }
        })
    }

    /// How many annotations match, ignoring `limit` and `offset`: the `count` of a page.
    pub async fn count_annotations(&self, query: &AnnotationQuery) -> Result<i64, QueryError> {
        query.check()?;
        Ok(match self {
            ReadDb::Sqlite(pool) => {
                let mut sql = QueryBuilder::new("");
                query.build(&mut sql, false, true);
                sql.build_query_scalar().fetch_one(pool).await?
            }
            ReadDb::Postgres(pool) => {
                let mut sql = QueryBuilder::new("");
                query.build(&mut sql, true, true);
                sql.build_query_scalar().fetch_one(pool).await?
            }
        })
    }
}

impl AnnotationQuery {
    fn check(&self) -> Result<(), QueryError> {
        if self.as_of.is_some() && self.consensus.is_some() {
            return Err(QueryError::Invalid(
                "a verdict filter reads the current verdicts: it cannot be combined with as_of",
            ));
        }
        if self.limit.is_some_and(|l| l < 0) || self.offset < 0 {
            return Err(QueryError::Invalid("limit and offset must not be negative"));
        }
        if let Some(r) = self.rect {
            let finite = [r.min_x, r.min_y, r.max_x, r.max_y]
                .iter()
                .all(|v| v.is_finite());
            if !finite || r.min_x > r.max_x || r.min_y > r.max_y {
                return Err(QueryError::Invalid(
                    "the rectangle needs finite min_x <= max_x and min_y <= max_y",
                ));
            }
        }
        Ok(())
    }

    /// Writes the statement: the rows (or their count) with every filter given.
    fn build<'a, DB>(&'a self, sql: &mut QueryBuilder<'a, DB>, postgres: bool, count: bool)
    where
        DB: Database,
        i64: Encode<'a, DB> + Type<DB>,
        f64: Encode<'a, DB> + Type<DB>,
        bool: Encode<'a, DB> + Type<DB>,
        String: Encode<'a, DB> + Type<DB>,
    {
        // `s`: the table that holds the state being filtered, now or as of a position.
        let s = if self.as_of.is_some() { "h" } else { "a" };
        sql.push("SELECT ");
        sql.push(match (count, self.as_of.is_some()) {
            (true, _) => "COUNT(*)",
            (false, false) => crate::annotations::ROW_COLUMNS,
            (false, true) => AS_OF_COLUMNS,
        });
        // FROM: the spatial index first when there is a rectangle (SQLite's CROSS JOIN keeps
        // that order), so the tree narrows the rows before anything else is read.
        match (self.as_of, self.rect, postgres) {
            (None, Some(_), false) => {
                sql.push(
                    " FROM annotations_rtree r CROSS JOIN annotations a ON a.id = r.id WHERE 1 = 1",
                );
            }
            (Some(_), Some(_), false) => {
                sql.push(
                    " FROM annotation_history_rtree r CROSS JOIN annotation_history h ON h.entry = r.entry \
                     JOIN annotations a ON a.id = h.id WHERE 1 = 1",
                );
            }
            (None, _, _) => {
                sql.push(" FROM annotations a WHERE 1 = 1");
            }
            (Some(_), _, _) => {
                sql.push(
                    " FROM annotation_history h JOIN annotations a ON a.id = h.id WHERE 1 = 1",
                );
            }
        }
        if let Some(r) = &self.rect {
            if postgres {
                sql.push(format!(" AND {s}.bbox && box(point("));
                sql.push_bind(r.min_x)
                    .push(", ")
                    .push_bind(r.min_y)
                    .push("), point(");
                sql.push_bind(r.max_x)
                    .push(", ")
                    .push_bind(r.max_y)
                    .push("))");
                if let Some(p) = self.as_of {
                    // The second key of the history's GiST index.
                    sql.push(" AND h.validity @> ").push_bind(p).push("::int8");
                }
            } else {
                sql.push(" AND r.min_x <= ").push_bind(r.max_x);
                sql.push(" AND r.max_x >= ").push_bind(r.min_x);
                sql.push(" AND r.min_y <= ").push_bind(r.max_y);
                sql.push(" AND r.max_y >= ").push_bind(r.min_y);
                if let Some(image) = self.image {
                    sql.push(" AND r.min_image <= ").push_bind(image);
                    sql.push(" AND r.max_image >= ").push_bind(image);
                }
                if let Some(p) = self.as_of {
                    sql.push(" AND r.valid_from <= ").push_bind(p);
                    sql.push(" AND r.valid_to >= ").push_bind(p);
                }
            }
            // The index compares in single precision (SQLite) or by box: the exact test.
            sql.push(format!(" AND {s}.min_x <= ")).push_bind(r.max_x);
            sql.push(format!(" AND {s}.max_x >= ")).push_bind(r.min_x);
            sql.push(format!(" AND {s}.min_y <= ")).push_bind(r.max_y);
            sql.push(format!(" AND {s}.max_y >= ")).push_bind(r.min_y);
        }
        if let Some(p) = self.as_of {
            sql.push(" AND h.valid_from <= ").push_bind(p);
            sql.push(" AND (h.valid_to IS NULL OR h.valid_to > ")
                .push_bind(p)
                .push(")");
        }
        if let Some(image) = self.image {
            sql.push(format!(" AND {s}.image = ")).push_bind(image);
        }
        if !self.ids.is_empty() {
            sql.push(" AND a.id IN (");
            let mut list = sql.separated(", ");
            for id in &self.ids {
                list.push_bind(*id);
            }
            sql.push(")");
        }
        if !self.annotation_types.is_empty() {
            sql.push(format!(" AND {s}.annotation_type IN ("));
            let mut list = sql.separated(", ");
            for t in &self.annotation_types {
                list.push_bind(*t);
            }
            sql.push(")");
        }
        if let Some(user) = self.user {
            sql.push(" AND a.user_id = ").push_bind(user);
        }
        if let Some(editor) = self.last_editor {
            let column = if self.as_of.is_some() {
                "h.actor"
            } else {
                "a.last_editor"
            };
            sql.push(format!(" AND {column} = ")).push_bind(editor);
        }
        if let Some(deleted) = self.deleted {
            sql.push(format!(" AND {s}.deleted = ")).push_bind(deleted);
        }
        if let Some(uuid) = self.unique_identifier {
            sql.push(" AND a.unique_identifier = ")
                .push_bind(uuid.to_string());
        }
        if let Some(consensus) = self.consensus {
            // Net of the verdicts: twice the accepts minus all verdicts.
            const NET: &str = "(SELECT 2 * SUM(CASE WHEN v.verified THEN 1 ELSE 0 END) - COUNT(*) \
                               FROM verifications v WHERE v.annotation = a.id)";
            const ANY: &str = "EXISTS (SELECT 1 FROM verifications v WHERE v.annotation = a.id)";
            sql.push(match consensus {
                Consensus::Unverified => format!(" AND NOT {ANY}"),
                Consensus::Accepted => format!(" AND {ANY} AND {NET} > 0"),
                Consensus::Rejected => format!(" AND {ANY} AND {NET} <= 0"),
            });
        }
        let edited = if self.as_of.is_some() {
            "h.recorded_at"
        } else {
            "a.last_edit_time"
        };
        for (column, range) in [("a.time", &self.created), (edited, &self.edited)] {
            if let Some(from) = range.from {
                sql.push(format!(" AND {column} >= ")).push_bind(from);
            }
            if let Some(to) = range.to {
                sql.push(format!(" AND {column} <= ")).push_bind(to);
            }
        }
        if count {
            return;
        }
        sql.push(format!(" ORDER BY {s}.id"));
        if let Some(limit) = self.limit {
            sql.push(" LIMIT ").push_bind(limit);
        } else if self.offset > 0 {
            // Both backends take a LIMIT that never binds before an OFFSET.
            sql.push(" LIMIT ").push_bind(i64::MAX);
        }
        if self.offset > 0 {
            sql.push(" OFFSET ").push_bind(self.offset);
        }
    }
}
