//! Imports of annotations into an image set: EXACT's label lines (`imagename|type|{vector} or
//! not in image|flags|uuid`, what its default export writes) and COCO JSON. Images are matched
//! by name and types by name among those the set offers (created when asked); every line is
//! checked before anything is written, and a report names each refused one by its line or its
//! JSON path. A file with refusals applies nothing unless the caller asks for the valid lines.
//! What is applied is one append: all or nothing. Lines whose UUID exists already, or that
//! equal an annotation of the image (same type and shape, EXACT's duplicate check), change
//! nothing, so a file uploaded twice, or EXACT's default export uploaded back, adds nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

use exact_domain::annotation_type::TypeSettings;
use exact_domain::vector::{self, Fit, Vector, VectorType};
use exact_projections::annotation_query::AnnotationQuery;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::commands::{
    AnnotationInput, Caller, Commands, CreateOptions, NewAnnotations, PlannedType,
};
use crate::error::{ApiError, Code};

/// The most refusals a report lists one by one (their count is always given).
const REPORTED: usize = 1_000;

/// The formats an import reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    /// EXACT's label lines.
    Exact,
    Coco,
    /// GeoJSON, QuPath's or plain: one image's features.
    GeoJson,
    /// The CSV export's columns (deleted rows are skipped).
    Csv,
    /// ASAP's XML, one image's.
    Asap,
    /// Aperio ImageScope's XML, one image's.
    ImageScope,
    /// Pascal VOC's XML, one image's (its `filename` names it).
    Voc,
    /// YOLO's label files (`labels/<image stem>.txt`) with their `classes.txt`, in a zip.
    Yolo,
}

impl FromStr for ImportKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "exact" => Ok(ImportKind::Exact),
            "coco" => Ok(ImportKind::Coco),
            "geojson" | "qupath" => Ok(ImportKind::GeoJson),
            "csv" => Ok(ImportKind::Csv),
            "asap" => Ok(ImportKind::Asap),
            "imagescope" | "aperio" => Ok(ImportKind::ImageScope),
            "voc" => Ok(ImportKind::Voc),
            "yolo" => Ok(ImportKind::Yolo),
            _ => Err(format!(
                "{text:?} is not a format an import reads: exact (EXACT's label lines), coco, csv, geojson (qupath), asap, imagescope, voc or yolo"
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ImportOptions {
    /// Create the types the file names and the set does not offer (in the set's first product).
    pub create_types: bool,
    /// Accept every imported annotation in the importer's name.
    pub verify: bool,
    /// Apply the valid lines of a file that has refused ones.
    pub apply_valid: bool,
}

impl ImportKind {
    /// Whether a file of a zip is one this format reads (others, such as the images or the
    /// manifest of an export, are passed over).
    fn reads(self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        let extension = lower.rsplit_once('.').map_or("", |(_, e)| e);
        match self {
            ImportKind::Exact | ImportKind::Yolo => extension == "txt",
            ImportKind::Coco => extension == "json" && lower != "manifest.json",
            ImportKind::GeoJson => {
                extension == "geojson" || (extension == "json" && lower != "manifest.json")
            }
            ImportKind::Csv => extension == "csv",
            ImportKind::Asap | ImportKind::ImageScope | ImportKind::Voc => extension == "xml",
        }
    }
}

/// One file of an import: the file sent, or one of a zip's.
#[derive(Clone, Debug)]
pub struct ImportFile {
    /// As sent, or the path inside the zip (`labels/slide.txt`).
    pub name: String,
    pub bytes: Vec<u8>,
}

impl ImportFile {
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            bytes,
        }
    }

    /// The name without the folders: what names an image (`slide.svs.geojson`).
    fn base_name(&self) -> &str {
        self.name.rsplit(['/', '\\']).next().unwrap_or(&self.name)
    }
}

/// What a zip of labels may expand to: the size an import reads whole, at most 100 times the
/// zip (a bomb is refused as it expands, before it fills anything).
pub const IMPORT_ZIP_LIMITS: crate::uploads::ZipLimits = crate::uploads::ZipLimits {
    max_entries: 100_000,
    max_total_bytes: 1 << 30,
    max_ratio: 100,
};

