//! Commands on annotations: creation in batches (one append for a client's whole list, or a
//! chunk of an import), changes, soft deletion, restoration and verdicts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use exact_domain::annotation::{
    self, AnnotationCommand, AnnotationContext, AnnotationCreated, AnnotationEvent, ImageInfo,
    NewAnnotation, TypeInfo,
};
use exact_domain::permissions::Permissions;
use exact_domain::vector::VectorType;
use exact_domain::{DomainError, DomainEvent};
use exact_projections::annotation_query::AnnotationQuery;
use exact_projections::annotations::AnnotationRow;
use exact_projections::catalog_read::{ImageRow, ImageSetRow};
use exact_store::{Expected, NewEvent, Payload, PlannedPayload, Source, StreamAppend};
use serde_json::Value;

use super::{Aggregate, Caller, Commands, PlannedType, Written};
use crate::error::ApiError;
use exact_domain::aggregate::AnnotationTypeAggregate;

pub use exact_domain::aggregate::AnnotationAggregate;

/// Annotations to create, on `image` unless an input names its own. Without a
/// `unique_identifier`, one is made (EXACT answered 500); with one that exists, the create is a
/// retry and changes nothing.
#[derive(Clone, Debug, Default)]
pub struct NewAnnotations {
    pub image: i64,
    pub annotations: Vec<AnnotationInput>,
}

/// How [`Commands::create_annotations_with`] creates.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// Accept each new annotation in the caller's name, in the same append.
    pub verify: bool,
    /// The caller looked the UUIDs up already and gives only ones nothing holds.
    pub uuids_checked: bool,
    /// Types made in the same append, before the annotations; inputs name them by their
    /// placeholder ids (below 0). A type no input uses is not made.
    pub new_types: Vec<PlannedType>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AnnotationInput {
    /// Another image than [`NewAnnotations::image`].
    pub image: Option<i64>,
    pub annotation_type: i64,
    pub vector: Value,
    pub description: String,
    pub meta_data: Value,
    pub concealed: bool,
    pub blurred: bool,
    pub unique_identifier: Option<uuid::Uuid>,
    /// A creator other than the caller: imports and superusers only.
    pub user: Option<i64>,
}

impl AnnotationInput {
    pub fn new(annotation_type: i64, vector: Value) -> Self {
        Self {
            image: None,
            annotation_type,
            vector,
            description: String::new(),
            meta_data: Value::Null,
            concealed: false,
            blurred: false,
            unique_identifier: None,
            user: None,
        }
    }
}

impl Commands {
    /// Creates every annotation of `new` in one append, or none. Returns one result per input,
    /// in order; a retried one has no position.
    pub async fn create_annotations(
        &self,
        caller: &Caller,
        new: NewAnnotations,
    ) -> Result<Vec<Written>, ApiError> {
        self.create_annotations_with(caller, new, CreateOptions::default())
            .await
    }

    /// [`create_annotations`](Self::create_annotations) as `options` say: each new annotation
    /// accepted by the caller (`verify`: its verdict in the same append as its creation, so an
    /// import that verifies is all or nothing too; a set in clinical mode refuses it, a verdict
    /// there being a signature, before anything is written), and the UUIDs' lookup left out
    /// when the caller has made it (`uuids_checked`).
    pub async fn create_annotations_with(
        &self,
        caller: &Caller,
        new: NewAnnotations,
        options: CreateOptions,
    ) -> Result<Vec<Written>, ApiError> {
        let created = self.create_planned(caller, new, options, false).await?;
        Ok(created.into_iter().map(|(written, _)| written).collect())
    }

    /// [`create_annotations`](Self::create_annotations), each new annotation with its row as
    /// the read model wrote it (none for a retry, which wrote nothing): the answer to a client
    /// needs no read after the append.
    pub async fn create_annotations_with_rows(
        &self,
        caller: &Caller,
        new: NewAnnotations,
    ) -> Result<Vec<(Written, Option<AnnotationRow>)>, ApiError> {
        self.create_planned(caller, new, CreateOptions::default(), true)
            .await
    }

