//! EXACT's list filters as typed structs. Each list declares a `#[derive(Deserialize)]` struct
//! of the filters it takes, read from the query string by [`super::params::Params::filters`]
//! with DRF's leniency (the readers of [`super::body::lenient`] and the ones here); a value
//! that cannot be read is a 400 naming the parameter. The pieces most lists share (`id`,
//! `name`, `time`) are flattened into them.

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;

use super::body::lenient;
use super::params::parse_time;

/// An id filter on one field, in its two forms: `name` and `name__in` (a comma list). The
/// names are literals for serde.
macro_rules! id_filter {
    ($(#[$doc:meta])* $filter:ident, $one:literal, $many:literal) => {
        $(#[$doc])*
        #[derive(Debug, Default, Deserialize)]
        pub struct $filter {
            #[serde(rename = $one, default, deserialize_with = "lenient::int")]
            pub one: Option<i64>,
            #[serde(rename = $many, default, deserialize_with = "lenient::ids")]
            pub many: Option<Vec<i64>>,
        }

        impl $filter {
            /// The ids allowed, if the filter is given at all (both forms: those in both).
            pub fn allowed(&self) -> Option<Vec<i64>> {
                one_or_many(self.one, self.many.clone())
            }
        }
    };
}

id_filter!(
    /// `id` and `id__in`.
    IdFilter, "id", "id__in"
);
id_filter!(
    /// `image` and `image__in`.
    ImageIdFilter, "image", "image__in"
);
id_filter!(
    /// `annotation` and `annotation__in`.
    AnnotationIdFilter, "annotation", "annotation__in"
);
id_filter!(
    /// `annotation_type` and `annotation_type__in`.
    AnnotationTypeIdFilter, "annotation_type", "annotation_type__in"
);
id_filter!(
    /// `vector_type` and `vector_type__in`.
    VectorTypeFilter, "vector_type", "vector_type__in"
);

/// An id filter given as `name` and `name__in`: the allowed ids, if any is given.
pub fn one_or_many(one: Option<i64>, many: Option<Vec<i64>>) -> Option<Vec<i64>> {
    match (one, many) {
        (Some(a), Some(b)) => Some(b.contains(&a).then_some(a).into_iter().collect()),
        (Some(a), None) => Some(vec![a]),
        (None, b) => b,
    }
}

/// A text filter on one field, in its three forms: exact, `__contains` (case-insensitive,
/// EXACT's `icontains`) and `__in` (a comma list). The names are literals for serde.
macro_rules! text_filter {
    ($(#[$doc:meta])* $filter:ident, $exact:literal, $contains:literal, $within:literal) => {
        $(#[$doc])*
        #[derive(Debug, Default, Deserialize)]
        pub struct $filter {
            #[serde(rename = $exact, default, deserialize_with = "lenient::string")]
            pub exact: Option<String>,
            #[serde(rename = $contains, default, deserialize_with = "lenient::string")]
            pub contains: Option<String>,
            #[serde(rename = $within, default, deserialize_with = "texts")]
            pub within: Option<Vec<String>>,
        }

        impl $filter {
            pub fn keeps(&self, value: &str) -> bool {
                text_matches(
                    self.exact.as_deref(),
                    self.contains.as_deref(),
                    self.within.as_deref(),
                    value,
                )
            }
        }
    };
}

text_filter!(
    /// `name`, `name__contains`, `name__in`.
    NameFilter, "name", "name__contains", "name__in"
);
text_filter!(
    /// `description`, `description__contains`, `description__in`.
    DescriptionFilter, "description", "description__contains", "description__in"
);
text_filter!(
    /// `username`, `username__contains`, `username__in`.
    UsernameFilter, "username", "username__contains", "username__in"
);
text_filter!(
    /// `location`, `location__contains`, `location__in`.
    LocationFilter, "location", "location__contains", "location__in"
);
text_filter!(
    /// `path`, `path__contains`, `path__in`.
    PathFilter, "path", "path__contains", "path__in"
);
text_filter!(
    /// `filename`, `filename__contains`, `filename__in`.
    FilenameFilter, "filename", "filename__contains", "filename__in"
);
text_filter!(
    /// `ip`, `ip__contains`, `ip__in`.
    IpFilter, "ip", "ip__contains", "ip__in"
);

/// Whether `value` passes a text filter's exact, contains and in forms.
pub fn text_matches(
    exact: Option<&str>,
    contains: Option<&str>,
    within: Option<&[String]>,
    value: &str,
) -> bool {
    exact.is_none_or(|wanted| wanted == value)
        && contains.is_none_or(|part| value.to_lowercase().contains(&part.to_lowercase()))
        && within.is_none_or(|list| list.iter().any(|item| item == value))
}

/// `time__gte`, `time__lte` and `time__range=a,b`, both ends included.
#[derive(Debug, Default, Deserialize)]
pub struct TimeFilter {
    #[serde(rename = "time__gte", default, deserialize_with = "time")]
    pub from: Option<i64>,
    #[serde(rename = "time__lte", default, deserialize_with = "time")]
    pub to: Option<i64>,
    #[serde(rename = "time__range", default, deserialize_with = "time_range")]
    pub range: Option<(i64, i64)>,
}

impl TimeFilter {
    /// The bounds, in microseconds since 1970 (a range replaces `__gte` and `__lte`).
    pub fn bounds(&self) -> (Option<i64>, Option<i64>) {
        match self.range {
            Some((from, to)) => (Some(from), Some(to)),
            None => (self.from, self.to),
        }
    }

    pub fn keeps(&self, time: i64) -> bool {
        let (from, to) = self.bounds();
        from.is_none_or(|f| time >= f) && to.is_none_or(|t| time <= t)
    }
}

/// A comma list of texts.
pub fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(lenient::string(d)?.map(|text| text.split(',').map(str::to_owned).collect()))
}

/// A time as RFC 3339 (or EXACT's naive `%Y-%m-%dT%H:%M:%S.%f`, read as UTC), as microseconds
/// since 1970.
pub fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match lenient::string(d)? {
        None => Ok(None),
        Some(text) => parse_time(&text)
            .map(Some)
            .ok_or_else(|| D::Error::custom("an RFC 3339 time")),
    }
}

/// Two times separated by a comma.
pub fn time_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(i64, i64)>, D::Error> {
    match lenient::string(d)? {
        None => Ok(None),
        Some(text) => text
            .split_once(',')
            .and_then(|(a, b)| Some((parse_time(a)?, parse_time(b)?)))
            .map(Some)
            .ok_or_else(|| D::Error::custom("two RFC 3339 times separated by a comma")),
    }
}

/// Two finite numbers separated by a comma (EXACT ignored the lower bound: both count here).
pub fn float_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(f64, f64)>, D::Error> {
    let Some(text) = lenient::string(d)? else {
        return Ok(None);
    };
    let parsed = text
        .split_once(',')
        .and_then(|(a, b)| Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?)));
    match parsed {
        Some((a, b)) if a.is_finite() && b.is_finite() => Ok(Some((a, b))),
        _ => Err(D::Error::custom("two numbers separated by a comma")),
    }
}