/// The files of an upload at `path`, sent as `name`: the file itself, or, for a zip, the
/// files in it the format reads, extracted into `scratch` (an empty folder) under
/// [`IMPORT_ZIP_LIMITS`] (paths outside the archive, links and bombs are refused).
pub fn import_files(
    path: &std::path::Path,
    name: &str,
    kind: ImportKind,
    scratch: &std::path::Path,
) -> Result<Vec<ImportFile>, ApiError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| ApiError::storing("reading the uploaded file failed", &e))
    };
    if !crate::uploads::is_zip(path) {
        return Ok(vec![ImportFile::new(name, read(path)?)]);
    }
    let entries = crate::uploads::extract_all(path, scratch, IMPORT_ZIP_LIMITS)?;
    let mut files = Vec::new();
    for entry in entries {
        let inside = entry.path.to_string_lossy().replace('\\', "/");
        let hidden = inside
            .split('/')
            .any(|part| part.starts_with('.') || part == "__MACOSX");
        let base = inside.rsplit('/').next().unwrap_or_default();
        if hidden || !kind.reads(base) {
            continue;
        }
        files.push(ImportFile::new(
            inside.clone(),
            read(&scratch.join(&entry.path))?,
        ));
    }
    if files.is_empty() {
        return Err(ApiError::new(
            Code::InvalidImport,
            format!("{name} holds no file a {kind:?} import reads"),
        )
        .with_field("file"));
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// What an import did, or would have done.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Lines (or COCO annotations) read.
    pub read: usize,
    /// Annotations created.
    pub applied: usize,
    /// Lines that were there already (their UUID, or an equal annotation).
    pub unchanged: usize,
    /// Lines refused; at most 1,000 listed, `refused_count` says how many.
    pub refused: Vec<Refusal>,
    pub refused_count: usize,
    /// Types created for this import.
    pub created_types: Vec<String>,
    /// Whether anything was written.
    pub applied_anything: bool,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Refusal {
    /// `line 3`, or a JSON path such as `annotations[5].bbox`.
    pub at: String,
    pub reason: String,
    /// Where in the file (line or annotation number): the report is in file order.
    #[serde(skip)]
    order: usize,
}

impl ImportReport {
    /// Counts a refusal, listing it while the list is short.
    fn refuse(&mut self, at: String, order: usize, reason: String) {
        self.refused_count += 1;
        if self.refused.len() < REPORTED {
            self.refused.push(Refusal { at, reason, order });
        }
    }

    /// A refusal found while reading the file: the annotation was read too.
    fn refuse_read(&mut self, at: String, order: usize, reason: String) {
        self.read += 1;
        self.refuse(at, order, reason);
    }
}

/// One annotation as a file gives it, before it is matched.
#[derive(Clone, Debug)]
struct Candidate {
    at: String,
    order: usize,
    image: String,
    annotation_type: String,
    vector: Value,
    concealed: bool,
    blurred: bool,
    unique_identifier: Option<uuid::Uuid>,
    /// A COCO box `[x, y, width, height]`: the shape for box and point types, whatever the
    /// segmentation says (COCO writes boxes as four-corner polygons too).
    coco_box: Option<[f64; 4]>,
    description: String,
    meta_data: Value,
    /// Coordinates as fractions of the image's width and height (YOLO's), scaled once the
    /// image is known.
    normalized: bool,
}

/// Reads, checks and (unless refused) applies `bytes` to `image_set`.
///
/// A file's name can name its image: a GeoJSON file's (`slide.svs.geojson` is for `slide.svs`,
/// unless its features say `properties.image`), an XML's, a YOLO label file's (its stem).
/// Several files (a zip's) are one import: refusals are named by file and line or path.
pub async fn import(
    commands: &Commands,
    caller: &Caller,
    image_set: i64,
    kind: ImportKind,
    files: &[ImportFile],
    options: ImportOptions,
) -> Result<ImportReport, ApiError> {
    let read = &commands.read;
    let (set, permissions) = commands.set_access(caller, image_set).await?;
    if !permissions.contains(exact_domain::permissions::Permission::Annotate) {
        return Err(exact_domain::DomainError::ForbiddenInSet(
            exact_domain::permissions::Permission::Annotate,
        )
        .into());
    }
    if options.verify && set.clinical {
        return Err(ApiError::new(
            Code::SignatureRequired,
            "in a clinical set a verdict is an electronic signature, given one by one with \
             the password: import without verify, then sign",
        )
        .with_field("verify"));
    }
    let mut report = ImportReport::default();
    let candidates = parse_files(files, kind, &mut report)?;
    report.read += candidates.len();

    let images: HashMap<String, exact_projections::catalog_read::ImageRow> = read
        .readable_images(caller.actor, Some(image_set))
        .await?
        .into_iter()
        .filter(|i| !i.deleted)
        .map(|i| (i.name.clone(), i))
        .collect();
    let mut types: HashMap<String, TypeFit> = read
        .offered_types(image_set)
        .await?
        .into_iter()
        .map(|t| {
            let fit = TypeFit {
                id: t.id,
                vector_type: t.vector_type,
                node_count: t.node_count,
            };
            (t.name, fit)
        })
        .collect();
    // Types to make are checked against as they will be (placeholder ids below 0), and made
    // only if the import applies.
    let to_make = if options.create_types {
        missing_types(&candidates, &types)
    } else {
        Vec::new()
    };
    for (n, (name, vector_type)) in to_make.iter().enumerate() {
        let fit = TypeFit {
            id: -1 - n as i64,
            vector_type: vector_type.code(),
            node_count: 0,
        };
        types.insert(name.clone(), fit);
    }

    // What the images hold already: UUIDs, and shapes per (image, type) for the duplicate check.
    let image_ids: Vec<i64> = images.values().map(|i| i.id).collect();
    let existing = read
        .annotations(&AnnotationQuery {
            images: Some(image_ids),
            ..AnnotationQuery::default()
        })
        .await?;
    let uuids: HashMap<uuid::Uuid, (i64, i64)> = existing
        .iter()
        .filter_map(|a| {
            let uuid = a.unique_identifier.parse().ok()?;
            Some((uuid, (a.image, a.annotation_type)))
        })
        .collect();
    let shapes: HashSet<(i64, i64, String)> = existing
        .iter()
        .filter(|a| !a.deleted)
        .map(|a| (a.image, a.annotation_type, shape_key(a.vector.as_deref())))
        .collect();

    // UUIDs of the file held by annotations outside the set, found together.
    let outside: Vec<uuid::Uuid> = candidates
        .iter()
        .filter_map(|c| c.unique_identifier)
        .filter(|u| !uuids.contains_key(u))
        .collect();
    let taken_elsewhere = commands.annotations_by_uuids(&outside).await?;
    let mut added_shapes: HashSet<(i64, i64, String)> = HashSet::new();
    // Only an annotation without a UUID of its own is checked against those this file adds.
    let any_without_uuid = candidates.iter().any(|c| c.unique_identifier.is_none());
    let mut inputs = Vec::new();
    // Each candidate against its image and type, on every core: a million take a second.
    let images = std::sync::Arc::new(images);
    let types = std::sync::Arc::new(types);
    let checked = {
        let (images, types) = (images.clone(), types.clone());
        tokio::task::spawn_blocking(move || fit_all(candidates, &images, &types))
            .await
            .map_err(|e| ApiError::internal("checking the import failed", &e))?
    };
    for (c, fitted) in checked {
        let refuse = |report: &mut ImportReport, reason: String| {
            report.refuse(c.at.clone(), c.order, reason);
        };
        let Fitted {
            image,
            kind,
            vector,
            shape,
        } = match fitted {
            Ok(fitted) => fitted,
            Err(reason) => {
                refuse(&mut report, reason);
                continue;
            }
        };
        // A UUID already in this set is this very annotation imported before; one that
        // belongs anywhere else (a copy of the set, another team's) is not this file's to
        // take: the annotation gets a new one, and the shape check below keeps a second import
        // of the same file from adding it again.
        let mut unique_identifier = c.unique_identifier;
        if let Some(uuid) = c.unique_identifier {
            match uuids.get(&uuid) {
                Some(&(i, t)) if (i, t) == (image, kind.id) => {
                    report.unchanged += 1;
                    continue;
                }
                Some(_) => {
                    refuse(
                        &mut report,
                        format!("the UUID {uuid} belongs to another annotation of this set"),
                    );
                    continue;
                }
                None if taken_elsewhere.contains_key(&uuid) => {
                    unique_identifier = None;
                }
                None => {}
            }
        }
        // An annotation with a UUID of its own is that UUID: two equal shapes are two
        // annotations (cells do overlap). One whose UUID was another's is known by its shape
        // among those the set had before this import (so a second import adds nothing); one
        // without a UUID also among those this file adds (EXACT's duplicate check).
        let key = (image, kind.id, shape);
        let duplicate = match (c.unique_identifier, unique_identifier) {
            (Some(_), Some(_)) => false,
            (Some(_), None) => shapes.contains(&key),
            (None, _) => shapes.contains(&key) || added_shapes.contains(&key),
        };
        if duplicate {
            report.unchanged += 1;
            continue;
        }
        if any_without_uuid {
            added_shapes.insert(key);
        }
        let mut input = AnnotationInput::new(kind.id, vector);
        input.image = Some(image);
        input.concealed = c.concealed;
        input.blurred = c.blurred;
        input.unique_identifier = unique_identifier;
        input.description = c.description.clone();
        input.meta_data = c.meta_data.clone();
        inputs.push(input);
    }

    report.refused.sort_by_key(|r| r.order);
    if report.refused_count > 0 && !options.apply_valid {
        return Err(refused(&report));
    }
    if inputs.is_empty() {
        return Ok(report);
    }
    let new_types = plan_types(commands, caller, image_set, &to_make, &inputs, &mut report).await?;
    let first_image = inputs[0].image.unwrap_or_default();
    // Created (with the types they need) and, when asked, accepted in the importer's name:
    // one append, all or nothing. The UUIDs were looked up above, in the set and outside it:
    // those kept are new.
    let written = commands
        .create_annotations_with(
            caller,
            NewAnnotations {
                image: first_image,
                annotations: inputs,
            },
            CreateOptions {
                verify: options.verify,
                uuids_checked: true,
                new_types,
            },
        )
        .await?;
    report.applied = written.iter().filter(|w| w.position.is_some()).count();
    report.unchanged += written.len() - report.applied;
    report.applied_anything = report.applied > 0;
    Ok(report)
}

/// Every file parsed as `kind`; with several, each refusal and each error names its file.
fn parse_files(
    files: &[ImportFile],
    kind: ImportKind,
    report: &mut ImportReport,
) -> Result<Vec<Candidate>, ApiError> {
    let several = files.len() > 1;
    let classes = match kind {
        ImportKind::Yolo => yolo_classes(files)?,
        _ => Vec::new(),
    };
    let mut candidates = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let (bytes, name) = (file.bytes.as_slice(), file.base_name());
        if kind == ImportKind::Yolo && name == "classes.txt" {
            continue;
        }
        let listed = report.refused.len();
        let parsed = match kind {
            ImportKind::Exact => parse_lines(bytes, report),
            ImportKind::Coco => parse_coco(bytes, report),
            ImportKind::GeoJson => parse_geojson(bytes, name, report),
            ImportKind::Csv => parse_csv(bytes, report),
            ImportKind::Asap | ImportKind::ImageScope => parse_xml(bytes, name, kind, report),
            ImportKind::Voc => parse_voc(bytes, name, report),
            ImportKind::Yolo => parse_yolo(bytes, name, &classes, report),
        };
        let mut parsed = parsed.map_err(|mut e| {
            if several {
                e.message = format!("{}: {}", file.name, e.message);
            }
            e
        })?;
        // In file order: the files one after the other.
        let base = index << 32;
        for refusal in &mut report.refused[listed..] {
            refusal.order += base;
            if several {
                refusal.at = format!("{}: {}", file.name, refusal.at);
            }
        }
        for c in &mut parsed {
            c.order += base;
            if several {
                c.at = format!("{}: {}", file.name, c.at);
            }
        }
        candidates.append(&mut parsed);
    }
    Ok(candidates)
}

