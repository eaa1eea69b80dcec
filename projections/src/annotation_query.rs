//! The one annotation query the API needs: an image's (or every) annotations filtered by type,
//! creator, last editor, deleted, verdict, creation and edit time, a viewport rectangle and
//! ids, now or `as_of` a log position, paged. Each filter is optional; the spatial index
//! answers the rectangle. `as_of` asks both the current rows (those last changed by then) and
//! the history (the versions that were valid then and have been replaced since).

use std::fmt::Write;

use exact_domain::annotation::Consensus;

use crate::annotations::AnnotationRow;
use crate::read::{ReadDb, Rect};
use exact_store::SqlRow;

/// What to ask for. `Default` is every annotation, deleted or not, now.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnnotationQuery {
    pub image: Option<i64>,
    /// Any of these images (`None`: all; empty: none), e.g. those a user may read.
    pub images: Option<Vec<i64>>,
    pub ids: Vec<i64>,
    /// Any of these types (empty: all).
    pub annotation_types: Vec<i64>,
    /// The creator (EXACT's `user`).
    pub user: Option<i64>,
    pub last_editor: Option<i64>,
    pub deleted: Option<bool>,
    /// Whether the vector is null (GLOBAL types and "not in image"): EXACT's `vector__isnull`.
    pub vector_is_null: Option<bool>,
    pub unique_identifier: Option<uuid::Uuid>,
    /// Any of these UUIDs (empty: no filter): a bulk creation's lookup, one query for all.
    pub unique_identifiers: Vec<uuid::Uuid>,
    /// Part of the UUID's text (any case).
    pub unique_identifier_contains: Option<String>,
    /// The description, exactly.
    pub description: Option<String>,
    /// Part of the description (case matters, as Django's `__contains`).
    pub description_contains: Option<String>,
    /// Whether `meta_data` is null: EXACT's `meta_data__isnull`.
    pub meta_data_is_null: Option<bool>,
    /// The vector's `x1` within `[from, to)` (EXACT's `vector_x`, both ends honoured); a null
    /// vector never matches.
    pub vector_x1: FloatRange,
    /// The vector's `y1` within `[from, to)` (EXACT's `vector_y`).
    pub vector_y1: FloatRange,
    /// Annotations whose type has this vector type (EXACT's `vector_type`).
    pub vector_type: Option<i64>,
    /// Annotations a user with an id in this range (both ends included) has given a verdict on,
    /// accept or reject: EXACT's `verified_by` (one user) and `verified_by__range`. Reads the
    /// current verdicts; not available with `as_of`.
    pub verified_by: Option<(i64, i64)>,
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

/// A range of coordinates: `from` included, `to` excluded, as EXACT's range filters.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FloatRange {
    pub from: Option<f64>,
    pub to: Option<f64>,
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

/// An annotation as of a position, from a past version: the history's state with what never
/// changes (creator, creation time, UUID) from the current row, so that every answer has one
/// shape.
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
        let sql = query.build(matches!(self, ReadDb::Postgres(_)), false);
        Ok(match self {
            ReadDb::Postgres(pool) => sql.query_as::<AnnotationRow>().fetch_all(pool).await?,
            // Thousands of rows per viewport: stepped where they are read, not handed across
            // threads one by one (see `exact_store::SqliteReaders`).
            ReadDb::Sqlite(_, readers) => readers
                .with(move |conn| {
                    let mut statement = conn.prepare_cached(&sql.text)?;
                    for (i, param) in sql.params.iter().enumerate() {
                        param.bind_to(&mut statement, i + 1)?;
                    }
                    let rows = statement.raw_query().mapped(AnnotationRow::from_sqlite);
                    let mut rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
                    if sql.sort_by_id_here {
                        rows.sort_unstable_by_key(|row| row.id);
                    }
                    Ok(rows)
                })
                .await
                .map_err(|e| QueryError::Database(sqlx::Error::Protocol(e.to_string())))?,
        })
    }

    /// How many annotations match, ignoring `limit` and `offset`: the `count` of a page.
    pub async fn count_annotations(&self, query: &AnnotationQuery) -> Result<i64, QueryError> {
        query.check()?;
        let sql = query.build(matches!(self, ReadDb::Postgres(_)), true);
        Ok(match self {
            ReadDb::Postgres(pool) => sql.query_scalar().fetch_one(pool).await?,
            ReadDb::Sqlite(pool, _) => sql.query_scalar().fetch_one(pool).await?,
        })
    }
}

/// Which versions of the annotations a part of a query reads.
#[derive(Clone, Copy)]
enum Versions {
    /// The current rows (`annotations a`).
    Current,
    /// The replaced versions (`annotation_history h`, with its annotation's current row as
    /// `a`), as of this position.
    Replaced(i64),
}

