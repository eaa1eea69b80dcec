//! Exports are projections of the log: a set's dataset is read as it stood at one log position
//! (the set, its team, its images, the types and users its annotations name, the annotations and
//! the verdicts on them), and each format is a pure function of that dataset. The same
//! position gives the same dataset whatever was written since, so the same bytes.
//!
//! Names come from folding each stream up to the position (a type renamed later keeps its old
//! name in an export of before); annotations come from the history's as-of query.

pub mod asap;
pub mod coco;
pub mod csv;
pub mod diff;
pub mod exact_template;
pub mod geojson;
mod numbers;
pub mod voc;
pub mod yolo;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use exact_domain::aggregate::{
    Aggregate, AnnotationTypeAggregate, ImageAggregate, ImageSetAggregate, TeamAggregate,
    UserAggregate,
};
use exact_domain::annotation::AnnotationEvent;
use exact_domain::vector::{Vector, VectorType};
use exact_domain::DomainEvent;
use exact_store::EventStore;

use crate::annotation_query::{AnnotationQuery, QueryError};
use crate::annotations::AnnotationRow;
use crate::read::ReadDb;

pub use numbers::{json_number, py_float};

/// A set as it stood at `position`: everything an export format reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The log position read at.
    pub position: i64,
    /// When that position was recorded, microseconds since 1970.
    pub read_at: i64,
    /// The chain hash of the event at that position: what ties the export to the log.
    pub chain_hash: exact_store::Hash,
    pub set: SetRecord,
    /// The set's images then, by name (then id).
    pub images: Vec<ImageRecord>,
    /// The types the annotations (or the format) name, by id.
    pub types: BTreeMap<i64, TypeRecord>,
    /// Usernames of the annotations' creators and last editors, by id.
    pub users: BTreeMap<i64, String>,
    /// Every annotation of the set's images, deleted ones included, by image then id.
    pub annotations: Vec<AnnotationRow>,
    /// Accepts and rejects per annotation (only annotations with a verdict).
    pub verdicts: HashMap<i64, Verdicts>,
    /// Who opened and closed the images, image by image (as `images`), oldest first: read
    /// only for a format that lists them (EXACT's `%%view`), by [`add_views`].
    pub views: Vec<View>,
}

/// An entry of an image's access log as it stood: EXACT's `LogImageAction`.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    pub image: i64,
    pub user: i64,
    /// When it was recorded, microseconds since 1970.
    pub at: i64,
    /// 1 opened, 2 closed.
    pub action: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SetRecord {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub location: String,
    /// The team's name; empty once the set was set free.
    pub team: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ImageRecord {
    pub id: i64,
    pub name: String,
    pub width: i64,
    pub height: i64,
    pub frames: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TypeRecord {
    pub id: i64,
    pub name: String,
    pub vector_type: VectorType,
    pub color_code: String,
    pub closed: bool,
    pub enable_blurred: bool,
    pub enable_concealed: bool,
    pub sort_order: i64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    pub accepted: i64,
    pub rejected: i64,
}

impl Verdicts {
    /// imagetagger's measure, which EXACT's `min_verifications` was meant to apply.
    pub fn balance(self) -> i64 {
        self.accepted - self.rejected
    }
}

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the image set did not exist at position {0}")]
    NoSetThen(i64),
    #[error("position {position} is beyond the log's head ({head})")]
    BeyondHead { position: i64, head: i64 },
    #[error("event at position {position} does not decode: {reason}")]
    Corrupt { position: i64, reason: String },
    #[error(transparent)]
    Store(#[from] exact_store::StoreError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<QueryError> for ExportError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Database(e) => ExportError::Database(e),
            QueryError::Invalid(why) => ExportError::Database(sqlx::Error::Protocol(why.into())),
        }
    }
}

/// Aggregate `id` folded up to `position`; `None` if it did not exist then.
pub async fn state_at<A: Aggregate>(
    store: &dyn EventStore,
    id: i64,
    position: i64,
) -> Result<Option<A::State>, ExportError> {
    Ok(versioned_state_at::<A>(store, id, position).await?.0)
}

/// Aggregate `id` folded up to `position`, with its stream's version then (0: no stream yet).
pub async fn versioned_state_at<A: Aggregate>(
    store: &dyn EventStore,
    id: i64,
    position: i64,
) -> Result<(Option<A::State>, i64), ExportError> {
    let mut state = None;
    let mut version = 0;
    for envelope in store.read_stream(&A::stream(id), 1).await? {
        if envelope.position > position {
            break;
        }
        if let Some(event) = A::Event::from_json(&envelope.event_type, &envelope.payload) {
            let event = event.map_err(|e| ExportError::Corrupt {
                position: envelope.position,
                reason: e.to_string(),
            })?;
            state = A::evolve(state, &event);
        }
        version = envelope.version;
    }
    Ok((state, version))
}

