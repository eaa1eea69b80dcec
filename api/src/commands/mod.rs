//! Command handling, in one place for the API, the CLI and importers: gather what the rules
//! need from the read models, load the aggregate's stream, `decide`, and append the events
//! with the version that was loaded.
//!
//! A concurrent writer between load and append makes the append fail with a version conflict.
//! A caller that named the version it saw (HTTP `If-Match`) gets that conflict as
//! `412 Precondition Failed` with the current version; a caller that did not is re-decided
//! against the new state, a few times, so that two people verifying one annotation at once both
//! succeed when their commands still make sense.

mod annotations;
mod catalog;
mod media_files;
mod read_cache;
mod screening;

pub use screening::screening_state;

use exact_domain::{Actor, DomainError, DomainEvent};
use exact_projections::ReadDb;
use exact_store::{
    AppendContext, Envelope, Expected, NewEvent, Source, Store, StoreError, StreamAppend,
};

use crate::error::ApiError;

pub use annotations::{AnnotationInput, CreateOptions, NewAnnotations};
pub use catalog::{NewUser, PlannedType, DEFAULT_FORMAT_NAME};

/// Attempts of one command against a stream that others keep changing.
const ATTEMPTS: usize = 5;

/// Runs every command: the store to append to and the read models to consult.
#[derive(Clone, Debug)]
pub struct Commands {
    pub store: Store,
    pub read: ReadDb,
    /// Catalog rows read before, while nothing changed them (`read_cache.rs`).
    cache: std::sync::Arc<read_cache::ReadCache>,
}

/// Who sends a command, through which door, and why.
#[derive(Clone, Debug)]
pub struct Caller {
    pub actor: Actor,
    pub source: Source,
    pub reason: Option<String>,
    pub client_addr: Option<String>,
}

impl Caller {
    pub fn new(actor: Actor, source: Source) -> Self {
        Self {
            actor,
            source,
            reason: None,
            client_addr: None,
        }
    }

    /// Exact itself (first start, the CLI's bootstrap).
    pub fn system() -> Self {
        Self::new(Actor::SYSTEM, Source::System)
    }

    #[must_use]
    pub fn with_reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }

    fn append_context(&self) -> AppendContext {
        let actor = (self.actor != Actor::SYSTEM).then_some(self.actor.id);
        let mut context = AppendContext::new(self.source, actor);
        context.reason.clone_from(&self.reason);
        context.client_addr.clone_from(&self.client_addr);
        context
    }
}

/// What a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// The aggregate's id (for a creation: the new one).
    pub id: i64,
    /// Its stream's version now: the ETag.
    pub version: i64,
    /// The log position of the last event written; `None` when there was nothing to do.
    pub position: Option<i64>,
}

impl Written {
    /// What appending `envelope` did to its stream, whose name ends in the aggregate's id.
    fn stored(envelope: &Envelope) -> Self {
        Self {
            id: id_of_stream(&envelope.stream),
            version: envelope.version,
            position: Some(envelope.position),
        }
    }
}

pub use exact_domain::Aggregate;

/// An aggregate's state, folded from its stream, and the stream's version (0: no stream).
#[derive(Debug)]
pub struct Loaded<S> {
    pub state: Option<S>,
    pub version: i64,
}

pub fn stream_of<A: Aggregate>(id: i64) -> String {
    A::stream(id)
}

/// `event`, appended to aggregate `id` of `A` whatever its version: a consequence another
/// command's events carry into the same append (a dissolved team frees its sets, a deleted
/// type deletes its annotations).
pub(crate) fn consequence<A: Aggregate>(id: i64, event: &A::Event) -> StreamAppend {
    let (name, payload) = event.to_parts();
    StreamAppend::new(
        stream_of::<A>(id),
        Expected::Any,
        vec![NewEvent::new(name, payload)],
    )
}

/// The id at the end of a stream name such as `image_set-12`.
fn id_of_stream(stream: &str) -> i64 {
    stream
        .rsplit('-')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_default()
}

fn new_events<E: DomainEvent>(events: &[E]) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| {
            let (name, payload) = e.to_parts();
            NewEvent::new(name, payload)
        })
        .collect()
}

impl Commands {
    pub fn new(store: Store, read: ReadDb) -> Self {
        Self {
            store,
            read,
            cache: std::sync::Arc::default(),
        }
    }

