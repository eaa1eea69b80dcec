//! The deployment files (`Dockerfile`, `deploy/compose.yaml`, `deploy/exact.service`,
//! `deploy/nginx.conf`) run without containers: each one's command with its environment, the
//! folders and the database replaced by the test's own. A renamed flag or variable, a wrong
//! port or a missing runtime library fails here rather than in someone's deployment.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use exact_store::testing::TestDb;
use serde_json::Value;
use support::served::{self, Served};

fn deployment_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What a deployment file says to run: the program's arguments and its environment.
#[derive(Debug, Default)]
struct Launch {
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

impl Launch {
    /// The command on this machine: the built `exact` for the program, the test's folder for
    /// the deployment's (`/var/lib/exact`), any free port for the ones it binds, and
    /// `overrides` (the database) on top.
    fn command(&self, data: &Path, overrides: &[(&str, &str)]) -> Command {
        let program = self.args.first().expect("a command to run").as_str();
        assert!(
            program == "exact" || program == "/usr/local/bin/exact",
            "runs {program}"
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_exact"));
        command.args(&self.args[1..]);
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("EXACT_")) {
            command.env_remove(name);
        }
        for (name, value) in &self.env {
            let value = if value == "/var/lib/exact" {
                data.display().to_string()
            } else if name.ends_with("_BIND") {
                "127.0.0.1:0".to_owned()
            } else {
                value.clone()
            };
            command.env(name, value);
        }
        for (name, value) in overrides {
            command.env(name, value);
        }
        command
    }
}

/// The runtime stage of the Dockerfile: its `ENV` lines, its `CMD`, and the packages it
/// installs.
fn dockerfile() -> (Launch, Vec<String>) {
    let text = deployment_file("Dockerfile");
    let runtime = text.rsplit("\nFROM ").next().unwrap();
    let mut launch = Launch::default();
    let mut packages = Vec::new();
    for line in runtime.lines() {
        if let Some(pair) = line.strip_prefix("ENV ") {
            let (name, value) = pair.split_once('=').expect("ENV NAME=VALUE");
            launch.env.insert(name.to_owned(), value.to_owned());
        } else if let Some(command) = line.strip_prefix("CMD ") {
            launch.args = serde_json::from_str(command).expect("CMD in JSON form");
        } else if line.contains("apt-get install") {
            packages.extend(
                line.split_whitespace()
                    .skip_while(|w| *w != "install")
                    .skip(1)
                    .filter(|w| !w.starts_with('-') && *w != "\\")
                    .map(str::to_owned),
            );
        }
    }
    (launch, packages)
}

/// A service of the compose file: its `command` and `environment`, with `${NAME:-default}`
/// taken as its default and `${NAME:?...}` from `required`. (The file keeps to plain block
/// mappings and JSON-style lists, which this reads.)
fn compose_service(name: &str, required: &[(&str, &str)]) -> Launch {
    let text = deployment_file("deploy/compose.yaml");
    let mut launch = Launch::default();
    let mut in_service = false;
    let mut in_environment = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let line = line.trim();
        if indent == 2 {
            in_service = line == format!("{name}:");
            in_environment = false;
            continue;
        }
        if !in_service || line.is_empty() || line.starts_with('#') {
            continue;
        }
        if indent == 4 {
            in_environment = line == "environment:";
            if let Some(command) = line.strip_prefix("command: ") {
                launch.args = serde_json::from_str(command).expect("command as a JSON list");
            }
        } else if indent == 6 && in_environment {
            let (key, value) = line.split_once(": ").expect("NAME: value");
            launch
                .env
                .insert(key.to_owned(), substitute(value, required));
        }
    }
    launch
}

