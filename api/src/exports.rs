//! An image set's export: its dataset at one log position written in a format, packed as a
//! zip with `manifest.json` (the set, the format, the position and its chain hash, who
//! exported, and the SHA-256 of every file). Everything in the archive is a function of the
//! request (set, format, position, user), so the same request gives the same bytes whatever
//! was written since; the time of the export is not in it, the time of the position is.
//!
//! The REST route and `exact export` both come here.

use std::collections::BTreeSet;
use std::io::{Seek, Write};
use std::str::FromStr;

use exact_domain::aggregate::ExportFormatAggregate;
use exact_domain::export_format::FormatSettings;
use exact_projections::catalog_read::ExportFormatRow;
use exact_projections::export::{self, geojson::Flavour, Dataset, ExportError};
use exact_projections::ReadDb;
use exact_store::EventStore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::error::{ApiError, Code};

/// The formats an export may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    /// EXACT's language: a team's format by id, or the store's default format (`None`).
    Exact(Option<i64>),
    Coco,
    Csv,
    GeoJson,
    QuPath,
    Voc,
    Yolo,
    Asap,
}

impl FromStr for ExportKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "exact" => ExportKind::Exact(None),
            "coco" => ExportKind::Coco,
            "csv" => ExportKind::Csv,
            "geojson" => ExportKind::GeoJson,
            "qupath" => ExportKind::QuPath,
            "voc" => ExportKind::Voc,
            "yolo" => ExportKind::Yolo,
            "asap" => ExportKind::Asap,
            other => {
                let id = other.strip_prefix("exact:").unwrap_or(other);
                match id.parse::<i64>() {
                    Ok(id) if id > 0 => ExportKind::Exact(Some(id)),
                    _ => return Err(format!(
                        "{text:?} is not a format: exact (EXACT's default), exact:FORMAT_ID, coco, csv, geojson, qupath, voc, yolo or asap"
                    )),
                }
            }
        })
    }
}

impl ExportKind {
    /// As the manifest names it (and `FromStr` reads it back).
    pub fn name(self) -> String {
        match self {
            ExportKind::Exact(None) => "exact".into(),
            ExportKind::Exact(Some(id)) => format!("exact:{id}"),
            ExportKind::Coco => "coco".into(),
            ExportKind::Csv => "csv".into(),
            ExportKind::GeoJson => "geojson".into(),
            ExportKind::QuPath => "qupath".into(),
            ExportKind::Voc => "voc".into(),
            ExportKind::Yolo => "yolo".into(),
            ExportKind::Asap => "asap".into(),
        }
    }
}

/// What to export, read at which position, for whom.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    pub image_set: i64,
    pub kind: ExportKind,
    pub position: i64,
    pub exported_by: ExportedBy,
    /// Files copied into the archive as they are (a set's original images, for its zip
    /// download), streamed and listed in the manifest with their SHA-256.
    pub originals: Vec<Original>,
}

/// A file to copy into the archive under `images/` and `name` (a path: a multi-file slide's
/// parts keep their folders, each part of the path made safe).
#[derive(Clone, Debug)]
pub struct Original {
    pub name: String,
    pub path: std::path::PathBuf,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExportedBy {
    pub id: i64,
    pub username: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    pub exact_export: u32,
    pub image_set: ManifestSet,
    pub format: String,
    /// An EXACT-language format's name and the version of it used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_version: Option<i64>,
    pub position: i64,
    pub chain_hash: String,
    /// When the position was recorded: the moment the export shows.
    pub read_at: String,
    pub exported_by: ExportedBy,
    pub annotations: usize,
    pub files: Vec<ManifestFile>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ManifestSet {
    pub id: i64,
    pub name: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ManifestFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::NoSetThen(_) => ApiError::new(Code::NotFound, e.to_string()),
            ExportError::BeyondHead { .. } => {
                ApiError::new(Code::InvalidQuery, e.to_string()).with_field("as_of")
            }
            ExportError::Corrupt { .. } => ApiError::internal("the log does not decode", &e),
            ExportError::Store(e) => e.into(),
            ExportError::Database(e) => e.into(),
        }
    }
}

/// A format's templates as they stand now (with its version); `None` names the store's default
/// format, or EXACT's templates as built in where the store has none (it was deleted).
async fn templates(
    store: &dyn EventStore,
    read: &ReadDb,
    id: Option<i64>,
) -> Result<(FormatSettings, Option<i64>), ApiError> {
    let Some(id) = (match id {
        Some(id) => Some(id),
        None => read.default_export_format().await?,
    }) else {
        let settings = FormatSettings {
            name: crate::commands::DEFAULT_FORMAT_NAME.into(),
            ..FormatSettings::default()
        };
        return Ok((settings, None));
    };
    // Its templates as they stand now: the whole stream, read once.
    let (format, version) =
        export::versioned_state_at::<ExportFormatAggregate>(store, id, i64::MAX).await?;
    let format = format.filter(|f| !f.deleted).ok_or_else(|| {
        ApiError::new(Code::NotFound, format!("no export format {id}")).with_field("format")
    })?;
    Ok((format.settings, Some(version)))
}

