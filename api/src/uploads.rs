//! Uploaded files: streamed to disk (never whole in memory) under a size limit, hashed on the
//! way, given safe names; zip archives extracted entry by entry with checks against path
//! traversal, links, absolute paths, too many entries and decompression bombs.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use axum::extract::Multipart;
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, Code};

/// What a zip archive may expand to.
#[derive(Clone, Copy, Debug)]
pub struct ZipLimits {
    pub max_entries: usize,
    /// Bytes of all entries together, once extracted.
    pub max_total_bytes: u64,
    /// Extracted bytes per compressed byte of the archive (zeros compress ~1000:1; images
    /// barely compress at all).
    pub max_ratio: u64,
}

impl Default for ZipLimits {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_total_bytes: 100 << 30,
            max_ratio: 100,
        }
    }
}

/// A file as received: where it is now, the name the client gave, its SHA-256.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: PathBuf,
    pub name: String,
    pub checksum: String,
}

/// Image and slide files this server registers; anything else in an archive is left out.
const IMAGE_EXTENSIONS: &[&str] = &[
    "svs", "tif", "tiff", "ndpi", "vms", "scn", "mrxs", "bif", "svslide", "png", "jpg", "jpeg",
    "bmp", "webp",
];

/// The one way from a name a client chose to a name on disk: one plain path component. Only
/// the last component of whatever path the client sent counts; letters, digits and `._-` are
/// kept and everything else (separators, `..`, drive letters, control characters, NUL,
/// percent signs, non-ASCII) is replaced; leading dots are dropped, so the result is never
/// `.`, `..` or hidden; names Windows reserves (`CON`, `NUL`, `COM1`, ...) get a `_` in front;
/// at most [`MAX_NAME`] bytes, keeping the extension. Never empty.
pub fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut safe: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while safe.starts_with('.') {
        safe.remove(0);
    }
    // The reserved names first: their `_` counts towards the length (the `names_and_params`
    // fuzz target found `COM5.` + 115 characters growing to 121 bytes).
    let stem = safe
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if WINDOWS_RESERVED.contains(&stem.as_str()) {
        safe.insert(0, '_');
    }
    if safe.len() > MAX_NAME {
        let extension = extension_of(&safe)
            .map(|e| format!(".{e}"))
            .filter(|e| e.len() < MAX_NAME / 2)
            .unwrap_or_default();
        safe.truncate(MAX_NAME - extension.len());
        safe.push_str(&extension);
    }
    if safe.is_empty() {
        safe = "file".into();
    }
    safe
}

/// The longest stored name, in bytes.
pub const MAX_NAME: usize = 120;

/// Names Windows gives to devices, whatever their extension: a data folder copied to (or
/// shared with) a Windows machine must not hold them.
const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A path inside `root` (the data folder, or a folder under it) made of `components`, each of
/// them passed through [`safe_name`]: whatever a client named, the result is `root` followed
/// by plain names, never a path that climbs out of it. Every file this server writes is
/// placed through this function or [`unused_path`], which uses it.
pub fn inside(root: &Path, components: &[&str]) -> PathBuf {
    let mut path = root.to_path_buf();
    for component in components {
        path.push(safe_name(component));
    }
    path
}

/// Where image `filename` of `image_set` is stored: the set's folder joined with the path this
/// server recorded when it placed the file (a zip's images keep their folders under the set's).
pub fn image_file(data_dir: &Path, image_set: i64, filename: &str) -> PathBuf {
    inside(data_dir, &["images", &image_set.to_string()]).join(filename)
}

fn extension_of(name: &str) -> Option<String> {
    let (_, extension) = name.rsplit_once('.')?;
    Some(extension.to_ascii_lowercase())
}

/// A path in `dir` for a file the client called `name` that no file has yet: its
/// [`safe_name`], else `stem_2.ext`, ...
pub fn unused_path(dir: &Path, name: &str) -> PathBuf {
    let name = safe_name(name);
    let candidate = inside(dir, &[&name]);
    if !candidate.exists() {
        return candidate;
    }
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) => (stem, format!(".{extension}")),
        None => (name.as_str(), String::new()),
    };
    // Room for the number, so that a name at the length limit is not cut back to itself (the
    // name is ASCII: any byte is a boundary).
    let stem = &stem[..stem
        .len()
        .min(MAX_NAME.saturating_sub(extension.len() + 21))];
    (2..)
        .map(|n| inside(dir, &[&format!("{stem}_{n}{extension}")]))
        .find(|p| !p.exists())
        .expect("some number is free")
}

