//! The `exact` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use exact_store::{OpenOptions, Store, StoreUrl};
use tokio::io::AsyncWriteExt;

use crate::AppState;

/// Exact: label images and whole-slide images together, with every change on record.
#[derive(Debug, Parser)]
#[command(name = "exact", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server.
    Serve(ServeArgs),
    /// Look after the event store: verify its chain, export it, copy it to another database.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Work over the whole log: rebuild the read models.
    #[command(subcommand)]
    Replay(ReplayCommand),
    /// Serve the tile routes alone for one data folder, beside `serve` (scale-out).
    Tiles(TilesArgs),
    /// Manage accounts: add one, set a password, deactivate one.
    #[command(subcommand)]
    User(UserCommand),
    /// Export an image set's annotations, as of now, a log position or time, or a dataset
    /// version, as a zip with its manifest (the same request gives the same bytes).
    Export(ExportArgs),
    /// Import annotations into an image set from EXACT's label lines or COCO JSON: every
    /// annotation checked first, then one append (all or nothing); prints the report.
    Import(ImportArgs),
    /// What changed in an image set between two moments (log positions or RFC 3339 times):
    /// added, removed and changed annotations, per type and image, as JSON.
    Diff(DiffArgs),
    /// Fill an empty store with a demo team, image set, types and a generated slide.
    Demo {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from EXACT_PASSWORD or standard input.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        username: String,
        #[arg(long, default_value = "")]
        email: String,
        /// Give the account every permission.
        #[arg(long)]
        superuser: bool,
        #[arg(long)]
        staff: bool,
    },
    /// Set an account's password, read from EXACT_PASSWORD or standard input.
    Passwd {
        #[command(flatten)]
        store: StoreArgs,
        username: String,
    },
    /// Stop an account from logging in (its record and its work stay).
    Deactivate {
        #[command(flatten)]
        store: StoreArgs,
        username: String,
    },
}

#[derive(Debug, Args)]
pub struct TilesArgs {
    /// The folder whose slides are served.
    #[arg(long, env = "EXACT_DATA_DIR", default_value = "./exact-data")]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "EXACT_TILES_BIND", default_value = "127.0.0.1:8001")]
    pub bind: SocketAddr,
    /// The token every request must carry as `Authorization: Bearer TOKEN`: the main server's
    /// key to this one. At least 16 characters.
    #[arg(long, env = "EXACT_TILES_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Megabytes of encoded tiles kept in memory.
    #[arg(long, default_value_t = 256)]
    pub cache_mb: u64,
    /// JPEG quality of rendered tiles (EXACT: 90).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
}

/// Where the store is: shared by every subcommand that opens one.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Folder for the embedded database and the image files.
    #[arg(long, env = "EXACT_DATA_DIR", default_value = "./exact-data")]
    pub data_dir: PathBuf,
    /// postgres://USER:PASSWORD@HOST/DB to keep the store in PostgreSQL instead of
    /// DATA_DIR/exact.db (SQLite).
    #[arg(long, env = "EXACT_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl StoreArgs {
    pub fn url(&self) -> anyhow::Result<StoreUrl> {
        match &self.database_url {
            Some(url) => Ok(StoreUrl::parse(url)?),
            None => Ok(StoreUrl::in_data_dir(&self.data_dir)),
        }
    }

    /// Opens the store; with `read_models`, the read models catch up and follow every append
    /// (the server), without, nothing but the log is touched (verify, export).
    async fn open(&self, read_models: bool) -> anyhow::Result<Store> {
        let url = self.url()?;
        let options = OpenOptions {
            projections: if read_models {
                exact_projections::all()
            } else {
                Vec::new()
            },
            hot_streams: exact_projections::hot_streams(),
            ..OpenOptions::default()
        };
        exact_store::open(&url, options)
            .await
            .with_context(|| format!("cannot open the store at {}", describe(&url)))
    }
}

/// Where signed checkpoints go, and the key that signs them.
#[derive(Debug, Clone, Args)]
pub struct CheckpointArgs {
    /// The file checkpoints are appended to, one JSON line each (default
    /// DATA_DIR/checkpoints.jsonl). Keep it, or a copy, on other storage than the database.
    #[arg(long, env = "EXACT_CHECKPOINTS")]
    pub checkpoints: Option<PathBuf>,
    /// The Ed25519 key checkpoints are signed with, made on first use (default
    /// DATA_DIR/checkpoint.key).
    #[arg(long, env = "EXACT_CHECKPOINT_KEY")]
    pub checkpoint_key: Option<PathBuf>,
}

impl CheckpointArgs {
    fn file(&self, store: &StoreArgs) -> PathBuf {
        (self.checkpoints.clone()).unwrap_or_else(|| store.data_dir.join("checkpoints.jsonl"))
    }