/// YOLO's class names, by index: `classes.txt`, one name a line.
fn yolo_classes(files: &[ImportFile]) -> Result<Vec<String>, ApiError> {
    let Some(file) = files.iter().find(|f| f.base_name() == "classes.txt") else {
        return Err(ApiError::new(
            Code::InvalidImport,
            "YOLO labels need their classes.txt (one class name a line, as the YOLO export \
             writes it): send a zip with classes.txt and the label files",
        )
        .with_field("file"));
    };
    let text = std::str::from_utf8(&file.bytes).map_err(|e| {
        ApiError::new(
            Code::InvalidImport,
            format!("classes.txt is not UTF-8 text (byte {})", e.valid_up_to()),
        )
        .with_field("file")
    })?;
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r').trim().to_owned())
        .collect())
}

/// One image's YOLO labels (`<stem>.txt`): `class cx cy w h` (a box) or `class x1 y1 x2 y2
/// x3 y3 ...` (a polygon, YOLO's segmentation), as fractions of the image's size.
fn parse_yolo(
    bytes: &[u8],
    file_name: &str,
    classes: &[String],
    report: &mut ImportReport,
) -> Result<Vec<Candidate>, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::new(
            Code::InvalidImport,
            format!("not UTF-8 text (byte {})", e.valid_up_to()),
        )
        .with_field("file")
    })?;
    let image = file_name
        .strip_suffix(".txt")
        .unwrap_or(file_name)
        .to_owned();
    let mut candidates = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let at = format!("line {}", number + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((class, numbers)) = words.split_first() else {
            continue;
        };
        let refuse = |report: &mut ImportReport, reason: String| {
            report.refuse_read(at.clone(), number, reason);
        };
        let Some(name) = class.parse::<usize>().ok().and_then(|i| classes.get(i)) else {
            refuse(
                report,
                format!(
                    "class {class:?} is not one of classes.txt's {} (0 to {})",
                    classes.len(),
                    classes.len().saturating_sub(1)
                ),
            );
            continue;
        };
        let values: Result<Vec<f64>, _> = numbers.iter().map(|n| n.parse::<f64>()).collect();
        let values = match values {
            Ok(v) if v.iter().all(|n| n.is_finite()) => v,
            _ => {
                refuse(report, "coordinates must be finite numbers".into());
                continue;
            }
        };
        let (vector, coco_box) = match values.len() {
            4 => {
                let [cx, cy, w, h] = [values[0], values[1], values[2], values[3]];
                let (x, y) = (cx - w / 2.0, cy - h / 2.0);
                let corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)];
                (vector_of_nodes(&corners), Some([x, y, w, h]))
            }
            n if n >= 6 && n % 2 == 0 => {
                let nodes: Vec<(f64, f64)> = values.chunks(2).map(|p| (p[0], p[1])).collect();
                (vector_of_nodes(&nodes), None)
            }
            _ => {
                refuse(
                    report,
                    "a YOLO line is a class and 4 numbers (a box) or 3 or more x y pairs \
                     (a polygon)"
                        .into(),
                );
                continue;
            }
        };
        candidates.push(Candidate {
            at,
            order: number,
            image: image.clone(),
            annotation_type: name.clone(),
            vector,
            concealed: false,
            blurred: false,
            unique_identifier: None,
            coco_box,
            description: String::new(),
            meta_data: Value::Null,
            normalized: true,
        });
    }
    Ok(candidates)
}