/// Refuses, before a byte of it is read, a body whose declared length is over `limit` by more
/// than a multipart body's own share (boundaries and text fields); a body that does not say
/// its length is held to `limit` as it streams ([`receive`]).
pub fn declared_within(headers: &axum::http::HeaderMap, limit: u64) -> Result<(), ApiError> {
    const FRAMING: u64 = 1 << 20;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(length) if length > limit.saturating_add(FRAMING) => Err(ApiError::new(
            Code::UploadTooLarge,
            format!("the upload is {length} bytes, larger than the limit of {limit} bytes"),
        )),
        _ => Ok(()),
    }
}

/// Reads a multipart body: text fields are returned, files are streamed into `staging` (which
/// must exist) under safe names, all files together at most `limit` bytes.
pub async fn receive(
    mut multipart: Multipart,
    staging: &Path,
    limit: u64,
) -> Result<(FormFields, Vec<Received>), ApiError> {
    let malformed = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(
            Code::MalformedBody,
            format!("the multipart body cannot be read: {}", e.body_text()),
        )
    };
    let mut fields = Vec::new();
    let mut files = Vec::new();
    let mut total: u64 = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            let text = field.text().await.map_err(malformed)?;
            fields.push((name, text));
            continue;
        };
        let path = unused_path(staging, &file_name);
        let mut out = tokio::fs::File::create(&path)
            .await
            .map_err(|e| ApiError::storing("storing an upload failed", &e))?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            total += chunk.len() as u64;
            if total > limit {
                return Err(ApiError::new(
                    Code::UploadTooLarge,
                    format!("the upload is larger than the limit of {limit} bytes"),
                ));
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| ApiError::storing("storing an upload failed", &e))?;
        }
        out.flush()
            .await
            .map_err(|e| ApiError::storing("storing an upload failed", &e))?;
        files.push(Received {
            path,
            name: file_name,
            checksum: hex::encode(hasher.finalize()),
        });
    }
    Ok((FormFields(fields), files))
}

/// Whether the file starts as a zip archive does (EXACT's test: `PK\x03\x04`).
pub fn is_zip(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"PK\x03\x04"
}

/// Extracts `archive` into `into` (which must exist and be empty) and returns the image files
/// to register, as relative paths. A `.mrxs` or `.vms` is registered alone: the files beside it
/// (its data folder, its JPEG tiles) belong to it.
pub fn extract_zip(
    archive: &Path,
    into: &Path,
    limits: ZipLimits,
) -> Result<Vec<Received>, ApiError> {
    extract_all(archive, into, limits).map(registrable)
}

/// Extracts every file of `archive` into `into` under `limits` (its paths relative to `into`,
/// each component made safe), refusing links, paths outside it and bombs.
pub fn extract_all(
    archive: &Path,
    into: &Path,
    limits: ZipLimits,
) -> Result<Vec<Received>, ApiError> {
    let refuse = |message: String| ApiError::new(Code::UnsafeArchive, message);
    let unreadable = |e: zip::result::ZipError| {
        ApiError::new(
            Code::UnreadableFile,
            format!("the zip archive cannot be read: {e}"),
        )
    };
    let archive_name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let compressed = std::fs::metadata(archive)
        .map_err(|e| ApiError::internal("reading an upload failed", &e))?
        .len()
        .max(1);
    let budget = limits
        .max_total_bytes
        .min(compressed.saturating_mul(limits.max_ratio));
    let file =
        File::open(archive).map_err(|e| ApiError::internal("reading an upload failed", &e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(unreadable)?;
    if zip.len() > limits.max_entries {
        return Err(refuse(format!(
            "{archive_name} has {} entries; at most {} are accepted",
            zip.len(),
            limits.max_entries
        )));
    }
    let mut written: u64 = 0;
    let mut extracted = Vec::new();
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).map_err(unreadable)?;
        let raw_name = entry.name().to_owned();
        if entry.is_symlink() {
            return Err(refuse(format!("{archive_name}: {raw_name:?} is a link")));
        }
        let Some(relative) = entry.enclosed_name() else {
            return Err(refuse(format!(
                "{archive_name}: {raw_name:?} points outside the archive"
            )));
        };
        if raw_name.starts_with('/') || raw_name.starts_with('\\') || raw_name.contains(':') {
            return Err(refuse(format!(
                "{archive_name}: {raw_name:?} is an absolute path"
            )));
        }
        // Each component made safe, so that the stored tree has only plain names.
        let components: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let components: Vec<&str> = components.iter().map(String::as_str).collect();
        let target = inside(into, &components);
        let safe = target.strip_prefix(into).unwrap_or(&target).to_path_buf();
        if entry.is_dir() {
            std::fs::create_dir_all(&target)
                .map_err(|e| ApiError::storing("extracting an upload failed", &e))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| ApiError::storing("extracting an upload failed", &e))?;
        }
        let mut out = File::create(&target)
            .map_err(|e| ApiError::storing("extracting an upload failed", &e))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = entry.read(&mut buffer).map_err(|e| {
                ApiError::new(
                    Code::UnreadableFile,
                    format!("{archive_name}: {raw_name:?} cannot be extracted: {e}"),
                )
            })?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > budget {
                return Err(refuse(format!(
                    "{archive_name} expands to more than {budget} bytes ({}x its size, or the \
                     server's limit): refused as a possible zip bomb",
                    limits.max_ratio
                )));
            }
            hasher.update(&buffer[..n]);
            out.write_all(&buffer[..n])
                .map_err(|e| ApiError::storing("extracting an upload failed", &e))?;
        }
        extracted.push(Received {
            path: safe,
            name: raw_name.rsplit('/').next().unwrap_or(&raw_name).to_owned(),
            checksum: hex::encode(hasher.finalize()),
        });
    }
    Ok(extracted)
}

