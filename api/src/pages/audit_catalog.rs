//! The set's and its images' own events in the audit timelines of a set and of an image: a
//! set made, renamed, switched to clinical mode or public, freed or deleted; an image added,
//! corrected or deleted. Each is read from its stream in the log (a set has one, each image
//! one) and shown as the annotations' are: who, when, why, from where, and each field's value
//! before and after (the stream folded up to the event).

use serde_json::{Map, Value};

use exact_domain::image::ImageEvent;
use exact_domain::image_set::ImageSetEvent;
use exact_domain::DomainEvent;
use exact_projections::timeline::{TimelineFilter, TimelineScope};

use super::audit::{shown, user_name, Entry, FieldChange};
use crate::error::ApiError;
use crate::rest::params::format_time;
use crate::AppState;

/// The event types these timelines add to the annotations'.
pub(super) const EVENT_TYPES: &[&str] = &[
    "ImageSetCreated",
    "ImageSetChanged",
    "ImageSetFreed",
    "ImageSetDeleted",
    "ImageAdded",
    "ImageDescribed",
    "ImageDeleted",
];

/// The set's and images' events `filter` selects for its scope (none for an annotation's or a
/// user's timeline), newest first or oldest first as it asks, at most `filter.limit`.
pub(super) async fn catalog_entries(
    state: &AppState,
    filter: &TimelineFilter,
    names: &std::collections::BTreeMap<i64, String>,
) -> Result<Vec<Entry>, ApiError> {
    // The set's own stream and its images' (deleted ones too), read in one query each.
    let (set, images) = match filter.scope {
        TimelineScope::ImageSet(id) => (Some(id), state.read.images_of_set(id).await?),
        TimelineScope::Image(id) => (None, vec![id]),
        TimelineScope::Annotation(_) | TimelineScope::User(_) => return Ok(Vec::new()),
    };
    let mut events = state
        .read
        .events_of_streams("image_set", set.as_slice())
        .await?;
    events.extend(state.read.events_of_streams("image", &images).await?);
    let mut entries = Vec::new();
    // The stream's fields as they stand after each event: what an event changed. The events
    // come stream by stream, oldest first.
    let mut fields: Map<String, Value> = Map::new();
    let mut stream = String::new();
    for event in events {
        if event.stream != stream {
            stream.clone_from(&event.stream);
            fields = Map::new();
        }
        let known = <ImageSetEvent as DomainEvent>::NAMES
            .iter()
            .chain(<ImageEvent as DomainEvent>::NAMES)
            .any(|t| *t == event.event_type);
        if !known {
            continue;
        }
        let payload: Value = serde_json::from_str(&event.payload).unwrap_or_default();
        let mut after = fields.clone();
        if let Value::Object(given) = &payload {
            for (key, value) in given {
                if key != "id" {
                    after.insert(key.clone(), value.clone());
                }
            }
        }
        // A set's settings are written whole; `clinical` only when on (EVENTS.md).
        let whole = matches!(
            event.event_type.as_str(),
            "ImageSetCreated" | "ImageSetChanged"
        );
        if whole && payload.get("clinical").is_none() {
            after.insert("clinical".into(), Value::Bool(false));
        }
        if event.event_type.ends_with("Deleted") {
            after.insert("deleted".into(), Value::Bool(true));
        }
        let changes = field_changes(&fields, &after);
        fields = after;
        let selected = filter.before.is_none_or(|b| event.position < b)
            && filter.up_to.is_none_or(|u| event.position <= u)
            && filter.since.is_none_or(|s| event.recorded_at >= s)
            && filter.until.is_none_or(|u| event.recorded_at <= u)
            && (filter.event_types.is_empty() || filter.event_types.contains(&event.event_type));
        if !selected {
            continue;
        }
        let (subject, link) = match event.stream.split_once('-') {
            Some(("image_set", id)) => (format!("image set {id}"), format!("/audit/?set={id}")),
            Some((_, id)) => (format!("image {id}"), format!("/audit/?image={id}")),
            None => (event.stream.clone(), String::new()),
        };
        let metadata: Option<exact_store::Metadata> = serde_json::from_str(&event.metadata).ok();
        entries.push(Entry {
            position: event.position,
            time: format_time(event.recorded_at),
            event: event.event_type.clone(),
            subject,
            subject_link: Some(link),
            annotation: 0,
            user: user_name(names, metadata.as_ref().and_then(|m| m.actor)),
            verdict: None,
            changes,
            reason: metadata.as_ref().and_then(|m| m.reason.clone()),
            source: metadata
                .as_ref()
                .map(|m| format!("{:?}", m.source).to_lowercase())
                .unwrap_or_default(),
            address: metadata.and_then(|m| m.client_addr),
        });
    }
    entries.sort_by_key(|e| e.position);
    if !filter.ascending {
        entries.reverse();
    }
    entries.truncate(usize::try_from(filter.limit).unwrap_or(0));
    Ok(entries)
}

/// The fields whose value differs between `before` and `after`, by name.
fn field_changes(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<FieldChange> {
    let text = |value: Option<&Value>| match value {
        None | Some(Value::Null) => "—".to_owned(),
        Some(Value::String(s)) => shown(Some(s)),
        Some(other) => shown(Some(&other.to_string())),
    };
    let mut changes: Vec<FieldChange> = after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(*value))
        .map(|(key, value)| FieldChange {
            field: key.clone(),
            old: text(before.get(key)),
            new: text(Some(value)),
        })
        .collect();
    changes.sort_by(|a, b| a.field.cmp(&b.field));
    changes
}