impl Candidate {
    /// The candidate with its fractions of the image's size made pixels.
    fn scaled(&self, width: f64, height: f64) -> Candidate {
        let mut scaled = self.clone();
        if let Value::Object(fields) = &mut scaled.vector {
            for (key, value) in fields.iter_mut() {
                let factor = match key.chars().next() {
                    Some('x') => width,
                    Some('y') => height,
                    _ => continue,
                };
                if let Some(n) = value.as_f64() {
                    *value = (n * factor).into();
                }
            }
        }
        scaled.coco_box = self
            .coco_box
            .map(|[x, y, w, h]| [x * width, y * height, w * width, h * height]);
        scaled.normalized = false;
        scaled
    }

    /// The vector for a type of `vector_type`: a COCO annotation's box for boxes and points.
    fn vector_for(&self, vector_type: VectorType) -> Value {
        match (vector_type, self.coco_box) {
            (VectorType::Point, Some([x, y, w, h])) if w == 0.0 && h == 0.0 => {
                serde_json::json!({"x1": x, "y1": y})
            }
            (
                VectorType::BoundingBox | VectorType::FixedSizeBoundingBox | VectorType::Point,
                Some([x, y, w, h]),
            ) => serde_json::json!({"x1": x, "y1": y, "x2": x + w, "y2": y + h}),
            _ => self.vector.clone(),
        }
    }
}

/// A shape as the duplicate check compares it: the vector's nodes and frame, whatever the key
/// order or number notation.
fn shape_key(vector: Option<&str>) -> String {
    let Some(text) = vector else {
        return String::new();
    };
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| Vector::from_json(&v).ok().flatten())
        .map(|v| v.to_json().to_string())
        .unwrap_or_else(|| text.to_owned())
}

/// The 422 that refuses a file with refused lines, the report in its body.
fn refused(report: &ImportReport) -> ApiError {
    let first = report
        .refused
        .first()
        .map(|r| format!(" (first: {}: {})", r.at, r.reason))
        .unwrap_or_default();
    ApiError::new(
        Code::ImportRefused,
        format!(
            "{} of {} annotations were refused{first}; nothing was applied (send apply_valid to apply the others)",
            report.refused_count, report.read
        ),
    )
    .with_report(serde_json::to_value(report).unwrap_or(Value::Null))
}

/// Creates the types the candidates name and the set lacks, in the set's first product, each
/// with the vector type its first shape suggests.
/// A candidate matched to its image and type, its vector fit for them.
struct Fitted {
    image: i64,
    kind: TypeFit,
    vector: Value,
    /// The shape as the duplicate check compares it ([`shape_key`]'s text).
    shape: String,
}

/// Every candidate matched and checked ([`fit`]), in order, the work shared among the cores.
fn fit_all(
    candidates: Vec<Candidate>,
    images: &HashMap<String, exact_projections::catalog_read::ImageRow>,
    types: &HashMap<String, TypeFit>,
) -> Vec<(Candidate, Result<Fitted, String>)> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let size = candidates.len().div_ceil(cores).max(1_000);
    let results: Vec<Result<Fitted, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = candidates
            .chunks(size)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|c| fit(c, images, types))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a check does not panic"))
            .collect()
    });
    candidates.into_iter().zip(results).collect()
}

/// `c` matched to its image (by name, else by stem) and type, its vector checked against them.
fn fit(
    c: &Candidate,
    images: &HashMap<String, exact_projections::catalog_read::ImageRow>,
    types: &HashMap<String, TypeFit>,
) -> Result<Fitted, String> {
    // ImageScope keeps `slide.xml` beside `slide.svs`: a name without its extension names the
    // one image it is the stem of. YOLO's and VOC's exports name a second image of the same
    // stem `stem_ID`.
    let by_stem = || {
        let stem_of = |i: &exact_projections::catalog_read::ImageRow| {
            i.name
                .rsplit_once('.')
                .map_or(i.name.clone(), |(stem, _)| stem.to_owned())
        };
        let mut found = images
            .values()
            .filter(|i| stem_of(i) == c.image || format!("{}_{}", stem_of(i), i.id) == c.image);
        match (found.next(), found.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    };
    let image = images
        .get(&c.image)
        .or_else(by_stem)
        .ok_or_else(|| format!("the set has no image named {:?}", c.image))?;
    let kind = *types.get(&c.annotation_type).ok_or_else(|| {
        format!(
            "the set offers no annotation type named {:?} (import with create_types to make it)",
            c.annotation_type
        )
    })?;
    let vector_type = VectorType::try_from(kind.vector_type).unwrap_or(VectorType::Polygon);
    let vector = if c.normalized {
        c.scaled(image.width as f64, image.height as f64)
            .vector_for(vector_type)
    } else {
        c.vector_for(vector_type)
    };
    let parsed = Vector::from_json(&vector).map_err(|e| format!("the vector: {e}"))?;
    let fit = Fit {
        vector_type,
        node_count: u32::try_from(kind.node_count).unwrap_or(0),
        image_width: image.width as f64,
        image_height: image.height as f64,
        image_frames: u32::try_from(image.frames.max(1)).unwrap_or(1),
    };
    vector::validate(parsed.as_ref(), &fit)
        .map_err(|e| format!("the vector for a {:?}: {e}", c.annotation_type))?;
    // As `shape_key` writes it, from the vector parsed here.
    let shape = parsed
        .as_ref()
        .map_or_else(String::new, |v| v.to_json().to_string());
    Ok(Fitted {
        image: image.id,
        kind,
        vector,
        shape,
    })
}

/// What the checks need of an annotation type.
#[derive(Clone, Copy, Debug)]
struct TypeFit {
    id: i64,
    vector_type: i64,
    node_count: i64,
}

/// The types the candidates name that the set does not offer, by name, each with the vector
/// type its first annotation suggests.
fn missing_types(
    candidates: &[Candidate],
    types: &HashMap<String, TypeFit>,
) -> Vec<(String, VectorType)> {
    let mut wanted: BTreeMap<&str, VectorType> = BTreeMap::new();
    for c in candidates {
        if !types.contains_key(&c.annotation_type) && !c.annotation_type.trim().is_empty() {
            wanted
                .entry(c.annotation_type.as_str())
                .or_insert_with(|| suggested_type(c));
        }
    }
    wanted
        .into_iter()
        .map(|(name, vector_type)| (name.to_owned(), vector_type))
        .collect()
}

/// The types of `to_make` that `inputs` use (placeholder `-1 - n` for `to_make[n]`), planned
/// in the set's first product, to be made in the annotations' append.
async fn plan_types(
    commands: &Commands,
    caller: &Caller,
    image_set: i64,
    to_make: &[(String, VectorType)],
    inputs: &[AnnotationInput],
    report: &mut ImportReport,
) -> Result<Vec<PlannedType>, ApiError> {
    let used: std::collections::BTreeSet<i64> = inputs
        .iter()
        .map(|i| i.annotation_type)
        .filter(|id| *id < 0)
        .collect();
    if used.is_empty() {
        return Ok(Vec::new());
    }
    let product = commands
        .read
        .product_links()
        .await?
        .into_iter()
        .filter(|(_, set)| *set == image_set)
        .map(|(product, _)| product)
        .min()
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidField,
                "the set has no product to create types in: link one first",
            )
            .with_field("create_types")
        })?;
    let mut planned = Vec::new();
    for (n, (name, vector_type)) in to_make.iter().enumerate() {
        let placeholder = -1 - n as i64;
        if !used.contains(&placeholder) {
            continue;
        }
        let settings = TypeSettings {
            name: name.clone(),
            ..TypeSettings::default()
        };
        planned.push(
            commands
                .plan_annotation_type(
                    caller,
                    (placeholder, image_set),
                    product,
                    vector_type.code(),
                    settings,
                )
                .await?,
        );
        report.created_types.push(name.clone());
    }
    Ok(planned)
}

