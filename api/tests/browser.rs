//! The web app in a real browser (issue 16): Debian's Chromium, headless, driven by the Python
//! `playwright` package (which brings its own driver; no browser is downloaded), against the
//! real `exact` binary on a fresh SQLite store. The steps are in `tests/browser/app.py`.
//!
//! Playwright is installed once into a virtual environment under the target folder. Without
//! python3 (with venv), a reachable package index or `/usr/bin/chromium` (scripts/setup.sh test
//! installs it) this test fails; it never skips.

mod support;

use std::path::Path;

use support::served::{pictures, run_python, venv, Served};

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
    let series = files.path().join("series.tif");
    exact_tiles::fixture::write_multi_page_tiff(&series, 900, 600, 3).unwrap();
    // Kept where CI's workspace keeps its build, for a look after a failure.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let server = Served::start(data.path());
    let stdout = run_python(
        &python,
        "browser/app.py",
        &[
            server.url.as_ref(),
            svs.as_os_str(),
            png.as_os_str(),
            shots.as_os_str(),
            series.as_os_str(),
        ],
        &format!(
            "the browser run failed (screenshots in {})",
            shots.display()
        ),
    );
    drop(server);
    // Every step of the script ran and passed.
    let script = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/app.py"),
    )
    .unwrap();
    let steps = script.matches("\n        step(\"").count();
    assert!(steps > 10, "the script's steps were not found");
    assert!(
        stdout.contains(&format!("\n{steps} passed, 0 failed")),
        "{stdout}"
    );
}
