//! What goes into the log and what comes out of it: events to append, stored envelopes, and the
//! hash that links each envelope to the one before it.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::canonical;

/// A SHA-256 digest in the chain.
pub type Hash = [u8; 32];

/// The `prev_hash` of the first event in every log.
pub const ZERO_HASH: Hash = [0; 32];

/// The version a stream must be at for an append to go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Append whatever the stream holds.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have this version.
    Exact(i64),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Any => f.write_str("any version"),
            Expected::NoStream => f.write_str("no stream"),
            Expected::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// Which door a change came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Ui,
    Api,
    Import,
    Cli,
    System,
}

/// Who does a change, and why: shared by every event of one append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendContext {
    pub actor: Option<i64>,
    pub correlation_id: Uuid,
    pub source: Source,
    pub reason: Option<String>,
    pub client_addr: Option<String>,
}

impl AppendContext {
    pub fn new(source: Source, actor: Option<i64>) -> Self {
        Self {
            actor,
            correlation_id: Uuid::now_v7(),
            source,
            reason: None,
            client_addr: None,
        }
    }

    /// A change the system makes on its own (genesis, migrations).
    pub fn system() -> Self {
        Self::new(Source::System, None)
    }

    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    #[must_use]
    pub fn with_client_addr(mut self, addr: impl Into<String>) -> Self {
        self.client_addr = Some(addr.into());
        self
    }
}

/// The metadata stored with every event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub actor: Option<i64>,
    #[serde(with = "micros_rfc3339")]
    pub recorded_at: DateTime<Utc>,
    pub correlation_id: Uuid,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
}

impl Metadata {
    pub(crate) fn new(context: &AppendContext, recorded_at: DateTime<Utc>) -> Self {
        Self {
            actor: context.actor,
            recorded_at,
            correlation_id: context.correlation_id,
            source: context.source,
            reason: context.reason.clone(),
            client_addr: context.client_addr.clone(),
        }
    }

    /// The canonical JSON text that is stored and hashed.
    pub(crate) fn to_canonical(&self) -> String {
        let value = serde_json::to_value(self).expect("metadata always serializes");
        canonical::to_string(&value)
    }
}

/// Times in the log are RFC 3339 in UTC with exactly six fractional digits.
pub mod micros_rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(at: &DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// An event to append. Its `event_id` makes a retried append idempotent.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema: i32,
    pub payload: Payload,
}

/// The payload of an event to append.
#[derive(Clone, Debug)]
pub enum Payload {
    Json(serde_json::Value),
    /// Made when the append is planned: a large append's events are planned (serialized,
    /// hashed) in chunks on another thread while the writer writes the chunks before, so a
    /// payload made there costs the writer nothing. An append is built on the writer, in its
    /// transaction, because that is where ids are handed out.
    Planned(Arc<dyn PlannedPayload>),
}

/// A payload made when its append is planned (see [`Payload::Planned`]).
pub trait PlannedPayload: Send + Sync + fmt::Debug {
    fn to_json(&self) -> serde_json::Value;
}

impl Payload {
    /// The payload as JSON (a planned one made now).
    pub fn to_json(&self) -> std::borrow::Cow<'_, serde_json::Value> {
        match self {
            Payload::Json(value) => std::borrow::Cow::Borrowed(value),
            Payload::Planned(planned) => std::borrow::Cow::Owned(planned.to_json()),
        }
    }
}

impl From<serde_json::Value> for Payload {
    fn from(value: serde_json::Value) -> Self {
        Payload::Json(value)
    }
}

/// Payloads are equal when their JSON is.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.to_json() == other.to_json()
    }
}

impl NewEvent {
    /// A new event with a fresh UUIDv7 and payload schema 1.
    pub fn new(event_type: impl Into<String>, payload: impl Into<Payload>) -> Self {
        Self::identified(Uuid::now_v7(), event_type, payload)
    }

    /// A new event with the id `event_id` (made beforehand, off the writer's thread) and
    /// payload schema 1.
    pub fn identified(
        event_id: Uuid,
        event_type: impl Into<String>,
        payload: impl Into<Payload>,
    ) -> Self {
        Self {
            event_id,
            event_type: event_type.into(),
            schema: 1,
            payload: payload.into(),
        }
    }

    #[must_use]
    pub fn with_schema(mut self, schema: i32) -> Self {
        self.schema = schema;
        self
    }

    #[must_use]
    pub fn with_event_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }
}