fn suggested_type(c: &Candidate) -> VectorType {
    if let Some([x, y, w, h]) = c.coco_box {
        let corners = serde_json::json!({"x1": x, "y1": y, "x2": x + w, "y2": y,
                                         "x3": x + w, "y3": y + h, "x4": x, "y4": y + h});
        if w == 0.0 && h == 0.0 {
            return VectorType::Point;
        }
        if c.vector.get("x3").is_none()
            || shape_key(Some(&corners.to_string())) == shape_key(Some(&c.vector.to_string()))
        {
            return VectorType::BoundingBox;
        }
    }
    match Vector::from_json(&c.vector) {
        Ok(None) | Err(_) => VectorType::Global,
        Ok(Some(v)) => match v.nodes.len() {
            1 => VectorType::Point,
            2 => VectorType::BoundingBox,
            _ => VectorType::Polygon,
        },
    }
}

/// EXACT's label lines. A line that cannot be read is refused by its number; the file is read
/// whole (EXACT's `,}` fix applied, as its upload did).
fn parse_lines(bytes: &[u8], report: &mut ImportReport) -> Result<Vec<Candidate>, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::new(
            Code::InvalidImport,
            format!("the file is not UTF-8 text (byte {})", e.valid_up_to()),
        )
        .with_field("file")
    })?;
    let mut candidates = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let at = format!("line {}", number + 1);
        let line = line.trim_end_matches('\r').replace(",}", "}");
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        let mut refuse = |reason: String| report.refuse_read(at.clone(), number, reason);
        if fields.len() < 3 {
            refuse("a line is imagename|type|{vector} or not in image|flags|uuid".into());
            continue;
        }
        let vector = match fields[2].trim() {
            "not in image" | "{}" | "" => Value::Null,
            text => match serde_json::from_str::<Value>(text) {
                Ok(v) => v,
                Err(e) => {
                    refuse(format!("the vector is not JSON: {e}"));
                    continue;
                }
            },
        };
        let flags = fields.get(3).copied().unwrap_or("").trim();
        if let Some(other) = flags.chars().find(|c| !matches!(c, 'b' | 'c')) {
            refuse(format!(
                "unknown flag {other:?}: flags are b (blurred) and c (concealed)"
            ));
            continue;
        }
        let unique_identifier = match optional_uuid(fields.get(4).copied().unwrap_or("")) {
            Ok(u) => u,
            Err(why) => {
                refuse(why);
                continue;
            }
        };
        candidates.push(Candidate {
            at,
            order: number,
            image: fields[0].to_owned(),
            annotation_type: fields[1].to_owned(),
            vector,
            blurred: flags.contains('b'),
            concealed: flags.contains('c'),
            unique_identifier,
            coco_box: None,
            description: String::new(),
            meta_data: Value::Null,
            normalized: false,
        });
    }
    Ok(candidates)
}

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    categories: Vec<CocoCategory>,
    annotations: Vec<CocoAnnotation>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: i64,
    file_name: String,
}

#[derive(Deserialize)]
struct CocoCategory {
    id: i64,
    name: String,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    image_id: i64,
    category_id: i64,
    #[serde(default)]
    bbox: Option<Vec<f64>>,
    #[serde(default)]
    segmentation: Option<Value>,
    #[serde(default)]
    exact_uuid: Option<uuid::Uuid>,
}

/// COCO JSON: a polygon segmentation becomes a polygon, else the box a box. The structure must
/// be COCO's (a JSON error names its path); each annotation is then matched on its own.
fn parse_coco(bytes: &[u8], report: &mut ImportReport) -> Result<Vec<Candidate>, ApiError> {
    // Read straight; a file that does not read is read again to say where (the path costs a
    // third more on a million annotations).
    let coco: CocoFile = match serde_json::from_slice(bytes) {
        Ok(coco) => coco,
        Err(_) => {
            let mut reader = serde_json::Deserializer::from_slice(bytes);
            let e = serde_path_to_error::deserialize::<_, CocoFile>(&mut reader)
                .err()
                .expect("a file that failed to read fails again");
            return Err(ApiError::new(
                Code::InvalidImport,
                format!("not a COCO file at {}: {}", e.path(), e.inner()),
            )
            .with_field("file"));
        }
    };
    let images: HashMap<i64, &str> = coco
        .images
        .iter()
        .map(|i| (i.id, i.file_name.as_str()))
        .collect();
    let categories: HashMap<i64, &str> = coco
        .categories
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    let mut candidates = Vec::with_capacity(coco.annotations.len());
    for (i, a) in coco.annotations.iter().enumerate() {
        let at = format!("annotations[{i}]");
        let mut refuse =
            |field: &str, reason: String| report.refuse_read(format!("{at}{field}"), i, reason);
        let Some(image) = images.get(&a.image_id) else {
            refuse(
                ".image_id",
                format!("no image {} in the file's images", a.image_id),
            );
            continue;
        };
        let Some(category) = categories.get(&a.category_id) else {
            refuse(
                ".category_id",
                format!("no category {} in the file's categories", a.category_id),
            );
            continue;
        };
        let polygon = a
            .segmentation
            .as_ref()
            .and_then(|s| s.as_array())
            .and_then(|rings| rings.first())
            .and_then(|ring| ring.as_array())
            .filter(|ring| ring.len() >= 6 && ring.len() % 2 == 0);
        let coco_box = match a.bbox.as_deref() {
            Some(&[x, y, w, h])
                if [x, y, w, h].iter().all(|v| v.is_finite()) && w >= 0.0 && h >= 0.0 =>
            {
                Some([x, y, w, h])
            }
            None => None,
            Some(_) => {
                refuse(
                    ".bbox",
                    "a box is [x, y, width, height] of finite numbers, width and height not negative".into(),
                );
                continue;
            }
        };
        let vector = match (polygon, coco_box) {
            (Some(ring), _) => {
                let mut map = serde_json::Map::new();
                for (n, pair) in ring.chunks(2).enumerate() {
                    map.insert(format!("x{}", n + 1), pair[0].clone());
                    map.insert(format!("y{}", n + 1), pair[1].clone());
                }
                Value::Object(map)
            }
            (None, Some([x, y, w, h])) => {
                serde_json::json!({"x1": x, "y1": y, "x2": x + w, "y2": y + h})
            }
            (None, None) => {
                refuse(
                    "",
                    "an annotation needs a bbox or a polygon segmentation".into(),
                );
                continue;
            }
        };
        candidates.push(Candidate {
            at,
            order: i,
            image: (*image).to_owned(),
            annotation_type: (*category).to_owned(),
            vector,
            concealed: false,
            blurred: false,
            unique_identifier: a.exact_uuid,
            coco_box,
            description: String::new(),
            meta_data: Value::Null,
            normalized: false,
        });
    }
    Ok(candidates)
}

