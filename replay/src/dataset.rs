//! The store as it was at a position, read from the log alone: `exact replay as-of` (what there
//! was) and `exact replay diff` (what changed between two moments).
//!
//! A fold over the events up to the position: sets, images and annotations that were live
//! then, each annotation with its image, its type and its version (every event on its stream
//! counts: a change, a deletion and restoration, a verdict). The read models answer the same
//! questions from their history tables; this one trusts nothing but the log.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use exact_store::{Envelope, EventStore, Result};
use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;

/// A live annotation at the position read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationAt {
    pub image: i64,
    pub annotation_type: i64,
    /// Its stream's version: it moves with every event of the annotation.
    pub version: i64,
    pub deleted: bool,
}

/// The catalog and annotations as they were after `position`.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub position: i64,
    /// The time of the last event read.
    pub recorded_at: Option<DateTime<Utc>>,
    /// Live image sets: id → name.
    pub image_sets: BTreeMap<i64, String>,
    /// Live images: id → (set, name).
    pub images: BTreeMap<i64, (i64, String)>,
    /// Type names, by id (deleted ones too: old annotations name them).
    pub type_names: BTreeMap<i64, String>,
    /// Every annotation ever created, deleted ones marked.
    pub annotations: BTreeMap<i64, AnnotationAt>,
}

/// Where to stop reading: a position, or the last event recorded at or before a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    Position(i64),
    Time(DateTime<Utc>),
}

impl std::str::FromStr for Moment {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        if let Ok(position) = text.parse::<i64>() {
            return Ok(Moment::Position(position));
        }
        text.parse::<DateTime<Utc>>()
            .map(Moment::Time)
            .map_err(|_| format!("{text:?} is neither a log position nor an RFC 3339 time"))
    }
}

impl Dataset {
    /// Reads the log up to `moment`.
    pub async fn at(store: &dyn EventStore, moment: Moment) -> Result<Dataset> {
        let mut dataset = Dataset::default();
        let mut events = store.read_all(1);
        while let Some(event) = events.try_next().await? {
            let after = match moment {
                Moment::Position(p) => event.position > p,
                Moment::Time(t) => event.recorded_at > t,
            };
            if after {
                break;
            }
            dataset.apply(&event);
        }
        Ok(dataset)
    }

