//! EXACT's own client, `exact-sync` 0.0.41 from PyPI, unchanged, against the real `exact`
//! binary on a free port: the compatibility promise of the REST API, checked end to end.
//!
//! The client is installed once into a virtual environment under the target folder. Without
//! python3 (with venv) or a reachable package index this test fails; it never skips.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The client, and what its generated code imports without declaring it.
const PACKAGES: &[&str] = &["exact-sync==0.0.41", "six", "python-dateutil"];

fn venv() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("exact-sync-0.0.41");
    let python = dir.join("bin/python");
    let installed = dir.join("installed");
    if installed.exists() {
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
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PACKAGES)
        .status()
        .expect("pip runs");
    if !status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        panic!("pip install {PACKAGES:?} failed: is the package index reachable?");
    }
    std::fs::write(installed, PACKAGES.join("\n")).unwrap();
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
fn exact_sync_drives_the_real_server() {
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

    let mut child = Command::new(env!("CARGO_BIN_EXE_exact"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env_remove("EXACT_DATABASE_URL")
        .env_remove("EXACT_ADMIN_PASSWORD")
        .env("RUST_LOG", "warn")
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
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/exact-sync/compat.py"))
        .args([url.as_str(), png.to_str().unwrap(), svs.to_str().unwrap()])
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