/// GeoJSON features of one image: a FeatureCollection, one Feature, or an array of features
/// (QuPath writes all three). The type is QuPath's `classification.name` (or the plain
/// flavour's `annotation_type`); the UUID the feature's `id`; polygons lose their closing
/// point; a null geometry is a label of the whole image.
fn parse_geojson(
    bytes: &[u8],
    file_name: &str,
    report: &mut ImportReport,
) -> Result<Vec<Candidate>, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            Code::InvalidImport,
            format!("not GeoJSON: line {}, column {}: {e}", e.line(), e.column()),
        )
        .with_field("file")
    })?;
    let (features, path) = match &value {
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("FeatureCollection") => {
            match o.get("features").and_then(Value::as_array) {
                Some(features) => (features.clone(), "features"),
                None => {
                    return Err(ApiError::new(
                        Code::InvalidImport,
                        "not GeoJSON: a FeatureCollection without a `features` array",
                    )
                    .with_field("file"))
                }
            }
        }
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("Feature") => {
            (vec![value.clone()], "")
        }
        Value::Array(features) => (features.clone(), ""),
        _ => {
            return Err(ApiError::new(
                Code::InvalidImport,
                "not GeoJSON: expected a FeatureCollection, a Feature or an array of features",
            )
            .with_field("file"))
        }
    };
    let default_image = file_name
        .strip_suffix(".geojson")
        .or_else(|| file_name.strip_suffix(".json"))
        .unwrap_or(file_name);
    let mut candidates = Vec::with_capacity(features.len());
    for (i, feature) in features.iter().enumerate() {
        let at = if path.is_empty() {
            format!("[{i}]")
        } else {
            format!("{path}[{i}]")
        };
        let mut refuse =
            |field: &str, reason: String| report.refuse_read(format!("{at}{field}"), i, reason);
        let properties = feature.get("properties").cloned().unwrap_or(Value::Null);
        let Some(annotation_type) = properties
            .pointer("/classification/name")
            .or_else(|| properties.get("annotation_type"))
            .and_then(Value::as_str)
        else {
            refuse(
                ".properties",
                "no type: QuPath's classification.name (or annotation_type)".into(),
            );
            continue;
        };
        let image = properties
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or(default_image);
        let geometry = feature.get("geometry").unwrap_or(&Value::Null);
        let (vector, bounds) = match geometry_vector(geometry) {
            Ok(found) => found,
            Err(reason) => {
                refuse(".geometry", reason);
                continue;
            }
        };
        candidates.push(Candidate {
            at,
            order: i,
            image: image.to_owned(),
            annotation_type: annotation_type.to_owned(),
            vector,
            concealed: properties.get("concealed").and_then(Value::as_bool) == Some(true),
            blurred: properties.get("blurred").and_then(Value::as_bool) == Some(true),
            unique_identifier: feature
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| uuid::Uuid::parse_str(id).ok()),
            coco_box: bounds,
            description: properties
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            meta_data: properties.get("meta_data").cloned().unwrap_or(Value::Null),
            normalized: false,
        });
    }
    Ok(candidates)
}

/// A GeoJSON geometry as EXACT's vector, with the box around it (boxes and points are taken
/// from it when the type wants one).
fn geometry_vector(geometry: &Value) -> Result<(Value, Option<[f64; 4]>), String> {
    if geometry.is_null() {
        return Ok((Value::Null, None));
    }
    let kind = geometry.get("type").and_then(Value::as_str).unwrap_or("");
    let coordinates = geometry.get("coordinates");
    let point = |v: &Value| -> Option<(f64, f64)> {
        let pair = v.as_array()?;
        let (x, y) = (pair.first()?.as_f64()?, pair.get(1)?.as_f64()?);
        (x.is_finite() && y.is_finite()).then_some((x, y))
    };
    let nodes: Vec<(f64, f64)> = match kind {
        "Point" => vec![coordinates.and_then(point).ok_or("a Point is [x, y]")?],
        "LineString" => coordinates
            .and_then(Value::as_array)
            .ok_or("a LineString is an array of [x, y]")?
            .iter()
            .map(point)
            .collect::<Option<_>>()
            .ok_or("a LineString is an array of [x, y]")?,
        "Polygon" => {
            let ring = coordinates
                .and_then(Value::as_array)
                .and_then(|rings| rings.first())
                .and_then(Value::as_array)
                .ok_or("a Polygon is an array of rings of [x, y]")?;
            let mut nodes: Vec<(f64, f64)> = ring
                .iter()
                .map(point)
                .collect::<Option<_>>()
                .ok_or("a Polygon is an array of rings of [x, y]")?;
            if nodes.len() > 1 && nodes.first() == nodes.last() {
                nodes.pop();
            }
            nodes
        }
        other => {
            return Err(format!(
                "a {other:?} geometry is not imported: Point, LineString and Polygon are (split multi-part shapes)"
            ))
        }
    };
    if nodes.is_empty() {
        return Err("a geometry without coordinates".into());
    }
    Ok((vector_of_nodes(&nodes), Some(box_around(&nodes))))
}

