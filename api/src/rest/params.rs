//! Query strings: EXACT's filters (`name__contains`, `id__in`, `time__gte`, ...), limit/offset
//! pagination with DRF's `{count, next, previous, results}`, and drf-flex-fields' `fields` and
//! `omit`. A filter value that cannot be read is a 400 naming the parameter, never ignored.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Uri};
use serde_json::{json, Map, Value};

use super::body::lenient;
use crate::error::{ApiError, Code};
use crate::AppState;

/// DRF's `PAGE_SIZE` in EXACT.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest page one request may ask for.
pub const MAX_LIMIT: i64 = 10_000;

/// DRF's page object.
#[derive(Debug, serde::Serialize)]
pub struct Page<T> {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}

/// DRF's limit/offset pagination.
#[derive(Debug, serde::Deserialize)]
struct Paging {
    #[serde(default, deserialize_with = "lenient::int")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    offset: Option<i64>,
}

/// The query string, plus what building `next`/`previous` links needs.
#[derive(Debug)]
pub struct Params {
    values: HashMap<String, String>,
    uri: Uri,
    /// `scheme://host[:port]` (and any path prefix) that links start with.
    base: String,
}

impl FromRequestParts<AppState> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| {
                ApiError::new(
                    Code::InvalidQuery,
                    format!("the query string cannot be read: {e}"),
                )
            })?
            .0;
        // A repeated parameter keeps its last value, as Django's QueryDict.get does.
        let values = pairs.into_iter().collect();
        // The public URL when there is one: `Host` is whatever the client chose to send.
        let base = match &state.config.public_url {
            Some(public) => public.clone(),
            None => {
                let host = parts
                    .headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("localhost");
                let https = parts
                    .headers
                    .get("x-forwarded-proto")
                    .is_some_and(|v| v.as_bytes() == b"https");
                format!("{}://{host}", if https { "https" } else { "http" })
            }
        };
        // Inside the `/api/v1` router the request's URI has lost that prefix; links for the
        // client need the path it asked for.
        let uri = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |original| original.0.clone());
        Ok(Params { values, uri, base })
    }
}

pub fn parse_ids(text: &str) -> Option<Vec<i64>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

fn invalid(name: &str, expected: &str) -> ApiError {
    ApiError::new(
        Code::InvalidQuery,
        format!("the filter {name} needs {expected}"),
    )
    .with_field(name)
}

