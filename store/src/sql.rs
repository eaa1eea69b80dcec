//! Statements written once and run on either backend's connection inside an append's
//! transaction: PostgreSQL through sqlx, SQLite through rusqlite on the writer's own thread.
//!
//! SQL uses PostgreSQL's `$n` placeholders. SQLite would read `$n` as a named parameter, and
//! finding a name's index walks a list (quadratic for a multi-row insert of thousands of
//! values), so for SQLite `$n` is rewritten to `?n`, which SQLite binds to index `n` directly.

use std::borrow::Cow;
use std::fmt::Write as _;

use sqlx::postgres::PgRow;

use crate::inline::Tx;
use crate::{Result, StoreError};

/// A value bound to a statement. Nulls keep their type: PostgreSQL needs it.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue<'a> {
    Int(Option<i64>),
    Real(Option<f64>),
    Bool(Option<bool>),
    Text(Option<Cow<'a, str>>),
    Blob(Option<Cow<'a, [u8]>>),
    /// PostgreSQL's `uuid`; SQLite stores its 16 bytes as a blob (as sqlx does).
    Uuid(uuid::Uuid),
}

macro_rules! from_value {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl<'a> From<$t> for SqlValue<'a> {
            fn from($v: $t) -> Self {
                $e
            }
        })*
    };
}

from_value! {
    i64 => |v| SqlValue::Int(Some(v)),
    &i64 => |v| SqlValue::Int(Some(*v)),
    i32 => |v| SqlValue::Int(Some(v.into())),
    &i32 => |v| SqlValue::Int(Some((*v).into())),
    Option<i64> => |v| SqlValue::Int(v),
    &Option<i64> => |v| SqlValue::Int(*v),
    f64 => |v| SqlValue::Real(Some(v)),
    &f64 => |v| SqlValue::Real(Some(*v)),
    Option<f64> => |v| SqlValue::Real(v),
    &Option<f64> => |v| SqlValue::Real(*v),
    bool => |v| SqlValue::Bool(Some(v)),
    &bool => |v| SqlValue::Bool(Some(*v)),
    Option<bool> => |v| SqlValue::Bool(v),
    &Option<bool> => |v| SqlValue::Bool(*v),
    String => |v| SqlValue::Text(Some(Cow::Owned(v))),
    Option<String> => |v| SqlValue::Text(v.map(Cow::Owned)),
    uuid::Uuid => |v| SqlValue::Uuid(v),
    &uuid::Uuid => |v| SqlValue::Uuid(*v),
}

impl<'a> From<&'a str> for SqlValue<'a> {
    fn from(v: &'a str) -> Self {
        SqlValue::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<&'a String> for SqlValue<'a> {
    fn from(v: &'a String) -> Self {
        SqlValue::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<Option<&'a str>> for SqlValue<'a> {
    fn from(v: Option<&'a str>) -> Self {
        SqlValue::Text(v.map(Cow::Borrowed))
    }
}

impl<'a> From<&'a Option<String>> for SqlValue<'a> {
    fn from(v: &'a Option<String>) -> Self {
        SqlValue::Text(v.as_deref().map(Cow::Borrowed))
    }
}

impl<'a> From<&'a [u8]> for SqlValue<'a> {
    fn from(v: &'a [u8]) -> Self {
        SqlValue::Blob(Some(Cow::Borrowed(v)))
    }
}

impl SqlValue<'_> {
    /// The same value, borrowing nothing: for a statement that runs on another thread.
    pub fn into_owned(self) -> SqlValue<'static> {
        match self {
            SqlValue::Int(v) => SqlValue::Int(v),
            SqlValue::Real(v) => SqlValue::Real(v),
            SqlValue::Bool(v) => SqlValue::Bool(v),
            SqlValue::Text(v) => SqlValue::Text(v.map(|t| Cow::Owned(t.into_owned()))),
            SqlValue::Blob(v) => SqlValue::Blob(v.map(|b| Cow::Owned(b.into_owned()))),
            SqlValue::Uuid(v) => SqlValue::Uuid(v),
        }
    }
}