    async fn create_planned(
        &self,
        caller: &Caller,
        new: NewAnnotations,
        options: CreateOptions,
        rows: bool,
    ) -> Result<Vec<(Written, Option<AnnotationRow>)>, ApiError> {
        let verify = options.verify;
        // Image → its row and the caller's permissions in its set, looked up once each.
        let mut images: BTreeMap<i64, (ImageRow, Permissions, bool)> = BTreeMap::new();
        let may_name_creator = caller.actor.superuser || caller.source == Source::Import;
        let mut types: BTreeMap<(i64, i64), TypeInfo> = BTreeMap::new();
        let mut globals_taken = BTreeSet::new();
        // UUID → the input that creates it, so that a repeat in one list is its retry.
        let mut first_with: BTreeMap<uuid::Uuid, usize> = BTreeMap::new();
        let mut plan: Vec<Planned> = Vec::with_capacity(new.annotations.len());
        // The UUIDs given, looked up together (a bulk import gives a million).
        let given: Vec<uuid::Uuid> = new
            .annotations
            .iter()
            .filter_map(|i| i.unique_identifier)
            .collect();
        // A caller that checked them (an import, against the set and the whole store) gives
        // only UUIDs nothing holds: a creation that raced it is refused by the read model's
        // unique index, in the same transaction, and nothing is written.
        let known = if options.uuids_checked {
            std::collections::HashMap::new()
        } else {
            self.annotations_by_uuids(&given).await?
        };
        for input in new.annotations {
            let image_id = input.image.unwrap_or(new.image);
            if let std::collections::btree_map::Entry::Vacant(slot) = images.entry(image_id) {
                let image = self
                    .image(image_id)
                    .await?
                    .filter(|i| !i.deleted)
                    .ok_or(DomainError::NotFound("image"))?;
                let (set, permissions) = self.set_access(caller, image.image_set).await?;
                slot.insert((image, permissions, set.clinical));
            }
            let (image, permissions, clinical) = &images[&image_id];
            let (permissions, clinical) = (*permissions, *clinical);
            if input.user.is_some_and(|u| u != caller.actor.id) && !may_name_creator {
                return Err(
                    DomainError::Forbidden("create annotations in another user's name").into(),
                );
            }
            let uuid = input.unique_identifier.unwrap_or_else(uuid::Uuid::now_v7);
            if let Some(first) = first_with.get(&uuid) {
                plan.push(Planned::SameAs(*first));
                continue;
            }
            if input.unique_identifier.is_some() {
                if let Some(existing) = known.get(&uuid) {
                    // A retry of this very request finds what it made; anything else that
                    // reuses the UUID learns only that it is taken (it may be another team's).
                    let creator = input.user.unwrap_or(caller.actor.id);
                    let same_request = existing.image == image.id
                        && existing.annotation_type == input.annotation_type
                        && existing.user_id == creator;
                    if !same_request {
                        return Err(uuid_taken(uuid));
                    }
                    plan.push(Planned::Existing(Written {
                        id: existing.id,
                        version: existing.version,
                        position: None,
                    }));
                    continue;
                }
            }
            let type_key = (image.image_set, input.annotation_type);
            let type_info = match types.get(&type_key) {
                Some(info) => *info,
                None => {
                    let info = match options
                        .new_types
                        .iter()
                        .find(|t| t.placeholder == input.annotation_type)
                    {
                        Some(planned) => planned.info(image.image_set)?,
                        None => {
                            self.type_info(image.image_set, input.annotation_type)
                                .await?
                        }
                    };
                    types.insert(type_key, info);
                    info
                }
            };
            let global = type_info.vector_type == VectorType::Global;
            let other_global = global
                && (globals_taken.contains(&(image.id, type_info.id))
                    || self.global_exists(image.id, type_info.id, None).await?);
            let context = AnnotationContext {
                actor: caller.actor.id,
                permissions,
                annotation_type: type_info,
                image: image_info(image),
                other_global,
                // A creation needs no reason and gives no verdict.
                clinical: false,
                reason_given: caller.reason.is_some(),
            };
            let command = AnnotationCommand::Create(NewAnnotation {
                id: 0,
                image: image.id,
                annotation_type: input.annotation_type,
                vector: input.vector,
                description: input.description,
                meta_data: input.meta_data,
                concealed: input.concealed,
                blurred: input.blurred,
                unique_identifier: uuid,
                user: input.user,
            });
            let mut events = AnnotationAggregate::decide(None, &command, &context)?;
            if verify {
                // Decided on the annotation as its creation leaves it, as a later verdict is.
                let made = events.iter().fold(None, annotation::evolve);
                let context = AnnotationContext {
                    clinical,
                    ..context
                };
                let verdict = AnnotationCommand::Verify { verified: true };
                events.extend(AnnotationAggregate::decide(
                    made.as_ref(),
                    &verdict,
                    &context,
                )?);
            }
            if global {
                globals_taken.insert((image.id, type_info.id));
            }
            first_with.insert(uuid, plan.len());
            let mut events = events.into_iter();
            match events.next() {
                Some(AnnotationEvent::AnnotationCreated(created)) => {
                    plan.push(Planned::New(Arc::new(created), events.next().map(Box::new)));
                }
                other => unreachable!("a creation decides AnnotationCreated, not {other:?}"),
            }
        }
        // Each creation's event id is made here, before the append: the build runs on the
        // writer's thread, which every append waits for (and a build called again, alone after
        // its group failed, now makes the very same events).
        let to_write: Vec<(
            Arc<AnnotationCreated>,
            Option<Box<AnnotationEvent>>,
            uuid::Uuid,
        )> = plan
            .iter()
            .filter_map(|p| match p {
                Planned::New(created, verdict) => {
                    Some((Arc::clone(created), verdict.clone(), uuid::Uuid::now_v7()))
                }
                _ => None,
            })
            .collect();
        // Only the planned types some annotation uses are made, each before them.
        let used: BTreeSet<i64> = to_write.iter().map(|(c, ..)| c.annotation_type).collect();
        let new_types: Vec<PlannedType> = options
            .new_types
            .into_iter()
            .filter(|t| used.contains(&t.placeholder))
            .collect();
        let type_events: usize = new_types.iter().map(|t| t.append(0).events.len()).sum();
        let written = if to_write.is_empty() {
            Vec::new()
        } else {
            // The ids are taken inside the append: the events get theirs there.
            let build = Box::new(move |ids: &mut exact_store::IdAllocator| {
                let mut made = BTreeMap::new();
                let mut appends: Vec<StreamAppend> = new_types
                    .iter()
                    .map(|planned| {
                        let id = ids.next(AnnotationTypeAggregate::KIND);
                        made.insert(planned.placeholder, id);
                        planned.append(id)
                    })
                    .collect();
                appends.extend(to_write.iter().map(|(created, verdict, event_id)| {
                    let id = ids.next(AnnotationAggregate::KIND);
                    let kind = made
                        .get(&created.annotation_type)
                        .copied()
                        .unwrap_or(created.annotation_type);
                    // Serialized when the append is planned, beside the writer's writes.
                    let payload = CreationPayload {
                        created: Arc::clone(created),
                        id,
                        annotation_type: kind,
                    };
                    let mut events = vec![NewEvent::identified(
                        *event_id,
                        AnnotationCreated::EVENT_TYPE,
                        Payload::Planned(Arc::new(payload)),
                    )];
                    if let Some(mut verdict) = verdict.as_deref().cloned() {
                        if let AnnotationEvent::AnnotationVerified { id: of, .. } = &mut verdict {
                            *of = id;
                        }
                        let (name, payload) = verdict.to_parts();
                        events.push(NewEvent::new(name, payload));
                    }
                    StreamAppend::new(annotation::stream(id), Expected::NoStream, events)
                }));
                appends
            });
            match self
                .store
                .append_built(caller.append_context(), build)
                .await
            {
                Ok(written) => written,
                // A UUID the caller found free was taken by another writer since: the read
                // model's unique index refused the whole append. Named as a lookup names it.
                Err(e) if options.uuids_checked => {
                    let taken = self.annotations_by_uuids(&given).await?;
                    return Err(match taken.into_keys().next() {
                        Some(uuid) => uuid_taken(uuid),
                        None => e.into(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        };
        // The new annotations were stored in input order, one envelope each, after the types.
        let mut stored = written.iter().skip(type_events);
        let mut results: Vec<(Written, Option<AnnotationRow>)> = Vec::with_capacity(plan.len());
        for planned in &plan {
            let result = match planned {
                Planned::Existing(existing) => (*existing, None),
                Planned::New(_, verdict) => {
                    let envelope = stored.next().expect("one envelope per new annotation");
                    if verdict.is_some() {
                        // The verdict's envelope follows its creation's: the stream's version.
                        let verdict = stored.next().expect("the verdict's envelope");
                        (Written::stored(verdict), None)
                    } else {
                        let row = if rows {
                            AnnotationRow::created_by(envelope)?
                        } else {
                            None
                        };
                        (Written::stored(envelope), row)
                    }
                }
                Planned::SameAs(first) => (
                    Written {
                        position: None,
                        ..results[*first].0
                    },
                    None,
                ),
            };
            results.push(result);
        }
        free_after_answer((plan, written, first_with), results.len());
        Ok(results)
    }

    /// Annotation `id` (deleted ones too, as EXACT), its image and the caller's permissions
    /// in its set. An annotation on a set the caller cannot read does not exist for them: 404.
    pub async fn readable_annotation(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<(AnnotationRow, ImageRow, Permissions), ApiError> {
        let (row, image, _, permissions) = self.annotation_in_set(caller, id).await?;
        Ok((row, image, permissions))
    }

    /// [`readable_annotation`](Self::readable_annotation), with its image set.
    async fn annotation_in_set(
        &self,
        caller: &Caller,
        id: i64,
    ) -> Result<(AnnotationRow, ImageRow, ImageSetRow, Permissions), ApiError> {
        let gone = || ApiError::from(DomainError::NotFound("annotation"));
        let query = AnnotationQuery {
            ids: vec![id],
            ..AnnotationQuery::default()
        };
        let row = self
            .read
            .annotations(&query)
            .await?
            .pop()
            .ok_or_else(gone)?;
        let image = self.read.image(row.image).await?.ok_or_else(gone)?;
        let (set, permissions) = self
            .set_access(caller, image.image_set)
            .await
            .map_err(|_| gone())?;
        Ok((row, image, set, permissions))
    }

    /// Changes, deletes, restores or verifies annotation `id`.
    pub async fn annotation_command(
        &self,
        caller: &Caller,
        id: i64,
        expected: Option<i64>,
        command: &AnnotationCommand,
    ) -> Result<Written, ApiError> {
        let context = self.annotation_context(caller, id, command).await?;
        self.execute::<AnnotationAggregate>(caller, id, expected, command, &context)
            .await
    }

    /// Soft-deletes every annotation of `ids` in one append, or none: each must be readable
    /// (else 404) and the caller allowed to delete it (else 403) before anything is written.
    /// Those already deleted stay as they are.
    pub async fn delete_annotations(&self, caller: &Caller, ids: &[i64]) -> Result<(), ApiError> {
        let mut contexts = Vec::with_capacity(ids.len());
        for &id in ids {
            let context = self
                .annotation_context(caller, id, &AnnotationCommand::Delete)
                .await?;
            contexts.push((id, context));
        }
        for _ in 0..super::ATTEMPTS {
            let mut appends = Vec::new();
            for (id, context) in &contexts {
                let loaded = self.load::<AnnotationAggregate>(*id).await?;
                let events = AnnotationAggregate::decide(
                    loaded.state.as_ref(),
                    &AnnotationCommand::Delete,
                    context,
                )?;
                if !events.is_empty() {
                    appends.push(StreamAppend::new(
                        annotation::stream(*id),
                        Expected::Exact(loaded.version),
                        super::new_events(&events),
                    ));
                }
            }
            if appends.is_empty() {
                return Ok(());
            }
            match self
                .store
                .append_many(appends, caller.append_context())
                .await
            {
                Ok(_) => return Ok(()),
                // Someone changed one of them meanwhile: decide all again.
                Err(exact_store::StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::busy("annotations"))
    }

    /// What the rules need to decide `command` on annotation `id`, which the caller must be
    /// able to read.
    async fn annotation_context(
        &self,
        caller: &Caller,
        id: i64,
        command: &AnnotationCommand,
    ) -> Result<AnnotationContext, ApiError> {
        let (row, image, set, permissions) = self.annotation_in_set(caller, id).await?;
        let type_id = match command {
            AnnotationCommand::Change(changes) => {
                changes.annotation_type.unwrap_or(row.annotation_type)
            }
            _ => row.annotation_type,
        };
        let type_info = self.type_info(image.image_set, type_id).await?;
        let other_global = type_info.vector_type == VectorType::Global
            && self.global_exists(image.id, type_id, Some(id)).await?;
        Ok(AnnotationContext {
            actor: caller.actor.id,
            permissions,
            annotation_type: type_info,
            image: image_info(&image),
            other_global,
            clinical: set.clinical,
            // Both ways in (the body's `reason`, `X-Exact-Reason`) drop a blank reason already.
            reason_given: caller.reason.is_some(),
        })
    }

    /// What the rules need to know of a type, as offered in `image_set`.
    async fn type_info(&self, image_set: i64, id: i64) -> Result<TypeInfo, ApiError> {
        let (row, offered) = self
            .annotation_type_offered(id, image_set)
            .await?
            .ok_or_else(|| {
                DomainError::invalid("annotation_type", format!("no annotation type {id}"))
            })?;
        let vector_type = VectorType::try_from(row.vector_type)
            .map_err(|m| DomainError::invalid("annotation_type", m))?;
        Ok(TypeInfo {
            id,
            vector_type,
            node_count: u32::try_from(row.node_count).unwrap_or(0),
            active: row.active,
            offered,
        })
    }

    async fn global_exists(
        &self,
        image: i64,
        annotation_type: i64,
        except: Option<i64>,
    ) -> Result<bool, ApiError> {
        let live = self
            .read
            .annotations(&AnnotationQuery {
                image: Some(image),
                annotation_types: vec![annotation_type],
                deleted: Some(false),
                limit: Some(2),
                ..AnnotationQuery::default()
            })
            .await?;
        Ok(live.iter().any(|a| Some(a.id) != except))
    }

    /// The annotations that have any of `uuids`, by UUID: a query per thousand.
    pub async fn annotations_by_uuids(
        &self,
        uuids: &[uuid::Uuid],
    ) -> Result<std::collections::HashMap<uuid::Uuid, AnnotationRow>, ApiError> {
        let mut found = std::collections::HashMap::new();
        for chunk in uuids.chunks(1_000) {
            let rows = self
                .read
                .annotations(&AnnotationQuery {
                    unique_identifiers: chunk.to_vec(),
                    ..AnnotationQuery::default()
                })
                .await?;
            for row in rows {
                if let Ok(uuid) = row.unique_identifier.parse() {
                    found.insert(uuid, row);
                }
            }
        }
        Ok(found)
    }

    pub async fn annotation_by_uuid(
        &self,
        uuid: uuid::Uuid,
    ) -> Result<Option<AnnotationRow>, ApiError> {
        Ok(self
            .read
            .annotations(&AnnotationQuery {
                unique_identifier: Some(uuid),
                ..AnnotationQuery::default()
            })
            .await?
            .pop())
    }
}

/// EXACT's answer to a UUID that exists: 400, saying nothing of the annotation that has it.
fn uuid_taken(uuid: uuid::Uuid) -> ApiError {
    ApiError::new(
        crate::error::Code::UniqueIdentifierTaken,
        format!(
            "an annotation with unique_identifier {uuid} already exists; choose another \
             (a retry of the same creation answers the annotation it made)"
        ),
    )
    .with_field("unique_identifier")
}

fn image_info(image: &ImageRow) -> ImageInfo {
    ImageInfo {
        id: image.id,
        width: image.width as f64,
        height: image.height as f64,
        frames: u32::try_from(image.frames).unwrap_or(1),
    }
}

/// Batches from this size on leave what they were made of to be freed after the answer.
const FREE_AFTER_ANSWER_FROM: usize = 1_000;

/// Frees what a large batch leaves (its creations' JSON, the payloads of the log's rows
/// written for it) on the blocking pool instead of before the answer: for 5,000 creations,
/// freed mostly memory of other threads, that was about 2 % of the batch's time in a profile,
/// its client waiting for it. A small batch's are freed at once, where handing them over would
/// cost more.
fn free_after_answer<T: Send + 'static>(leftovers: T, size: usize) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if size >= FREE_AFTER_ANSWER_FROM => {
            runtime.spawn_blocking(move || drop(leftovers));
        }
        _ => drop(leftovers),
    }
}

/// A creation's payload with the id and type the append gave it.
#[derive(Debug)]
struct CreationPayload {
    created: Arc<AnnotationCreated>,
    id: i64,
    annotation_type: i64,
}

impl PlannedPayload for CreationPayload {
    fn to_json(&self) -> Value {
        self.created.payload_with(self.id, self.annotation_type)
    }
}

/// What becomes of one input of a batch.
enum Planned {
    /// Its UUID exists already: a retry.
    Existing(Written),
    /// To be written (its id is taken inside the append), with the caller's verdict if asked.
    New(Arc<AnnotationCreated>, Option<Box<AnnotationEvent>>),
    /// Its UUID came earlier in the same list, at this index.
    SameAs(usize),
}
