//! Live updates: `GET /api/v1/events/?image_set=ID` (or `?image=ID`) streams, as Server-Sent
//! Events, every change to the annotations, images and settings of that set or image, each with
//! its log position as the event id. A client that reconnects with `Last-Event-ID` (or
//! `?after=POSITION`) gets everything it missed, in order, then new changes as they commit.
//!
//! Read access is checked when the stream opens and again before each batch is sent: a member
//! removed from the team stops receiving at once. Only events about the watched set or image
//! are sent (never account events).

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use exact_domain::{Actor, DomainError};
use exact_store::Envelope;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::lenient;
use super::input::wrong;
use super::params::{format_time, Params};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::AppState;

/// Events read from the log per batch.
const PAGE: i64 = 500;
/// How often a stream looks for the database again while it is out of reach.
const RETRY: Duration = Duration::from_secs(1);

pub fn router() -> Router<AppState> {
    Router::new().route("/events/", get(events))
}

/// What a subscriber watches.
#[derive(Clone, Debug)]
struct Watch {
    actor: Actor,
    image_set: i64,
    /// One image of the set, or all of them.
    image: Option<i64>,
    /// Annotations known to be on the watched images.
    annotations: BTreeSet<i64>,
    /// Images known to be in the set.
    images: BTreeSet<i64>,
}

/// What a live update stream's query reads: its set or image, and where to resume.
#[derive(Debug, Deserialize)]
struct StreamQuery {
    #[serde(default, deserialize_with = "lenient::int")]
    image_set: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    image: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    after: Option<i64>,
}

/// Live updates of an image set or image (Server-Sent Events)
#[utoipa::path(get, path = "/events/", responses((status = 200, body = String, content_type = "text/event-stream")))]
async fn events(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let query: StreamQuery = params.filters()?;
    let (image_set, image) = match (query.image_set, query.image) {
        (Some(set), None) => (set, None),
        (None, Some(image)) => {
            let row = state
                .read
                .image(image)
                .await?
                .filter(|i| !i.deleted)
                .ok_or(DomainError::NotFound("image"))?;
            (row.image_set, Some(image))
        }
        _ => return Err(wrong("image_set", "given, or image (one of the two)")),
    };
    state.commands.set_access(&auth.caller, image_set).await?;
    let after = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(text) => Some(
            text.trim()
                .parse::<i64>()
                .map_err(|_| wrong("Last-Event-ID", "a log position this stream sent"))?,
        ),
        None => query.after,
    };
    let head = state.store.last_position().await?;
    let from = after.unwrap_or(head) + 1;
    let images = state
        .read
        .readable_images(auth.caller.actor, Some(image_set))
        .await?
        .iter()
        .map(|i| i.id)
        .filter(|id| image.is_none_or(|one| one == *id))
        .collect();
    let watch = Watch {
        actor: auth.caller.actor,
        image_set,
        image,
        annotations: BTreeSet::new(),
        images,
    };
    let committed = state.store.subscribe();
    let stream = stream::unfold(
        (state, watch, committed, from, Vec::<Event>::new(), false),
        |(state, mut watch, mut committed, mut from, mut pending, ended)| async move {
            loop {
                if let Some(event) = pending.pop() {
                    return Some((Ok(event), (state, watch, committed, from, pending, ended)));
                }
                if ended {
                    return None;
                }
                // Still allowed to read the set? (While the database is out of reach, the
                // stream waits for it, keep-alives flowing, and goes on where it was: a
                // browser's EventSource would not reconnect to a refusal.)
                match state.read.readable_set(watch.actor, watch.image_set).await {
                    Ok(Some(_)) => {}
                    Err(e) if exact_store::is_unavailable(&e) => {
                        tracing::warn!(error = %e, "live updates wait for the database");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                    _ => {
                        let bye = Event::default()
                            .event("closed")
                            .data(r#"{"reason":"the image set is no longer readable"}"#);
                        return Some((Ok(bye), (state, watch, committed, from, pending, true)));
                    }
                }
                let page = match state.store.read_page(from, PAGE).await {
                    Ok(page) => page,
                    Err(e) if e.is_unavailable() => {
                        tracing::warn!(error = %e, "live updates wait for the database");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reading the log for live updates failed");
                        return None;
                    }
                };
                if page.is_empty() {
                    // Wait for the next commit (a minute at most, then look again).
                    let _ =
                        tokio::time::timeout(Duration::from_secs(60), committed.changed()).await;
                    continue;
                }
                from = page.last().map_or(from, |e| e.position + 1);
                let mut batch = Vec::new();
                for envelope in &page {
                    if let Some(event) = relevant(&state, &mut watch, envelope).await {
                        batch.push(event);
                    }
                }
                batch.reverse();
                pending = batch;
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The SSE event for `envelope` if it concerns what `watch` watches.
async fn relevant(state: &AppState, watch: &mut Watch, envelope: &Envelope) -> Option<Event> {
    let payload: Value = envelope.payload_value().ok()?;
    let (kind, id) = envelope.stream.rsplit_once('-')?;
    let id: i64 = id.parse().ok()?;
    let concerns = match kind {
        "image_set" => id == watch.image_set && watch.image.is_none(),
        "image" => {
            if envelope.event_type == "ImageAdded" {
                let in_set = payload["image_set"].as_i64() == Some(watch.image_set);
                if in_set && watch.image.is_none() {
                    watch.images.insert(id);
                }
                in_set && watch.image.is_none()
            } else {
                watch.images.contains(&id)
            }
        }
        "annotation" => {
            if let Some(image) = payload["image"].as_i64() {
                // Created: the payload names the image.
                let ours = watch.images.contains(&image);
                if ours {
                    watch.annotations.insert(id);
                }
                ours
            } else if watch.annotations.contains(&id) {
                true
            } else {
                // Created before this stream began: its image, from the read model.
                let row = state.read.image_of_annotation(id).await.ok().flatten();
                let ours = row.is_some_and(|image| watch.images.contains(&image));
                if ours {
                    watch.annotations.insert(id);
                }
                ours
            }
        }
        _ => false,
    };
    if !concerns {
        return None;
    }
    let metadata = envelope.metadata().ok()?;
    let data = json!({
        "position": envelope.position,
        "stream": envelope.stream,
        "version": envelope.version,
        "type": envelope.event_type,
        "time": format_time(envelope.recorded_at.timestamp_micros()),
        "user": metadata.actor,
        "reason": metadata.reason,
        "payload": payload,
    });
    Some(
        Event::default()
            .id(envelope.position.to_string())
            .event(envelope.event_type.clone())
            .data(data.to_string()),
    )
}