/// A value bound to a placeholder.
#[derive(Clone, Debug, PartialEq)]
enum Param {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl Param {
    fn bind_to(
        &self,
        statement: &mut rusqlite::Statement<'_>,
        index: usize,
    ) -> rusqlite::Result<()> {
        match self {
            Param::Int(v) => statement.raw_bind_parameter(index, v),
            Param::Float(v) => statement.raw_bind_parameter(index, v),
            Param::Bool(v) => statement.raw_bind_parameter(index, v),
            Param::Text(v) => statement.raw_bind_parameter(index, v),
        }
    }
}

/// `query` with every parameter bound, in order.
macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                Param::Int(v) => query.bind(*v),
                Param::Float(v) => query.bind(*v),
                Param::Bool(v) => query.bind(*v),
                Param::Text(v) => query.bind(v.as_str()),
            };
        }
        query
    }};
}

/// Lists longer than this are bound as one parameter.
const LONG_LIST: usize = 500;

/// SQL text with `$n` placeholders (both backends read them) and the values they stand for,
/// so that one statement can go through sqlx or rusqlite.
#[derive(Debug, Default)]
struct Sql {
    text: String,
    params: Vec<Param>,
    /// The statement has no ORDER BY: the rows are to be sorted by id once read.
    sort_by_id_here: bool,
}

impl Sql {
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, param: Param) -> &mut Self {
        self.params.push(param);
        let _ = write!(self.text, "${}", self.params.len());
        self
    }

    /// `values` as the inside of `IN (...)`: a placeholder each for a short list; a long one
    /// (a client's list of 50,000 new annotations, the images a user may read) as one
    /// parameter, since both databases cap the number of parameters of a statement.
    fn bind_list(&mut self, values: &[i64], postgres: bool) -> &mut Self {
        if values.len() > LONG_LIST {
            let text = values
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            if postgres {
                self.push("SELECT unnest(CAST(")
                    .bind(Param::Text(format!("{{{text}}}")))
                    .push(" AS bigint[]))")
            } else {
                self.push("SELECT value FROM json_each(")
                    .bind(Param::Text(format!("[{text}]")))
                    .push(")")
            }
        } else {
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                self.bind(Param::Int(*v));
            }
            self
        }
    }

    fn query_as<'q, O>(
        &'q self,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        bind_all!(sqlx::query_as(&self.text), &self.params)
    }

    fn query_scalar<'q, DB>(
        &'q self,
    ) -> sqlx::query::QueryScalar<'q, DB, i64, <DB as sqlx::Database>::Arguments<'q>>
    where
        DB: sqlx::Database,
        i64: sqlx::Encode<'q, DB> + sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
        f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    {
        bind_all!(sqlx::query_scalar(&self.text), &self.params)
    }
}

