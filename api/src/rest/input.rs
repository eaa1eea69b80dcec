//! What clients send, as EXACT's Django REST framework takes it: a JSON value, or form fields
//! (urlencoded or multipart), where every value is a string. Handlers read it through typed
//! bodies ([`super::body::Body`]); only a route that takes an object or a list reads `Input`
//! itself.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde_json::{Map, Value};

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
            std::str::from_utf8(&body).map_err(|_| bad_body("the form is not UTF-8"))?;
            for (name, value) in form_urlencoded::parse(&body) {
                add_field(&mut fields, name.into_owned(), value.into_owned());
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