/// The live export formats `actor` may see and use (their teams' and the public ones; staff
/// and superusers see all), by name, with their settings.
pub async fn visible_formats(
    state: &crate::AppState,
    actor: exact_domain::Actor,
) -> Result<Vec<(ExportFormatRow, FormatSettings)>, ApiError> {
    let usable: BTreeSet<i64> = state
        .read
        .usable_export_formats(actor.id)
        .await?
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    let mut types: std::collections::BTreeMap<i64, BTreeSet<i64>> = Default::default();
    for (format, annotation_type) in state.read.export_format_type_links().await? {
        types.entry(format).or_default().insert(annotation_type);
    }
    Ok(state
        .read
        .export_formats()
        .await?
        .into_iter()
        .filter(|f| actor.superuser || actor.staff || usable.contains(&f.id))
        .map(|f| {
            let settings = f.settings(types.remove(&f.id).unwrap_or_default());
            (f, settings)
        })
        .collect())
}

/// Writes the export to `out` (a zip); its manifest.
pub async fn write_export<W: Write + Seek + Send + 'static>(
    store: &dyn EventStore,
    read: &ReadDb,
    request: ExportRequest,
    out: W,
) -> Result<Manifest, ApiError> {
    let (format, format_version) = match request.kind {
        ExportKind::Exact(id) => {
            let (settings, version) = templates(store, read, id).await?;
            (Some(settings), version)
        }
        _ => (None, None),
    };
    let started = std::time::Instant::now();
    let dataset = export::read_dataset_for(
        store,
        read,
        request.image_set,
        request.position,
        format.as_ref(),
    )
    .await?;
    let read_in = started.elapsed();
    tracing::debug!(
        ?read_in,
        annotations = dataset.annotations.len(),
        "export: dataset read"
    );
    tokio::task::spawn_blocking(move || pack(&dataset, &request, format, format_version, out))
        .await
        .map_err(|e| ApiError::internal("the export task failed", &e))?
        .map_err(|e| ApiError::internal("writing the export failed", &e))
}

