//! The annotation aggregate: one stream per annotation, `annotation-{id}`.
//!
//! An annotation is created on an image with a type and a vector, changed, soft-deleted and
//! restored, and verified (accepted or rejected) by users. Every verdict is an event; a user's
//! later verdict replaces their earlier one in the state, and both stay in the log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::DomainEvent;
use crate::permissions::{Permission, Permissions};
use crate::vector::{self, Fit, Vector, VectorError, VectorType};

/// EXACT's limit on `description`.
pub const MAX_DESCRIPTION: usize = 1000;

/// What every annotation's stream name starts with.
pub const STREAM_PREFIX: &str = "annotation-";

/// The stream of annotation `id`.
pub fn stream(id: i64) -> String {
    format!("{STREAM_PREFIX}{id}")
}

/// Facts about an annotation, as stored in the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum AnnotationEvent {
    AnnotationCreated(AnnotationCreated),
    AnnotationChanged(AnnotationChanged),
    AnnotationDeleted {
        id: i64,
    },
    AnnotationRestored {
        id: i64,
    },
    /// `verified`: true accepts, false rejects. A verdict given as an electronic signature
    /// (the user re-entered their password) carries it; the event's time is the signing time.
    AnnotationVerified {
        id: i64,
        user: i64,
        verified: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<Signature>,
    },
    /// The user took their verdict back (EXACT's verification delete): neither accepted nor
    /// rejected by them any more.
    AnnotationVerdictWithdrawn {
        id: i64,
        user: i64,
    },
}

impl AnnotationEvent {
    /// The annotation the event is about.
    pub fn annotation_id(&self) -> i64 {
        match self {
            AnnotationEvent::AnnotationCreated(c) => c.id,
            AnnotationEvent::AnnotationChanged(c) => c.id,
            AnnotationEvent::AnnotationDeleted { id }
            | AnnotationEvent::AnnotationRestored { id }
            | AnnotationEvent::AnnotationVerified { id, .. }
            | AnnotationEvent::AnnotationVerdictWithdrawn { id, .. } => *id,
        }
    }
}

impl DomainEvent for AnnotationEvent {
    const NAMES: &'static [&'static str] = &[
        AnnotationCreated::EVENT_TYPE,
        "AnnotationChanged",
        "AnnotationDeleted",
        "AnnotationRestored",
        "AnnotationVerified",
        "AnnotationVerdictWithdrawn",
    ];
}

/// What an electronic signature means (21 CFR 11.50: the signer's name, the time and the
/// meaning are shown with the signed record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Meaning {
    /// The signer looked at the annotation and accepts it as it is.
    Reviewed,
    /// The signer approves the annotation.
    Approved,
    /// The signer rejects the annotation.
    Rejected,
}

impl Meaning {
    /// The verdict the meaning is: only `rejected` rejects.
    pub fn verified(self) -> bool {
        self != Meaning::Rejected
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "reviewed" => Some(Meaning::Reviewed),
            "approved" => Some(Meaning::Approved),
            "rejected" => Some(Meaning::Rejected),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Meaning::Reviewed => "reviewed",
            Meaning::Approved => "approved",
            Meaning::Rejected => "rejected",
        }
    }
}

/// An electronic signature on one version of an annotation: a later change of the annotation
/// does not carry it (the signature applies to `version` only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's name as shown with the signature (their full name, else their username),
    /// as it was when they signed.
    pub name: String,
    pub meaning: Meaning,
    /// The annotation's version (its stream's version) that was signed.
    pub version: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnnotationCreated {
    pub id: i64,
    pub image: i64,
    pub annotation_type: i64,
    /// EXACT's JSON vector, normalized; `null` for "not in image" and GLOBAL types.
    pub vector: Value,
    pub description: String,
    pub meta_data: Value,
    pub concealed: bool,
    pub blurred: bool,
    pub unique_identifier: uuid::Uuid,
    /// The creator (EXACT's `user`): the caller, unless an import names someone else.
    pub user: i64,
}

impl AnnotationCreated {
    /// The creation as the event it becomes once the log has given the annotation its id
    /// (ids are taken inside the append, so that they follow the log without gaps).
    pub fn with_id(self, id: i64) -> AnnotationEvent {
        AnnotationEvent::AnnotationCreated(AnnotationCreated { id, ..self })
    }

    /// The name of the event a creation becomes.
    pub const EVENT_TYPE: &'static str = "AnnotationCreated";

    /// The payload of `with_id(id)` for a creation of type `annotation_type`, serialized from
    /// this one without copying it first: a bulk import builds a million.
    pub fn payload_with(&self, id: i64, annotation_type: i64) -> Value {
        let mut payload = serde_json::to_value(self).expect("a creation always serializes");
        payload["id"] = id.into();
        payload["annotation_type"] = annotation_type.into();
        payload
    }
}

/// Only the fields that changed are present.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnnotationChanged {
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_type: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concealed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blurred: Option<bool>,
}

/// An annotation as its events leave it.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    pub id: i64,
    pub image: i64,
    pub annotation_type: i64,
    pub vector: Value,
    pub description: String,
    pub meta_data: Value,
    pub concealed: bool,
    pub blurred: bool,
    pub deleted: bool,
    pub unique_identifier: uuid::Uuid,
    pub user: i64,
    /// The current verdict of each user who gave one.
    pub verifications: BTreeMap<i64, bool>,
    /// The stream's version: how many events made the annotation what it is.
    pub version: i64,
}