/// The files of an extracted archive that are images of their own.
fn registrable(files: Vec<Received>) -> Vec<Received> {
    // Folders holding a multi-file slide's index: their other files are its parts.
    let owned: BTreeSet<PathBuf> = files
        .iter()
        .filter(|f| matches!(extension_of(&f.name).as_deref(), Some("mrxs" | "vms")))
        .map(|f| f.path.parent().map(Path::to_path_buf).unwrap_or_default())
        .collect();
    let mrxs_data: BTreeSet<PathBuf> = files
        .iter()
        .filter(|f| extension_of(&f.name).as_deref() == Some("mrxs"))
        .map(|f| f.path.with_extension(""))
        .collect();
    files
        .into_iter()
        .filter(|f| {
            let extension = extension_of(&f.name);
            let is_index = matches!(extension.as_deref(), Some("mrxs" | "vms"));
            let known = extension
                .as_deref()
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e));
            let parent = f.path.parent().map(Path::to_path_buf).unwrap_or_default();
            let inside_mrxs_data = mrxs_data.iter().any(|d| f.path.starts_with(d));
            let hidden = f
                .path
                .components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with("__MACOSX"));
            known && !hidden && !inside_mrxs_data && (is_index || !owned.contains(&parent))
        })
        .collect()
}

/// The text fields of a multipart upload.
#[derive(Debug, Default)]
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    /// The fields as a typed struct, read as every body is ([`crate::rest::body::typed`]):
    /// a field's last value counts, trimmed, and an empty one is absent.
    pub fn read<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        let mut object = serde_json::Map::new();
        for (name, value) in &self.0 {
            let value = value.trim();
            if value.is_empty() {
                object.remove(name);
            } else {
                object.insert(name.clone(), serde_json::Value::String(value.to_owned()));
            }
        }
        crate::rest::body::typed(&serde_json::Value::Object(object))
    }
}

/// A fresh staging folder under `DATA_DIR/uploads/` for one request's files; the caller
/// removes it (with whatever is left in it) when the request is done.
pub async fn staging_folder(data_dir: &Path) -> Result<PathBuf, ApiError> {
    let staging = inside(data_dir, &["uploads", &uuid::Uuid::now_v7().to_string()]);
    tokio::fs::create_dir_all(&staging)
        .await
        .map_err(|e| ApiError::storing("preparing an upload failed", &e))?;
    Ok(staging)
}

/// Runs an upload's work on a task of its own and waits for it: if the client goes away, the
/// request's future is dropped but the work goes on to its end (its body then stops, so it
/// fails and cleans up, or it was complete and is registered), never stopping half-way.
pub async fn to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(ApiError::internal("an upload was cancelled", &e)),
    }
}

/// Removes staging folders under `DATA_DIR/uploads/` that a process which ended mid-upload left
/// behind (killed, or the machine lost power): every one when this process holds the data
/// folder alone (an SQLite store), else those untouched for `idle` (other servers on the same
/// folder may be receiving into theirs). Returns how many it removed.
pub fn sweep_staging(data_dir: &Path, idle: Option<std::time::Duration>) -> usize {
    let Ok(entries) = std::fs::read_dir(data_dir.join("uploads")) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = match idle {
            None => true,
            Some(idle) => newest_change(&path).is_none_or(|t| t.elapsed().is_ok_and(|e| e > idle)),
        };
        if stale && std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The latest modification time of a folder and the files in it.
fn newest_change(folder: &Path) -> Option<std::time::SystemTime> {
    let own = std::fs::metadata(folder).and_then(|m| m.modified()).ok();
    let files = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok());
    own.into_iter().chain(files).max()
}

/// Content types of stored files that are served as they are; every other file is served as
/// `application/octet-stream`.
const INERT_TYPES: &[&str] = &[
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/bmp",
    "image/tiff",
    "image/webp",
    "video/mp4",
    "video/webm",
    "audio/mpeg",
    "audio/wav",
    "audio/ogg",
    "text/plain",
];

