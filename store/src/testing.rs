//! A throwaway store per test, on either backend.
//!
//! PostgreSQL tests need `EXACT_TEST_DATABASE_URL` (a superuser connection to a scratch
//! cluster); `make test` starts one with `pg_virtualenv` and sets it. Without it they fail with
//! that message rather than pass unseen.

use std::sync::Arc;

use crate::{open, Backend, ManualClock, OpenOptions, Store, StoreUrl};
use chrono::{DateTime, Utc};
use sqlx::Connection;

/// A scratch store: a temporary SQLite file, or a new database in the test cluster.
#[derive(Debug)]
pub struct TestDb {
    pub url: StoreUrl,
    pub clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
}

/// A connection to the SQLite database at `path` with the settings of the store's writer
/// (WAL, durable commits, its page cache), for a benchmark's peer that writes as the store does.
pub fn sqlite_writer_connection(path: &std::path::Path) -> crate::Result<rusqlite::Connection> {
    crate::sqlite::writer_connection(path)
}

/// Creates indexes on a connection of [`sqlite_writer_connection`]'s as a rebuild does (its
/// sort on worker threads when temporary storage is in files), for the same peer.
pub fn sqlite_create_indexes(
    conn: &rusqlite::Connection,
    definitions: &[String],
) -> crate::Result<()> {
    Ok(crate::sqlite::create_indexes(conn, definitions)?)
}

/// The time on every test clock when it starts.
pub fn start_time() -> DateTime<Utc> {
    "2026-03-01T12:00:00.000001Z".parse().unwrap()
}

/// The test cluster's superuser URL.
pub fn postgres_admin_url() -> String {
    std::env::var("EXACT_TEST_DATABASE_URL").expect(
        "PostgreSQL tests need EXACT_TEST_DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/postgres; \
         `make test` starts a throwaway cluster and sets it",
    )
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite(),
            Backend::Postgres => Self::postgres().await,
        }
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            url: StoreUrl::Sqlite(dir.path().join("exact.db")),
            clock: Arc::new(ManualClock::new(start_time())),
            _dir: Some(dir),
        }
    }

    /// A fresh database in the test cluster.
    pub async fn postgres() -> Self {
        let admin = postgres_admin_url();
        let name = format!("exact_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to the test cluster");
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let (base, _) = admin
            .rsplit_once('/')
            .expect("a database URL ends in /DATABASE");
        Self {
            url: StoreUrl::Postgres(format!("{base}/{name}")),
            clock: Arc::new(ManualClock::new(start_time())),
            _dir: None,
        }
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    /// The file of a SQLite test database (a PostgreSQL one has none: a test's mistake).
    pub fn sqlite_path(&self) -> &std::path::Path {
        match &self.url {
            StoreUrl::Sqlite(path) => path,
            StoreUrl::Postgres(_) => panic!("a SQLite test database was expected"),
        }
    }

    pub fn url_string(&self) -> String {
        match &self.url {
            StoreUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            StoreUrl::Postgres(url) => url.clone(),
        }
    }

    pub async fn open(&self) -> Store {
        self.open_with(true).await
    }

    pub async fn open_with(&self, initialize: bool) -> Store {
        self.open_with_options(OpenOptions {
            clock: self.clock.clone(),
            initialize,
            projections: Vec::new(),
            hot_streams: Vec::new(),
        })
        .await
        .expect("open the store")
    }

    /// Opens with these inline projections and the test clock.
    pub async fn open_with_projections(
        &self,
        projections: Vec<std::sync::Arc<dyn crate::InlineProjection>>,
    ) -> Store {
        self.open_with_options(OpenOptions {
            clock: self.clock.clone(),
            initialize: true,
            projections,
            hot_streams: Vec::new(),
        })
        .await
        .expect("open the store")
    }

    pub async fn open_with_options(&self, options: OpenOptions) -> crate::Result<Store> {
        open(&self.url, options).await
    }

    /// Runs SQL on its own connection, as an operator (or an attacker) with database access.
    pub async fn raw(&self, sql: &str) -> Result<(), sqlx::Error> {
        match &self.url {
            StoreUrl::Sqlite(path) => {
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await?;
                sqlx::raw_sql(sql).execute(&mut conn).await?;
            }
            StoreUrl::Postgres(url) => {
                let mut conn = sqlx::PgConnection::connect(url).await?;
                sqlx::raw_sql(sql).execute(&mut conn).await?;
            }
        }
        Ok(())
    }

    /// Runs a query that returns (text, integer) rows, on its own connection.
    pub async fn pairs(&self, sql: &str) -> Vec<(String, i64)> {
        match &self.url {
            StoreUrl::Sqlite(path) => {
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
            }
            StoreUrl::Postgres(url) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
            }
        }
    }

    /// SQL that removes the append-only guard, the first thing a tamperer would do.
    pub fn drop_guard_sql(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;",
            Backend::Postgres => "DROP TRIGGER events_append_only ON events;",
        }
    }
}

/// Runs each listed `async fn name(db: TestDb)` once per backend, as `sqlite::name` and
/// `postgres::name`.
/// `$crate` resolves to `exact_store` wherever the macro is used.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::TestDb::new($crate::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::TestDb::new($crate::Backend::Postgres).await).await;
                }
            )*
        }
    };
}
