//! How a domain event enum meets the log: a type name and a JSON payload.
//!
//! Every aggregate's events are one enum, `#[serde(tag = "type", content = "payload")]`, whose
//! variant names are the type names stored in the log. This trait converts between the two
//! forms: the `Value` form without copying the payload, the log's text in one pass.

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer};
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess};
use serde::Serialize;
use serde_json::Value;

/// An aggregate's event enum.
pub trait DomainEvent: Serialize + DeserializeOwned {
    /// Every type name the enum stores.
    const NAMES: &'static [&'static str];

    /// The event's type name and payload, as the log stores them.
    fn to_parts(&self) -> (String, Value) {
        let mut tagged = serde_json::to_value(self).expect("domain events always serialize");
        let payload = tagged["payload"].take();
        let name = tagged["type"].as_str().unwrap_or_default().to_owned();
        (name, payload)
    }

    /// The event stored as `event_type` with `payload`; `None` for another enum's events.
    fn from_parts(event_type: &str, payload: Value) -> Option<serde_json::Result<Self>> {
        // The adjacently tagged form, built around the payload without copying it.
        Self::NAMES.contains(&event_type).then(|| {
            let mut tagged = serde_json::Map::with_capacity(2);
            tagged.insert("type".into(), Value::String(event_type.to_owned()));
            tagged.insert("payload".into(), payload);
            serde_json::from_value(Value::Object(tagged))
        })
    }

    /// The event stored as `event_type` with the JSON text `payload` (of the newest schema),
    /// read straight into the enum: a replay reads millions, and going through a `Value` took
    /// as long again, and copying the payload behind its tag a twentieth of a rebuild's
    /// decoding. `None` for another enum's events.
    fn from_json(event_type: &str, payload: &str) -> Option<serde_json::Result<Self>> {
        Self::NAMES.contains(&event_type).then(|| {
            Self::deserialize(MapAccessDeserializer::new(Parts {
                event_type,
                payload,
                read: 0,
            }))
        })
    }
}

/// The log's two parts as the map `{"type": …, "payload": …}` an adjacently tagged enum
/// reads: the tag first, so that serde reads the payload without buffering it.
struct Parts<'a> {
    event_type: &'a str,
    payload: &'a str,
    /// Entries handed out so far.
    read: usize,
}

impl<'de> MapAccess<'de> for Parts<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> serde_json::Result<Option<K::Value>> {
        let key = match self.read {
            0 => "type",
            1 => "payload",
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> serde_json::Result<V::Value> {
        self.read += 1;
        if self.read == 1 {
            return seed.deserialize(BorrowedStrDeserializer::new(self.event_type));
        }
        let mut payload = serde_json::Deserializer::from_str(self.payload);
        let value = seed.deserialize(&mut payload)?;
        // Nothing but whitespace after the payload, as `serde_json::from_str` checks.
        payload.end()?;
        Ok(value)
    }
}

/// Who acts, as the rules need to know them. Gathered by the caller from the read models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// The user's id; 0 for the system itself (first start, migrations).
    pub id: i64,
    pub superuser: bool,
    pub staff: bool,
}

impl Actor {
    /// Exact itself, acting on first start or in a migration: allowed everything.
    pub const SYSTEM: Actor = Actor {
        id: 0,
        superuser: true,
        staff: true,
    };

    pub fn user(id: i64) -> Self {
        Self {
            id,
            ..Self::default()
        }
    }
}

/// How the actor stands to a team.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TeamRole {
    #[default]
    None,
    Member,
    Admin,
}

impl TeamRole {
    pub fn is_member(self) -> bool {
        self != TeamRole::None
    }
}
