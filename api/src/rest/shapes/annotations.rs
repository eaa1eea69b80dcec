//! An annotation, a verdict on it and an entry of the image access log.

use exact_projections::annotations::AnnotationRow;
use exact_projections::catalog_read::AccessRow;
use exact_projections::VerificationRow;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::ToSchema;

use crate::rest::params::format_time;

/// An annotation as EXACT's serializer shows it. The stored JSON of the vector and the meta
/// data is passed through as it is: a viewport holds thousands of rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct Annotation<'a> {
    pub id: i64,
    pub annotation_type: i64,
    #[schema(value_type = Value)]
    pub vector: &'a RawValue,
    /// Whether the caller accepted it (EXACT's per-request field).
    pub verified_by_user: bool,
    pub image: i64,
    pub concealed: bool,
    pub blurred: bool,
    pub user: i64,
    pub last_editor: i64,
    pub deleted: bool,
    pub description: &'a str,
    pub unique_identifier: &'a str,
    #[schema(value_type = Vec<i64>)]
    pub uploaded_media_files: [i64; 0],
    #[schema(value_type = Vec<i64>)]
    pub annotationversion_set: [i64; 0],
    #[schema(value_type = Value)]
    pub meta_data: &'a RawValue,
    #[schema(format = DateTime)]
    pub time: String,
    #[schema(format = DateTime)]
    pub last_edit_time: String,
    pub version: i64,
    pub position: i64,
}

impl<'a> Annotation<'a> {
    pub fn of(a: &'a AnnotationRow, verified_by_user: bool) -> Self {
        Annotation {
            id: a.id,
            annotation_type: a.annotation_type,
            vector: raw(a.vector.as_deref()),
            verified_by_user,
            image: a.image,
            concealed: a.concealed,
            blurred: a.blurred,
            user: a.user_id,
            last_editor: a.last_editor.unwrap_or(a.user_id),
            deleted: a.deleted,
            description: &a.description,
            unique_identifier: &a.unique_identifier,
            uploaded_media_files: [],
            annotationversion_set: [],
            meta_data: raw(a.meta_data.as_deref()),
            time: format_time(a.time),
            last_edit_time: format_time(a.last_edit_time),
            version: a.version,
            position: a.position,
        }
    }
}

/// Stored JSON text as it is; `null` for none (or, never expected, text that is not JSON).
fn raw(text: Option<&str>) -> &RawValue {
    const NULL: &str = "null";
    let null = || serde_json::from_str::<&RawValue>(NULL).expect("null is JSON");
    text.and_then(|t| serde_json::from_str::<&RawValue>(t).ok())
        .unwrap_or_else(null)
}

/// A user's verdict on an annotation; its id is its log position.
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub id: i64,
    pub annotation: i64,
    pub user: i64,
    #[schema(format = DateTime)]
    pub time: String,
    pub verified: bool,
    /// The verdict as an electronic signature (clinical mode), or `null`.
    pub signature: Option<SignatureShape>,
}

/// An electronic signature: the signer's name, the time and the meaning, bound to the version
/// of the annotation that was signed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Signature)]
pub struct SignatureShape {
    pub name: String,
    /// `reviewed`, `approved` or `rejected`.
    pub meaning: String,
    #[schema(format = DateTime)]
    pub signed_at: String,
    /// The annotation version (its `version`) the signature was given on.
    pub annotation_version: i64,
    /// False once the annotation changed after it was signed: the signature applies to the
    /// earlier version only.
    pub applies_to_current_version: bool,
    /// The log position of the change that ended it, if one did.
    pub superseded_at_position: Option<i64>,
}

impl Verification {
    pub fn of(v: &VerificationRow) -> Self {
        let signature = match (&v.signer, &v.meaning, v.signed_version) {
            (Some(name), Some(meaning), Some(version)) => Some(SignatureShape {
                name: name.clone(),
                meaning: meaning.clone(),
                signed_at: format_time(v.time),
                annotation_version: version,
                applies_to_current_version: v.unsigned_at.is_none(),
                superseded_at_position: v.unsigned_at,
            }),
            _ => None,
        };
        Verification {
            id: v.position,
            annotation: v.annotation,
            user: v.user_id,
            time: format_time(v.time),
            verified: v.verified,
            signature,
        }
    }
}

/// EXACT's `LogImageAction`: who opened (1) or closed (2) an image, when, from where; its id
/// is its log position.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEntry {
    pub id: i64,
    pub image: i64,
    pub user: i64,
    #[schema(format = DateTime)]
    pub time: String,
    pub action: i64,
    pub ip: Option<String>,
}

impl AccessEntry {
    pub fn of(entry: &AccessRow) -> Self {
        AccessEntry {
            id: entry.position,
            image: entry.image,
            user: entry.user_id,
            time: format_time(entry.time),
            action: entry.action,
            ip: entry.ip.clone(),
        }
    }
}

/// Every version of one annotation, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnnotationHistory {
    pub id: i64,
    pub count: usize,
    pub versions: Vec<HistoryEntry>,
}

/// One version: who made it, when, why, with which event, what changed and the state after.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub version: i64,
    /// The log position the version was made at.
    pub position: i64,
    /// The position that replaced it, if any.
    pub valid_to: Option<i64>,
    pub event: String,
    pub user: Option<i64>,
    #[schema(format = DateTime)]
    pub time: String,
    pub reason: Option<String>,
    #[schema(value_type = Vec<String>)]
    pub changed: Vec<&'static str>,
    pub state: HistoryState,
}

/// An annotation's fields as one version left them.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryState {
    pub image: i64,
    pub annotation_type: i64,
    pub vector: Value,
    pub description: String,
    pub meta_data: Value,
    pub concealed: bool,
    pub blurred: bool,
    pub deleted: bool,
}

impl AnnotationHistory {
    pub fn of(id: i64, versions: &[exact_projections::AnnotationVersion]) -> Self {
        let entries: Vec<HistoryEntry> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| HistoryEntry {
                version: v.version,
                position: v.valid_from,
                valid_to: v.valid_to,
                event: v.event_type.clone(),
                user: v.actor,
                time: format_time(v.recorded_at),
                reason: v.reason.clone(),
                changed: match i.checked_sub(1) {
                    Some(previous) => v.changes_from(&versions[previous]),
                    None => vec![],
                },
                state: HistoryState {
                    image: v.image,
                    annotation_type: v.annotation_type,
                    vector: parsed(v.vector.as_deref()),
                    description: v.description.clone(),
                    meta_data: parsed(v.meta_data.as_deref()),
                    concealed: v.concealed,
                    blurred: v.blurred,
                    deleted: v.deleted,
                },
            })
            .collect();
        AnnotationHistory {
            id,
            count: entries.len(),
            versions: entries,
        }
    }
}

fn parsed(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}