    fn key(&self, store: &StoreArgs) -> PathBuf {
        (self.checkpoint_key.clone()).unwrap_or_else(|| store.data_dir.join("checkpoint.key"))
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "EXACT_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The address browsers use, e.g. https://exact.example.org (https marks cookies Secure).
    #[arg(long, env = "EXACT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The largest upload accepted, in MiB (all files of one request together).
    #[arg(long, env = "EXACT_MAX_UPLOAD_MB", default_value_t = 20 * 1024)]
    pub max_upload_mb: u64,
    /// Seconds a client has to send a request's head (line and headers) before its connection
    /// is closed: slow clients cannot hold connections forever.
    #[arg(long, env = "EXACT_HEADER_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Whether image sets may be downloaded as zip archives (`false`: the download answers
    /// 404, as EXACT's `ENABLE_ZIP_DOWNLOAD` off).
    #[arg(long, env = "EXACT_ZIP_DOWNLOADS", default_value_t = true, action = clap::ArgAction::Set)]
    pub zip_downloads: bool,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
    /// Sign a checkpoint once this many events were appended since the last one (0: never by
    /// count).
    #[arg(long, env = "EXACT_CHECKPOINT_EVENTS", default_value_t = 10_000)]
    pub checkpoint_events: i64,
    /// Sign a checkpoint once this many minutes passed since the last one, if events were
    /// appended (0: never by time).
    #[arg(long, env = "EXACT_CHECKPOINT_MINUTES", default_value_t = 10)]
    pub checkpoint_minutes: u64,
}

/// hyper's own default for the time a request head may take.
const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 30;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Recompute the hash chain and name the first position where it breaks; then check the
    /// signed checkpoints against it.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// First position to check.
        #[arg(long, default_value_t = 1)]
        from: i64,
        /// Last position to check (default: the head).
        #[arg(long)]
        to: Option<i64>,
        #[command(flatten)]
        checkpoints: CheckpointArgs,
        /// The public key (hex) every checkpoint must be signed with: the one the auditor
        /// kept. Default: the key file's, if there is one.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Sign the log's head (position and chain hash) and append it to the checkpoints file;
    /// prints the public key to give the auditor.
    Checkpoint {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        checkpoints: CheckpointArgs,
    },
    /// Write the whole log, one envelope per line: the input of tests/auditor/verify_chain.py.
    Export {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// File to write (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Restore a log written by `exact store export` into an empty store: every event as it
    /// was (positions and hashes unchanged), the id counters recomputed from it, the read
    /// models built as it arrives, then the chain verified.
    Import {
        #[command(flatten)]
        store: StoreArgs,
        /// The JSON lines `exact store export` wrote.
        #[arg(long)]
        input: PathBuf,
    },
    /// Copy the whole log, positions and hashes unchanged, into an empty store (SQLite to
    /// PostgreSQL or back), then verify the copy.
    Copy {
        /// Source: postgres://..., sqlite://PATH or a path to an SQLite file.
        #[arg(long)]
        from: String,
        /// Target, which must hold no events.
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub image_set: i64,
    /// exact (EXACT's default format), exact:FORMAT_ID (a team's), coco, csv, geojson,
    /// qupath, voc, yolo or asap.
    #[arg(long)]
    pub format: crate::exports::ExportKind,
    /// The zip to write (replaced whole, never left half-written).
    #[arg(long)]
    pub output: PathBuf,
    /// A log position or an RFC 3339 time (default: now).
    #[arg(long)]
    pub as_of: Option<exact_replay::dataset::Moment>,
    /// A dataset version (it must name the set).
    #[arg(long, conflicts_with = "as_of")]
    pub version: Option<i64>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub image_set: i64,
    /// A log position or an RFC 3339 time.
    #[arg(long)]
    pub from: exact_replay::dataset::Moment,
    /// A log position or an RFC 3339 time (default: now).
    #[arg(long)]
    pub to: Option<exact_replay::dataset::Moment>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long)]
    pub image_set: i64,
    /// exact (EXACT's label lines), coco, csv (the CSV export's columns), geojson (QuPath's
    /// too: the file names its image, slide.svs.geojson), asap, imagescope (Aperio's XML) or
    /// voc.
    #[arg(long)]
    pub format: crate::imports::ImportKind,
    /// The file to import.
    pub file: PathBuf,
    /// Create the types the file names that the set does not offer.
    #[arg(long)]
    pub create_types: bool,
    /// Accept every imported annotation in the importing user's name.
    #[arg(long)]
    pub verify: bool,
    /// Apply the valid annotations of a file with refused ones.
    #[arg(long)]
    pub apply_valid: bool,
    /// The user the annotations are created by (default: exact itself).
    #[arg(long = "as")]
    pub as_user: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ReplayCommand {
    /// Empty the read models and replay the whole log into them, each in one transaction
    /// (readers see the old read model until the new one is complete).
    Rebuild {
        #[command(flatten)]
        store: StoreArgs,
        /// Rebuild only this read model (repeatable); all of them by default.
        #[arg(long = "projection", value_name = "NAME")]
        projections: Vec<String>,
    },
    /// Everything over the whole log: the chain, the signed checkpoints, and every read model
    /// compared row by row with the same tables rebuilt from the log in a scratch store (a
    /// temporary SQLite file, or a scratch PostgreSQL database beside the live one); exit 1
    /// naming each difference.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        checkpoints: CheckpointArgs,
        /// The public key (hex) every checkpoint must be signed with.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// The store as it was at a log position or a time (RFC 3339), read from the log alone: its
    /// image sets with their images and live annotations per type, as JSON.
    AsOf {
        #[command(flatten)]
        store: StoreArgs,
        /// A log position, or a time: the last event recorded at or before it.
        moment: exact_replay::dataset::Moment,
    },
    /// What changed between two moments (positions or RFC 3339 times): annotations added,
    /// removed and changed, by id, with counts per type and per image, as JSON.
    Diff {
        #[command(flatten)]
        store: StoreArgs,
        from: exact_replay::dataset::Moment,
        to: exact_replay::dataset::Moment,
    },
    /// The auditor's view: every event that matches, one JSON line each (as `store export`
    /// writes them: who, when, from where, why, what). Each filter may be repeated (any of its
    /// values); different filters must all hold.
    Log {
        #[command(flatten)]
        store: StoreArgs,
        /// A stream, e.g. annotation-12.
        #[arg(long = "stream")]
        streams: Vec<String>,
        /// The acting user's id.
        #[arg(long = "actor")]
        actors: Vec<i64>,
        /// An event type, e.g. AnnotationChanged.
        #[arg(long = "type")]
        types: Vec<String>,
        /// Events that concern this image set (its own, its images', their annotations').
        #[arg(long = "image-set")]
        image_sets: Vec<i64>,
        /// Events that concern this image (its own, its annotations' and their verdicts').
        #[arg(long = "image")]
        images: Vec<i64>,
        /// Recorded at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Recorded at or before this time (RFC 3339).
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// First position written.
        #[arg(long, default_value_t = 1)]
        from: i64,
        /// Last position written.
        #[arg(long)]
        to: Option<i64>,
        /// File to write (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// JSON lines: one envelope per line.
    Jsonl,
}

/// Logs to standard error; `EXACT_LOG` (or `RUST_LOG`) picks what, `info` by default.
pub fn init_tracing() {
    let filter = std::env::var("EXACT_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Store(StoreCommand::Verify {
            store,
            from,
            to,
            checkpoints,
            public_key,
        }) => verify(&store, from, to, &checkpoints, public_key).await,
        Command::Store(StoreCommand::Checkpoint { store, checkpoints }) => {
            checkpoint(&store, &checkpoints).await
        }
        Command::Store(StoreCommand::Export {
            store,
            format,
            output,
        }) => export(&store, format, output).await,
        Command::Store(StoreCommand::Copy { from, to }) => copy(&from, &to).await,
        Command::Store(StoreCommand::Import { store, input }) => import_log(&store, &input).await,
        Command::Replay(ReplayCommand::Rebuild { store, projections }) => {
            rebuild(&store, projections).await
        }
        Command::Replay(ReplayCommand::Log {
            store,
            streams,
            actors,
            types,
            image_sets,
            images,
            since,
            until,
            from,
            to,
            output,
        }) => {
            let filter = exact_replay::audit_log::LogFilter {
                streams,
                actors,
                types,
                image_sets,
                images,
                since,
                until,
                from,
                to,
            };
            audit_log(&store, &filter, output).await
        }
        Command::Replay(ReplayCommand::Verify {
            store,
            checkpoints,
            public_key,
        }) => {
            let chain = verify(&store, 1, None, &checkpoints, public_key).await?;
            let read_models = verify_read_models(&store).await?;
            Ok(if chain == ExitCode::SUCCESS && read_models {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Replay(ReplayCommand::AsOf { store, moment }) => {
            let store = store.open(false).await?;
            let dataset = exact_replay::dataset::Dataset::at(store.as_ref(), moment).await?;
            println!("{}", serde_json::to_string_pretty(&dataset.summary())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay(ReplayCommand::Diff { store, from, to }) => {
            let store = store.open(false).await?;
            let before = exact_replay::dataset::Dataset::at(store.as_ref(), from).await?;
            let after = exact_replay::dataset::Dataset::at(store.as_ref(), to).await?;
            let diff = exact_replay::dataset::diff(&before, &after);
            println!("{}", serde_json::to_string_pretty(&diff)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Tiles(args) => tiles(args).await,
        Command::User(command) => user(command).await,
        Command::Export(args) => export_set(args).await,
        Command::Import(args) => import_file(args).await,
        Command::Diff(args) => diff_set(args).await,
        Command::Demo { store } => demo(&store).await,
    }
}

/// `exact diff`: the REST route's difference, printed.
async fn diff_set(args: DiffArgs) -> anyhow::Result<ExitCode> {
    use exact_replay::dataset::Moment;
    let url = args.store.url()?;
    let store = args.store.open(false).await?;
    let read = exact_projections::ReadDb::connect(&url)
        .await
        .context("cannot read the read models")?;
    let position = |moment: Option<Moment>| {
        let store = store.clone();
        async move {
            anyhow::Ok(match moment {
                Some(Moment::Position(p)) => p,
                Some(Moment::Time(at)) => store.position_at(at).await?,
                None => store.last_position().await?,
            })
        }
    };
    let (from, to) = (position(Some(args.from)).await?, position(args.to).await?);
    let at = |position: i64| {
        exact_projections::export::read_dataset_or_empty(
            store.as_ref(),
            &read,
            args.image_set,
            position,
        )
    };
    let before = at(from).await?;
    let after = at(to).await?;
    let diff = exact_projections::export::diff::diff(&before, &after);
    println!("{}", serde_json::to_string_pretty(&diff)?);
    Ok(ExitCode::SUCCESS)
}

/// `exact import`: the REST route's import, of a file named on the command line.
async fn import_file(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A zip's files are read from a scratch folder, removed when the import ends.
    let scratch = tempfile::tempdir().context("cannot make a scratch folder")?;
    let files = crate::imports::import_files(&args.file, &name, args.format, scratch.path())
        .map_err(|e| anyhow::anyhow!("{}: {}", args.file.display(), e.message))?;
    let url = args.store.url()?;
    let _only_server = only_server(&url)?;
    let store = args.store.open(true).await?;
    let read = exact_projections::ReadDb::connect(&url)
        .await
        .context("cannot read the read models")?;
    let caller = match &args.as_user {
        None => crate::commands::Caller::system(),
        Some(name) => {
            let Some(user) = read.user_by_username(name).await? else {
                bail!("there is no user {name:?}");
            };
            crate::commands::Caller::new(user.actor(), exact_store::Source::Cli)
        }
    };
    let commands = crate::commands::Commands::new(store, read);
    let options = crate::imports::ImportOptions {
        create_types: args.create_types,
        verify: args.verify,
        apply_valid: args.apply_valid,
    };
    let report = crate::imports::import(
        &commands,
        &caller,
        args.image_set,
        args.format,
        &files,
        options,
    )
    .await;
    match report {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if let Some(report) = &e.report {
                println!("{}", serde_json::to_string_pretty(report)?);
            }
            eprintln!("error: {}", e.message);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `exact export`: the REST route's export, written to a file by the command line.
async fn export_set(args: ExportArgs) -> anyhow::Result<ExitCode> {
    use exact_replay::dataset::Moment;
    let url = args.store.url()?;
    let store = args.store.open(false).await?;
    let read = exact_projections::ReadDb::connect(&url)
        .await
        .context("cannot read the read models")?;
    let position = match (args.as_of, args.version) {
        (_, Some(version)) => {
            let Some((position, sets)) = read.dataset_version(version).await? else {
                bail!("there is no dataset version {version}");
            };
            if !sets.contains(&args.image_set) {
                bail!(
                    "dataset version {version} does not name image set {}",
                    args.image_set
                );
            }
            position
        }
        (Some(Moment::Position(position)), None) => position,
        (Some(Moment::Time(at)), None) => store.position_at(at).await?,
        (None, None) => store.last_position().await?,
    };
    let spinner = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner.set_message(format!(
        "reading image set {} as of position {position}",
        args.image_set
    ));
    let folder = match args.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let file = tempfile::NamedTempFile::new_in(&folder)
        .with_context(|| format!("cannot write in {}", folder.display()))?;
    let request = crate::exports::ExportRequest {
        image_set: args.image_set,
        kind: args.format,
        position,
        exported_by: crate::exports::ExportedBy {
            id: 0,
            username: "exact (command line)".into(),
        },
        originals: Vec::new(),
    };
    let manifest = crate::exports::write_export(store.as_ref(), &read, request, file.reopen()?)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    file.as_file().sync_all()?;
    file.persist(&args.output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    spinner.finish_and_clear();
    println!(
        "exported {} annotations of image set {} ({}) as {} at position {} (chain hash {}) to {}",
        manifest.annotations,
        manifest.image_set.id,
        manifest.image_set.name,
        manifest.format,
        manifest.position,
        manifest.chain_hash,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn demo(args: &StoreArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.data_dir)?;
    let url = args.url()?;
    let store = args.open(true).await?;
    let state = AppState::open(store, &url, crate::Config::new(args.data_dir.clone()))
        .await
        .with_context(|| format!("cannot open the read models at {}", describe(&url)))?;
    state
        .ensure_admin(std::env::var("EXACT_ADMIN_PASSWORD").ok())
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the first account: {e}"))?;
    state
        .commands
        .ensure_default_format()
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the default export format: {e}"))?;
    let made = crate::demo::fill(&state, &args.data_dir).await?;
    println!(
        "demo ready: run `exact serve` on this store, log in as exact, and open \
         /images/imageset/{}/ or the slide at /annotations/{}/",
        made.image_set, made.image
    );
    Ok(ExitCode::SUCCESS)
}

/// The password for `exact user add|passwd`: EXACT_PASSWORD, else the first line of standard
/// input (so that it never appears in the process list or the shell history).
async fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("EXACT_PASSWORD") {
        return Ok(password);
    }
    eprintln!("password (one line on standard input):");
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(
        &mut tokio::io::BufReader::new(tokio::io::stdin()),
        &mut line,
    )
    .await?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password given (set EXACT_PASSWORD or type one line)");
    }
    Ok(password)
}

async fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    use crate::commands::{Caller, NewUser};
    use exact_domain::user::UserCommand as Command;
    let args = match &command {
        UserCommand::Add { store, .. }
        | UserCommand::Passwd { store, .. }
        | UserCommand::Deactivate { store, .. } => store.clone(),
    };
    std::fs::create_dir_all(&args.data_dir)?;
    let url = args.url()?;
    let store = args.open(true).await?;
    let read = exact_projections::ReadDb::connect(&url).await?;
    let commands = crate::commands::Commands::new(store, read.clone());
    let caller = Caller::new(exact_domain::Actor::SYSTEM, exact_store::Source::Cli);
    let fail = |e: crate::error::ApiError| anyhow::anyhow!("{}", e.message);
    let find = |username: &str| {
        let read = read.clone();
        let username = username.to_owned();
        async move {
            read.user_by_username(&username)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no account is called {username:?}"))
        }
    };
    match command {
        UserCommand::Add {
            username,
            email,
            superuser,
            staff,
            ..
        } => {
            let hash = crate::auth::password::hash(read_password().await?)
                .await
                .map_err(fail)?;
            let new = NewUser {
                username: username.clone(),
                email,
                password_hash: hash,
                is_superuser: superuser,
                is_staff: staff || superuser,
            };
            let written = commands.create_user(&caller, new).await.map_err(fail)?;
            println!("created {username} (id {})", written.id);
        }
        UserCommand::Passwd { username, .. } => {
            let user = find(&username).await?;
            let hash = crate::auth::password::hash(read_password().await?)
                .await
                .map_err(fail)?;
            let command = Command::ChangePassword {
                password_hash: hash,
            };
            commands
                .user_command(&caller, user.id, &command)
                .await
                .map_err(fail)?;
            println!("password of {username} changed");
        }
        UserCommand::Deactivate { username, .. } => {
            let user = find(&username).await?;
            commands
                .user_command(&caller, user.id, &Command::SetActive(false))
                .await
                .map_err(fail)?;
            println!("{username} deactivated");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn tiles(args: TilesArgs) -> anyhow::Result<ExitCode> {
    if args.token.chars().count() < 16 {
        bail!("the tile token must be at least 16 characters long");
    }
    if !args.data_dir.is_dir() {
        bail!("the data folder {} does not exist", args.data_dir.display());
    }
    let config = exact_tiles::TileConfig {
        cache_bytes: args.cache_mb * 1024 * 1024,
        quality: args.quality,
        ..exact_tiles::TileConfig::default()
    };
    let state = crate::TilesState {
        data_dir: args.data_dir.clone(),
        service: exact_tiles::TileService::new(config),
        token: args.token.into(),
    };
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    println!("exact tiles listening on http://{}", listener.local_addr()?);
    let header_timeout = Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS);
    crate::serving::serve(
        listener,
        crate::tile_server(state),
        header_timeout,
        shutdown_signal(),
    )
    .await;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.store.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            args.store.data_dir.display()
        )
    })?;
    if let Some(public) = &args.public_url {
        if !(public.starts_with("http://") || public.starts_with("https://")) {
            anyhow::bail!("--public-url must start with http:// or https://, not {public:?}");
        }
    }
    let url = args.store.url()?;
    let _only_server = only_server(&url)?;
    let store = args.store.open(true).await?;
    let mut config = crate::Config::new(args.store.data_dir.clone());
    config.max_upload_bytes = args.max_upload_mb.saturating_mul(1 << 20);
    config.zip_downloads = args.zip_downloads;
    config.set_public_url(args.public_url.as_deref());
    let state = AppState::open(store.clone(), &url, config)
        .await
        .with_context(|| format!("cannot open the read models at {}", describe(&url)))?;
    state.sessions.spawn_cleanup();
    // Staging folders a killed server left: all of them when this process holds the folder
    // alone (SQLite's lock), else those idle for a day (other servers may share the folder).
    let idle = matches!(url, StoreUrl::Postgres(_)).then(|| Duration::from_secs(86_400));
    let swept = crate::uploads::sweep_staging(&args.store.data_dir, idle);
    if swept > 0 {
        tracing::warn!(
            swept,
            "removed staging folders of uploads that never finished"
        );
    }
    state
        .ensure_admin(std::env::var("EXACT_ADMIN_PASSWORD").ok())
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the first account: {e}"))?;
    state
        .commands
        .ensure_default_format()
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the default export format: {e}"))?;
    if args.checkpoint_events > 0 || args.checkpoint_minutes > 0 {
        let key_path = args.checkpoints.key(&args.store);
        let key = exact_replay::checkpoint::CheckpointKey::load_or_create(&key_path)?;
        let file = args.checkpoints.file(&args.store);
        tracing::info!(public_key = %key.public_hex(), file = %file.display(), "signing checkpoints");
        spawn_checkpoints(
            store.clone(),
            key,
            file,
            args.checkpoint_events,
            Duration::from_secs(args.checkpoint_minutes.saturating_mul(60)),
        );
    }
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(store = %describe(&url), position = store.last_position().await?, "store open");
    // Tests and scripts read this line to find a port chosen by the system.
    println!("exact listening on http://{address}");
    let header_timeout = Duration::from_secs(args.header_timeout_secs);
    crate::serving::serve(
        listener,
        crate::app(state),
        header_timeout,
        shutdown_signal(),
    )
    .await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Signs a checkpoint whenever `events` were appended since the last one, or `every` passed
/// with something appended (a zero turns either off). Several servers on one PostgreSQL
/// database may each sign: checkpoints only add evidence.
fn spawn_checkpoints(
    store: Store,
    key: exact_replay::checkpoint::CheckpointKey,
    file: PathBuf,
    events: i64,
    every: Duration,
) {
    tokio::spawn(async move {
        let mut signed_at = exact_replay::checkpoint::read(&file)
            .ok()
            .and_then(|all| all.last().map(|c| c.position))
            .unwrap_or(0);
        let mut since = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            let Ok(position) = store.last_position().await else {
                continue; // the database is away: try at the next tick
            };
            let grown = position > signed_at;
            let by_count = events > 0 && position - signed_at >= events;
            let by_time = !every.is_zero() && grown && since.elapsed() >= every;
            if !(by_count || by_time) {
                continue;
            }
            match exact_replay::checkpoint::checkpoint(store.as_ref(), &key, &file).await {
                Ok(signed) => {
                    signed_at = signed.position;
                    since = tokio::time::Instant::now();
                    tracing::info!(position = signed.position, "checkpoint signed");
                }
                Err(e) => tracing::warn!(error = %e, "signing a checkpoint failed"),
            }
        }
    });
}

/// Holds an SQLite store for this process alone, until the process ends (however it ends: the
/// system drops the lock with the process): a second `serve` on the same file would keep read
/// models and live updates of its own beside the first's, and a rebuild under a running server
/// would empty its read models. PostgreSQL stores are shared by design (no lock).
fn only_server(url: &StoreUrl) -> anyhow::Result<Option<std::fs::File>> {
    let StoreUrl::Sqlite(path) = url else {
        return Ok(None);
    };
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    // flock(2): std's File::try_lock is newer than this workspace's minimum Rust.
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => bail!(
            "another exact process (a server or a rebuild) has the store {} open; stop it \
             first (it holds {})",
            path.display(),
            lock_path.display()
        ),
        Err(e) => Err(std::io::Error::from(e))
            .with_context(|| format!("cannot lock {}", lock_path.display())),
    }
}

/// Resolves on Ctrl-C or SIGTERM; requests in flight are finished before the server exits.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn verify(
    args: &StoreArgs,
    from: i64,
    to: Option<i64>,
    checkpoints: &CheckpointArgs,
    public_key: Option<String>,
) -> anyhow::Result<ExitCode> {
    let store = args.open(false).await?;
    let report = store.verify(from, to).await?;
    let range = match (report.first, report.last) {
        (Some(first), Some(last)) => format!("positions {first} to {last}"),
        _ => "no events".to_string(),
    };
    let mut intact = true;
    if let Some(problem) = &report.problem {
        println!("chain broken at {problem}");
        println!("{} events before it are intact ({range})", report.checked);
        intact = false;
    } else {
        println!("chain intact: {} events, {range}", report.checked);
        if let Some(head) = report.head_hash {
            println!("head hash {}", hex::encode(head));
        }
    }
    // The checkpoints catch what the chain cannot: a rewrite with recomputed hashes.
    let file = checkpoints.file(args);
    let signed = exact_replay::checkpoint::read(&file)?;
    if !signed.is_empty() {
        let key_file = checkpoints.key(args);
        let trusted = match public_key {
            Some(key) => Some(key),
            None if key_file.exists() => Some(
                exact_replay::checkpoint::CheckpointKey::load_or_create(&key_file)?.public_hex(),
            ),
            None => {
                println!(
                    "no public key given: each checkpoint is checked against the key it names"
                );
                None
            }
        };
        let checked =
            exact_replay::checkpoint::verify(store.as_ref(), &signed, trusted.as_deref()).await?;
        for problem in &checked.problems {
            println!(
                "checkpoint line {} (position {}) of {}: {}",
                problem.line,
                problem.position,
                file.display(),
                problem.detail
            );
        }
        if checked.problems.is_empty() {
            println!("{} checkpoints hold ({})", checked.good, file.display());
        } else {
            intact = false;
        }
    }
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn audit_log(
    args: &StoreArgs,
    filter: &exact_replay::audit_log::LogFilter,
    output: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let store = args.open(false).await?;
    let mut out: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let matched = exact_replay::audit_log::log(store.as_ref(), filter, |event| {
        writeln!(out, "{}", event.to_json_line())
    })
    .await?;
    out.flush()?;
    tracing::info!(events = matched, "written");
    Ok(ExitCode::SUCCESS)
}

/// Copies the log into a scratch store of the same kind (its read models fill as the log
/// arrives) and compares every read-model table with the live one; prints what differs.
async fn verify_read_models(args: &StoreArgs) -> anyhow::Result<bool> {
    use exact_replay::read_models::{compare, postgres_tables, sqlite_tables};
    let url = args.url()?;
    let source = args.open(false).await?;
    let scratch_folder = tempfile::tempdir()?;
    let (scratch_url, cleanup) = match &url {
        StoreUrl::Sqlite(_) => (StoreUrl::in_data_dir(scratch_folder.path()), None),
        StoreUrl::Postgres(live) => {
            let (base, _) = live
                .split('?')
                .next()
                .unwrap_or(live)
                .rsplit_once('/')
                .context("a PostgreSQL URL names its database")?;
            let name = format!("exact_verify_{}", std::process::id());
            let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(live).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut admin)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .context("the scratch database for the check cannot be created (CREATEDB?)")?;
            (
                StoreUrl::Postgres(format!("{base}/{name}")),
                Some((admin, name)),
            )
        }
    };
    let checked = async {
        // The read models are rebuilt, as `exact replay rebuild` would, not applied event by
        // event as the log is copied: the scratch store is opened with them while it is empty,
        // the log copied in through a second handle without them, then each is rebuilt from
        // the whole log (at the million: ~10 s instead of ~50 s).
        let options = |projections| OpenOptions {
            initialize: false,
            projections,
            ..OpenOptions::default()
        };
        let scratch = exact_store::open(&scratch_url, options(exact_projections::all())).await?;
        let raw = exact_store::open(&scratch_url, options(Vec::new())).await?;
        let copied = exact_store::copy(source.as_ref(), raw.as_ref()).await?;
        drop(raw);
        if copied.problem.is_none() {
            for projection in exact_projections::all() {
                scratch
                    .rebuild(projection.name(), std::sync::Arc::new(|_, _| {}))
                    .await?;
            }
        }
        drop(scratch);
        let tables = |url: &StoreUrl| {
            let url = url.clone();
            async move {
                match url {
                    StoreUrl::Sqlite(path) => sqlite_tables(&path).await,
                    StoreUrl::Postgres(url) => postgres_tables(&url).await,
                }
            }
        };
        let live = tables(&url).await?;
        let rebuilt = tables(&scratch_url).await?;
        anyhow::Ok((copied, live, rebuilt))
    }
    .await;
    if let Some((mut admin, name)) = cleanup {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
    }
    let (copied, live, rebuilt) = checked?;
    if let Some(problem) = copied.problem {
        println!("read models not checked: the log's copy does not verify: {problem}");
        return Ok(false);
    }
    if live.position != rebuilt.position {
        println!(
            "read models not checked: the log moved on during the check (position {} live, {} \
             copied); run it again while nothing writes",
            live.position, rebuilt.position
        );
        return Ok(false);
    }
    let differences = compare(&live, &rebuilt);
    for d in &differences {
        println!(
            "read model {} differs: {} rows live, {} rebuilt from the log; live only: {:?}; \
             rebuilt only: {:?}",
            d.table, d.live_rows, d.rebuilt_rows, d.live_only, d.rebuilt_only
        );
    }
    if differences.is_empty() {
        let rows: usize = live.rows.values().map(Vec::len).sum();
        println!(
            "read models equal to the log's: {} tables, {rows} rows at position {}",
            live.rows.len(),
            live.position
        );
        Ok(true)
    } else {
        println!(
            "read models differ in {} tables: `exact replay rebuild` rebuilds them from the log",
            differences.len()
        );
        Ok(false)
    }
}

async fn checkpoint(args: &StoreArgs, checkpoints: &CheckpointArgs) -> anyhow::Result<ExitCode> {
    let store = args.open(false).await?;
    std::fs::create_dir_all(&args.data_dir)?;
    let key = exact_replay::checkpoint::CheckpointKey::load_or_create(&checkpoints.key(args))?;
    let file = checkpoints.file(args);
    let signed = exact_replay::checkpoint::checkpoint(store.as_ref(), &key, &file).await?;
    println!(
        "checkpoint at position {}: head hash {}, signed at {}, appended to {}",
        signed.position,
        signed.head,
        signed.time,
        file.display()
    );
    println!("public key {}", signed.public_key);
    Ok(ExitCode::SUCCESS)
}

async fn export(
    args: &StoreArgs,
    format: ExportFormat,
    output: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let ExportFormat::Jsonl = format;
    let store = args.open(false).await?;
    let count = match &output {
        Some(path) => {
            let mut file = tokio::fs::File::create(path)
                .await
                .with_context(|| format!("cannot create {}", path.display()))?;
            let count = exact_store::export_jsonl(store.as_ref(), &mut file).await?;
            file.sync_all().await?;
            count
        }
        None => {
            let mut out = tokio::io::stdout();
            let count = exact_store::export_jsonl(store.as_ref(), &mut out).await?;
            out.flush().await?;
            count
        }
    };
    tracing::info!(events = count, "exported");
    Ok(ExitCode::SUCCESS)
}

/// `exact store import`: a log exported as JSON lines, restored into an empty store.
async fn import_log(args: &StoreArgs, input: &std::path::Path) -> anyhow::Result<ExitCode> {
    if !input.is_file() {
        bail!("cannot read {}: not a file", input.display());
    }
    std::fs::create_dir_all(&args.data_dir)?;
    let url = args.url()?;
    let _only_server = only_server(&url)?;
    let target = exact_store::open(
        &url,
        OpenOptions {
            // Nothing of its own (no first admin): the log brings its accounts.
            initialize: false,
            projections: exact_projections::all(),
            ..OpenOptions::default()
        },
    )
    .await
    .with_context(|| format!("cannot open the store at {}", describe(&url)))?;
    let report = exact_store::import_jsonl(input, target.as_ref()).await?;
    if let Some(problem) = report.problem {
        bail!("the restored log does not verify: {problem}");
    }
    println!(
        "restored {} events into {}; chain verified, head hash {}",
        report.checked,
        describe(&url),
        report.head_hash.map(hex::encode).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

async fn copy(from: &str, to: &str) -> anyhow::Result<ExitCode> {
    let (from_url, to_url) = (StoreUrl::parse(from)?, StoreUrl::parse(to)?);
    if from_url == to_url {
        bail!("--from and --to are the same store");
    }
    let source = exact_store::open(&from_url, OpenOptions::default())
        .await
        .with_context(|| format!("cannot open the source {}", describe(&from_url)))?;
    let target = exact_store::open(
        &to_url,
        OpenOptions {
            initialize: false,
            // The copy's read models fill as the log arrives.
            projections: exact_projections::all(),
            ..OpenOptions::default()
        },
    )
    .await
    .with_context(|| format!("cannot open the target {}", describe(&to_url)))?;
    let report = exact_store::copy(source.as_ref(), target.as_ref()).await?;
    if let Some(problem) = report.problem {
        bail!("the copy does not verify: {problem}");
    }
    println!(
        "copied {} events into {}; chain verified, head hash {}",
        report.checked,
        describe(&to_url),
        report.head_hash.map(hex::encode).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

async fn rebuild(args: &StoreArgs, mut names: Vec<String>) -> anyhow::Result<ExitCode> {
    let known: Vec<String> = exact_projections::all()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    if let Some(unknown) = names.iter().find(|n| !known.contains(n)) {
        bail!(
            "there is no read model called {unknown:?}; the read models are: {}",
            known.join(", ")
        );
    }
    if names.is_empty() {
        names = known;
    }
    let _only_server = only_server(&args.url()?)?;
    let store = args.open(true).await?;
    let bars = indicatif::MultiProgress::new();
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:>12} [{bar:40}] {pos}/{len} events {per_sec} {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    let done = exact_replay::rebuild(store.as_ref(), &names, |name| {
        let bar = bars.add(
            indicatif::ProgressBar::new(0)
                .with_style(style.clone())
                .with_prefix(name.to_owned()),
        );
        std::sync::Arc::new(move |applied, head| {
            bar.set_length(u64::try_from(head).unwrap_or(0));
            bar.set_position(applied);
        })
    })
    .await?;
    bars.clear().ok();
    for rebuilt in done {
        let seconds = rebuilt.elapsed.as_secs_f64();
        println!(
            "rebuilt {}: {} events in {seconds:.2} s ({:.0} events/s)",
            rebuilt.name,
            rebuilt.events,
            rebuilt.events as f64 / seconds.max(1e-9)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A store's location for messages, without its password.
fn describe(url: &StoreUrl) -> String {
    match url {
        StoreUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
        StoreUrl::Postgres(url) => match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://{}", &url[..scheme], &url[at + 1..])
            }
            _ => url.clone(),
        },
    }
}