/// Events for one stream within an append.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamAppend {
    pub stream: String,
    pub expected: Expected,
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    pub fn new(stream: impl Into<String>, expected: Expected, events: Vec<NewEvent>) -> Self {
        Self {
            stream: stream.into(),
            expected,
            events,
        }
    }
}

/// An event as stored: its place in the log, its content and its link in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub position: i64,
    pub stream: String,
    pub version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema: i32,
    /// Canonical JSON text of the payload, exactly as hashed.
    pub payload: String,
    /// Canonical JSON text of the [`Metadata`], exactly as hashed.
    pub metadata: String,
    /// The metadata's `recorded_at`, kept in its own column for time lookups.
    pub recorded_at: DateTime<Utc>,
    pub prev_hash: Hash,
    pub hash: Hash,
}

impl Envelope {
    pub fn payload_value(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(&self.payload)
    }

    pub fn metadata(&self) -> serde_json::Result<Metadata> {
        serde_json::from_str(&self.metadata)
    }

    /// Recomputes this envelope's hash from its content and its `prev_hash`.
    pub fn compute_hash(&self) -> Hash {
        chain_hash(
            &self.prev_hash,
            &HashedFields {
                position: self.position,
                stream: &self.stream,
                version: self.version,
                event_id: self.event_id,
                event_type: &self.event_type,
                schema: self.schema,
                payload: &self.payload,
                metadata: &self.metadata,
            },
        )
    }

    /// Reads back one line of `exact store export --format jsonl`: payload and metadata exactly
    /// as written (they are hashed as text), the time from the metadata. The hash is taken as
    /// written; a store that imports the envelope verifies it.
    pub fn from_json_line(line: &str) -> Result<Envelope, String> {
        #[derive(Deserialize)]
        struct Line<'a> {
            position: i64,
            stream: String,
            version: i64,
            event_id: Uuid,
            #[serde(rename = "type")]
            event_type: String,
            schema: i32,
            #[serde(borrow)]
            payload: &'a serde_json::value::RawValue,
            #[serde(borrow)]
            metadata: &'a serde_json::value::RawValue,
            prev_hash: String,
            hash: String,
        }
        #[derive(Deserialize)]
        struct Recorded {
            #[serde(with = "micros_rfc3339")]
            recorded_at: DateTime<Utc>,
        }
        let line: Line = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let recorded: Recorded =
            serde_json::from_str(line.metadata.get()).map_err(|e| format!("metadata: {e}"))?;
        let hash = |name: &str, text: &str| -> Result<Hash, String> {
            hex::decode(text)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| format!("{name} is not 32 bytes of hex"))
        };
        Ok(Envelope {
            position: line.position,
            stream: line.stream,
            version: line.version,
            event_id: line.event_id,
            event_type: line.event_type,
            schema: line.schema,
            payload: line.payload.get().to_owned(),
            metadata: line.metadata.get().to_owned(),
            recorded_at: recorded.recorded_at,
            prev_hash: hash("prev_hash", &line.prev_hash)?,
            hash: hash("hash", &line.hash)?,
        })
    }

    /// One line of `exact store export --format jsonl`, without the newline.
    pub fn to_json_line(&self) -> String {
        let mut line = String::with_capacity(self.payload.len() + self.metadata.len() + 320);
        line.push_str("{\"position\":");
        line.push_str(&self.position.to_string());
        line.push_str(",\"stream\":");
        canonical::write_str(&mut line, &self.stream);
        line.push_str(",\"version\":");
        line.push_str(&self.version.to_string());
        line.push_str(",\"event_id\":\"");
        line.push_str(&self.event_id.hyphenated().to_string());
        line.push_str("\",\"type\":");
        canonical::write_str(&mut line, &self.event_type);
        line.push_str(",\"schema\":");
        line.push_str(&self.schema.to_string());
        line.push_str(",\"payload\":");
        line.push_str(&self.payload);
        line.push_str(",\"metadata\":");
        line.push_str(&self.metadata);
        line.push_str(",\"prev_hash\":\"");
        line.push_str(&hex::encode(self.prev_hash));
        line.push_str("\",\"hash\":\"");
        line.push_str(&hex::encode(self.hash));
        line.push_str("\"}");
        line
    }
}

/// The parts of an envelope that its hash covers (all but `prev_hash`, which is chained
/// separately, and `hash` itself).
#[derive(Clone, Copy, Debug)]
pub(crate) struct HashedFields<'a> {
    pub position: i64,
    pub stream: &'a str,
    pub version: i64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema: i32,
    pub payload: &'a str,
    pub metadata: &'a str,
}

