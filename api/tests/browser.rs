//! The web app in a real browser (issue 16): Debian's Chromium, headless, driven by the Python
//! `playwright` package (which brings its own driver; no browser is downloaded), against the
//! real `exact` binary on a fresh SQLite store. The steps are in `tests/browser/app.py`.
//!
//! Playwright is installed once into a virtual environment under the target folder. Without
//! python3 (with venv), a reachable package index or `/usr/bin/chromium` (scripts/setup.sh test
//! installs it) this test fails; it never skips.

mod support;

use std::path::Path;
use std::process::Command;

use support::served::{pictures, venv, Served};

const PLAYWRIGHT: &str = "playwright==1.65.2";

#[test]
fn the_web_app_works_in_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing: scripts/setup.sh test installs it"
    );
    let python = venv("playwright-1.65.2", &[PLAYWRIGHT]);
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (png, svs) = pictures(files.path());
    // Kept where CI's workspace keeps its build, for a look after a failure.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let server = Served::start(data.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/app.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(&server.url)
        .arg(&svs)
        .arg(&png)
        .arg(&shots)
        .output()
        .unwrap();
    drop(server);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser run failed (screenshots in {}):\n{stdout}\n{stderr}",
        shots.display()
    );
    // Every step of the script ran and passed.
    let script = std::fs::read_to_string(&script).unwrap();
    let steps = script.matches("\n        step(\"").count();
    assert!(steps > 10, "the script's steps were not found");
    assert!(
        stdout.contains(&format!("\n{steps} passed, 0 failed")),
        "{stdout}"
    );
}
