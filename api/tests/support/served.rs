//! The real `exact` binary on a free port, and Python clients in virtual environments: what the
//! end-to-end tests (exact-sync, the browser) drive.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A virtual environment under the target folder named `name` with `packages` installed, made
/// once; its python. Without python3 (with venv) or a reachable package index this fails.
pub fn venv(name: &str, packages: &[&str]) -> PathBuf {
    // Tests of one binary run in parallel: one of them installs, the others wait for it.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
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
        .args(packages)
        .status()
        .expect("pip runs");
    if !status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        panic!("pip install {packages:?} failed: is the package index reachable?");
    }
    std::fs::write(installed, packages.join("\n")).unwrap();
    python
}

/// `exact serve` on a fresh store (SQLite in `data`, or the PostgreSQL database at
/// `database_url`) with its files in `data`, on a free port, with the default superuser
/// `exact`/`exact`; killed when dropped, however the test ends.
pub struct Served {
    child: std::process::Child,
    pub url: String,
}

impl Served {
    pub fn start(data: &Path) -> Self {
        Self::start_on(data, None)
    }

    pub fn start_on(data: &Path, database_url: Option<&str>) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_exact"));
        command
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data);
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        command
            .env_remove("EXACT_DATABASE_URL")
            .env_remove("EXACT_ADMIN_PASSWORD")
            .env_remove("EXACT_PUBLIC_URL")
            .env("EXACT_LOG", "warn");
        Self::launch(command)
    }

    /// Starts `command` (an `exact serve` or `exact tiles`) and waits for the line that says
    /// where it listens.
    pub fn launch(mut command: Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("exact listening on ")
            .or_else(|| line.trim().strip_prefix("exact tiles listening on "))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, url }
    }

    /// Asks the server to stop (SIGTERM, as systemd and Docker do) and waits: whether it
    /// stopped cleanly.
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        self.child.wait().unwrap().success()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 640 × 480 PNG (`cells.png`) and a 4000 × 3000 Aperio slide (`biopsy.svs`) in `dir`.
pub fn pictures(dir: &Path) -> (PathBuf, PathBuf) {
    let png = dir.join("cells.png");
    image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    })
    .save(&png)
    .unwrap();
    let svs = dir.join("biopsy.svs");
    exact_tiles::fixture::write_slide(&svs, &exact_tiles::fixture::SlideSpec::aperio(4000, 3000))
        .unwrap();
    (png, svs)
}

/// Runs `script` (under the repository's `tests/`) with `python` and `args`; fails the test,
/// with everything it printed and `what`, unless it exits 0. Returns what it printed.
pub fn run_python(python: &Path, script: &str, args: &[&std::ffi::OsStr], what: &str) -> String {
    let output = Command::new(python)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests")
                .join(script),
        )
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what}:\n{stdout}\n{stderr}");
    stdout
}

/// An answer of a served `exact`: status, headers (names in lower case) and body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "{}: not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, String::from_utf8_lossy(&self.body))
    }
}

/// One HTTP/1.1 request to `base` (`http://host:port`) with `Connection: close`: what a load
/// balancer forwards. Bodies are read by their length (the API answers with one).
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = open(base, method, path, headers, body).await;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer has a head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let _ = stream.shutdown().await;
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// The request sent, its connection left open for the answer (a stream's, say).
pub async fn open(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> tokio::net::TcpStream {
    open_with_length(base, method, path, headers, body, body.len()).await
}

/// As [`open`], announcing a body of `length` bytes of which `body` is sent: a client that
/// has more to send (or went away before sending it).
pub async fn open_with_length(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    length: usize,
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let address = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {length}\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream
}

/// POSTs JSON to a served `exact` as `exact` (Basic); the answer must be a 201.
pub async fn create(base: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let admin = super::basic("exact", "exact");
    let headers = [
        ("authorization", admin.as_str()),
        ("content-type", "application/json"),
    ];
    let reply = request(base, "POST", path, &headers, body.to_string().as_bytes()).await;
    assert_eq!(reply.status, 201, "{path}: {reply:?}");
    reply.json()
}