impl AnnotationQuery {
    fn check(&self) -> Result<(), QueryError> {
        if self.as_of.is_some() && (self.consensus.is_some() || self.verified_by.is_some()) {
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

    /// The statement: the rows (or their count) with every filter given.
    fn build(&self, postgres: bool, count: bool) -> Sql {
        let mut sql = Sql::default();
        let Some(position) = self.as_of else {
            sql.push("SELECT ");
            sql.push(if count {
                "COUNT(*)"
            } else {
                crate::annotations::ROW_COLUMNS
            });
            self.push_filtered(&mut sql, postgres, Versions::Current);
            return self.finish(sql, postgres, count, "a");
        };
        // As of a position: the current rows last changed by then, and the replaced versions
        // that were valid then; an annotation is in one or the other, or in neither.
        sql.push(if count {
            "SELECT COUNT(*) FROM (SELECT a.id"
        } else {
            "SELECT * FROM (SELECT "
        });
        if !count {
            sql.push(crate::annotations::ROW_COLUMNS);
        }
        self.push_filtered(&mut sql, postgres, Versions::Current);
        // `+` keeps SQLite from reading this through `annotations_by_image_position` (the audit
        // timeline's) instead of the spatial cells: that index matches image and position, but
        // a window holds a sliver of the image's rows (2.4 s instead of 1 ms at 300,000).
        sql.push(if postgres {
            " AND a.position <= "
        } else {
            " AND +a.position <= "
        })
        .bind(Param::Int(position));
        sql.push(" UNION ALL SELECT ");
        sql.push(if count { "h.id" } else { AS_OF_COLUMNS });
        self.push_filtered(&mut sql, postgres, Versions::Replaced(position));
        sql.push(" AND h.valid_from <= ").bind(Param::Int(position));
        sql.push(" AND h.valid_to > ").bind(Param::Int(position));
        sql.push(") v");
        self.finish(sql, postgres, count, "v")
    }

    /// FROM and WHERE of one kind of `versions`, with every filter given.
    fn push_filtered(&self, sql: &mut Sql, postgres: bool, versions: Versions) {
        // `s`: the table that holds the state being filtered.
        let s = match versions {
            Versions::Current => "a",
            Versions::Replaced(_) => "h",
        };
        // FROM: on SQLite, the spatial index first when there is a rectangle (CROSS JOIN keeps
        // that order): the R*Tree finds the cells the window meets, and the rows of each cell
        // come from the index on `cell`, their boxes tested before the rows are read.
        match (versions, self.rect, postgres) {
            (Versions::Current, Some(_), false) => {
                sql.push(
                    " FROM annotation_cells_rtree r CROSS JOIN annotations a ON a.cell = r.cell WHERE 1 = 1",
                );
            }
            (Versions::Replaced(_), Some(_), false) => {
                sql.push(
                    " FROM annotation_cells_rtree r CROSS JOIN annotation_history h ON h.cell = r.cell \
                     JOIN annotations a ON a.id = h.id WHERE 1 = 1",
                );
            }
            (Versions::Current, _, _) => {
                sql.push(" FROM annotations a WHERE 1 = 1");
            }
            (Versions::Replaced(_), _, _) => {
                sql.push(
                    " FROM annotation_history h JOIN annotations a ON a.id = h.id WHERE 1 = 1",
                );
            }
        }
        if let Some(r) = &self.rect {
            if postgres {
                sql.push(&format!(" AND {s}.bbox && box(point("));
                sql.bind(Param::Float(r.min_x))
                    .push(", ")
                    .bind(Param::Float(r.min_y))
                    .push("), point(");
                sql.bind(Param::Float(r.max_x))
                    .push(", ")
                    .bind(Param::Float(r.max_y))
                    .push("))");
                if let Versions::Replaced(p) = versions {
                    // The second key of the history's GiST index.
                    sql.push(" AND h.validity @> ")
                        .bind(Param::Int(p))
                        .push("::int8");
                }
            } else {
                sql.push(" AND r.min_x <= ").bind(Param::Float(r.max_x));
                sql.push(" AND r.max_x >= ").bind(Param::Float(r.min_x));
                sql.push(" AND r.min_y <= ").bind(Param::Float(r.max_y));
                sql.push(" AND r.max_y >= ").bind(Param::Float(r.min_y));
                if let Some(image) = self.image {
                    sql.push(" AND r.min_image <= ").bind(Param::Int(image));
                    sql.push(" AND r.max_image >= ").bind(Param::Int(image));
                }
            }
            // The index holds cells (SQLite) or compares by box: the exact test.
            sql.push(&format!(" AND {s}.min_x <= "))
                .bind(Param::Float(r.max_x));
            sql.push(&format!(" AND {s}.max_x >= "))
                .bind(Param::Float(r.min_x));
            sql.push(&format!(" AND {s}.min_y <= "))
                .bind(Param::Float(r.max_y));
            sql.push(&format!(" AND {s}.max_y >= "))
                .bind(Param::Float(r.min_y));
        }
        if let Some(image) = self.image {
            sql.push(&format!(" AND {s}.image = "))
                .bind(Param::Int(image));
        }
        if let Some(images) = &self.images {
            if images.is_empty() {
                sql.push(" AND 1 = 0");
            } else {
                sql.push(&format!(" AND {s}.image IN ("))
                    .bind_list(images, postgres)
                    .push(")");
            }
        }
        if let Some(null) = self.vector_is_null {
            sql.push(&format!(
                " AND {s}.vector IS {}NULL",
                if null { "" } else { "NOT " }
            ));
        }
        if !self.ids.is_empty() {
            sql.push(" AND a.id IN (")
                .bind_list(&self.ids, postgres)
                .push(")");
        }
        if !self.annotation_types.is_empty() {
            sql.push(&format!(" AND {s}.annotation_type IN ("))
                .bind_list(&self.annotation_types, postgres)
                .push(")");
        }
        if let Some(user) = self.user {
            sql.push(" AND a.user_id = ").bind(Param::Int(user));
        }
        if let Some(editor) = self.last_editor {
            let column = match versions {
                Versions::Current => "a.last_editor",
                Versions::Replaced(_) => "h.actor",
            };
            sql.push(&format!(" AND {column} = "))
                .bind(Param::Int(editor));
        }
        if let Some(deleted) = self.deleted {
            sql.push(&format!(" AND {s}.deleted = "))
                .bind(Param::Bool(deleted));
        }
        if let Some(uuid) = self.unique_identifier {
            sql.push(" AND a.unique_identifier = ")
                .bind(Param::Text(uuid.to_string()));
        }
        // Substring tests that match case on both backends (LIKE would not on SQLite).
        let position = if postgres { "strpos" } else { "instr" };
        if !self.unique_identifiers.is_empty() {
            // UUIDs written by `Uuid`'s own formatting: hex and hyphens, nothing to escape.
            let list = self
                .unique_identifiers
                .iter()
                .map(|u| format!("'{}'", u.hyphenated()))
                .collect::<Vec<_>>()
                .join(", ");
            sql.push(&format!(" AND a.unique_identifier IN ({list})"));
        }
        if let Some(text) = &self.unique_identifier_contains {
            sql.push(&format!(" AND {position}(a.unique_identifier, "))
                .bind(Param::Text(text.to_lowercase()))
                .push(") > 0");
        }
        if let Some(text) = &self.description {
            sql.push(&format!(" AND {s}.description = "))
                .bind(Param::Text(text.clone()));
        }
        if let Some(text) = &self.description_contains {
            sql.push(&format!(" AND {position}({s}.description, "))
                .bind(Param::Text(text.clone()))
                .push(") > 0");
        }
        if let Some(null) = self.meta_data_is_null {
            sql.push(&format!(
                " AND {s}.meta_data IS {}NULL",
                if null { "" } else { "NOT " }
            ));
        }
        for (key, range) in [("x1", &self.vector_x1), ("y1", &self.vector_y1)] {
            if range.from.is_none() && range.to.is_none() {
                continue;
            }
            let value = if postgres {
                format!("CAST(CAST({s}.vector AS jsonb) ->> '{key}' AS float8)")
            } else {
                format!("json_extract({s}.vector, '$.{key}')")
            };
            sql.push(&format!(" AND {value} IS NOT NULL"));
            if let Some(from) = range.from {
                sql.push(&format!(" AND {value} >= "))
                    .bind(Param::Float(from));
            }
            if let Some(to) = range.to {
                sql.push(&format!(" AND {value} < ")).bind(Param::Float(to));
            }
        }
        if let Some(vector_type) = self.vector_type {
            sql.push(&format!(
                " AND {s}.annotation_type IN (SELECT id FROM annotation_types WHERE vector_type = "
            ))
            .bind(Param::Int(vector_type))
            .push(")");
        }
        if let Some((first, last)) = self.verified_by {
            sql.push(" AND EXISTS (SELECT 1 FROM verifications v WHERE v.annotation = a.id AND v.user_id >= ")
                .bind(Param::Int(first))
                .push(" AND v.user_id <= ")
                .bind(Param::Int(last))
                .push(")");
        }
        if let Some(consensus) = self.consensus {
            // Net of the verdicts: twice the accepts minus all verdicts.
            const NET: &str = "(SELECT 2 * SUM(CASE WHEN v.verified THEN 1 ELSE 0 END) - COUNT(*) \
                               FROM verifications v WHERE v.annotation = a.id)";
            const ANY: &str = "EXISTS (SELECT 1 FROM verifications v WHERE v.annotation = a.id)";
            sql.push(&match consensus {
                Consensus::Unverified => format!(" AND NOT {ANY}"),
                Consensus::Accepted => format!(" AND {ANY} AND {NET} > 0"),
                Consensus::Rejected => format!(" AND {ANY} AND {NET} <= 0"),
            });
        }
        let edited = match versions {
            Versions::Current => "a.last_edit_time",
            Versions::Replaced(_) => "h.recorded_at",
        };
        for (column, range) in [("a.time", &self.created), (edited, &self.edited)] {
            if let Some(from) = range.from {
                sql.push(&format!(" AND {column} >= "))
                    .bind(Param::Int(from));
            }
            if let Some(to) = range.to {
                sql.push(&format!(" AND {column} <= ")).bind(Param::Int(to));
            }
        }
    }

    /// The order and the page, on the rows of `rows` (`a`, or the union `v`).
    fn finish(&self, mut sql: Sql, postgres: bool, count: bool, rows: &str) -> Sql {
        if count {
            return sql;
        }
        if !postgres && self.limit.is_none() && self.offset == 0 {
            // Every row is wanted (a viewer's window): sorted by the caller, because SQLite's
            // sorter copies each whole row in and out again, a third of a viewport's time.
            sql.sort_by_id_here = true;
            return sql;
        }
        if postgres && self.rect.is_some() && self.as_of.is_none() {
            // Not `ORDER BY id` as such: with a LIMIT, PostgreSQL would walk the primary key in
            // order and filter a million rows instead of asking the GiST index for the box.
            sql.push(" ORDER BY a.id + 0");
        } else {
            sql.push(&format!(" ORDER BY {rows}.id"));
        }
        if let Some(limit) = self.limit {
            sql.push(" LIMIT ").bind(Param::Int(limit));
        } else if self.offset > 0 {
            // Both backends take a LIMIT that never binds before an OFFSET.
            sql.push(" LIMIT ").bind(Param::Int(i64::MAX));
        }
        if self.offset > 0 {
            sql.push(" OFFSET ").bind(Param::Int(self.offset));
        }
        sql
    }
}