/// The CSV export's rows read back: `image_name`, `annotation_type_name`, `vector` (JSON, empty
/// for a whole-image label), `concealed`, `blurred`, `description`, `meta_data` and
/// `unique_identifier` by their header names (other columns are ignored); deleted rows are
/// skipped. Rows are numbered as lines, the header being line 1.
fn parse_csv(bytes: &[u8], report: &mut ImportReport) -> Result<Vec<Candidate>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| {
            ApiError::new(Code::InvalidImport, format!("not CSV: {e}")).with_field("file")
        })?
        .clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let (Some(image), Some(kind), Some(vector)) = (
        column("image_name"),
        column("annotation_type_name"),
        column("vector"),
    ) else {
        return Err(ApiError::new(
            Code::InvalidImport,
            "the CSV needs the columns image_name, annotation_type_name and vector (as the CSV export writes them)",
        )
        .with_field("file"));
    };
    let optional = |name: &str| column(name);
    let (concealed, blurred, deleted) = (
        optional("concealed"),
        optional("blurred"),
        optional("deleted"),
    );
    let (description, meta_data, uuid) = (
        optional("description"),
        optional("meta_data"),
        optional("unique_identifier"),
    );
    let mut candidates = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let number = i + 2;
        let at = format!("line {number}");
        let mut refuse = |reason: String| report.refuse_read(at.clone(), number, reason);
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                refuse(format!("not a CSV row: {e}"));
                continue;
            }
        };
        let cell = |index: Option<usize>| index.and_then(|i| row.get(i)).unwrap_or("");
        let flag = |index: Option<usize>| cell(index).eq_ignore_ascii_case("true");
        if flag(deleted) {
            continue;
        }
        let (vector, meta) = match (
            json_or_null(cell(Some(vector)), "the vector"),
            json_or_null(cell(meta_data), "meta_data"),
        ) {
            (Ok(vector), Ok(meta)) => (vector, meta),
            (Err(why), _) | (_, Err(why)) => {
                refuse(why);
                continue;
            }
        };
        let unique_identifier = match optional_uuid(cell(uuid)) {
            Ok(u) => u,
            Err(why) => {
                refuse(why);
                continue;
            }
        };
        candidates.push(Candidate {
            at,
            order: number,
            image: cell(Some(image)).to_owned(),
            annotation_type: cell(Some(kind)).to_owned(),
            vector,
            concealed: flag(concealed),
            blurred: flag(blurred),
            unique_identifier,
            coco_box: None,
            description: cell(description).to_owned(),
            meta_data: meta,
            normalized: false,
        });
    }
    Ok(candidates)
}

/// A shape read from an XML file, before it becomes a candidate.
struct XmlShape {
    at: String,
    order: usize,
    type_name: String,
    /// `Rectangle`, `Dot`, `Polygon`, `Spline` (ASAP's words; ImageScope's region types are
    /// mapped onto them).
    shape: String,
    nodes: Vec<(usize, f64, f64)>,
    name: String,
}

/// ASAP's XML (`Annotation` with `Coordinate`s, the type its `PartOfGroup`, the UUID its
/// `Name`) or Aperio ImageScope's (`Region`s with `Vertex`es, the type the region's `Text` or
/// else its annotation layer's `Name`; region type 1 a rectangle, 2 an ellipse kept as its
/// box, 0 and the rest outlines). The file names its image (`slide.svs.xml`, or ImageScope's
/// `slide.xml` beside `slide.svs`).
fn parse_xml(
    bytes: &[u8],
    file_name: &str,
    kind: ImportKind,
    report: &mut ImportReport,
) -> Result<Vec<Candidate>, ApiError> {
    use quick_xml::events::Event;
    let image = file_name
        .strip_suffix(".xml")
        .unwrap_or(file_name)
        .to_owned();
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut shapes: Vec<XmlShape> = Vec::new();
    let mut current: Option<XmlShape> = None;
    let mut layer_name = String::new();
    let malformed = |position: u64, e: &dyn std::fmt::Display| {
        ApiError::new(
            Code::InvalidImport,
            format!("not XML at byte {position}: {e}"),
        )
        .with_field("file")
    };
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| malformed(reader.error_position(), &e))?;
        let (element, empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            Event::End(e) => {
                let name = e.name().as_ref().to_vec();
                let ends_shape = match kind {
                    ImportKind::Asap => name == b"Annotation",
                    _ => name == b"Region",
                };
                if ends_shape {
                    shapes.extend(current.take());
                }
                buf.clear();
                continue;
            }
            Event::Eof => break,
            _ => (None, false),
        };
        let Some(element) = element else {
            buf.clear();
            continue;
        };
        let mut attributes = BTreeMap::new();
        for attribute in element.attributes() {
            let attribute = attribute.map_err(|e| malformed(reader.buffer_position(), &e))?;
            let value = attribute
                .unescape_value()
                .map_err(|e| malformed(reader.buffer_position(), &e))?;
            attributes.insert(
                String::from_utf8_lossy(attribute.key.as_ref()).into_owned(),
                value.into_owned(),
            );
        }
        let attribute = |name: &str| attributes.get(name).cloned().unwrap_or_default();
        let number = |name: &str| {
            attributes
                .get(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        match (kind, element.name().as_ref()) {
            (ImportKind::Asap, b"Annotation") => {
                let order = shapes.len();
                current = Some(XmlShape {
                    at: format!("Annotation[{order}]"),
                    order,
                    type_name: attribute("PartOfGroup"),
                    shape: attribute("Type"),
                    nodes: Vec::new(),
                    name: attribute("Name"),
                });
                if empty {
                    shapes.extend(current.take());
                }
            }
            (ImportKind::Asap, b"Coordinate") | (ImportKind::ImageScope, b"Vertex") => {
                if let Some(shape) = current.as_mut() {
                    let (Some(x), Some(y)) = (number("X"), number("Y")) else {
                        shape.shape = "invalid".into();
                        continue;
                    };
                    let order = number("Order").map_or(shape.nodes.len(), |o| o as usize);
                    shape.nodes.push((order, x, y));
                }
            }
            (ImportKind::ImageScope, b"Annotation") => layer_name = attribute("Name"),
            (ImportKind::ImageScope, b"Region") => {
                let order = shapes.len();
                let text = attribute("Text");
                current = Some(XmlShape {
                    at: format!("Region[{order}]"),
                    order,
                    type_name: if text.trim().is_empty() {
                        layer_name.clone()
                    } else {
                        text
                    },
                    shape: match attribute("Type").as_str() {
                        "1" | "2" => "Rectangle".into(),
                        "0" => "Polygon".into(),
                        _ => "Spline".into(),
                    },
                    nodes: Vec::new(),
                    name: String::new(),
                });
                if empty {
                    shapes.extend(current.take());
                }
            }
            _ => {}
        }
        buf.clear();
    }
    let mut candidates = Vec::with_capacity(shapes.len());
    for mut shape in shapes {
        let mut refuse = |reason: String| report.refuse_read(shape.at.clone(), shape.order, reason);
        if shape.type_name.trim().is_empty() || shape.type_name == "None" {
            refuse("no type: ASAP's PartOfGroup, or ImageScope's region Text or layer Name".into());
            continue;
        }
        if shape.shape == "invalid" || shape.nodes.is_empty() {
            refuse("a shape needs coordinates, each with a number X and Y".into());
            continue;
        }
        shape.nodes.sort_by_key(|(order, _, _)| *order);
        let nodes: Vec<(f64, f64)> = shape.nodes.iter().map(|&(_, x, y)| (x, y)).collect();
        let [x, y, w, h] = box_around(&nodes);
        let points: &[(f64, f64)] = match shape.shape.as_str() {
            "Rectangle" => &[(x, y), (x + w, y + h)],
            "Dot" => &nodes[..1],
            _ => &nodes,
        };
        candidates.push(Candidate {
            at: shape.at,
            order: shape.order,
            image: image.clone(),
            annotation_type: shape.type_name,
            vector: vector_of_nodes(points),
            concealed: false,
            blurred: false,
            unique_identifier: uuid::Uuid::parse_str(shape.name.trim()).ok(),
            coco_box: Some([x, y, w, h]),
            description: String::new(),
            meta_data: Value::Null,
            normalized: false,
        });
    }
    Ok(candidates)
}

