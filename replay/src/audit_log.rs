//! `exact replay log`: the auditor's view of the log, every event that matches a filter as one
//! JSON line (the envelope as exported: who, when, from where, why, what).
//!
//! An event concerns an image when it is in the image's stream, names the image in its payload,
//! or belongs to an annotation on it (an annotation's later events name only the annotation,
//! and a verdict or attached file names only its annotation); it concerns a set through its
//! stream, its payload, or an image of the set. Those links are learned from the log itself as
//! it is read, from position 1 whatever range is asked for: nothing but the log is trusted.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use exact_store::{Envelope, EventStore, Result};
use futures_util::TryStreamExt;
use serde_json::Value;

/// Which events to write; every condition given must hold (a list: any of its values).
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    pub streams: Vec<String>,
    pub actors: Vec<i64>,
    pub types: Vec<String>,
    pub image_sets: Vec<i64>,
    pub images: Vec<i64>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// First and last position (inclusive) written.
    pub from: i64,
    pub to: Option<i64>,
}

/// What the log says links things to images and sets, learned while reading it.
#[derive(Default)]
struct Links {
    image_of_annotation: HashMap<i64, i64>,
    set_of_image: HashMap<i64, i64>,
}

impl Links {
    fn learn(&mut self, event: &Envelope, payload: &Value) {
        let id = payload["id"].as_i64();
        match (event.event_type.as_str(), id) {
            ("AnnotationCreated", Some(id)) => {
                if let Some(image) = payload["image"].as_i64() {
                    self.image_of_annotation.insert(id, image);
                }
            }
            ("ImageAdded", Some(id)) => {
                if let Some(set) = payload["image_set"].as_i64() {
                    self.set_of_image.insert(id, set);
                }
            }
            _ => {}
        }
    }

    /// The image an event concerns, if any.
    fn image(&self, event: &Envelope, payload: &Value) -> Option<i64> {
        if let Some(id) = stream_id(&event.stream, "image-") {
            return Some(id);
        }
        if let Some(image) = payload["image"].as_i64() {
            return Some(image);
        }
        let annotation =
            stream_id(&event.stream, "annotation-").or_else(|| payload["annotation"].as_i64())?;
        self.image_of_annotation.get(&annotation).copied()
    }

    /// The image set an event concerns, if any.
    fn image_set(&self, event: &Envelope, payload: &Value, image: Option<i64>) -> Option<i64> {
        stream_id(&event.stream, "image_set-")
            .or_else(|| payload["image_set"].as_i64())
            .or_else(|| image.and_then(|i| self.set_of_image.get(&i).copied()))
    }
}

/// The id in a stream name such as `image-12`.
fn stream_id(stream: &str, prefix: &str) -> Option<i64> {
    stream.strip_prefix(prefix)?.parse().ok()
}

/// Reads the whole log in order and gives `write` every event that matches `filter`; returns
/// how many matched.
pub async fn log(
    store: &dyn EventStore,
    filter: &LogFilter,
    mut write: impl FnMut(&Envelope) -> std::io::Result<()>,
) -> Result<u64> {
    let mut links = Links::default();
    let mut matched = 0;
    let scoped = !filter.images.is_empty() || !filter.image_sets.is_empty();
    let mut events = store.read_all(1);
    while let Some(event) = events.try_next().await? {
        if filter.to.is_some_and(|to| event.position > to) {
            break;
        }
        // Payloads are read only where links are learned or a scope is asked for.
        let payload = if scoped
            || matches!(
                event.event_type.as_str(),
                "AnnotationCreated" | "ImageAdded"
            ) {
            event.payload_value().unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        links.learn(&event, &payload);
        if event.position < filter.from || !matches(filter, &links, &event, &payload) {
            continue;
        }
        write(&event).map_err(exact_store::StoreError::Io)?;
        matched += 1;
    }
    Ok(matched)
}

fn matches(filter: &LogFilter, links: &Links, event: &Envelope, payload: &Value) -> bool {
    let any = |list: &[i64], value: Option<i64>| {
        list.is_empty() || value.is_some_and(|v| list.contains(&v))
    };
    if !filter.streams.is_empty() && !filter.streams.contains(&event.stream) {
        return false;
    }
    if !filter.types.is_empty() && !filter.types.contains(&event.event_type) {
        return false;
    }
    if filter.since.is_some_and(|t| event.recorded_at < t)
        || filter.until.is_some_and(|t| event.recorded_at > t)
    {
        return false;
    }
    if !filter.actors.is_empty() {
        let actor = event.metadata().ok().and_then(|m| m.actor);
        if !any(&filter.actors, actor) {
            return false;
        }
    }
    let image = links.image(event, payload);
    any(&filter.images, image) && any(&filter.image_sets, links.image_set(event, payload, image))
}