/// A range whose ends may each be open.
pub type OpenRange = (Option<f64>, Option<f64>);

/// django-filter's RangeFilter as one value: `FROM,TO`, either of which may be empty.
pub fn open_range<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OpenRange>, D::Error> {
    let Some(text) = lenient::string(d)? else {
        return Ok(None);
    };
    let bound = |text: &str| -> Result<Option<f64>, D::Error> {
        match text.trim() {
            "" => Ok(None),
            number => match number.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v)),
                _ => Err(D::Error::custom("FROM,TO (numbers; either may be empty)")),
            },
        }
    };
    let (from, to) = text
        .split_once(',')
        .ok_or_else(|| D::Error::custom("FROM,TO (either may be empty)"))?;
    Ok(Some((bound(from)?, bound(to)?)))
}

/// A box `min_x,min_y,max_x,max_y`.
pub fn bbox<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[f64; 4]>, D::Error> {
    let Some(text) = lenient::string(d)? else {
        return Ok(None);
    };
    let numbers: Option<Vec<f64>> = text
        .split(',')
        .map(|v| v.trim().parse().ok().filter(|v: &f64| v.is_finite()))
        .collect();
    match numbers.as_deref() {
        Some(&[min_x, min_y, max_x, max_y]) => Ok(Some([min_x, min_y, max_x, max_y])),
        _ => Err(D::Error::custom("min_x,min_y,max_x,max_y")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_forms_combine_to_the_ids_in_both() {
        assert_eq!(one_or_many(Some(2), Some(vec![1, 2])), Some(vec![2]));
        assert_eq!(one_or_many(Some(3), Some(vec![1, 2])), Some(vec![]));
        assert_eq!(one_or_many(Some(3), None), Some(vec![3]));
        assert_eq!(one_or_many(None, None), None);
    }

    #[test]
    fn text_forms_all_hold() {
        let within = vec!["a b".to_owned(), "c".to_owned()];
        assert!(text_matches(None, Some("A"), Some(&within), "a b"));
        assert!(!text_matches(Some("c"), None, Some(&within), "a b"));
        assert!(!text_matches(None, Some("x"), None, "a b"));
    }
}