/// Where an annotation stands after its verdicts, as the statistics count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consensus {
    /// Nobody has given a verdict.
    Unverified,
    /// More users accept it than reject it.
    Accepted,
    /// At least as many reject it as accept it: not confirmed.
    Rejected,
}

impl Annotation {
    /// The annotation a creation makes, as `evolve(None, &AnnotationCreated(created))` returns
    /// it, from the creation itself: a rebuild makes a million of them and need not copy each
    /// vector first.
    pub fn created(created: AnnotationCreated) -> Self {
        let mut first = Self::before_creation(created);
        first.version += 1;
        first
    }

    /// What a creation makes, before `evolve` counts the event in its version.
    fn before_creation(created: AnnotationCreated) -> Self {
        Annotation {
            id: created.id,
            image: created.image,
            annotation_type: created.annotation_type,
            vector: created.vector,
            description: created.description,
            meta_data: created.meta_data,
            concealed: created.concealed,
            blurred: created.blurred,
            deleted: false,
            unique_identifier: created.unique_identifier,
            user: created.user,
            verifications: BTreeMap::new(),
            version: 0,
        }
    }

    /// Net of the current verdicts: accepted when accepts outnumber rejects.
    pub fn consensus(&self) -> Consensus {
        if self.verifications.is_empty() {
            return Consensus::Unverified;
        }
        let accepts = self.verifications.values().filter(|v| **v).count();
        if accepts * 2 > self.verifications.len() {
            Consensus::Accepted
        } else {
            Consensus::Rejected
        }
    }
}

/// What to do with an annotation.
#[derive(Clone, Debug, PartialEq)]
pub enum AnnotationCommand {
    Create(NewAnnotation),
    Change(AnnotationChanges),
    Delete,
    Restore,
    Verify {
        verified: bool,
    },
    /// A verdict given as an electronic signature: the caller has re-entered their password
    /// (checked before the command), `signer` is their name as the signature shows it.
    Sign {
        meaning: Meaning,
        signer: String,
    },
    /// Takes the actor's own verdict back.
    WithdrawVerdict,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewAnnotation {
    pub id: i64,
    pub image: i64,
    pub annotation_type: i64,
    pub vector: Value,
    pub description: String,
    pub meta_data: Value,
    pub concealed: bool,
    pub blurred: bool,
    pub unique_identifier: uuid::Uuid,
    /// Creator other than the caller (imports); `None` for the caller.
    pub user: Option<i64>,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnnotationChanges {
    pub annotation_type: Option<i64>,
    pub vector: Option<Value>,
    pub description: Option<String>,
    pub meta_data: Option<Value>,
    pub concealed: Option<bool>,
    pub blurred: Option<bool>,
}

/// The annotation type a command works with (for a change of type, the new one).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TypeInfo {
    pub id: i64,
    pub vector_type: VectorType,
    pub node_count: u32,
    pub active: bool,
    /// The type belongs to a product linked to the image's set.
    pub offered: bool,
}

/// The image an annotation lies on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageInfo {
    pub id: i64,
    pub width: f64,
    pub height: f64,
    pub frames: u32,
}

/// Everything `decide` needs beyond the annotation itself, gathered by the caller from the read
/// models: who acts, what they may do, and what the type and image allow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnnotationContext {
    pub actor: i64,
    pub permissions: Permissions,
    pub annotation_type: TypeInfo,
    pub image: ImageInfo,
    /// Another annotation that is not deleted has this GLOBAL type on this image.
    pub other_global: bool,
    /// The image's set is in clinical mode: verdicts are signatures, and changing or deleting
    /// an annotation that has a verdict needs a reason.
    pub clinical: bool,
    /// The command comes with a reason (stored in the event's metadata).
    pub reason_given: bool,
}

/// A rule a command breaks.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AnnotationError {
    #[error("you may not {0:?} in this image set")]
    Forbidden(Permission),
    #[error("annotation not found")]
    NotFound,
    #[error("annotation {id} exists already with another unique_identifier")]
    AlreadyExists { id: i64 },
    #[error("the annotation is deleted; restore it first")]
    Deleted,
    #[error("annotation type {0} is inactive")]
    TypeInactive(i64),
    #[error("annotation type {0} is not offered in this image set: link its product to the set")]
    TypeNotOffered(i64),
    #[error("the context names type {context} but the command needs type {command}")]
    WrongType { context: i64, command: i64 },
    #[error("the context names image {context} but the annotation is on image {annotation}")]
    WrongImage { context: i64, annotation: i64 },
    #[error("this image already has a global annotation of this type")]
    GlobalExists,
    #[error("description is longer than {MAX_DESCRIPTION} characters")]
    DescriptionTooLong,
    #[error("vector: {0}")]
    Vector(#[from] VectorError),
    #[error(
        "this image set is in clinical mode: changing, deleting or restoring an annotation that \
         has a verdict, or taking a verdict back, needs a reason"
    )]
    ReasonRequired,
    #[error(
        "this image set is in clinical mode: a verdict is an electronic signature; give your \
         password and the meaning (reviewed, approved or rejected)"
    )]
    SignatureRequired,
    #[error("a signature's name must not be empty")]
    SignerUnnamed,
}

