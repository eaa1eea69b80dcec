//! Signed checkpoints: a log position and the chain hash there, signed with the server's
//! Ed25519 key and appended, one JSON line each, to a file that can live on other storage than
//! the database.
//!
//! The chain alone proves that nothing inside it changed, not that someone with write access to
//! the database did not rewrite it from some position on and recompute every hash after it: such
//! a chain verifies. A checkpoint signed before the rewrite still holds the old hash at its
//! position, so it no longer matches, and [`verify`] names it. The public key is given to the
//! auditor, who checks the same thing with `tests/auditor/verify_checkpoints.py`.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use exact_store::{EventStore, Hash};

/// One signed statement: "the log's event at `position` has the chain hash `head`".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub position: i64,
    /// The chain hash of the event at `position`, hex.
    pub head: String,
    /// When it was signed, RFC 3339 (UTC, microseconds).
    pub time: String,
    /// The signer's Ed25519 public key, hex.
    pub public_key: String,
    /// The Ed25519 signature of [`Checkpoint::message`], hex.
    pub signature: String,
}

impl Checkpoint {
    /// The bytes signed: versioned plain text, so that any tool can rebuild them.
    pub fn message(position: i64, head: &str, time: &str) -> Vec<u8> {
        format!("exact checkpoint v1\nposition {position}\nhead {head}\ntime {time}\n").into_bytes()
    }

    /// Whether the signature is the holder of `public_key`'s, over this position, hash and time.
    fn signature_holds(&self) -> bool {
        let key = hex_array::<32>(&self.public_key).and_then(|k| VerifyingKey::from_bytes(&k).ok());
        let signature = hex_array::<64>(&self.signature).map(|s| Signature::from_bytes(&s));
        match (key, signature) {
            (Some(key), Some(signature)) => key
                .verify(
                    &Checkpoint::message(self.position, &self.head, &self.time),
                    &signature,
                )
                .is_ok(),
            _ => false,
        }
    }
}

fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    hex::decode(text).ok()?.try_into().ok()
}

/// Why checkpoints could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a checkpoint key (32 bytes, hex, on one line)")]
    BadKey { path: String },
    #[error("{path} line {line}: not a checkpoint: {reason}")]
    BadLine {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("the log holds no events: there is nothing to sign")]
    EmptyLog,
    #[error(transparent)]
    Store(#[from] exact_store::StoreError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The key checkpoints are signed with.
pub struct CheckpointKey(SigningKey);

/// Shows the public half only.
impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("public", &self.public_hex())
            .finish_non_exhaustive()
    }
}

impl CheckpointKey {
    /// Reads the key at `path`, or makes one there (readable by its owner alone) if there is
    /// none.
    pub fn load_or_create(path: &Path) -> Result<Self, CheckpointError> {
        match std::fs::read_to_string(path) {
            Ok(text) => hex_array::<32>(text.trim())
                .map(|seed| Self(SigningKey::from_bytes(&seed)))
                .ok_or_else(|| CheckpointError::BadKey {
                    path: path.display().to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::getrandom(&mut seed)
                    .map_err(|e| io_error(path)(std::io::Error::other(e)))?;
                let mut options = OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(io_error(path))?;
                writeln!(file, "{}", hex::encode(seed)).map_err(io_error(path))?;
                file.sync_all().map_err(io_error(path))?;
                Ok(Self(SigningKey::from_bytes(&seed)))
            }
            Err(e) => Err(io_error(path)(e)),
        }
    }

    /// The public key, hex: what the auditor keeps.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.verifying_key().as_bytes())
    }

    pub fn sign(&self, position: i64, head: &Hash, time: DateTime<Utc>) -> Checkpoint {
        let head = hex::encode(head);
        let time = time.to_rfc3339_opts(SecondsFormat::Micros, true);
        let signature = self.0.sign(&Checkpoint::message(position, &head, &time));
        Checkpoint {
            position,
            head,
            time,
            public_key: self.public_hex(),
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

/// Signs the log's head and appends the checkpoint to the file at `path` (made if missing),
/// synced to disk before it returns.
pub async fn checkpoint(
    store: &dyn EventStore,
    key: &CheckpointKey,
    path: &Path,
) -> Result<Checkpoint, CheckpointError> {
    let position = store.last_position().await?;
    let head = store
        .read_page(position, 1)
        .await?
        .into_iter()
        .find(|e| e.position == position)
        .ok_or(CheckpointError::EmptyLog)?;
    let signed = key.sign(position, &head.hash, Utc::now());
    append(path, &signed)?;
    Ok(signed)
}

fn append(path: &Path, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_error(path))?;
    let line = serde_json::to_string(checkpoint).expect("a checkpoint serializes");
    writeln!(file, "{line}").map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

/// The checkpoints in the file at `path`, in order (none if there is no file).
pub fn read(path: &Path) -> Result<Vec<Checkpoint>, CheckpointError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(path)(e)),
    };
    let mut checkpoints = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_error(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let checkpoint = serde_json::from_str(&line).map_err(|e| CheckpointError::BadLine {
            path: path.display().to_string(),
            line: index + 1,
            reason: e.to_string(),
        })?;
        checkpoints.push(checkpoint);
    }
    Ok(checkpoints)
}

/// What is wrong with one checkpoint (its line in the file, from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointProblem {
    pub line: usize,
    pub position: i64,
    pub detail: String,
}

/// What checking the checkpoints found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Checkpoints whose signature and hash hold.
    pub good: usize,
    pub problems: Vec<CheckpointProblem>,
}

/// Checks every checkpoint against the log: the signature is valid and made with
/// `trusted_key` (hex; any key if `None`), the log reaches the position, and the chain hash
/// there is the one signed. A log rewritten at or before a checkpoint's position, or cut short
/// of it, is named by that checkpoint.
pub async fn verify(
    store: &dyn EventStore,
    checkpoints: &[Checkpoint],
    trusted_key: Option<&str>,
) -> Result<CheckpointReport, CheckpointError> {
    let head = store.last_position().await?;
    let mut report = CheckpointReport::default();
    for (index, checkpoint) in checkpoints.iter().enumerate() {
        let problem = |detail: String| CheckpointProblem {
            line: index + 1,
            position: checkpoint.position,
            detail,
        };
        if trusted_key.is_some_and(|k| !k.eq_ignore_ascii_case(&checkpoint.public_key)) {
            report.problems.push(problem(format!(
                "signed with another key ({})",
                checkpoint.public_key
            )));
            continue;
        }
        if !checkpoint.signature_holds() {
            report
                .problems
                .push(problem("the signature does not hold".into()));
            continue;
        }
        if checkpoint.position > head {
            report.problems.push(problem(format!(
                "the log ends at position {head}: it was cut short"
            )));
            continue;
        }
        let event = store
            .read_page(checkpoint.position, 1)
            .await?
            .into_iter()
            .find(|e| e.position == checkpoint.position);
        match event {
            Some(event) if hex::encode(event.hash) == checkpoint.head.to_ascii_lowercase() => {
                report.good += 1;
            }
            Some(event) => report.problems.push(problem(format!(
                "the chain hash there is {}, not the {} signed at {}: the log was rewritten at \
                 or before this position",
                hex::encode(event.hash),
                checkpoint.head,
                checkpoint.time
            ))),
            None => report
                .problems
                .push(problem("the event at this position is missing".into())),
        }
    }
    Ok(report)
}