impl Params {
    /// The query string as a list's typed filters (see [`super::filters`]); an empty value is
    /// no filter, and a value that cannot be read is refused naming the parameter.
    pub fn filters<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        let object: Map<String, Value> = self
            .values
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        super::body::typed(&Value::Object(object)).map_err(|mut e| {
            if e.code == Code::InvalidField {
                e.code = Code::InvalidQuery;
                e.message = format!("the filter {}", e.message);
            }
            e
        })
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn page(&self) -> Result<(i64, i64), ApiError> {
        let Paging { limit, offset } = self.filters()?;
        let (limit, offset) = (limit.unwrap_or(DEFAULT_LIMIT), offset.unwrap_or(0));
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid("limit", &format!("a number from 1 to {MAX_LIMIT}")));
        }
        if offset < 0 {
            return Err(invalid("offset", "a number of at least 0"));
        }
        Ok((limit, offset))
    }

    fn link(&self, limit: i64, offset: i64) -> String {
        let mut query: Vec<(String, String)> = self
            .values
            .iter()
            .filter(|(k, _)| k.as_str() != "limit" && k.as_str() != "offset")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        query.sort();
        query.push(("limit".into(), limit.to_string()));
        if offset > 0 {
            query.push(("offset".into(), offset.to_string()));
        }
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        format!("{}{}?{encoded}", self.base, self.uri.path())
    }

    /// DRF's `next` and `previous` links of a page. An offset past the end has no `next`,
    /// and its `previous` is the last page that has rows.
    fn links(&self, count: i64, limit: i64, offset: i64) -> (Option<String>, Option<String>) {
        let next = (offset + limit < count).then(|| self.link(limit, offset + limit));
        let last_start = (count - 1).max(0) / limit * limit;
        let previous =
            (offset > 0).then(|| self.link(limit, (offset - limit).min(last_start).max(0)));
        (next, previous)
    }

    /// DRF's page object for `results` (already this page's rows) out of `count`.
    pub fn paginated(&self, count: i64, limit: i64, offset: i64, results: Vec<Value>) -> Value {
        let (next, previous) = self.links(count, limit, offset);
        let results: Vec<Value> = results.into_iter().map(|r| self.shape(r)).collect();
        json!({"count": count, "next": next, "previous": previous, "results": results})
    }

    /// Whether `fields` or `omit` reshape each result.
    pub fn reshapes(&self) -> bool {
        self.str("fields").is_some() || self.str("omit").is_some()
    }

    /// DRF's page of typed results, serialized as they are (no `fields`/`omit`).
    pub fn typed_page<T: serde::Serialize>(
        &self,
        count: i64,
        limit: i64,
        offset: i64,
        results: Vec<T>,
    ) -> Page<T> {
        let (next, previous) = self.links(count, limit, offset);
        Page {
            count,
            next,
            previous,
            results,
        }
    }

    /// A page cut from a whole list held in memory.
    pub fn page_of(&self, all: Vec<Value>) -> Result<Value, ApiError> {
        let (limit, offset) = self.page()?;
        let count = all.len() as i64;
        let results = all
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect();
        Ok(self.paginated(count, limit, offset, results))
    }

    /// drf-flex-fields: `fields=a,b` keeps only those, `omit=a,b` drops those.
    pub fn shape(&self, value: Value) -> Value {
        let Value::Object(mut map) = value else {
            return value;
        };
        if let Some(fields) = self.str("fields") {
            let keep: Vec<&str> = fields.split(',').map(str::trim).collect();
            map = map
                .into_iter()
                .filter(|(k, _)| keep.contains(&k.as_str()))
                .collect::<Map<_, _>>();
        }
        if let Some(omit) = self.str("omit") {
            for name in omit.split(',') {
                map.remove(name.trim());
            }
        }
        Value::Object(map)
    }
}

/// A time as filters and `as_of` take it: RFC 3339, or EXACT's forms without a zone (UTC), in
/// years 0 to 9999. (chrono also reads signed and five-digit years, which no answer of this
/// server can write back as RFC 3339: found by the `names_and_params` fuzz target.)
pub fn parse_time(text: &str) -> Option<i64> {
    use chrono::Datelike;
    let text = text.trim();
    let in_range = |t: chrono::DateTime<chrono::Utc>| {
        (0..=9999).contains(&t.year()).then(|| t.timestamp_micros())
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return in_range(t.to_utc());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return in_range(t.and_utc());
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(text, format) {
            return in_range(d.and_hms_opt(0, 0, 0)?.and_utc());
        }
    }
    None
}

/// Microseconds since 1970 as RFC 3339 (UTC, microseconds).
pub fn format_time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::{format_time, parse_time};

    /// Every time a filter takes is one this server writes back the same (the fuzz target's
    /// crash: a year -26 was taken, and its RFC 3339 form read as nothing).
    #[test]
    fn times_taken_are_times_written_back() {
        assert_eq!(parse_time("-26-01-01T10:00:8.0002"), None);
        assert_eq!(parse_time("12026-01-01"), None);
        for text in [
            "2026-01-01T10:00:08.0002Z",
            "2026-01-01T10:00:8.0002",
            "0000-01-01",
            "9999-12-31 23:59:59.999999",
            "2026-03-01T12:00:00+02:00",
        ] {
            let micros = parse_time(text).unwrap_or_else(|| panic!("{text} is a time"));
            assert_eq!(parse_time(&format_time(micros)), Some(micros), "{text}");
        }
    }
}