/// What a command produces, or the rule it breaks. An empty list means there is nothing to do
/// (a retried create, a change to what already is, a second delete).
pub fn decide(
    state: Option<&Annotation>,
    command: &AnnotationCommand,
    context: &AnnotationContext,
) -> Result<Vec<AnnotationEvent>, AnnotationError> {
    match command {
        AnnotationCommand::Create(new) => create(state, new, context),
        AnnotationCommand::Change(changes) => {
            let events = change(existing(state)?, changes, context)?;
            if !events.is_empty() {
                require_reason(existing(state)?, context)?;
            }
            Ok(events)
        }
        AnnotationCommand::Delete => {
            let current = existing(state)?;
            require(context, Permission::DeleteAnnotation, current)?;
            if current.deleted {
                return Ok(vec![]);
            }
            require_reason(current, context)?;
            Ok(vec![AnnotationEvent::AnnotationDeleted { id: current.id }])
        }
        AnnotationCommand::Restore => {
            let current = existing(state)?;
            require(context, Permission::DeleteAnnotation, current)?;
            if !current.deleted {
                return Ok(vec![]);
            }
            check_type(context, current.annotation_type)?;
            if context.annotation_type.vector_type == VectorType::Global && context.other_global {
                return Err(AnnotationError::GlobalExists);
            }
            require_reason(current, context)?;
            Ok(vec![AnnotationEvent::AnnotationRestored { id: current.id }])
        }
        AnnotationCommand::Verify { verified } => {
            let current = existing(state)?;
            require(context, Permission::Verify, current)?;
            if current.deleted {
                return Err(AnnotationError::Deleted);
            }
            if context.clinical {
                return Err(AnnotationError::SignatureRequired);
            }
            if current.verifications.get(&context.actor) == Some(verified) {
                return Ok(vec![]);
            }
            Ok(vec![AnnotationEvent::AnnotationVerified {
                id: current.id,
                user: context.actor,
                verified: *verified,
                signature: None,
            }])
        }
        // A signature is an act of its own: signing again (another meaning, or the same after
        // a change) is recorded even when the verdict stays the same.
        AnnotationCommand::Sign { meaning, signer } => {
            let current = existing(state)?;
            require(context, Permission::Verify, current)?;
            if current.deleted {
                return Err(AnnotationError::Deleted);
            }
            if signer.trim().is_empty() {
                return Err(AnnotationError::SignerUnnamed);
            }
            Ok(vec![AnnotationEvent::AnnotationVerified {
                id: current.id,
                user: context.actor,
                verified: meaning.verified(),
                signature: Some(Signature {
                    name: signer.trim().to_owned(),
                    meaning: *meaning,
                    version: current.version,
                }),
            }])
        }
        AnnotationCommand::WithdrawVerdict => {
            let current = existing(state)?;
            require(context, Permission::Verify, current)?;
            if current.deleted {
                return Err(AnnotationError::Deleted);
            }
            if !current.verifications.contains_key(&context.actor) {
                return Ok(vec![]);
            }
            if context.clinical && !context.reason_given {
                return Err(AnnotationError::ReasonRequired);
            }
            Ok(vec![AnnotationEvent::AnnotationVerdictWithdrawn {
                id: current.id,
                user: context.actor,
            }])
        }
    }
}

/// Applies a fact. Facts are never refused: whatever is in the log happened.
pub fn evolve(state: Option<Annotation>, event: &AnnotationEvent) -> Option<Annotation> {
    let mut next = apply(state, event)?;
    next.version += 1;
    Some(next)
}

fn apply(state: Option<Annotation>, event: &AnnotationEvent) -> Option<Annotation> {
    match (state, event) {
        (_, AnnotationEvent::AnnotationCreated(created)) => {
            Some(Annotation::before_creation(created.clone()))
        }
        (Some(mut a), AnnotationEvent::AnnotationChanged(changed)) => {
            if let Some(t) = changed.annotation_type {
                a.annotation_type = t;
            }
            if let Some(v) = &changed.vector {
                a.vector = v.clone();
            }
            if let Some(d) = &changed.description {
                a.description = d.clone();
            }
            if let Some(m) = &changed.meta_data {
                a.meta_data = m.clone();
            }
            if let Some(c) = changed.concealed {
                a.concealed = c;
            }
            if let Some(b) = changed.blurred {
                a.blurred = b;
            }
            Some(a)
        }
        (Some(mut a), AnnotationEvent::AnnotationDeleted { .. }) => {
            a.deleted = true;
            Some(a)
        }
        (Some(mut a), AnnotationEvent::AnnotationRestored { .. }) => {
            a.deleted = false;
            Some(a)
        }
        (Some(mut a), AnnotationEvent::AnnotationVerdictWithdrawn { user, .. }) => {
            a.verifications.remove(user);
            Some(a)
        }
        (Some(mut a), AnnotationEvent::AnnotationVerified { user, verified, .. }) => {
            a.verifications.insert(*user, *verified);
            Some(a)
        }
        (None, _) => None,
    }
}

/// In clinical mode, an annotation that has a verdict is changed only with a reason.
fn require_reason(
    current: &Annotation,
    context: &AnnotationContext,
) -> Result<(), AnnotationError> {
    if context.clinical && !current.verifications.is_empty() && !context.reason_given {
        Err(AnnotationError::ReasonRequired)
    } else {
        Ok(())
    }
}

fn existing(state: Option<&Annotation>) -> Result<&Annotation, AnnotationError> {
    state.ok_or(AnnotationError::NotFound)
}