impl rusqlite::ToSql for SqlValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            SqlValue::Int(Some(v)) => ToSqlOutput::Owned(Value::Integer(*v)),
            SqlValue::Real(Some(v)) => ToSqlOutput::Owned(Value::Real(*v)),
            SqlValue::Bool(Some(v)) => ToSqlOutput::Owned(Value::Integer(i64::from(*v))),
            SqlValue::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            SqlValue::Blob(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
            SqlValue::Uuid(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v.as_bytes())),
            SqlValue::Int(None)
            | SqlValue::Real(None)
            | SqlValue::Bool(None)
            | SqlValue::Text(None)
            | SqlValue::Blob(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

/// A row type both backends can read: sqlx's `FromRow` for PostgreSQL, and this for SQLite.
pub trait SqlRow: Sized + Send + Unpin + for<'r> sqlx::FromRow<'r, PgRow> {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

macro_rules! tuple_rows {
    ($(($($t:ident $i:tt),+)),* $(,)?) => {
        $(impl<$($t),+> SqlRow for ($($t,)+)
        where
            $($t: rusqlite::types::FromSql + Send + Unpin
                + for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,)+
        {
            fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, $t>($i)?,)+))
            }
        })*
    };
}

tuple_rows! {
    (A 0),
    (A 0, B 1),
    (A 0, B 1, C 2),
    (A 0, B 1, C 2, D 3),
}

/// `VALUES ($1, ..., $k), ($k+1, ...), ...` for `rows` rows of `columns` values each, numbered
/// after `marker` (`$` for PostgreSQL, `?` for SQLite).
fn values_list(rows: usize, columns: usize, marker: char) -> String {
    let mut sql = String::with_capacity(rows * columns * 5 + 8);
    sql.push_str("VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            // Written in place: a run of a thousand rows has tens of thousands of numbers.
            let _ = write!(sql, "{marker}{}", row * columns + column + 1);
        }
        sql.push(')');
    }
    sql
}

/// Rows per statement of SQLite's multi-row insert, largest first: as many runs of the first
/// as fit, then of the next, the last rows one at a time. A run opens its table's and indexes'
/// cursors once and keeps them where the last row went (rows in key order skip the descent
/// from the root); each size's text is made and prepared once, like a single row's.
///
/// Why a large run first: a statement that may still abort after writing (one whose rows fire
/// a trigger, such as the spatial index's cells, or whose `DO UPDATE` may fail, such as the
/// overview's counts) copies each page it touches into a statement journal the first time it
/// touches it, once per statement. In runs of 50, early in a million creations (most cells
/// new), each batch copied the R*Tree's leaves about a hundred times, and the tree's inserts
/// took twice the time of the same cells written in one statement (BENCHMARKS.md, "the cells
/// in fewer statements").
const SQLITE_ROWS_PER_RUN: [usize; 3] = [1_000, 50, 1];

/// SQLite's limit on the parameters of one statement (`SQLITE_MAX_VARIABLE_NUMBER`); a run of
/// wide rows that would pass it is left out.
const SQLITE_PARAMETERS: usize = 32_766;

/// Rows of `columns` values each, as `INSERT`s of `head VALUES (...) tail`, in runs of
/// [`SQLITE_ROWS_PER_RUN`] rows through one prepared statement each; the number of rows
/// changed.
///
/// The insert is SQLite's `INSERT OR FAIL`: a refused row ends the statement and leaves the
/// rows before it written. With `INSERT`'s default (`ABORT`), SQLite would undo them itself,
/// and to be able to, copy every page a multi-row statement touches into a statement journal
/// first (unless a trigger or a `DO UPDATE` clause may still abort it). Callers run inside a
/// transaction or savepoint that any error rolls back whole, so nothing half done survives.
pub(crate) fn sqlite_insert_rows(
    conn: &rusqlite::Connection,
    head: &str,
    columns: usize,
    tail: &str,
    values: &[SqlValue<'_>],
) -> rusqlite::Result<usize> {
    debug_assert_eq!(values.len() % columns.max(1), 0, "whole rows only");
    let head = sqlite_or_fail(head);
    let columns = columns.max(1);
    let mut changed = 0;
    let mut values = values;
    for rows in SQLITE_ROWS_PER_RUN {
        let run = rows * columns;
        if run > SQLITE_PARAMETERS && rows > 1 {
            continue;
        }
        let (runs, rest) = values.split_at(values.len() - values.len() % run);
        values = rest;
        if runs.is_empty() {
            continue;
        }
        let sql = format!("{head}{}{tail}", values_list(rows, columns, '?'));
        let mut statement = conn.prepare_cached(&sql)?;
        for run in runs.chunks(run) {
            for (index, value) in run.iter().enumerate() {
                statement.raw_bind_parameter(index + 1, value)?;
            }
            changed += statement.raw_execute()?;
        }
    }
    Ok(changed)
}

/// `INSERT OR FAIL INTO …` for `INSERT INTO …` (see [`sqlite_insert_rows`]).
fn sqlite_or_fail(head: &str) -> std::borrow::Cow<'_, str> {
    match head.strip_prefix("INSERT INTO ") {
        Some(rest) => format!("INSERT OR FAIL INTO {rest}").into(),
        None => head.into(),
    }
}