/// Nodes as EXACT's vector `{"x1": .., "y1": .., ..}`.
fn vector_of_nodes(nodes: &[(f64, f64)]) -> Value {
    let mut map = serde_json::Map::new();
    for (n, (x, y)) in nodes.iter().enumerate() {
        map.insert(format!("x{}", n + 1), (*x).into());
        map.insert(format!("y{}", n + 1), (*y).into());
    }
    Value::Object(map)
}

/// The box `[x, y, width, height]` around some nodes (at least one).
fn box_around(nodes: &[(f64, f64)]) -> [f64; 4] {
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for &(x, y) in nodes {
        (min_x, min_y) = (min_x.min(x), min_y.min(y));
        (max_x, max_y) = (max_x.max(x), max_y.max(y));
    }
    [min_x, min_y, max_x - min_x, max_y - min_y]
}

/// A UUID column or field: empty is none.
fn optional_uuid(text: &str) -> Result<Option<uuid::Uuid>, String> {
    match text.trim() {
        "" => Ok(None),
        text => uuid::Uuid::parse_str(text)
            .map(Some)
            .map_err(|_| format!("{text:?} is not a UUID")),
    }
}

/// A JSON column: empty is null.
fn json_or_null(text: &str, what: &str) -> Result<Value, String> {
    match text.trim() {
        "" => Ok(Value::Null),
        text => serde_json::from_str(text).map_err(|e| format!("{what} is not JSON: {e}")),
    }
}

/// Pascal VOC: an `object` per box, its `name` the type, its `bndbox` the box, the image named
/// by `filename` (else by the file, `slide.xml`), and `exact_uuid` where Exact wrote it.
fn parse_voc(
    bytes: &[u8],
    file_name: &str,
    report: &mut ImportReport,
) -> Result<Vec<Candidate>, ApiError> {
    use quick_xml::events::Event;
    let mut filename = String::new();
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    /// Text inside the current element: an object's field, or the image's `filename`.
    fn append(
        object: &mut Option<BTreeMap<String, String>>,
        filename: &mut String,
        path: &[Vec<u8>],
        text: &str,
    ) {
        let Some(leaf) = path.last() else { return };
        let leaf = String::from_utf8_lossy(leaf).into_owned();
        match object.as_mut() {
            Some(fields) => fields.entry(leaf).or_default().push_str(text),
            None if leaf == "filename" => filename.push_str(text),
            None => {}
        }
    }
    let mut objects: Vec<BTreeMap<String, String>> = Vec::new();
    let mut object: Option<BTreeMap<String, String>> = None;
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            ApiError::new(
                Code::InvalidImport,
                format!("not XML at byte {}: {e}", reader.error_position()),
            )
            .with_field("file")
        })?;
        match event {
            Event::Start(e) => {
                let name = e.name().as_ref().to_vec();
                if name == b"object" {
                    object = Some(BTreeMap::new());
                }
                path.push(name);
            }
            Event::End(_) => {
                let closed = path.pop();
                if closed.as_deref() == Some(b"object".as_slice()) {
                    objects.extend(object.take());
                }
            }
            // Text comes in pieces around entity references (`&amp;`): each is appended.
            Event::Text(t) => append(
                &mut object,
                &mut filename,
                &path,
                &String::from_utf8_lossy(&t),
            ),
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_xml_entity(&name)
                        .unwrap_or_default()
                        .to_owned(),
                };
                append(&mut object, &mut filename, &path, &resolved);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let image = match filename.trim() {
        "" => file_name
            .strip_suffix(".xml")
            .unwrap_or(file_name)
            .to_owned(),
        named => named.to_owned(),
    };
    let mut candidates = Vec::with_capacity(objects.len());
    for (i, fields) in objects.into_iter().enumerate() {
        let at = format!("object[{i}]");
        let number = |name: &str| {
            fields
                .get(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
        };
        let (Some(x1), Some(y1), Some(x2), Some(y2)) = (
            number("xmin"),
            number("ymin"),
            number("xmax"),
            number("ymax"),
        ) else {
            report.refuse_read(
                format!("{at}.bndbox"),
                i,
                "a box is xmin, ymin, xmax and ymax, each a number".into(),
            );
            continue;
        };
        let Some(kind) = fields
            .get("name")
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
        else {
            report.refuse_read(format!("{at}.name"), i, "no type: the object's name".into());
            continue;
        };
        let nodes = [(x1, y1), (x2, y2)];
        candidates.push(Candidate {
            at,
            order: i,
            image: image.clone(),
            annotation_type: kind.to_owned(),
            vector: vector_of_nodes(&nodes),
            concealed: false,
            blurred: false,
            unique_identifier: fields
                .get("exact_uuid")
                .and_then(|u| uuid::Uuid::parse_str(u.trim()).ok()),
            coco_box: Some(box_around(&nodes)),
            description: String::new(),
            meta_data: Value::Null,
            normalized: false,
        });
    }
    Ok(candidates)
}
