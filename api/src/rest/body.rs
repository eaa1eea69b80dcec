//! Typed request bodies: `Body<T>` reads JSON, a form or multipart (through [`Input`]) into a
//! `#[derive(Deserialize)]` struct, the way EXACT's Django REST framework reads them: numbers
//! may come as strings, booleans as `true`/`True`/`1`, id lists as arrays or comma lists, and
//! unknown fields are ignored. A field that cannot be read is refused naming it (with
//! `serde_path_to_error`), in the API's one error shape.

use axum::extract::{FromRequest, Request};
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;

use super::input::Input;
use crate::error::{ApiError, Code};
use crate::AppState;

/// A typed body, and the body as it came (for what reads it loosely, such as `reason`).
#[derive(Debug)]
pub struct Body<T> {
    pub fields: T,
    pub raw: Value,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let Input(raw) = Input::from_request(request, state).await?;
        Ok(Body {
            fields: typed(&raw)?,
            raw,
        })
    }
}

/// `raw` as a `T`, or the refusal that names the field at fault.
pub fn typed<T: DeserializeOwned>(raw: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let message = e.inner().to_string();
        // A missing field is reported at the object holding it; its name is in the message.
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            return ApiError::new(Code::Required, format!("{name} is required")).with_field(name);
        }
        let mut field = e.path().to_string();
        if field == "." {
            field = culprit::<T>(raw, &message).unwrap_or(field);
        }
        // A required field sent as null or "" (DRF: "This field may not be null").
        if message == lenient::REQUIRED {
            return ApiError::new(Code::Required, format!("{field} is required"))
                .with_field(&field);
        }
        ApiError::new(Code::InvalidField, format!("{field}: {message}")).with_field(&field)
    })
}

/// The field of `raw` that `T` cannot read, refused with `message`: a field of a
/// `#[serde(flatten)]` part has no path (serde buffers those fields before reading them), so
/// each field is left out in turn; the one whose absence lifts that refusal is at fault (one
/// whose absence is only "missing" is a required field, not the culprit). Only ever run for a
/// refusal.
fn culprit<T: DeserializeOwned>(raw: &Value, message: &str) -> Option<String> {
    let Value::Object(fields) = raw else {
        return None;
    };
    fields.keys().find_map(|name| {
        let mut without = fields.clone();
        without.remove(name);
        match T::deserialize(&Value::Object(without)) {
            Ok(_) => Some(name.clone()),
            Err(e) => {
                let other = e.to_string();
                (other != message && !other.starts_with("missing field")).then(|| name.clone())
            }
        }
    })
}

