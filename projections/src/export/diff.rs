//! What changed in a set between two moments: the annotations added (live at the second, not
//! at the first), removed (the other way round) and changed (live at both, with another
//! shape, type, flags, description or metadata), with counts per type and per image. Names
//! are the second moment's (a type renamed in between is counted under its new name).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::Dataset;
use crate::annotations::AnnotationRow;

/// At most this many ids of each kind are listed; the counts are always whole.
pub const LISTED: usize = 1_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Diff {
    pub image_set: i64,
    pub from: i64,
    pub to: i64,
    /// In all (its own object: flattened, its names would be written twice, beside the ids).
    pub total: Counts,
    /// By type name.
    pub by_type: BTreeMap<String, Counts>,
    /// By image name.
    pub by_image: BTreeMap<String, Counts>,
    /// The ids, at most [`LISTED`] of each.
    pub added: Vec<i64>,
    pub removed: Vec<i64>,
    pub changed: Vec<i64>,
}

/// The difference from `before` to `after` (the same set at two positions).
pub fn diff(before: &Dataset, after: &Dataset) -> Diff {
    let then: HashMap<i64, &AnnotationRow> = before.live().map(|a| (a.id, a)).collect();
    let now: HashMap<i64, &AnnotationRow> = after.live().map(|a| (a.id, a)).collect();
    let mut result = Diff {
        image_set: after.set.id,
        from: before.position,
        to: after.position,
        total: Counts::default(),
        by_type: BTreeMap::new(),
        by_image: BTreeMap::new(),
        added: Vec::new(),
        removed: Vec::new(),
        changed: Vec::new(),
    };
    let type_name = |dataset: &Dataset, id: i64| {
        dataset
            .types
            .get(&id)
            .map_or_else(|| format!("type {id}"), |t| t.name.clone())
    };
    let image_names: HashMap<i64, String> = before
        .images
        .iter()
        .chain(&after.images)
        .map(|i| (i.id, i.name.clone()))
        .collect();
    let count = |result: &mut Diff, a: &AnnotationRow, dataset: &Dataset, kind: Kind| {
        let image = image_names
            .get(&a.image)
            .cloned()
            .unwrap_or_else(|| format!("image {}", a.image));
        for counts in [
            &mut result.total,
            result
                .by_type
                .entry(type_name(dataset, a.annotation_type))
                .or_default(),
            result.by_image.entry(image).or_default(),
        ] {
            match kind {
                Kind::Added => counts.added += 1,
                Kind::Removed => counts.removed += 1,
                Kind::Changed => counts.changed += 1,
            }
        }
        let ids = match kind {
            Kind::Added => &mut result.added,
            Kind::Removed => &mut result.removed,
            Kind::Changed => &mut result.changed,
        };
        if ids.len() < LISTED {
            ids.push(a.id);
        }
    };
    let mut ids: Vec<i64> = now.keys().chain(then.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        match (then.get(&id), now.get(&id)) {
            (None, Some(a)) => count(&mut result, a, after, Kind::Added),
            (Some(a), None) => count(&mut result, a, before, Kind::Removed),
            (Some(old), Some(new)) if differs(old, new) => {
                count(&mut result, new, after, Kind::Changed);
            }
            _ => {}
        }
    }
    result
}

#[derive(Clone, Copy)]
enum Kind {
    Added,
    Removed,
    Changed,
}

/// Whether what an annotation says changed (not only who last touched it or a verdict).
fn differs(old: &AnnotationRow, new: &AnnotationRow) -> bool {
    old.image != new.image
        || old.annotation_type != new.annotation_type
        || old.vector != new.vector
        || old.description != new.description
        || old.meta_data != new.meta_data
        || old.concealed != new.concealed
        || old.blurred != new.blurred
}