/// The files of the export, then the manifest, into one zip.
fn pack<W: Write + Seek>(
    dataset: &Dataset,
    request: &ExportRequest,
    format: Option<FormatSettings>,
    format_version: Option<i64>,
    out: W,
) -> std::io::Result<Manifest> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut annotations = 0;
    match request.kind {
        ExportKind::Exact(_) => {
            let format = format.as_ref().expect("read with the request");
            let rendered = export::exact_template::render(dataset, format, dataset.position);
            annotations = rendered.annotations;
            files.push((file_name(&rendered.file_name), rendered.text.into_bytes()));
        }
        ExportKind::Coco => {
            let mut bytes = Vec::new();
            annotations = export::coco::write(dataset, &mut bytes)?;
            files.push(("annotations.coco.json".into(), bytes));
        }
        ExportKind::Csv => {
            let mut bytes = Vec::new();
            annotations = export::csv::write(dataset, &mut bytes)?;
            files.push(("annotations.csv".into(), bytes));
        }
        ExportKind::GeoJson | ExportKind::QuPath => {
            let flavour = if request.kind == ExportKind::QuPath {
                Flavour::QuPath
            } else {
                Flavour::Plain
            };
            for image in &dataset.images {
                let mut bytes = Vec::new();
                annotations += export::geojson::write_image(dataset, image, flavour, &mut bytes)?;
                files.push((format!("{}.geojson", file_name(&image.name)), bytes));
            }
        }
        ExportKind::Voc => {
            for (image, stem) in dataset.images.iter().zip(stems(dataset)) {
                let mut bytes = Vec::new();
                annotations += export::voc::write_image(dataset, image, &mut bytes)?;
                files.push((format!("Annotations/{stem}.xml"), bytes));
            }
        }
        ExportKind::Asap => {
            for image in &dataset.images {
                let mut bytes = Vec::new();
                annotations += export::asap::write_image(dataset, image, &mut bytes)?;
                files.push((format!("{}.xml", file_name(&image.name)), bytes));
            }
        }
        ExportKind::Yolo => {
            let mut classes = Vec::new();
            export::yolo::write_classes(dataset, &mut classes)?;
            files.push(("classes.txt".into(), classes));
            let mut yaml = Vec::new();
            export::yolo::write_data_yaml(dataset, &mut yaml)?;
            files.push(("data.yaml".into(), yaml));
            for (image, stem) in dataset.images.iter().zip(stems(dataset)) {
                let mut bytes = Vec::new();
                annotations += export::yolo::write_image(dataset, image, &mut bytes)?;
                files.push((format!("labels/{stem}.txt"), bytes));
            }
        }
    }
    let mut manifest = Manifest {
        exact_export: 1,
        image_set: ManifestSet {
            id: dataset.set.id,
            name: dataset.set.name.clone(),
        },
        format: request.kind.name(),
        format_name: format.map(|f| f.name),
        format_version,
        position: dataset.position,
        chain_hash: hex::encode(dataset.chain_hash),
        read_at: export::rfc3339(dataset.read_at),
        exported_by: request.exported_by.clone(),
        annotations,
        files: files
            .iter()
            .map(|(name, bytes)| ManifestFile {
                name: name.clone(),
                bytes: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
            })
            .collect(),
    };
    tracing::debug!("export: files written");
    let mut zip = zip::ZipWriter::new(out);
    // Every entry stamped with the position's time, so that the archive's bytes depend on
    // nothing but the request. Deflate's fastest level: 6x faster than the default for text
    // this repetitive, and the archive only a little larger.
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .unix_permissions(0o644)
        .last_modified_time(dos_time(dataset.read_at))
        .large_file(files.iter().any(|(_, b)| b.len() >= u32::MAX as usize));
    for (name, bytes) in &files {
        zip.start_file(name.as_str(), options)?;
        zip.write_all(bytes)?;
    }
    // Images are compressed already: stored as they are, streamed through the hash.
    let stored = options
        .compression_method(zip::CompressionMethod::Stored)
        .compression_level(None);
    let mut taken: std::collections::HashSet<String> =
        files.iter().map(|(name, _)| name.clone()).collect();
    for original in &request.originals {
        let safe: Vec<String> = original.name.split('/').map(file_name).collect();
        let mut name = format!("images/{}", safe.join("/"));
        if !taken.insert(name.clone()) {
            name = format!("images/{}_{}", taken.len(), safe.join("/"));
            taken.insert(name.clone());
        }
        let mut file = std::fs::File::open(&original.path)?;
        let large = file.metadata()?.len() >= u64::from(u32::MAX);
        zip.start_file(name.as_str(), stored.large_file(large))?;
        let mut hashing = HashingWriter {
            inner: &mut zip,
            hash: Sha256::new(),
            bytes: 0,
        };
        std::io::copy(&mut file, &mut hashing)?;
        manifest.files.push(ManifestFile {
            name,
            bytes: hashing.bytes,
            sha256: hex::encode(hashing.hash.finalize()),
        });
    }
    zip.start_file("manifest.json", options.large_file(false))?;
    serde_json::to_writer_pretty(&mut zip, &manifest)?;
    zip.finish()?;
    Ok(manifest)
}

/// Passes bytes on, hashing and counting them.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Each image's name without its extension, safe in the archive and unique in it (an image
/// whose stem another has already gets its id appended).
fn stems(dataset: &Dataset) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    dataset
        .images
        .iter()
        .map(|image| {
            let name = file_name(&image.name);
            let stem = match name.rsplit_once('.') {
                Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
                _ => name,
            };
            if taken.insert(stem.clone()) {
                stem
            } else {
                let unique = format!("{stem}_{}", image.id);
                taken.insert(unique.clone());
                unique
            }
        })
        .collect()
}

/// A name safe as a file in the archive: no folders, nothing hidden.
fn file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "export".into()
    } else {
        cleaned.to_owned()
    }
}

fn dos_time(micros: i64) -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(micros)
        .and_then(|t| {
            zip::DateTime::from_date_and_time(
                u16::try_from(t.year()).ok()?,
                t.month() as u8,
                t.day() as u8,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
            )
            .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_read_back_as_named() {
        for kind in [
            ExportKind::Exact(None),
            ExportKind::Exact(Some(7)),
            ExportKind::Coco,
            ExportKind::Csv,
            ExportKind::GeoJson,
            ExportKind::QuPath,
            ExportKind::Voc,
            ExportKind::Yolo,
            ExportKind::Asap,
        ] {
            assert_eq!(kind.name().parse::<ExportKind>(), Ok(kind));
        }
        assert_eq!("12".parse::<ExportKind>(), Ok(ExportKind::Exact(Some(12))));
        assert!("exact:0".parse::<ExportKind>().is_err());
        assert!("pascal".parse::<ExportKind>().is_err());
    }

    #[test]
    fn archive_names_have_no_folders() {
        assert_eq!(file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(file_name("a\\b.svs"), "a_b.svs");
        assert_eq!(file_name(".."), "export");
    }
}