/// The stored file at `path` as a download named `name` (ranges and conditional requests
/// answered by tower-http); a missing file is the server's fault, not the client's.
pub async fn attachment(
    path: &Path,
    name: &str,
    request: axum::extract::Request,
) -> Result<axum::response::Response, ApiError> {
    use tower::ServiceExt;
    let response = tower_http::services::ServeFile::new(path)
        .oneshot(request)
        .await
        .map_err(|e| ApiError::internal("reading a stored file failed", &e))?;
    if response.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::internal(
            "a stored file is missing",
            &path.display(),
        ));
    }
    let (mut parts, body) = response.into_parts();
    use axum::http::{header, HeaderValue};
    // Only types a browser shows without running anything; anything else (HTML, SVG, scripts,
    // whatever the uploader's extension claims) is bytes to save.
    let guessed = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let shown = guessed
        .split(';')
        .next()
        .is_some_and(|t| INERT_TYPES.contains(&t.trim()));
    if !shown {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    parts.headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    let name = name.replace(['"', '\\'], "_");
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        parts.headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(axum::response::Response::from_parts(
        parts,
        axum::body::Body::new(body),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_keep_only_the_last_plain_component() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\slides\\a b.svs"), "a_b.svs");
        assert_eq!(safe_name("C:drive.png"), "C_drive.png");
        assert_eq!(safe_name(".hidden.png"), "hidden.png");
        assert_eq!(safe_name(""), "file");
        assert_eq!(safe_name(".."), "file");
        assert_eq!(safe_name("/"), "file");
        assert_eq!(safe_name("%2e%2e%2fx.png"), "_2e_2e_2fx.png");
        assert_eq!(safe_name("nul\0byte\n.png"), "nul_byte_.png");
        assert_eq!(safe_name("CON.png"), "_CON.png");
        assert_eq!(safe_name("lpt1"), "_lpt1");
        assert_eq!(safe_name("Schnitt_ä.tif"), "Schnitt__.tif");
        let long = format!("{}.ndpi", "x".repeat(300));
        let safe = safe_name(&long);
        assert!(safe.len() <= MAX_NAME && safe.ends_with(".ndpi"), "{safe}");
    }

    /// A reserved device name at the length limit stays within it (the fuzz target's crash:
    /// `COM5.` and 115 characters more became 121 bytes).
    #[test]
    fn a_reserved_name_at_the_length_limit_stays_within_it() {
        let long = format!("COM5.{}", "\u{e9}".repeat(115));
        let safe = safe_name(&long);
        assert!(safe.len() <= MAX_NAME, "{} bytes: {safe}", safe.len());
        assert!(safe.starts_with("_COM5."), "{safe}");
        assert_eq!(safe_name("nul.png"), "_nul.png");
    }

    #[test]
    fn paths_made_of_client_names_stay_inside_their_root() {
        let root = Path::new("/data");
        let hostile = [
            "/etc/passwd",
            "../../x",
            "..",
            "a/../../b",
            "..\\..\\c",
            "",
            "\0",
            "C:\\d",
        ];
        for name in hostile {
            let path = inside(root, &["media", name]);
            let rest = path.strip_prefix(root).expect("inside the root");
            assert_eq!(rest.components().count(), 2, "{name:?} → {path:?}");
            assert!(
                rest.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_))),
                "{name:?} → {path:?}"
            );
        }
    }

    #[test]
    fn a_taken_name_at_the_length_limit_gets_a_number_that_fits() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{}.png", "y".repeat(400));
        let mut made = BTreeSet::new();
        for _ in 0..3 {
            let path = unused_path(dir.path(), &long);
            std::fs::write(&path, b"x").unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.len() <= MAX_NAME && name.ends_with(".png"), "{name}");
            assert!(made.insert(name), "a name was given twice");
        }
    }

    #[test]
    fn multi_file_slides_register_their_index_only() {
        let f = |p: &str| Received {
            path: PathBuf::from(p),
            name: p.rsplit('/').next().unwrap().to_owned(),
            checksum: String::new(),
        };
        let kept = registrable(vec![
            f("case/slide.mrxs"),
            f("case/slide/Slidedat.ini"),
            f("case/slide/Data0000.dat"),
            f("case/slide/preview.jpg"),
            f("other.png"),
            f("readme.txt"),
            f("__MACOSX/other.png"),
            f("vms/a.vms"),
            f("vms/a_0_0.jpg"),
        ]);
        let names: Vec<_> = kept
            .iter()
            .map(|r| r.path.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["case/slide.mrxs", "other.png", "vms/a.vms"]);
    }
}