fn require(
    context: &AnnotationContext,
    permission: Permission,
    current: &Annotation,
) -> Result<(), AnnotationError> {
    if current.image != context.image.id {
        return Err(AnnotationError::WrongImage {
            context: context.image.id,
            annotation: current.image,
        });
    }
    if context.permissions.contains(permission) {
        Ok(())
    } else {
        Err(AnnotationError::Forbidden(permission))
    }
}

fn check_type(context: &AnnotationContext, wanted: i64) -> Result<(), AnnotationError> {
    let t = &context.annotation_type;
    if t.id != wanted {
        return Err(AnnotationError::WrongType {
            context: t.id,
            command: wanted,
        });
    }
    if !t.active {
        return Err(AnnotationError::TypeInactive(t.id));
    }
    if !t.offered {
        return Err(AnnotationError::TypeNotOffered(t.id));
    }
    Ok(())
}

/// Parses and validates a vector for the context's type and image; returns its normal form.
fn checked_vector(raw: &Value, context: &AnnotationContext) -> Result<Value, AnnotationError> {
    let parsed = Vector::from_json(raw)?;
    let fit = Fit {
        vector_type: context.annotation_type.vector_type,
        node_count: context.annotation_type.node_count,
        image_width: context.image.width,
        image_height: context.image.height,
        image_frames: context.image.frames,
    };
    vector::validate(parsed.as_ref(), &fit)?;
    Ok(parsed.map_or(Value::Null, |v| v.to_json()))
}

fn create(
    state: Option<&Annotation>,
    new: &NewAnnotation,
    context: &AnnotationContext,
) -> Result<Vec<AnnotationEvent>, AnnotationError> {
    if let Some(current) = state {
        // The same client retrying the same create: already done.
        if current.unique_identifier == new.unique_identifier {
            return Ok(vec![]);
        }
        return Err(AnnotationError::AlreadyExists { id: current.id });
    }
    if new.image != context.image.id {
        return Err(AnnotationError::WrongImage {
            context: context.image.id,
            annotation: new.image,
        });
    }
    if !context.permissions.contains(Permission::Annotate) {
        return Err(AnnotationError::Forbidden(Permission::Annotate));
    }
    check_type(context, new.annotation_type)?;
    if new.description.chars().count() > MAX_DESCRIPTION {
        return Err(AnnotationError::DescriptionTooLong);
    }
    let vector = checked_vector(&new.vector, context)?;
    if context.annotation_type.vector_type == VectorType::Global && context.other_global {
        return Err(AnnotationError::GlobalExists);
    }
    Ok(vec![AnnotationEvent::AnnotationCreated(
        AnnotationCreated {
            id: new.id,
            image: new.image,
            annotation_type: new.annotation_type,
            vector,
            description: new.description.clone(),
            meta_data: new.meta_data.clone(),
            concealed: new.concealed,
            blurred: new.blurred,
            unique_identifier: new.unique_identifier,
            user: new.user.unwrap_or(context.actor),
        },
    )])
}