    /// Folds aggregate `id`'s stream.
    pub async fn load<A: Aggregate>(&self, id: i64) -> Result<Loaded<A::State>, ApiError> {
        let envelopes = self.store.read_stream(&stream_of::<A>(id), 1).await?;
        let mut state = None;
        let mut version = 0;
        for envelope in &envelopes {
            if let Some(event) = A::Event::from_json(&envelope.event_type, &envelope.payload) {
                state = A::evolve(state, &event.map_err(|e| corrupt(envelope, &e))?);
            }
            version = envelope.version;
        }
        Ok(Loaded { state, version })
    }

    /// Creates an aggregate: the id comes from its counter inside the append, so ids are
    /// gapless and given exactly when the events are stored. `command` gets the id.
    pub async fn create<A: Aggregate>(
        &self,
        caller: &Caller,
        command: impl Fn(i64) -> A::Command + Send + Sync + 'static,
        context: A::Context,
    ) -> Result<Written, ApiError>
    where
        A::Context: 'static,
    {
        // Decided once outside, so that a broken rule is reported before anything is locked;
        // again inside with the real id (the rules do not depend on it).
        A::decide(None, &command(0), &context).map_err(Into::<DomainError>::into)?;
        let build = Box::new(move |ids: &mut exact_store::IdAllocator| {
            let id = ids.next(A::KIND);
            let events =
                A::decide(None, &command(id), &context).expect("decided above with the same input");
            vec![StreamAppend::new(
                stream_of::<A>(id),
                Expected::NoStream,
                new_events(&events),
            )]
        });
        let written = self
            .store
            .append_built(caller.append_context(), build)
            .await?;
        let last = written
            .last()
            .expect("a creation writes at least one event");
        Ok(Written::stored(last))
    }

    /// Runs `command` on aggregate `id`. With `expected` (what the caller last saw), a stale
    /// version is refused; without, a conflict is retried against the new state.
    pub async fn execute<A: Aggregate>(
        &self,
        caller: &Caller,
        id: i64,
        expected: Option<i64>,
        command: &A::Command,
        context: &A::Context,
    ) -> Result<Written, ApiError> {
        self.execute_with::<A>(caller, id, expected, command, context, |_, _| {})
            .await
    }

    /// [`execute`](Self::execute), with `more`: appends to other streams that follow from
    /// the events (a dissolved team frees its sets), written in the same transaction.
    pub async fn execute_with<A: Aggregate>(
        &self,
        caller: &Caller,
        id: i64,
        expected: Option<i64>,
        command: &A::Command,
        context: &A::Context,
        more: impl Fn(&A::Event, &mut Vec<StreamAppend>),
    ) -> Result<Written, ApiError> {
        let stream = stream_of::<A>(id);
        for _ in 0..ATTEMPTS {
            let loaded = self.load::<A>(id).await?;
            if loaded.state.is_none() {
                return Err(DomainError::NotFound(A::KIND).into());
            }
            if let Some(seen) = expected.filter(|seen| *seen != loaded.version) {
                return Err(ApiError::stale(&stream, seen, loaded.version));
            }
            let events = A::decide(loaded.state.as_ref(), command, context)
                .map_err(Into::<DomainError>::into)?;
            if events.is_empty() {
                return Ok(Written {
                    id,
                    version: loaded.version,
                    position: None,
                });
            }
            let mut appends = vec![StreamAppend::new(
                stream.clone(),
                Expected::Exact(loaded.version),
                new_events(&events),
            )];
            for event in &events {
                more(event, &mut appends);
            }
            match self
                .store
                .append_many(appends, caller.append_context())
                .await
            {
                Ok(written) => {
                    let mine = written.iter().rev().find(|e| e.stream == stream);
                    let mine = mine.expect("the aggregate's own events were written");
                    return Ok(Written::stored(mine));
                }
                Err(StoreError::Conflict { stream: s, .. })
                    if s == stream && expected.is_none() =>
                {
                    continue
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::busy(&stream))
    }
}

fn corrupt(envelope: &Envelope, error: &dyn std::fmt::Display) -> ApiError {
    ApiError::from(StoreError::Corrupt {
        position: envelope.position,
        reason: error.to_string(),
    })
}
