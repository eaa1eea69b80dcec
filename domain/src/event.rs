//! How a domain event enum meets the log: a type name and a JSON payload.
//!
//! Every aggregate's events are one enum, `#[serde(tag = "type", content = "payload")]`, whose
//! variant names are the type names stored in the log. This trait converts between the two
//! forms: the `Value` form without copying the payload, the log's text in one pass.

use serde::de::DeserializeOwned;
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
    /// as long again. The text is copied once, behind the tag. `None` for another enum's
    /// events.
    fn from_json(event_type: &str, payload: &str) -> Option<serde_json::Result<Self>> {
        Self::NAMES.contains(&event_type).then(|| {
            // The tag first, so that serde reads the payload without buffering it.
            let tag = Value::String(event_type.to_owned());
            serde_json::from_str(&format!("{{\"type\":{tag},\"payload\":{payload}}}"))
        })
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
