//! The web app in a real browser (issue 16): Debian's Chromium, headless, driven by the Python
//! `playwright` package (which brings its own driver; no browser is downloaded), against the
//! real `exact` binary on a fresh SQLite store. The steps are in `tests/browser/app.py`.
//!
//! Playwright is installed once into a virtual environment under the target folder. Without
//! python3 (with venv), a reachable package index or `/usr/bin/chromium` (scripts/setup.sh test
//! installs it) this test fails; it never skips.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PLAYWRIGHT: &str = "playwright==1.65.2";

fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("playwright-1.65.2");
    let python = dir.join("bin/python");
    if dir.join("installed").exists() {
        return python;
    }
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .expect("python3 runs (scripts/setup.sh test installs it)");
    assert!(
        status.success(),
        "python3 -m venv failed (python3-venv missing?)"
    );
    let status = Command::new(dir.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            PLAYWRIGHT,
        ])
        .status()
        .expect("pip runs");
    if !status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        panic!("pip install {PLAYWRIGHT} failed: is the package index reachable?");
    }
    std::fs::write(dir.join("installed"), PLAYWRIGHT).unwrap();
    python
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_web_app_works_in_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing: scripts/setup.sh test installs it"
    );
    let python = venv();
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let png = files.path().join("cells.png");
    image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    })
    .save(&png)
    .unwrap();
    let svs = files.path().join("biopsy.svs");
    exact_tiles::fixture::write_slide(&svs, &exact_tiles::fixture::SlideSpec::aperio(4000, 3000))
        .unwrap();
    // Kept where CI's workspace keeps its build, for a look after a failure.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_exact"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env_remove("EXACT_DATABASE_URL")
        .env_remove("EXACT_ADMIN_PASSWORD")
        .env_remove("EXACT_PUBLIC_URL")
        .env("EXACT_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("exact listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();

    let output = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser/app.py"))
        .arg(&url)
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
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