/// DRF's leniency, one `deserialize_with` per kind of field.
pub mod lenient {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        Text(String),
        Number(serde_json::Number),
        Bool(bool),
        List(Vec<Value>),
    }

    /// What the `required_*` readers say of a null or empty value.
    pub const REQUIRED: &str = "is required";

    /// A string that must be there (and not null).
    pub fn required_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        string(d)?.ok_or_else(|| D::Error::custom(REQUIRED))
    }

    /// An integer that must be there (not null, not "").
    pub fn required_int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        int(d)?.ok_or_else(|| D::Error::custom(REQUIRED))
    }

    /// A boolean that must be there.
    pub fn required_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        bool(d)?.ok_or_else(|| D::Error::custom(REQUIRED))
    }

    /// Ids that must be there.
    pub fn required_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
        ids(d)?.ok_or_else(|| D::Error::custom(REQUIRED))
    }

    /// A JSON value that forms carry as JSON text (a vector, meta data). Present is `Some`,
    /// null included, so that an update can tell "set to null" from "not sent" (with
    /// `#[serde(default)]`).
    pub fn json<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
        Ok(Some(match Value::deserialize(d)? {
            Value::String(text)
                if text.trim_start().starts_with(['{', '[']) || text.trim() == "null" =>
            {
                serde_json::from_str(&text).map_err(|_| D::Error::custom("JSON"))?
            }
            other => other,
        }))
    }

    /// An integer that may be set to null: absent is `None` (with `#[serde(default)]`), null
    /// or "" is `Some(None)`.
    pub fn nullable_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
        int(d).map(Some)
    }

    /// Names: a JSON array of strings, or one string (a form field given once or repeated).
    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        match Option::<Loose>::deserialize(d)? {
            None => Ok(None),
            Some(Loose::Text(text)) => Ok(Some(vec![text])),
            Some(Loose::List(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(text) => Some(text),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| D::Error::custom("a list of names")),
            Some(_) => Err(D::Error::custom("a list of names")),
        }
    }

    /// A UUID; an empty string is no value.
    pub fn uuid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<uuid::Uuid>, D::Error> {
        match string(d)? {
            Some(text) if !text.trim().is_empty() => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| D::Error::custom("a UUID")),
            _ => Ok(None),
        }
    }

    /// A string; a number is taken as its text (forms send everything as text anyway).
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match Option::<Loose>::deserialize(d)? {
            None => None,
            Some(Loose::Text(text)) => Some(text),
            Some(Loose::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(D::Error::custom("a string")),
        })
    }

    /// An integer, or a string holding one; an empty string is no value.
    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<Loose>::deserialize(d)? {
            None => Ok(None),
            Some(Loose::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| D::Error::custom("an integer")),
            Some(Loose::Text(t)) if t.trim().is_empty() => Ok(None),
            Some(Loose::Text(t)) => t
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| D::Error::custom("an integer")),
            Some(_) => Err(D::Error::custom("an integer")),
        }
    }

    /// A finite number, or a string holding one; an empty string is no value.
    pub fn float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        let number = match Option::<Loose>::deserialize(d)? {
            None => return Ok(None),
            Some(Loose::Number(n)) => n.as_f64(),
            Some(Loose::Text(t)) if t.trim().is_empty() => return Ok(None),
            Some(Loose::Text(t)) => t.trim().parse::<f64>().ok(),
            Some(_) => None,
        };
        match number {
            Some(n) if n.is_finite() => Ok(Some(n)),
            _ => Err(D::Error::custom("a number")),
        }
    }

    /// `true`/`false`, `True`/`False` (Python's), `1`/`0`, `on`/`off`.
    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Option::<Loose>::deserialize(d)? {
            None => Ok(None),
            Some(Loose::Bool(b)) => Ok(Some(b)),
            Some(Loose::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
            Some(Loose::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
            Some(Loose::Text(t)) => crate::rest::input::parse_bool(&t)
                .map(Some)
                .ok_or_else(|| D::Error::custom("true or false")),
            Some(_) => Err(D::Error::custom("true or false")),
        }
    }

    /// Ids: a JSON array (of numbers or numeric strings), a comma list, or a form field given
    /// several times.
    pub fn ids<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<i64>>, D::Error> {
        let one = |v: &Value| match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match Option::<Loose>::deserialize(d)? {
            None => Ok(None),
            Some(Loose::List(items)) => items
                .iter()
                .map(one)
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| D::Error::custom("a list of ids")),
            Some(Loose::Text(t)) => crate::rest::params::parse_ids(&t)
                .map(Some)
                .ok_or_else(|| D::Error::custom("a list of ids")),
            Some(_) => Err(D::Error::custom("a list of ids")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Example {
        #[serde(deserialize_with = "lenient::string")]
        name: Option<String>,
        #[serde(default, deserialize_with = "lenient::int")]
        team: Option<i64>,
        #[serde(default, deserialize_with = "lenient::bool")]
        public: Option<bool>,
        #[serde(default, deserialize_with = "lenient::ids")]
        imagesets: Option<Vec<i64>>,
    }

    #[test]
    fn drf_leniency_numbers_as_text_python_booleans_and_every_form_of_id_list() {
        let json: Example =
            typed(&json!({"name": "a", "team": 3, "public": true, "imagesets": [1, "2"], "x": 1}))
                .unwrap();
        let form: Example =
            typed(&json!({"name": "a", "team": "3", "public": "True", "imagesets": "1,2"}))
                .unwrap();
        let repeated: Example =
            typed(&json!({"name": "a", "team": "3", "public": "1", "imagesets": ["1", "2"]}))
                .unwrap();
        for read in [&json, &form, &repeated] {
            assert_eq!(
                read,
                &Example {
                    name: Some("a".into()),
                    team: Some(3),
                    public: Some(true),
                    imagesets: Some(vec![1, 2]),
                }
            );
        }
        let empty: Example = typed(&json!({"name": "b", "team": ""})).unwrap();
        assert_eq!((empty.team, empty.imagesets), (None, None));
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // read only to be refused
    struct Outer {
        #[serde(deserialize_with = "lenient::required_int")]
        team: i64,
        #[serde(flatten)]
        inner: Example,
    }

    #[test]
    fn a_refusal_inside_a_flattened_part_names_its_field_too() {
        let wrong =
            typed::<Outer>(&json!({"team": 1, "name": "a", "public": "maybe"})).unwrap_err();
        assert_eq!(
            (wrong.code, wrong.field.as_deref()),
            (Code::InvalidField, Some("public"))
        );
        let both = typed::<Outer>(
            &json!({"team": 1, "name": "a", "team2": 1, "imagesets": "x", "public": "maybe"}),
        )
        .unwrap_err();
        assert_eq!(
            both.field.as_deref(),
            Some("imagesets"),
            "the first one read"
        );
        let empty = typed::<Outer>(&json!({"name": "a", "team": ""})).unwrap_err();
        assert_eq!(
            (empty.code, empty.field.as_deref()),
            (Code::Required, Some("team"))
        );
    }

    #[test]
    fn a_refusal_names_the_field_and_a_missing_one_is_required() {
        let wrong = typed::<Example>(&json!({"name": "a", "team": "three"})).unwrap_err();
        assert_eq!(
            (wrong.code, wrong.field.as_deref()),
            (Code::InvalidField, Some("team"))
        );
        let bad_list = typed::<Example>(&json!({"name": "a", "imagesets": ["x"]})).unwrap_err();
        assert_eq!(bad_list.field.as_deref(), Some("imagesets"));
        let missing = typed::<Example>(&json!({"team": 1})).unwrap_err();
        assert_eq!(
            (missing.code, missing.field.as_deref()),
            (Code::Required, Some("name"))
        );
    }
}