    fn apply(&mut self, event: &Envelope) {
        self.position = event.position;
        self.recorded_at = Some(event.recorded_at);
        let Ok(payload) = event.payload_value() else {
            return;
        };
        let id = payload["id"].as_i64().unwrap_or_default();
        // Settings are flattened into the payloads: the name is at the top.
        let name = |payload: &Value| payload["name"].as_str().unwrap_or_default().to_owned();
        match event.event_type.as_str() {
            "ImageSetCreated" | "ImageSetChanged" => {
                self.image_sets.insert(id, name(&payload));
            }
            "ImageSetDeleted" => {
                self.image_sets.remove(&id);
            }
            "ImageAdded" => {
                let set = payload["image_set"].as_i64().unwrap_or_default();
                self.images.insert(id, (set, name(&payload)));
            }
            "ImageDeleted" => {
                self.images.remove(&id);
            }
            "AnnotationTypeCreated" | "AnnotationTypeChanged" => {
                let named = name(&payload);
                if !named.is_empty() {
                    self.type_names.insert(id, named);
                }
            }
            "AnnotationCreated" => {
                self.annotations.insert(
                    id,
                    AnnotationAt {
                        image: payload["image"].as_i64().unwrap_or_default(),
                        annotation_type: payload["annotation_type"].as_i64().unwrap_or_default(),
                        version: event.version,
                        deleted: false,
                    },
                );
            }
            kind if kind.starts_with("Annotation") && event.stream.starts_with("annotation-") => {
                if let Some(annotation) = self.annotations.get_mut(&id) {
                    annotation.version = event.version;
                    if let Some(t) = payload["annotation_type"].as_i64() {
                        annotation.annotation_type = t;
                    }
                    match kind {
                        "AnnotationDeleted" => annotation.deleted = true,
                        "AnnotationRestored" => annotation.deleted = false,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// Annotations live at this moment: not deleted, on a live image of a live set.
    pub fn live(&self) -> impl Iterator<Item = (&i64, &AnnotationAt)> {
        self.annotations.iter().filter(|(_, a)| {
            !a.deleted
                && self
                    .images
                    .get(&a.image)
                    .is_some_and(|(set, _)| self.image_sets.contains_key(set))
        })
    }

    fn type_name(&self, id: i64) -> String {
        self.type_names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("type {id}"))
    }

    /// What `exact replay as-of` prints: sets with their images and live annotations per type.
    pub fn summary(&self) -> Summary {
        let mut sets: BTreeMap<i64, SetSummary> = self
            .image_sets
            .iter()
            .map(|(id, name)| {
                let summary = SetSummary {
                    id: *id,
                    name: name.clone(),
                    images: 0,
                    annotations: 0,
                    per_type: BTreeMap::new(),
                };
                (*id, summary)
            })
            .collect();
        for (set, _) in self.images.values() {
            if let Some(summary) = sets.get_mut(set) {
                summary.images += 1;
            }
        }
        for (_, annotation) in self.live() {
            let set = self.images[&annotation.image].0;
            let summary = sets
                .get_mut(&set)
                .expect("live annotations are in live sets");
            summary.annotations += 1;
            *summary
                .per_type
                .entry(self.type_name(annotation.annotation_type))
                .or_default() += 1;
        }
        Summary {
            position: self.position,
            recorded_at: self.recorded_at,
            image_sets: sets.into_values().collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub position: i64,
    pub recorded_at: Option<DateTime<Utc>>,
    pub image_sets: Vec<SetSummary>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SetSummary {
    pub id: i64,
    pub name: String,
    pub images: u64,
    pub annotations: u64,
    /// Live annotations per type name.
    pub per_type: BTreeMap<String, u64>,
}

/// What changed between two moments: annotations added, removed and changed (by id), with
/// counts per type and per image.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Diff {
    pub from: i64,
    pub to: i64,
    pub added: Vec<i64>,
    pub removed: Vec<i64>,
    pub changed: Vec<i64>,
    /// Type name → [added, removed, changed].
    pub per_type: BTreeMap<String, [u64; 3]>,
    /// Image id → [added, removed, changed].
    pub per_image: BTreeMap<i64, [u64; 3]>,
}

/// The difference between the live annotations of `before` and `after`.
pub fn diff(before: &Dataset, after: &Dataset) -> Diff {
    let then: BTreeMap<i64, &AnnotationAt> = before.live().map(|(id, a)| (*id, a)).collect();
    let now: BTreeMap<i64, &AnnotationAt> = after.live().map(|(id, a)| (*id, a)).collect();
    let mut diff = Diff {
        from: before.position,
        to: after.position,
        ..Diff::default()
    };
    let mut count = |dataset: &Dataset, annotation: &AnnotationAt, slot: usize| {
        diff.per_type
            .entry(dataset.type_name(annotation.annotation_type))
            .or_default()[slot] += 1;
        diff.per_image.entry(annotation.image).or_default()[slot] += 1;
    };
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for (id, annotation) in &now {
        match then.get(id) {
            None => {
                added.push(*id);
                count(after, annotation, 0);
            }
            Some(old) if old.version != annotation.version => {
                changed.push(*id);
                count(after, annotation, 2);
            }
            Some(_) => {}
        }
    }
    for (id, annotation) in &then {
        if !now.contains_key(id) {
            removed.push(*id);
            count(before, annotation, 1);
        }
    }
    diff.added = added;
    diff.removed = removed;
    diff.changed = changed;
    diff
}
