//! EXACT's own client, `exact-sync` 0.0.41 from PyPI, unchanged, against the real `exact`
//! binary on a free port: the compatibility promise of the REST API, checked end to end.
//!
//! The client is installed once into a virtual environment under the target folder. Without
//! python3 (with venv) or a reachable package index this test fails; it never skips.

mod support;

use support::served::{pictures, run_python, venv, Served};

/// The client, and what its generated code imports without declaring it.
const PACKAGES: &[&str] = &["exact-sync==0.0.41", "six", "python-dateutil"];

#[test]
fn exact_sync_drives_the_real_server() {
    let python = venv("exact-sync-0.0.41", PACKAGES);
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (png, svs) = pictures(files.path());

    let server = Served::start(data.path());
    let stdout = run_python(
        &python,
        "exact-sync/compat.py",
        &[server.url.as_ref(), png.as_os_str(), svs.as_os_str()],
        "exact-sync failed",
    );
    drop(server);
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