/// PostgreSQL's limit on the parameters of one statement.
const POSTGRES_PARAMETERS: usize = 65_535;

impl Tx<'_> {
    /// Inserts rows of `columns` values each (`values` holds them one after the other) with
    /// `head VALUES (...) tail`, where `head` is `INSERT INTO table (columns) ` and `tail` an
    /// optional `ON CONFLICT` clause; the number of rows changed. PostgreSQL gets as many rows
    /// per statement as its parameter limit allows; SQLite runs of a thousand, then of 50
    /// ([`sqlite_insert_rows`]).
    pub async fn insert_rows(
        &mut self,
        head: &str,
        columns: usize,
        tail: &str,
        values: &[SqlValue<'_>],
    ) -> Result<u64> {
        match self {
            Tx::Sqlite(conn) => Ok(sqlite_insert_rows(conn, head, columns, tail, values)? as u64),
            Tx::Postgres(conn) => {
                let mut changed = 0;
                let columns = columns.max(1);
                let rows_per_statement = POSTGRES_PARAMETERS / columns;
                for chunk in values.chunks(rows_per_statement * columns) {
                    let sql = format!(
                        "{head}{}{tail}",
                        values_list(chunk.len() / columns, columns, '$')
                    );
                    changed += postgres_query(&sql, chunk)
                        .execute(&mut **conn)
                        .await?
                        .rows_affected();
                }
                Ok(changed)
            }
        }
    }

    /// Creates indexes from their definitions (`CREATE INDEX …`), one after the other. On
    /// SQLite the sort that builds each is spread over worker threads inside a rebuild
    /// ([`crate::sqlite::create_indexes`]).
    pub async fn create_indexes(&mut self, definitions: &[String]) -> Result<()> {
        if let Tx::Sqlite(conn) = self {
            return Ok(crate::sqlite::create_indexes(conn, definitions)?);
        }
        for definition in definitions {
            self.execute(definition, &[]).await?;
        }
        Ok(())
    }

    /// Runs one statement; the number of rows it changed.
    pub async fn execute(&mut self, sql: &str, args: &[SqlValue<'_>]) -> Result<u64> {
        match self {
            Tx::Sqlite(conn) => Ok(sqlite_execute(conn, sql, args)? as u64),
            Tx::Postgres(conn) => Ok(postgres_query(sql, args)
                .execute(&mut **conn)
                .await?
                .rows_affected()),
        }
    }

    /// Every row a query returns.
    pub async fn fetch_all<R: SqlRow>(
        &mut self,
        sql: &str,
        args: &[SqlValue<'_>],
    ) -> Result<Vec<R>> {
        match self {
            Tx::Sqlite(conn) => Ok(sqlite_fetch(conn, sql, args, usize::MAX)?),
            Tx::Postgres(conn) => {
                let rows = postgres_query(sql, args).fetch_all(&mut **conn).await?;
                rows.iter()
                    .map(|row| R::from_row(row).map_err(StoreError::from))
                    .collect()
            }
        }
    }

    /// The first row a query returns, if any.
    pub async fn fetch_optional<R: SqlRow>(
        &mut self,
        sql: &str,
        args: &[SqlValue<'_>],
    ) -> Result<Option<R>> {
        match self {
            Tx::Sqlite(conn) => Ok(sqlite_fetch(conn, sql, args, 1)?.pop()),
            Tx::Postgres(conn) => match postgres_query(sql, args)
                .fetch_optional(&mut **conn)
                .await?
            {
                Some(row) => Ok(Some(R::from_row(&row)?)),
                None => Ok(None),
            },
        }
    }
}

fn postgres_query<'q>(
    sql: &'q str,
    args: &'q [SqlValue<'_>],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let mut query = sqlx::query(sql);
    for arg in args {
        query = match arg {
            SqlValue::Int(v) => query.bind(*v),
            SqlValue::Real(v) => query.bind(*v),
            SqlValue::Bool(v) => query.bind(*v),
            SqlValue::Text(v) => query.bind(v.as_deref()),
            SqlValue::Blob(v) => query.bind(v.as_deref()),
            SqlValue::Uuid(v) => query.bind(*v),
        };
    }
    query
}

/// `sql` with every `$n` written `?n`: the same parameter, numbered for SQLite.
fn numbered_placeholders(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Prepares (from the connection's cache) and binds `?n` to `args[n - 1]`.
pub(crate) fn sqlite_statement<'c>(
    conn: &'c rusqlite::Connection,
    sql: &str,
    args: &[SqlValue<'_>],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut statement = conn.prepare_cached(&numbered_placeholders(sql))?;
    let count = statement.parameter_count();
    if count > args.len() {
        return Err(rusqlite::Error::InvalidParameterCount(count, args.len()));
    }
    for (index, arg) in args.iter().take(count).enumerate() {
        statement.raw_bind_parameter(index + 1, arg)?;
    }
    Ok(statement)
}

pub(crate) fn sqlite_execute(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[SqlValue<'_>],
) -> rusqlite::Result<usize> {
    sqlite_statement(conn, sql, args)?.raw_execute()
}

fn sqlite_fetch<R: SqlRow>(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[SqlValue<'_>],
    limit: usize,
) -> rusqlite::Result<Vec<R>> {
    sqlite_rows(conn, sql, args, limit, R::from_sqlite)
}

/// Up to `limit` rows of a query, each read by `decode`.
pub(crate) fn sqlite_rows<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[SqlValue<'_>],
    limit: usize,
    decode: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = sqlite_statement(conn, sql, args)?;
    let mut rows = statement.raw_query();
    let mut found = Vec::new();
    while found.len() < limit {
        let Some(row) = rows.next()? else { break };
        found.push(decode(row)?);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_sqlite_and_literals_kept() {
        assert_eq!(
            numbered_placeholders(
                "SELECT json_extract(v, '$.a') FROM t WHERE a = $2 OR b = $1 OR c = $2"
            ),
            "SELECT json_extract(v, '$.a') FROM t WHERE a = ?2 OR b = ?1 OR c = ?2"
        );
    }

    #[test]
    fn values_lists_number_every_placeholder_in_order() {
        assert_eq!(values_list(2, 3, '$'), "VALUES ($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values_list(1, 1, '?'), "VALUES (?1)");
        assert!(values_list(1_000, 24, '?').ends_with("?23999, ?24000)"));
    }

    /// Every row once, with its own values, whichever run size took it: a thousand and 50
    /// and single rows for a narrow table, no run of a thousand for one whose thousand rows
    /// would pass SQLite's parameter limit.
    #[test]
    fn rows_go_in_by_runs_largest_first_each_once() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for columns in [2_usize, 40] {
            let names: Vec<String> = (0..columns).map(|c| format!("c{c}")).collect();
            conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS t; CREATE TABLE t ({} INTEGER NOT NULL, PRIMARY KEY (c0))",
                names.join(" INTEGER NOT NULL, ")
            ))
            .unwrap();
            let rows = 2_000 + 3 * 50 + 7;
            let values: Vec<SqlValue<'_>> = (0..rows as i64)
                .flat_map(|row| (0..columns as i64).map(move |c| SqlValue::from(row * 100 + c)))
                .collect();
            let head = format!("INSERT INTO t ({}) ", names.join(", "));
            let changed = sqlite_insert_rows(&conn, &head, columns, "", &values).unwrap();
            assert_eq!(changed, rows, "{columns} columns");
            let stored: Vec<(i64, i64, i64)> = sqlite_fetch(
                &conn,
                &format!("SELECT COUNT(*), SUM(c0), SUM(c{}) FROM t", columns - 1),
                &[],
                usize::MAX,
            )
            .unwrap();
            let sum = |c: i64| (0..rows as i64).map(|row| row * 100 + c).sum::<i64>();
            assert_eq!(
                stored,
                vec![(rows as i64, sum(0), sum(columns as i64 - 1))],
                "{columns} columns"
            );
        }
    }

    #[test]
    fn parameters_bind_by_number_in_any_order_and_repeated() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let rows: Vec<(i64, String, i64)> = sqlite_fetch(
            &conn,
            "SELECT $2, $1, $2 + 1",
            &[SqlValue::from("one"), SqlValue::from(2_i64)],
            usize::MAX,
        )
        .unwrap();
        assert_eq!(rows, vec![(2, "one".to_string(), 3)]);
        let too_few = sqlite_fetch::<(i64,)>(&conn, "SELECT $1 + $2", &[1_i64.into()], 1);
        assert!(matches!(
            too_few,
            Err(rusqlite::Error::InvalidParameterCount(2, 1))
        ));
    }
}