/// Set `set` as it stood at `position`, with the types in `extra_types` too (a format's).
pub async fn read_dataset(
    store: &dyn EventStore,
    read: &ReadDb,
    set: i64,
    position: i64,
    extra_types: &BTreeSet<i64>,
) -> Result<Dataset, ExportError> {
    let head = store.last_position().await?;
    if position > head || position < 1 {
        return Err(ExportError::BeyondHead { position, head });
    }
    let (read_at, chain_hash) = store
        .read_page(position, 1)
        .await?
        .first()
        .map_or((0, [0; 32]), |e| (e.recorded_at.timestamp_micros(), e.hash));
    let image_set = state_at::<ImageSetAggregate>(store, set, position)
        .await?
        .filter(|s| !s.deleted)
        .ok_or(ExportError::NoSetThen(position))?;
    let team = match image_set.team {
        Some(team) => state_at::<TeamAggregate>(store, team, position)
            .await?
            .map(|t| t.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut images = Vec::new();
    for id in read.image_ids_of_sets(&[set]).await? {
        if let Some(image) = state_at::<ImageAggregate>(store, id, position).await? {
            if !image.deleted && image.image_set == set {
                images.push(ImageRecord {
                    id,
                    name: image.file.name,
                    width: image.file.width,
                    height: image.file.height,
                    frames: image.file.frames,
                });
            }
        }
    }
    images.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let image_ids: Vec<i64> = images.iter().map(|i| i.id).collect();
    let mut annotations = read
        .annotations(&AnnotationQuery {
            images: Some(image_ids.clone()),
            as_of: Some(position),
            ..AnnotationQuery::default()
        })
        .await?;
    let order: HashMap<i64, usize> = image_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    annotations.sort_unstable_by_key(|a| (order.get(&a.image).copied(), a.id));

    let mut type_ids: BTreeSet<i64> = annotations.iter().map(|a| a.annotation_type).collect();
    type_ids.extend(extra_types);
    let mut types = BTreeMap::new();
    for id in type_ids {
        if let Some(t) = state_at::<AnnotationTypeAggregate>(store, id, position).await? {
            types.insert(
                id,
                TypeRecord {
                    id,
                    name: t.settings.name,
                    vector_type: t.vector_type,
                    color_code: t.settings.color_code,
                    closed: t.settings.closed,
                    enable_blurred: t.settings.enable_blurred,
                    enable_concealed: t.settings.enable_concealed,
                    sort_order: t.settings.sort_order,
                },
            );
        }
    }
    let user_ids: BTreeSet<i64> = annotations
        .iter()
        .flat_map(|a| [Some(a.user_id), a.last_editor])
        .flatten()
        .collect();
    let mut users = BTreeMap::new();
    for id in user_ids {
        if let Some(u) = state_at::<UserAggregate>(store, id, position).await? {
            users.insert(id, u.username);
        }
    }
    let verdicts = verdicts_at(read, &image_ids, position).await?;
    Ok(Dataset {
        position,
        read_at,
        chain_hash,
        set: SetRecord {
            id: set,
            name: image_set.settings.name,
            description: image_set.settings.description,
            location: image_set.settings.location,
            team,
        },
        images,
        types,
        users,
        annotations,
        verdicts,
        views: Vec::new(),
    })
}

/// Set `set` at `position` as `format` (EXACT's language; `None` for the fixed formats)
/// reads it: with the types the format names even where nothing uses them, and the image log
/// when it lists it.
pub async fn read_dataset_for(
    store: &dyn EventStore,
    read: &ReadDb,
    set: i64,
    position: i64,
    format: Option<&exact_domain::export_format::FormatSettings>,
) -> Result<Dataset, ExportError> {
    let types = format
        .map(|f| f.annotations_types.clone())
        .unwrap_or_default();
    let mut dataset = read_dataset(store, read, set, position, &types).await?;
    if format.is_some_and(exact_template::uses_views) {
        add_views(store, &mut dataset).await?;
    }
    Ok(dataset)
}

/// Fills `dataset.views` with the access log of its images as it stood at its position
/// (entries corrected or retracted later are as they were then), and the viewers' names.
pub async fn add_views(store: &dyn EventStore, dataset: &mut Dataset) -> Result<(), ExportError> {
    use exact_domain::image::ImageAccessEvent;
    let mut views: Vec<(i64, View)> = Vec::new();
    for image in &dataset.images {
        // Entries by the position that recorded them, as EXACT's rows by id.
        let mut entries: BTreeMap<i64, View> = BTreeMap::new();
        let stream = exact_domain::image::access_stream(image.id);
        for envelope in store.read_stream(&stream, 1).await? {
            if envelope.position > dataset.position {
                break;
            }
            let Some(event) = ImageAccessEvent::from_json(&envelope.event_type, &envelope.payload)
            else {
                continue;
            };
            let event = event.map_err(|e| ExportError::Corrupt {
                position: envelope.position,
                reason: e.to_string(),
            })?;
            let at = envelope.recorded_at.timestamp_micros();
            let (user, action) = match event {
                ImageAccessEvent::ImageOpened { user, .. } => (user, 1),
                ImageAccessEvent::ImageClosed { user, .. } => (user, 2),
                ImageAccessEvent::ImageAccessCorrected { entry, action, .. } => {
                    if let Some(view) = entries.get_mut(&entry) {
                        view.action = action;
                    }
                    continue;
                }
                ImageAccessEvent::ImageAccessRetracted { entry, .. } => {
                    entries.remove(&entry);
                    continue;
                }
            };
            let image = image.id;
            let view = View {
                image,
                user,
                at,
                action,
            };
            entries.insert(envelope.position, view);
        }
        views.extend(entries);
    }
    let viewers: BTreeSet<i64> = views.iter().map(|(_, v)| v.user).collect();
    for id in viewers {
        if !dataset.users.contains_key(&id) {
            if let Some(u) = state_at::<UserAggregate>(store, id, dataset.position).await? {
                dataset.users.insert(id, u.username);
            }
        }
    }
    dataset.views = views.into_iter().map(|(_, v)| v).collect();
    Ok(())
}

/// Set `set` at `position` as a diff sees it: before the set was made (or once it was
/// deleted) there was nothing in it.
pub async fn read_dataset_or_empty(
    store: &dyn EventStore,
    read: &ReadDb,
    set: i64,
    position: i64,
) -> Result<Dataset, ExportError> {
    match read_dataset(store, read, set, position, &BTreeSet::new()).await {
        Err(ExportError::NoSetThen(_)) => Ok(Dataset::empty(set, position)),
        other => other,
    }
}

/// Each annotation's accepts and rejects at `position`: its verdict events up to then (found
/// through the history, read from the log), folded per user.
async fn verdicts_at(
    read: &ReadDb,
    images: &[i64],
    position: i64,
) -> Result<HashMap<i64, Verdicts>, ExportError> {
    let mut by_user: BTreeMap<(i64, i64), bool> = BTreeMap::new();
    for (event_type, payload) in read.verdict_events(images, position).await? {
        let Some(event) = AnnotationEvent::from_json(&event_type, &payload) else {
            continue;
        };
        match event {
            Ok(AnnotationEvent::AnnotationVerified {
                id, user, verified, ..
            }) => {
                by_user.insert((id, user), verified);
            }
            Ok(AnnotationEvent::AnnotationVerdictWithdrawn { id, user }) => {
                by_user.remove(&(id, user));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(ExportError::Corrupt {
                    position,
                    reason: e.to_string(),
                })
            }
        }
    }
    let mut verdicts: HashMap<i64, Verdicts> = HashMap::new();
    for ((annotation, _), verified) in by_user {
        let v = verdicts.entry(annotation).or_default();
        if verified {
            v.accepted += 1;
        } else {
            v.rejected += 1;
        }
    }
    Ok(verdicts)
}

impl Dataset {
    /// The set before it existed (or after it was deleted): nothing in it, as a diff from
    /// before its creation sees it.
    pub fn empty(set: i64, position: i64) -> Dataset {
        Dataset {
            position,
            read_at: 0,
            chain_hash: [0; 32],
            set: SetRecord {
                id: set,
                name: String::new(),
                description: String::new(),
                location: String::new(),
                team: String::new(),
            },
            images: Vec::new(),
            types: BTreeMap::new(),
            users: BTreeMap::new(),
            annotations: Vec::new(),
            verdicts: HashMap::new(),
            views: Vec::new(),
        }
    }

    /// The images by id.
    pub fn image_map(&self) -> HashMap<i64, &ImageRecord> {
        self.images.iter().map(|i| (i.id, i)).collect()
    }

    /// The annotations that are not deleted, in export order.
    pub fn live(&self) -> impl Iterator<Item = &AnnotationRow> {
        self.annotations.iter().filter(|a| !a.deleted)
    }

    pub fn username(&self, id: i64) -> &str {
        self.users.get(&id).map_or("", String::as_str)
    }
}

/// An annotation's vector parsed; `None` for "not in image" and for a vector that does not parse
/// (the read model only holds validated ones).
pub fn vector_of(row: &AnnotationRow) -> Option<Vector> {
    let text = row.vector.as_deref()?;
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    Vector::from_json(&value).ok().flatten()
}

/// A time as RFC 3339 in UTC with microseconds, as the API writes times.
pub fn rfc3339(micros: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}
