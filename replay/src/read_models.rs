//! `exact replay verify`'s read-model check: every read-model table of a store compared, row
//! by row, with the same tables built from its log alone (a copy of the log into a scratch
//! store of the same kind, whose read models fill as it arrives).
//!
//! The live tables and their log position are read in one transaction, so a server may keep
//! writing; the comparison holds if the scratch copy reached that same position.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{Connection, Row};

/// Tables that are not read models: the log, its counters and checkpoints, the migrations,
/// the sessions; an R*Tree's shadow tables are its own business (the R*Tree is compared).
const NOT_READ_MODELS: &[&str] = &[
    "events",
    "id_counters",
    "projection_checkpoints",
    "_sqlx_migrations",
    "tower_sessions",
    "sqlite_sequence",
];
const SHADOW_SUFFIXES: &[&str] = &["_node", "_parent", "_rowid"];

/// Every read-model table's rows (each rendered as text, sorted), and the log position they
/// were read at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    pub position: i64,
    pub rows: BTreeMap<String, Vec<String>>,
}

fn is_read_model(name: &str) -> bool {
    !NOT_READ_MODELS.contains(&name) && !SHADOW_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// The read-model tables of the SQLite database at `path`, in one read transaction.
pub async fn sqlite_tables(path: &std::path::Path) -> Result<Tables, sqlx::Error> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    let mut connection = sqlx::SqliteConnection::connect_with(&options).await?;
    let mut tx = connection.begin().await?;
    let position: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut *tx)
            .await?;
    let mut rows = BTreeMap::new();
    for name in names.into_iter().filter(|n| is_read_model(n)) {
        let columns: Vec<String> = sqlx::query(&format!("PRAGMA table_info(\"{name}\")"))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.get::<String, _>("name"))
            .collect();
        let rendered = columns
            .iter()
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let mut table: Vec<String> =
            sqlx::query_scalar(&format!("SELECT {rendered} FROM \"{name}\""))
                .fetch_all(&mut *tx)
                .await?;
        table.sort();
        rows.insert(name, table);
    }
    tx.commit().await?;
    Ok(Tables { position, rows })
}

/// The read-model tables of the PostgreSQL database at `url`, in one repeatable-read
/// transaction.
pub async fn postgres_tables(url: &str) -> Result<Tables, sqlx::Error> {
    let mut connection = sqlx::PgConnection::connect(url).await?;
    let mut tx = connection.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let position: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0)::bigint FROM events")
        .fetch_one(&mut *tx)
        .await?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut rows = BTreeMap::new();
    for name in names.into_iter().filter(|n| is_read_model(n)) {
        let mut table: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM \"{name}\" t"))
                .fetch_all(&mut *tx)
                .await?;
        table.sort();
        rows.insert(name, table);
    }
    tx.commit().await?;
    Ok(Tables { position, rows })
}

/// One table that differs: its row counts, and a few rows found on one side only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDifference {
    pub table: String,
    pub live_rows: usize,
    pub rebuilt_rows: usize,
    pub live_only: Vec<String>,
    pub rebuilt_only: Vec<String>,
}

/// The tables where `live` and `rebuilt` differ (a table missing on one side has no rows).
pub fn compare(live: &Tables, rebuilt: &Tables) -> Vec<TableDifference> {
    let names: BTreeSet<&String> = live.rows.keys().chain(rebuilt.rows.keys()).collect();
    let empty = Vec::new();
    let mut differences = Vec::new();
    for name in names {
        let a = live.rows.get(name).unwrap_or(&empty);
        let b = rebuilt.rows.get(name).unwrap_or(&empty);
        if a == b {
            continue;
        }
        let (set_a, set_b): (BTreeSet<&String>, BTreeSet<&String>) =
            (a.iter().collect(), b.iter().collect());
        let sample = |one: &BTreeSet<&String>, other: &BTreeSet<&String>| {
            one.difference(other)
                .take(3)
                .map(|s| (*s).clone())
                .collect()
        };
        differences.push(TableDifference {
            table: name.clone(),
            live_rows: a.len(),
            rebuilt_rows: b.len(),
            live_only: sample(&set_a, &set_b),
            rebuilt_only: sample(&set_b, &set_a),
        });
    }
    differences
}