/// `SHA-256(prev_hash || canonical JSON of the hashed fields)`; see the crate docs.
///
/// The canonical object is written directly, keys in sorted order, splicing in the payload and
/// metadata texts, which are canonical already.
pub(crate) fn chain_hash(prev_hash: &Hash, fields: &HashedFields<'_>) -> Hash {
    let mut body = String::with_capacity(fields.payload.len() + fields.metadata.len() + 192);
    body.push_str("{\"event_id\":\"");
    body.push_str(&fields.event_id.hyphenated().to_string());
    body.push_str("\",\"metadata\":");
    body.push_str(fields.metadata);
    body.push_str(",\"payload\":");
    body.push_str(fields.payload);
    body.push_str(",\"position\":");
    body.push_str(&fields.position.to_string());
    body.push_str(",\"schema\":");
    body.push_str(&fields.schema.to_string());
    body.push_str(",\"stream\":");
    canonical::write_str(&mut body, fields.stream);
    body.push_str(",\"type\":");
    canonical::write_str(&mut body, fields.event_type);
    body.push_str(",\"version\":");
    body.push_str(&fields.version.to_string());
    body.push('}');
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(body.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Envelope {
        let mut envelope = Envelope {
            position: 1,
            stream: "$store".into(),
            version: 1,
            event_id: Uuid::parse_str("01936d3c-7a00-7000-8000-000000000001").unwrap(),
            event_type: "StoreInitialized".into(),
            schema: 1,
            payload: r#"{"binary_version":"0.1.0","store_id":"01936d3c-7a00-7000-8000-0000000000aa","time":"2024-12-01T00:00:00.000000Z"}"#.into(),
            metadata: r#"{"actor":null,"correlation_id":"01936d3c-7a00-7000-8000-0000000000bb","recorded_at":"2024-12-01T00:00:00.000000Z","source":"system"}"#.into(),
            recorded_at: "2024-12-01T00:00:00Z".parse().unwrap(),
            prev_hash: ZERO_HASH,
            hash: ZERO_HASH,
        };
        envelope.hash = envelope.compute_hash();
        envelope
    }

    /// An export line reads back as the envelope it was written from, byte for byte.
    #[test]
    fn an_export_line_reads_back() {
        let e = sample();
        assert_eq!(Envelope::from_json_line(&e.to_json_line()), Ok(e));
        assert!(Envelope::from_json_line("{\"position\": 1}").is_err());
    }

    /// The worked example of the crate docs: if this changes, every stored chain breaks.
    #[test]
    fn worked_test_vector_is_stable() {
        assert_eq!(hex::encode(sample().hash), crate::WORKED_EXAMPLE_HASH);
    }

    #[test]
    fn spliced_hash_body_equals_generic_canonical_json() {
        let e = sample();
        let body = json!({
            "position": e.position, "stream": e.stream, "version": e.version,
            "event_id": e.event_id, "type": e.event_type, "schema": e.schema,
            "payload": e.payload_value().unwrap(),
            "metadata": serde_json::from_str::<serde_json::Value>(&e.metadata).unwrap(),
        });
        let mut hasher = Sha256::new();
        hasher.update(ZERO_HASH);
        hasher.update(canonical::to_string(&body).as_bytes());
        let expected: Hash = hasher.finalize().into();
        assert_eq!(e.hash, expected);
    }

    #[test]
    fn json_line_parses_back_to_the_same_fields() {
        let e = sample();
        let line: serde_json::Value = serde_json::from_str(&e.to_json_line()).unwrap();
        assert_eq!(line["position"], 1);
        assert_eq!(line["stream"], "$store");
        assert_eq!(line["hash"], hex::encode(e.hash));
        assert_eq!(line["prev_hash"], hex::encode(ZERO_HASH));
        assert_eq!(line["metadata"]["source"], "system");
    }

    #[test]
    fn metadata_times_keep_six_fractional_digits() {
        let context = AppendContext::system().with_reason("because");
        let at = "2026-01-02T03:04:05.000120Z".parse().unwrap();
        let text = Metadata::new(&context, at).to_canonical();
        assert!(
            text.contains(r#""recorded_at":"2026-01-02T03:04:05.000120Z""#),
            "{text}"
        );
        assert!(text.contains(r#""reason":"because""#), "{text}");
        assert!(!text.contains("client_addr"), "{text}");
    }
}
