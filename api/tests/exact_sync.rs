//! EXACT's own client, `exact-sync` 0.0.41 from PyPI, unchanged, against the real `exact`
//! binary on a free port: the compatibility promise of the REST API, checked end to end.
//!
//! The client is installed once into a virtual environment under the target folder. Without
//! python3 (with venv) or a reachable package index this test fails; it never skips.

mod support;

use std::path::Path;
use std::process::Command;

use support::served::{pictures, venv, Served};

/// The client, and what its generated code imports without declaring it.
const PACKAGES: &[&str] = &["exact-sync==0.0.41", "six", "python-dateutil"];

#[test]
fn exact_sync_drives_the_real_server() {
    let python = venv("exact-sync-0.0.41", PACKAGES);
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (png, svs) = pictures(files.path());

    let server = Served::start(data.path());
    let output = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/exact-sync/compat.py"))
        .args([
            server.url.as_str(),
            png.to_str().unwrap(),
            svs.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    drop(server);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exact-sync failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