fn change(
    current: &Annotation,
    changes: &AnnotationChanges,
    context: &AnnotationContext,
) -> Result<Vec<AnnotationEvent>, AnnotationError> {
    require(context, Permission::EditAnnotation, current)?;
    if current.deleted {
        return Err(AnnotationError::Deleted);
    }
    let new_type = changes
        .annotation_type
        .filter(|t| *t != current.annotation_type);
    let mut changed = AnnotationChanged {
        id: current.id,
        annotation_type: new_type,
        ..AnnotationChanged::default()
    };
    // A new vector, or the old one under a new type, must fit the type it will have.
    if new_type.is_some() || changes.vector.is_some() {
        check_type(context, new_type.unwrap_or(current.annotation_type))?;
        let vector = checked_vector(changes.vector.as_ref().unwrap_or(&current.vector), context)?;
        if vector != current.vector {
            changed.vector = Some(vector);
        }
        if new_type.is_some()
            && context.annotation_type.vector_type == VectorType::Global
            && context.other_global
        {
            return Err(AnnotationError::GlobalExists);
        }
    }
    if let Some(description) = changes
        .description
        .as_ref()
        .filter(|d| **d != current.description)
    {
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(AnnotationError::DescriptionTooLong);
        }
        changed.description = Some(description.clone());
    }
    changed.meta_data = changes
        .meta_data
        .clone()
        .filter(|m| *m != current.meta_data);
    changed.concealed = changes.concealed.filter(|c| *c != current.concealed);
    changed.blurred = changes.blurred.filter(|b| *b != current.blurred);
    let nothing = AnnotationChanged {
        id: current.id,
        ..AnnotationChanged::default()
    };
    Ok(if changed == nothing {
        vec![]
    } else {
        vec![AnnotationEvent::AnnotationChanged(changed)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AnnotationAggregate, Given};
    use crate::permissions::{image_set_permissions, SetFlags, Standing};
    use proptest::prelude::*;
    use serde_json::json;

    const ALICE: i64 = 7;
    const BOX: i64 = 3;
    const CELL: i64 = 4;
    const LABEL: i64 = 5;

    fn uid(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    fn member() -> Permissions {
        image_set_permissions(
            Standing {
                member: true,
                ..Standing::default()
            },
            SetFlags::default(),
        )
    }

    fn context(type_id: i64) -> AnnotationContext {
        let vector_type = match type_id {
            BOX => VectorType::BoundingBox,
            CELL => VectorType::Polygon,
            _ => VectorType::Global,
        };
        AnnotationContext {
            actor: ALICE,
            permissions: member(),
            annotation_type: TypeInfo {
                id: type_id,
                vector_type,
                node_count: 0,
                active: true,
                offered: true,
            },
            image: ImageInfo {
                id: 11,
                width: 1000.0,
                height: 800.0,
                frames: 1,
            },
            other_global: false,
            clinical: false,
            reason_given: false,
        }
    }

    fn new_box(n: u128) -> NewAnnotation {
        NewAnnotation {
            id: 1,
            image: 11,
            annotation_type: BOX,
            vector: json!({"x1": 10, "y1": 20, "x2": 110.5, "y2": 220}),
            description: String::new(),
            meta_data: Value::Null,
            concealed: false,
            blurred: false,
            unique_identifier: uid(n),
            user: None,
        }
    }

    /// Given events, when a command, then events or an error.
    /// The harness every aggregate's tests share, for this one.
    fn given(events: &[AnnotationEvent]) -> Given<AnnotationAggregate> {
        crate::aggregate::given(events)
    }

    fn created() -> AnnotationEvent {
        AnnotationEvent::AnnotationCreated(AnnotationCreated {
            id: 1,
            image: 11,
            annotation_type: BOX,
            vector: json!({"x1": 10, "y1": 20, "x2": 110.5, "y2": 220}),
            description: String::new(),
            meta_data: Value::Null,
            concealed: false,
            blurred: false,
            unique_identifier: uid(1),
            user: ALICE,
        })
    }

    #[test]
    fn an_annotation_made_from_its_creation_is_the_one_evolve_makes() {
        let AnnotationEvent::AnnotationCreated(creation) = created() else {
            unreachable!()
        };
        let made = Annotation::created(creation);
        assert_eq!(Some(&made), evolve(None, &created()).as_ref());
        assert_eq!(made.version, 1);
        assert_eq!(made.vector["x2"], 110.5);
    }

    #[test]
    fn a_creations_payload_with_its_ids_is_that_of_the_event_with_them() {
        let AnnotationEvent::AnnotationCreated(decided) = created() else {
            unreachable!()
        };
        let planned = AnnotationCreated {
            id: 0,
            annotation_type: -1,
            ..decided.clone()
        };
        let made = |id| {
            (
                AnnotationCreated::EVENT_TYPE.to_owned(),
                planned.payload_with(id, BOX),
            )
        };
        assert_eq!(made(1), created().to_parts());
        assert_ne!(made(2), created().to_parts());
    }

    #[test]
    fn create_records_the_normalized_vector_and_the_caller_as_creator() {
        let then = given(&[])
            .when(AnnotationCommand::Create(new_box(1)), &context(BOX))
            .unwrap();
        assert_eq!(then, vec![created()]);
    }

    #[test]
    fn creating_again_with_the_same_uuid_is_a_no_op_and_with_another_a_conflict() {
        let history = given(&[created()]);
        assert_eq!(
            history.when(AnnotationCommand::Create(new_box(1)), &context(BOX)),
            Ok(vec![])
        );
        assert_eq!(
            history.when(AnnotationCommand::Create(new_box(2)), &context(BOX)),
            Err(AnnotationError::AlreadyExists { id: 1 })
        );
    }

    #[test]
    fn create_refuses_what_breaks_a_rule() {
        let mut outsider = context(BOX);
        outsider.permissions = Permissions::NONE;
        let mut inactive = context(BOX);
        inactive.annotation_type.active = false;
        let mut unoffered = context(BOX);
        unoffered.annotation_type.offered = false;
        let mut global_taken = context(LABEL);
        global_taken.other_global = true;
        let mut bad_vector = new_box(1);
        bad_vector.vector = json!({"x1": 110, "y1": 20, "x2": 10, "y2": 220});
        let mut long = new_box(1);
        long.description = "x".repeat(MAX_DESCRIPTION + 1);
        let mut label = new_box(1);
        label.annotation_type = LABEL;
        label.vector = Value::Null;
        let mut elsewhere = new_box(1);
        elsewhere.image = 12;

        let cases = [
            (
                new_box(1),
                outsider,
                AnnotationError::Forbidden(Permission::Annotate),
            ),
            (new_box(1), inactive, AnnotationError::TypeInactive(BOX)),
            (new_box(1), unoffered, AnnotationError::TypeNotOffered(BOX)),
            (
                bad_vector,
                context(BOX),
                AnnotationError::Vector(VectorError::CornersNotOrdered),
            ),
            (long, context(BOX), AnnotationError::DescriptionTooLong),
            (label, global_taken, AnnotationError::GlobalExists),
            (
                new_box(1),
                context(CELL),
                AnnotationError::WrongType {
                    context: CELL,
                    command: BOX,
                },
            ),
            (
                elsewhere,
                context(BOX),
                AnnotationError::WrongImage {
                    context: 11,
                    annotation: 12,
                },
            ),
        ];
        for (new, ctx, expected) in cases {
            assert_eq!(
                given(&[]).when(AnnotationCommand::Create(new), &ctx),
                Err(expected)
            );
        }
    }

    #[test]
    fn one_global_label_per_type_and_image_but_none_needs_no_vector() {
        let mut label = new_box(9);
        label.annotation_type = LABEL;
        label.vector = Value::Null;
        let then = given(&[])
            .when(AnnotationCommand::Create(label), &context(LABEL))
            .unwrap();
        assert!(matches!(&then[0], AnnotationEvent::AnnotationCreated(c) if c.vector.is_null()));
    }

    #[test]
    fn a_change_records_only_what_differs() {
        let history = given(&[created()]);
        let changes = AnnotationChanges {
            vector: Some(json!({"x1": 10, "y1": 20, "x2": 110.5, "y2": 220})),
            description: Some("mitosis".into()),
            concealed: Some(false),
            ..AnnotationChanges::default()
        };
        let then = history
            .when(AnnotationCommand::Change(changes), &context(BOX))
            .unwrap();
        assert_eq!(
            then,
            vec![AnnotationEvent::AnnotationChanged(AnnotationChanged {
                id: 1,
                description: Some("mitosis".into()),
                ..AnnotationChanged::default()
            })]
        );
        let same = AnnotationChanges {
            description: Some(String::new()),
            ..AnnotationChanges::default()
        };
        assert_eq!(
            history.when(AnnotationCommand::Change(same), &context(BOX)),
            Ok(vec![])
        );
    }

    #[test]
    fn changing_the_type_revalidates_the_vector_against_the_new_type() {
        let history = given(&[created()]);
        let to_cell = AnnotationChanges {
            annotation_type: Some(CELL),
            ..AnnotationChanges::default()
        };
        // A box has two nodes; the polygon type needs at least three.
        let err = history
            .when(AnnotationCommand::Change(to_cell.clone()), &context(CELL))
            .unwrap_err();
        assert!(
            matches!(
                err,
                AnnotationError::Vector(VectorError::WrongNodeCount { found: 2, .. })
            ),
            "{err:?}"
        );
        let with_polygon = AnnotationChanges {
            vector: Some(json!({"x1": 10, "y1": 20, "x2": 110, "y2": 20, "x3": 60, "y3": 90})),
            ..to_cell
        };
        let then = history
            .when(AnnotationCommand::Change(with_polygon), &context(CELL))
            .unwrap();
        assert!(
            matches!(&then[0], AnnotationEvent::AnnotationChanged(c) if c.annotation_type == Some(CELL) && c.vector.is_some())
        );
    }

    #[test]
    fn delete_and_restore_are_idempotent_and_guarded() {
        let deleted = AnnotationEvent::AnnotationDeleted { id: 1 };
        assert_eq!(
            given(&[created()]).when(AnnotationCommand::Delete, &context(BOX)),
            Ok(vec![deleted.clone()])
        );
        assert_eq!(
            given(&[created(), deleted.clone()]).when(AnnotationCommand::Delete, &context(BOX)),
            Ok(vec![])
        );
        assert_eq!(
            given(&[created(), deleted.clone()]).when(
                AnnotationCommand::Change(AnnotationChanges::default()),
                &context(BOX)
            ),
            Err(AnnotationError::Deleted)
        );
        assert_eq!(
            given(&[created(), deleted.clone()]).when(AnnotationCommand::Restore, &context(BOX)),
            Ok(vec![AnnotationEvent::AnnotationRestored { id: 1 }])
        );
        assert_eq!(
            given(&[created()]).when(AnnotationCommand::Restore, &context(BOX)),
            Ok(vec![])
        );
        assert_eq!(
            given(&[]).when(AnnotationCommand::Delete, &context(BOX)),
            Err(AnnotationError::NotFound)
        );
        let mut reader = context(BOX);
        reader.permissions = image_set_permissions(
            Standing::default(),
            SetFlags {
                public: true,
                ..SetFlags::default()
            },
        );
        assert_eq!(
            given(&[created()]).when(AnnotationCommand::Delete, &reader),
            Err(AnnotationError::Forbidden(Permission::DeleteAnnotation))
        );
    }

    #[test]
    fn a_later_verdict_replaces_the_earlier_one_and_a_repeat_is_a_no_op() {
        let accept = AnnotationEvent::AnnotationVerified {
            id: 1,
            user: ALICE,
            verified: true,
            signature: None,
        };
        let history = given(&[created(), accept.clone()]);
        assert_eq!(
            history.state().unwrap().verifications.get(&ALICE),
            Some(&true)
        );
        assert_eq!(
            history.when(AnnotationCommand::Verify { verified: true }, &context(BOX)),
            Ok(vec![])
        );
        let reject = AnnotationEvent::AnnotationVerified {
            id: 1,
            user: ALICE,
            verified: false,
            signature: None,
        };
        assert_eq!(
            history.when(AnnotationCommand::Verify { verified: false }, &context(BOX)),
            Ok(vec![reject.clone()])
        );
        let after = given(&[created(), accept, reject]);
        assert_eq!(
            after.state().unwrap().verifications,
            BTreeMap::from([(ALICE, false)])
        );
    }

    fn clinical(reason_given: bool) -> AnnotationContext {
        AnnotationContext {
            clinical: true,
            reason_given,
            ..context(BOX)
        }
    }

    fn accepted_by(user: i64) -> AnnotationEvent {
        AnnotationEvent::AnnotationVerified {
            id: 1,
            user,
            verified: true,
            signature: None,
        }
    }

    #[test]
    fn in_clinical_mode_a_verdict_is_a_signature_bound_to_the_version_signed() {
        let history = given(&[created()]);
        assert_eq!(
            history.when(
                AnnotationCommand::Verify { verified: true },
                &clinical(false)
            ),
            Err(AnnotationError::SignatureRequired)
        );
        let sign = |meaning| AnnotationCommand::Sign {
            meaning,
            signer: " Ada Lovelace ".into(),
        };
        assert_eq!(
            history.when(sign(Meaning::Approved), &clinical(false)),
            Ok(vec![AnnotationEvent::AnnotationVerified {
                id: 1,
                user: ALICE,
                verified: true,
                signature: Some(Signature {
                    name: "Ada Lovelace".into(),
                    meaning: Meaning::Approved,
                    version: 1,
                }),
            }])
        );
        // After a change, a signature names the version it was given on.
        let moved = AnnotationEvent::AnnotationChanged(AnnotationChanged {
            id: 1,
            description: Some("mitosis".into()),
            ..AnnotationChanged::default()
        });
        let later = given(&[created(), accepted_by(8), moved]);
        assert_eq!(later.state().unwrap().version, 3);
        let events = later
            .when(sign(Meaning::Rejected), &clinical(false))
            .unwrap();
        let AnnotationEvent::AnnotationVerified {
            verified,
            signature: Some(signature),
            ..
        } = &events[0]
        else {
            panic!("a signed verdict, not {events:?}");
        };
        assert!(!verified);
        assert_eq!(
            (signature.meaning, signature.version),
            (Meaning::Rejected, 3)
        );
        // Signing the same meaning again is a new signature, not a no-op.
        let signed = given(&[created(), events[0].clone()]);
        assert_eq!(
            signed
                .when(sign(Meaning::Rejected), &clinical(false))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            history.when(
                AnnotationCommand::Sign {
                    meaning: Meaning::Reviewed,
                    signer: "  ".into()
                },
                &clinical(false)
            ),
            Err(AnnotationError::SignerUnnamed)
        );
        // Outside clinical mode both ways of giving a verdict work.
        assert!(history.when(sign(Meaning::Reviewed), &context(BOX)).is_ok());
        assert!(history
            .when(AnnotationCommand::Verify { verified: true }, &context(BOX))
            .is_ok());
    }

    #[test]
    fn in_clinical_mode_a_verified_annotation_changes_only_with_a_reason() {
        let change = AnnotationCommand::Change(AnnotationChanges {
            description: Some("mitosis".into()),
            ..AnnotationChanges::default()
        });
        let verified = given(&[created(), accepted_by(ALICE)]);
        for command in [
            change.clone(),
            AnnotationCommand::Delete,
            AnnotationCommand::WithdrawVerdict,
        ] {
            assert_eq!(
                verified.when(command.clone(), &clinical(false)),
                Err(AnnotationError::ReasonRequired),
                "{command:?}"
            );
            assert_eq!(
                verified.when(command, &clinical(true)).map(|e| e.len()),
                Ok(1)
            );
        }
        let deleted = given(&[
            created(),
            accepted_by(ALICE),
            AnnotationEvent::AnnotationDeleted { id: 1 },
        ]);
        assert_eq!(
            deleted.when(AnnotationCommand::Restore, &clinical(false)),
            Err(AnnotationError::ReasonRequired)
        );
        // Without a verdict, or outside clinical mode, no reason is asked for; nor for a
        // change that changes nothing.
        assert_eq!(
            given(&[created()])
                .when(change.clone(), &clinical(false))
                .map(|e| e.len()),
            Ok(1)
        );
        assert_eq!(verified.when(change, &context(BOX)).map(|e| e.len()), Ok(1));
        let same = AnnotationCommand::Change(AnnotationChanges {
            description: Some(String::new()),
            ..AnnotationChanges::default()
        });
        assert_eq!(verified.when(same, &clinical(false)), Ok(vec![]));
    }

    #[test]
    fn a_verdict_is_taken_back_by_its_user_and_taking_none_back_is_a_no_op() {
        let accept = AnnotationEvent::AnnotationVerified {
            id: 1,
            user: ALICE,
            verified: true,
            signature: None,
        };
        let withdrawn = AnnotationEvent::AnnotationVerdictWithdrawn { id: 1, user: ALICE };
        assert_eq!(
            given(&[created(), accept.clone()])
                .when(AnnotationCommand::WithdrawVerdict, &context(BOX)),
            Ok(vec![withdrawn.clone()])
        );
        let after = given(&[created(), accept, withdrawn]);
        assert!(after.state().unwrap().verifications.is_empty());
        assert_eq!(
            after.when(AnnotationCommand::WithdrawVerdict, &context(BOX)),
            Ok(vec![])
        );
    }

    #[test]
    fn a_creation_takes_its_id_from_the_log_and_keeps_everything_else() {
        let AnnotationEvent::AnnotationCreated(decided) = created() else {
            unreachable!()
        };
        let (_, payload) = decided.clone().with_id(41).to_parts();
        assert_eq!(payload["id"], 41);
        let mut expected = serde_json::to_value(&decided).unwrap();
        expected["id"] = json!(41);
        assert_eq!(payload, expected);
    }

    #[test]
    fn events_split_into_the_logs_type_and_payload_and_back() {
        let (name, payload) = created().to_parts();
        assert_eq!(name, "AnnotationCreated");
        assert_eq!(payload["unique_identifier"], json!(uid(1)));
        assert_eq!(
            AnnotationEvent::from_parts(&name, payload)
                .unwrap()
                .unwrap(),
            created()
        );
        assert!(AnnotationEvent::from_parts("TeamCreated", json!({})).is_none());
        // Read from the log's text straight into the enum: the same events.
        let events = [
            created(),
            AnnotationEvent::AnnotationChanged(AnnotationChanged {
                id: 1,
                vector: Some(json!({"x1": 1.5, "y1": 2, "x2": 30.25, "y2": 40})),
                meta_data: Some(json!({"score": 0.75, "tags": ["a", "\"b\""]})),
                description: Some("mitosis \u{e9}".into()),
                ..AnnotationChanged::default()
            }),
            AnnotationEvent::AnnotationDeleted { id: 3 },
            AnnotationEvent::AnnotationRestored { id: 3 },
            AnnotationEvent::AnnotationVerified {
                id: 3,
                user: ALICE,
                verified: true,
                signature: None,
            },
            AnnotationEvent::AnnotationVerified {
                id: 3,
                user: ALICE,
                verified: false,
                signature: Some(Signature {
                    name: "Dr. Ada Lovelace".into(),
                    meaning: Meaning::Rejected,
                    version: 4,
                }),
            },
        ];
        for event in events {
            let (name, payload) = event.to_parts();
            let text = payload.to_string();
            assert_eq!(
                AnnotationEvent::from_json(&name, &text).unwrap().unwrap(),
                event,
                "{name} {text}"
            );
        }
        assert!(AnnotationEvent::from_json("TeamCreated", "{}").is_none());
        assert!(
            AnnotationEvent::from_json("AnnotationDeleted", r#"{"oops": 1}"#)
                .unwrap()
                .is_err()
        );
        assert!(
            AnnotationEvent::from_json("AnnotationDeleted", "{\"id\": 1")
                .unwrap()
                .is_err()
        );
        assert!(
            AnnotationEvent::from_json("AnnotationDeleted", "{\"id\": 1} {}")
                .unwrap()
                .is_err()
        );
        assert!(
            AnnotationEvent::from_parts("AnnotationDeleted", json!({"oops": 1}))
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn events_serialize_with_their_type_names() {
        let text = serde_json::to_value(AnnotationEvent::AnnotationDeleted { id: 4 }).unwrap();
        assert_eq!(
            text,
            json!({"type": "AnnotationDeleted", "payload": {"id": 4}})
        );
        let back: AnnotationEvent =
            serde_json::from_value(serde_json::to_value(created()).unwrap()).unwrap();
        assert_eq!(back, created());
    }

    fn command() -> impl Strategy<Value = (AnnotationCommand, i64)> {
        let vector = prop_oneof![
            (0.0..900.0f64, 0.0..700.0f64, 1.0..200.0f64, 1.0..200.0f64)
                .prop_map(|(x, y, w, h)| json!({"x1": x, "y1": y, "x2": x + w, "y2": y + h})),
            (-500.0..1500.0f64, -500.0..1500.0f64)
                .prop_map(|(x, y)| json!({"x1": x, "y1": y, "x2": x - 1.0, "y2": y})),
            Just(Value::Null),
        ];
        prop_oneof![
            (vector.clone(), 1u128..3).prop_map(|(v, n)| (
                AnnotationCommand::Create(NewAnnotation {
                    vector: v,
                    ..new_box(n)
                }),
                BOX
            )),
            vector.prop_map(|v| (
                AnnotationCommand::Change(AnnotationChanges {
                    vector: Some(v),
                    ..AnnotationChanges::default()
                }),
                BOX
            )),
            "[a-z]{0,5}".prop_map(|d| (
                AnnotationCommand::Change(AnnotationChanges {
                    description: Some(d),
                    ..AnnotationChanges::default()
                }),
                BOX
            )),
            Just((AnnotationCommand::Delete, BOX)),
            Just((AnnotationCommand::Restore, BOX)),
            any::<bool>().prop_map(|verified| (AnnotationCommand::Verify { verified }, BOX)),
        ]
    }

    proptest! {
        /// Whatever commands come, in whatever order, the state only ever holds a vector that
        /// fits its type and image, and deleted annotations gather no verdicts.
        #[test]
        fn no_command_sequence_yields_an_invalid_annotation(commands in prop::collection::vec(command(), 1..30)) {
            let mut state: Option<Annotation> = None;
            for (command, type_id) in commands {
                let ctx = context(type_id);
                let before = state.clone();
                if let Ok(events) = decide(state.as_ref(), &command, &ctx) {
                    for event in &events {
                        if let AnnotationEvent::AnnotationVerified { .. } = event {
                            prop_assert!(!before.as_ref().is_some_and(|a| a.deleted));
                        }
                        state = evolve(state, event);
                    }
                }
                if let Some(a) = &state {
                    let parsed = Vector::from_json(&a.vector).unwrap();
                    let fit = Fit { vector_type: VectorType::BoundingBox, node_count: 0, image_width: 1000.0, image_height: 800.0, image_frames: 1 };
                    prop_assert!(vector::validate(parsed.as_ref(), &fit).is_ok(), "{}", a.vector);
                    prop_assert_eq!(a.unique_identifier == uid(1) || a.unique_identifier == uid(2), true);
                }
            }
        }
    }
}
