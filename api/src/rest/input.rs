//! What clients send, read leniently the way EXACT's Django REST framework reads it: a JSON
//! object, or form fields (urlencoded or multipart), where every value is a string. Each value
//! is converted when a handler asks for it, so that an error names the field and what it
//! needed. Fields a handler does not ask for are ignored, as DRF ignores them.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde_json::{Map, Value};

use super::body::lenient;
use crate::error::{ApiError, Code};
use crate::AppState;

/// The largest JSON or form body (uploads go through multipart, with their own limit).
pub const MAX_BODY: usize = 64 << 20;

/// A request body: a JSON value, or form fields as a JSON object of strings.
#[derive(Debug)]
pub struct Input(pub Value);

impl FromRequest<AppState> for Input {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            let mut multipart = axum::extract::Multipart::from_request(request, state)
                .await
                .map_err(|e| bad_body(&e.body_text()))?;
            let mut fields = Map::new();
            while let Some(field) = multipart
                .next_field()
                .await
                .map_err(|e| bad_body(&e.body_text()))?
            {
                let name = field.name().unwrap_or_default().to_owned();
                let text = field.text().await.map_err(|e| bad_body(&e.body_text()))?;
                add_field(&mut fields, name, text);
            }
            return Ok(Input(Value::Object(fields)));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| too_large_or_bad(&e.body_text()))?;
        if body.len() > MAX_BODY {
            return Err(too_large_or_bad("length limit exceeded"));
        }
        if content_type.starts_with("application/x-www-form-urlencoded") {
            let mut fields = Map::new();
            for (name, value) in serde_urlencoded_pairs(&body)? {
                add_field(&mut fields, name, value);
            }
            return Ok(Input(Value::Object(fields)));
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Input(Value::Object(Map::new())));
        }
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                Code::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        Ok(Input(value))
    }
}

/// A form field; one that comes again (`imagesets=1&imagesets=2`, as DRF's forms send a list)
/// becomes a list of its values.
fn add_field(fields: &mut Map<String, Value>, name: String, value: String) {
    match fields.get_mut(&name) {
        None => {
            fields.insert(name, Value::String(value));
        }
        Some(Value::Array(values)) => values.push(Value::String(value)),
        Some(first) => {
            let first = first.take();
            fields.insert(name, Value::Array(vec![first, Value::String(value)]));
        }
    }
}

fn serde_urlencoded_pairs(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| bad_body("the form is not UTF-8"))?;
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
        &format!("/?{text}")
            .parse()
            .map_err(|_| bad_body("the form is not valid urlencoded data"))?,
    )
    .map_err(|_| bad_body("the form is not valid urlencoded data"))?;
    Ok(pairs.0)
}

fn bad_body(message: &str) -> ApiError {
    ApiError::new(Code::MalformedBody, message.to_owned())
}

fn too_large_or_bad(message: &str) -> ApiError {
    if message.contains("length limit") {
        ApiError::new(
            Code::BodyTooLarge,
            format!("the body is larger than {} MiB", MAX_BODY >> 20),
        )
    } else {
        bad_body(message)
    }
}

/// One JSON object's fields, converted on demand.
#[derive(Debug)]
pub struct Fields<'a>(pub &'a Map<String, Value>);

impl<'a> Fields<'a> {
    pub fn of(value: &'a Value) -> Result<Self, ApiError> {
        match value {
            Value::Object(map) => Ok(Fields(map)),
            _ => Err(ApiError::new(
                Code::InvalidField,
                "the body must be a JSON object",
            )),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The raw value; `null` counts as absent.
    pub fn value(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.lenient(name, lenient::int, "an integer")
    }

    /// A finite number, or a string holding one.
    pub fn float(&self, name: &str) -> Result<Option<f64>, ApiError> {
        self.lenient(name, lenient::float, "a number")
    }

    pub fn required_int(&self, name: &str) -> Result<i64, ApiError> {
        self.int(name)?.ok_or_else(|| missing(name))
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.lenient(name, lenient::bool, "true or false")
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong(name, "a string")),
        }
    }

    pub fn required_string(&self, name: &str) -> Result<String, ApiError> {
        self.string(name)?.ok_or_else(|| missing(name))
    }

    /// A JSON value that form fields carry as JSON text (a vector, meta data).
    pub fn json(&self, name: &str) -> Result<Option<Value>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::String(s))
                if !s.trim_start().starts_with(['{', '[']) && s.trim() != "null" =>
            {
                Ok(Some(Value::String(s.clone())))
            }
            Some(Value::String(s)) => serde_json::from_str(s)
                .map(Some)
                .map_err(|_| wrong(name, "JSON")),
            Some(other) => Ok(Some(other.clone())),
        }
    }

    /// A list of ids: a JSON array, or a comma-separated string.
    pub fn ids(&self, name: &str) -> Result<Option<Vec<i64>>, ApiError> {
        self.lenient(name, lenient::ids, "a list of ids")
    }

    /// Field `name` read the way typed bodies read it ([`lenient`]), refused as `expected`.
    fn lenient<T>(
        &self,
        name: &str,
        read: fn(Value) -> Result<Option<T>, serde_json::Error>,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        match self.value(name) {
            None => Ok(None),
            Some(value) => read(value.clone()).map_err(|_| wrong(name, expected)),
        }
    }
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

pub fn missing(name: &str) -> ApiError {
    ApiError::new(Code::Required, format!("{name} is required")).with_field(name)
}

pub fn wrong(name: &str, expected: &str) -> ApiError {
    ApiError::new(Code::InvalidField, format!("{name} must be {expected}")).with_field(name)
}
