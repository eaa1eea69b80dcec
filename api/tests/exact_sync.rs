//! EXACT's own client, `exact-sync` 0.0.41 from PyPI, unchanged, against the real `exact`
//! binary on a free port: the compatibility promise of the REST API, checked end to end.
//!
//! The client is installed once into a virtual environment under the target folder. Without
//! python3 (with venv) or a reachable package index this test fails; it never skips.

mod support;

use support::served::{pictures, run_python, venv, Served};

/// The client, and what its generated code imports without declaring it.
const PACKAGES: &[&str] = &["exact-sync==0.0.41", "six", "python-dateutil"];

/// Runs the client's script against a fresh server on `database_url` (SQLite when `None`).
fn drive(database_url: Option<&str>) {
    let python = venv("exact-sync-0.0.41", PACKAGES);
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (png, svs) = pictures(files.path());

    let server = Served::start_on(data.path(), database_url);
    let stdout = run_python(
        &python,
        "exact-sync/compat.py",
        &[server.url.as_ref(), png.as_os_str(), svs.as_os_str()],
        "exact-sync failed",
    );
    drop(server);
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[test]
fn exact_sync_drives_the_real_server_on_sqlite() {
    drive(None);
}

#[test]
fn exact_sync_drives_the_real_server_on_postgres() {
    let db = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(exact_store::testing::TestDb::postgres());
    let exact_store::StoreUrl::Postgres(url) = &db.url else {
        unreachable!("a PostgreSQL test database")
    };
    drive(Some(url));
}