fn substitute(value: &str, required: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed ${...}") + start;
        let inner = &rest[start + 2..end];
        if let Some((_, default)) = inner.split_once(":-") {
            out.push_str(default);
        } else {
            let (name, _) = inner
                .split_once(":?")
                .expect("${NAME:-default} or ${NAME:?why}");
            let (_, given) = required
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("{name} is required by the compose file"));
            out.push_str(given);
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The systemd unit's `Environment=` lines and `ExecStart=`.
fn systemd_unit() -> Launch {
    let text = deployment_file("deploy/exact.service");
    let mut launch = Launch::default();
    for line in text.lines() {
        if let Some(pair) = line.strip_prefix("Environment=") {
            let (name, value) = pair.split_once('=').unwrap();
            launch.env.insert(name.to_owned(), value.to_owned());
        } else if let Some(command) = line.strip_prefix("ExecStart=") {
            launch.args = command.split_whitespace().map(str::to_owned).collect();
        }
    }
    launch
}

async fn get(base: &str, path: &str, headers: &[(&str, &str)]) -> served::Reply {
    served::request(base, "GET", path, headers, b"").await
}

/// A server started from a deployment file answers its health check, lets the default
/// superuser in, and stops cleanly on SIGTERM.
async fn serves_and_stops(server: Served, what: &str) {
    let health = get(&server.url, "/api/v1/health", &[]).await;
    assert_eq!(health.status, 200, "{what}: {health:?}");
    let admin = support::basic("exact", "exact");
    let who = get(
        &server.url,
        "/api/v1/auth/session/",
        &[("authorization", &admin)],
    )
    .await;
    assert_eq!(who.status, 200, "{what}: {who:?}");
    assert!(server.terminate(), "{what} did not stop cleanly on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployment_files_run_as_written() {
    // The Docker image: its command and environment, on SQLite in its volume.
    let (image, packages) = dockerfile();
    let volume = tempfile::tempdir().unwrap();
    let docker = Served::launch(image.command(volume.path(), &[]));
    assert!(
        volume.path().join("exact.db").exists(),
        "the store lives in the volume"
    );
    serves_and_stops(docker, "the Docker image's command").await;

    // Every library the binary needs is installed by the runtime stage, or is the C library.
    let needed = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_exact")])
        .output()
        .expect("readelf (binutils) runs");
    for line in String::from_utf8_lossy(&needed.stdout).lines() {
        let Some(library) = line.split("Shared library: [").nth(1) else {
            continue;
        };
        let library = library.trim_end_matches(']');
        let package = debian_package_of(library);
        let base = ["libc6", "libgcc-s1"];
        assert!(
            packages.contains(&package) || base.contains(&package.as_str()),
            "{library} comes from {package}, which the Dockerfile's runtime stage does not install ({packages:?})"
        );
    }

    // The systemd unit: its command and environment, the database from its EnvironmentFile.
    let unit = systemd_unit();
    let state = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    let systemd =
        Served::launch(unit.command(state.path(), &[("EXACT_DATABASE_URL", &db.url_string())]));
    serves_and_stops(systemd, "the systemd unit's command").await;

    // The compose file: its database URL is the `db` service's, its two API processes share a
    // fresh database and a folder, and its tile server takes the token it is given.
    let db_service = compose_service("db", &[]);
    let token = "a-tile-token-of-the-test-32-chars";
    let api = compose_service("api", &[]);
    let expected_url = format!(
        "postgres://{}:{}@db:5432/{}",
        db_service.env["POSTGRES_USER"],
        db_service.env["POSTGRES_PASSWORD"],
        db_service.env["POSTGRES_DB"]
    );
    assert_eq!(api.env["EXACT_DATABASE_URL"], expected_url);
    let nginx = deployment_file("deploy/nginx.conf");
    let api_port = api.env["EXACT_BIND"].rsplit(':').next().unwrap();
    assert!(
        nginx.contains(&format!("server api:{api_port};")),
        "nginx forwards to api:{api_port}"
    );
    let shared = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    let url = db.url_string();
    let replicas: Vec<Served> = (0..2)
        .map(|_| Served::launch(api.command(shared.path(), &[("EXACT_DATABASE_URL", &url)])))
        .collect();
    let tiles = compose_service("tiles", &[("EXACT_TILES_TOKEN", token)]);
    let tiles = Served::launch(tiles.command(shared.path(), &[]));
    let bearer = format!("Bearer {token}");
    let refused = get(&tiles.url, "/tiles/none.dzi", &[]).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    let missing = get(&tiles.url, "/tiles/none.dzi", &[("authorization", &bearer)]).await;
    assert_eq!(missing.status, 404, "the token is taken: {missing:?}");
    let public = api.env["EXACT_PUBLIC_URL"].clone();
    for server in replicas {
        let health = get(&server.url, "/api/v1/health", &[]).await;
        let health: Value = health.json();
        assert_eq!(health["status"], "ok");
        // Logins are taken from the public URL's pages (the address behind nginx).
        let login = served::request(
            &server.url,
            "POST",
            "/api/v1/auth/login/",
            &[("content-type", "application/json"), ("origin", &public)],
            br#"{"username": "exact", "password": "exact"}"#,
        )
        .await;
        assert_eq!(login.status, 200, "{login:?}");
        assert!(server.terminate(), "an API process did not stop cleanly");
    }
    assert!(tiles.terminate(), "the tile server did not stop cleanly");
}

/// The Debian package holding the shared library `name` on this machine.
fn debian_package_of(name: &str) -> String {
    let found = Command::new("dpkg")
        .args(["-S", &format!("*/{name}")])
        .output()
        .expect("dpkg runs (Debian or Ubuntu)");
    let text = String::from_utf8_lossy(&found.stdout);
    let line = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no package holds {name}"));
    line.split(':').next().unwrap().to_owned()
}
