//! The catalog's queries on SQLite, stepped by rusqlite on the store's read-only connections.
//!
//! sqlx hands every SQLite statement to a connection thread and every row back, two thread
//! wake-ups and more per query; the commands ask several small questions per request (who is
//! this, may they write to this set, is this type offered there), so those hand-overs were a
//! good part of a request's cost. The functions mirror sqlx's `query_as`/`query_scalar` and
//! their fetches, so that one `fetch!` serves both backends; errors come back as sqlx's.

use exact_store::{SqlValue, SqliteReaders};

fn driver_error(error: exact_store::StoreError) -> sqlx::Error {
    sqlx::Error::AnyDriverError(Box::new(error))
}

async fn rows<T: Send + 'static>(
    readers: &SqliteReaders,
    sql: &str,
    args: Vec<SqlValue<'static>>,
    limit: usize,
    decode: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, sqlx::Error> {
    readers
        .query(sql.to_owned(), args, limit, decode)
        .await
        .map_err(driver_error)
}

/// Rows read as a [`exact_store::SqlRow`].
pub(crate) mod query_as {
    use exact_store::{SqlRow, SqlValue, SqliteReaders};

    pub(crate) async fn fetch_all<R: SqlRow + 'static>(
        readers: &SqliteReaders,
        sql: &str,
        args: Vec<SqlValue<'static>>,
    ) -> Result<Vec<R>, sqlx::Error> {
        super::rows(readers, sql, args, usize::MAX, R::from_sqlite).await
    }

    pub(crate) async fn fetch_optional<R: SqlRow + 'static>(
        readers: &SqliteReaders,
        sql: &str,
        args: Vec<SqlValue<'static>>,
    ) -> Result<Option<R>, sqlx::Error> {
        Ok(super::rows(readers, sql, args, 1, R::from_sqlite)
            .await?
            .pop())
    }

    pub(crate) async fn fetch_one<R: SqlRow + 'static>(
        readers: &SqliteReaders,
        sql: &str,
        args: Vec<SqlValue<'static>>,
    ) -> Result<R, sqlx::Error> {
        fetch_optional(readers, sql, args)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }
}

/// The first column of each row.
pub(crate) mod query_scalar {
    use exact_store::{SqlValue, SqliteReaders};
    use rusqlite::types::FromSql;

    fn first<T: FromSql>(row: &rusqlite::Row<'_>) -> rusqlite::Result<T> {
        row.get(0)
    }

    pub(crate) async fn fetch_all<T: FromSql + Send + 'static>(
        readers: &SqliteReaders,
        sql: &str,
        args: Vec<SqlValue<'static>>,
    ) -> Result<Vec<T>, sqlx::Error> {
        super::rows(readers, sql, args, usize::MAX, first::<T>).await
    }

    pub(crate) async fn fetch_optional<T: FromSql + Send + 'static>(
        readers: &SqliteReaders,
        sql: &str,
        args: Vec<SqlValue<'static>>,
    ) -> Result<Option<T>, sqlx::Error> {
        Ok(super::rows(readers, sql, args, 1, first::<T>).await?.pop())
    }

    pub(crate) async fn fetch_one<T: FromSql + Send + 'static>(
        readers: &SqliteReaders,
        sql: &str,
        args: Vec<SqlValue<'static>>,
    ) -> Result<T, sqlx::Error> {
        fetch_optional(readers, sql, args)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }
}

/// `impl SqlRow` reading each named field from the column of the same name.
macro_rules! sqlite_row {
    ($row:ident { $($field:ident),* $(,)? }) => {
        impl exact_store::SqlRow for $row {
            fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(Self { $($field: row.get(stringify!($field))?),* })
            }
        }
    };
}
pub(crate) use sqlite_row;
