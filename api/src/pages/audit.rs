//! The auditor's pages: `/audit/` is the timeline of every change to the annotations of one
//! annotation, image, set or user (old and new values side by side, who, when, why, from
//! which address and client), filtered by time and event type and paged by log position;
//! `/audit/report/` is a printable report of a set over a time range, naming the log positions
//! it covers and the chain hash at its end, so that it can be checked against the log.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use exact_domain::annotation::AnnotationEvent;
use exact_domain::{DomainError, DomainEvent};
use exact_projections::read::AnnotationVersion;
use exact_projections::timeline::{TimelineFilter, TimelineScope};
use serde::Serialize;
use serde_json::Value;

use super::{error_page, render, Frame, PageUser};
use crate::commands::Caller;
use crate::error::{ApiError, Code};
use crate::rest::params::{format_time, parse_time};
use crate::AppState;

/// Changes on a page of the timeline, unless `limit` says otherwise (at most [`MAX_PAGE`]).
const PAGE: i64 = 100;
const MAX_PAGE: i64 = 1000;
/// Changes in one printed report; a longer range is to be split.
const REPORT_ROWS: i64 = 10_000;
/// A value longer than this (a polygon's vector) is shown cut, with its length.
const SHOWN_CHARACTERS: usize = 240;

/// The event types a timeline can be filtered by: an annotation's, and a set's and its images'
/// (the timelines of a set and of an image show those too).
fn event_types() -> impl Iterator<Item = &'static str> {
    <AnnotationEvent as DomainEvent>::NAMES
        .iter()
        .chain(super::audit_catalog::EVENT_TYPES)
        .copied()
}

/// The query of both pages, read by hand: `type` may repeat.
#[derive(Debug, Default)]
struct AuditQuery {
    annotation: Option<i64>,
    image: Option<i64>,
    set: Option<i64>,
    user: Option<i64>,
    types: Vec<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

impl AuditQuery {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut query = AuditQuery::default();
        let number = |name: &str, value: &str| {
            value.trim().parse::<i64>().map_err(|_| {
                ApiError::new(Code::InvalidQuery, format!("{name} must be a number"))
                    .with_field(name)
            })
        };
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if value.trim().is_empty() {
                continue;
            }
            match name.as_ref() {
                "annotation" => query.annotation = Some(number("annotation", &value)?),
                "image" => query.image = Some(number("image", &value)?),
                "set" => query.set = Some(number("set", &value)?),
                "user" => query.user = Some(number("user", &value)?),
                "before" => query.before = Some(number("before", &value)?),
                "limit" => query.limit = Some(number("limit", &value)?),
                "type" => {
                    if !event_types().any(|t| t == value.as_ref()) {
                        return Err(ApiError::new(
                            Code::InvalidQuery,
                            format!("{value:?} is not an event type of a timeline"),
                        )
                        .with_field("type"));
                    }
                    query.types.push(value.into_owned());
                }
                "since" => query.since = Some(value.into_owned()),
                "until" => query.until = Some(value.into_owned()),
                _ => {}
            }
        }
        Ok(query)
    }

    /// Microseconds of `since` or `until`; a bare date as `until` means the end of that day.
    fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let text = match name {
            "since" => &self.since,
            _ => &self.until,
        };
        let Some(text) = text else { return Ok(None) };
        let micros = parse_time(text).ok_or_else(|| {
            ApiError::new(
                Code::InvalidQuery,
                format!("{name}: {text:?} is not a time (RFC 3339 or YYYY-MM-DD)"),
            )
            .with_field(name)
        })?;
        let whole_day = name == "until" && text.trim().len() == 10;
        Ok(Some(if whole_day {
            micros + 86_400_000_000 - 1
        } else {
            micros
        }))
    }
}

/// What a timeline is of, checked against what the caller may read, with its title.
async fn scope(
    state: &AppState,
    user: &PageUser,
    query: &AuditQuery,
) -> Result<(TimelineScope, String, Option<i64>), ApiError> {
    let caller = Caller::new(user.user.actor(), exact_store::Source::Ui);
    let named = [query.annotation, query.image, query.set, query.user]
        .iter()
        .filter(|q| q.is_some())
        .count();
    if named > 1 {
        return Err(ApiError::new(
            Code::InvalidQuery,
            "name one of annotation, image, set or user",
        ));
    }
    if let Some(id) = query.annotation {
        let (_, image, _) = state.commands.readable_annotation(&caller, id).await?;
        return Ok((
            TimelineScope::Annotation(id),
            format!("annotation #{id} on {}", image.name),
            Some(image.image_set),
        ));
    }
    if let Some(id) = query.image {
        let not_found = || ApiError::from(DomainError::NotFound("image"));
        let image = state.read.image(id).await?.ok_or_else(not_found)?;
        state
            .commands
            .set_access(&caller, image.image_set)
            .await
            .map_err(|_| not_found())?;
        return Ok((
            TimelineScope::Image(id),
            format!("image {}", image.name),
            Some(image.image_set),
        ));
    }
    if let Some(id) = query.set {
        let (set, _) = state.commands.set_access(&caller, id).await?;
        return Ok((
            TimelineScope::ImageSet(id),
            format!("image set {}", set.name),
            Some(id),
        ));
    }
    // A user's own changes, or anyone's for staff: their changes span sets the caller may not
    // read, so no one else sees them whole.
    let id = query.user.unwrap_or(user.user.id);
    if id != user.user.id && !(user.user.is_staff || user.user.is_superuser) {
        return Err(ApiError::new(
            Code::Forbidden,
            "another user's changes are for staff to see",
        ));
    }
    let account = state
        .read
        .user(id)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    Ok((
        TimelineScope::User(id),
        format!("user {}", account.username),
        None,
    ))
}

/// One field that changed: its value before and after.
#[derive(Debug, Serialize)]
pub(super) struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// One row of the timeline.
#[derive(Debug, Serialize)]
pub(super) struct Entry {
    pub position: i64,
    pub time: String,
    pub event: String,
    /// What changed, as the row names it, and the trail it links to.
    pub subject: String,
    pub subject_link: Option<String>,
    /// The annotation's id (0 for a set's or an image's event).
    pub annotation: i64,
    pub user: String,
    /// For a verdict: whose, which, and the signature if it was one.
    pub verdict: Option<String>,
    pub changes: Vec<FieldChange>,
    pub reason: Option<String>,
    pub source: String,
    pub address: Option<String>,
}

pub(super) fn shown(value: Option<&str>) -> String {
    let Some(text) = value else {
        return "—".to_owned();
    };
    let count = text.chars().count();
    if count <= SHOWN_CHARACTERS {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(SHOWN_CHARACTERS).collect();
        format!("{cut}… ({count} characters)")
    }
}

/// The fields `version` changed against `previous`, old and new side by side; a creation shows
/// what it created.
fn field_changes(
    version: &AnnotationVersion,
    previous: Option<&AnnotationVersion>,
) -> Vec<FieldChange> {
    let columns = |v: &AnnotationVersion| -> Vec<(&'static str, String)> {
        vec![
            ("annotation_type", v.annotation_type.to_string()),
            ("vector", shown(v.vector.as_deref())),
            ("description", v.description.clone()),
            ("meta_data", shown(v.meta_data.as_deref())),
            ("concealed", v.concealed.to_string()),
            ("blurred", v.blurred.to_string()),
            ("deleted", v.deleted.to_string()),
        ]
    };
    let new = columns(version);
    match previous {
        None => new
            .into_iter()
            .filter(|(field, value)| {
                !matches!(
                    (*field, value.as_str()),
                    ("description", "") | (_, "false") | (_, "—")
                )
            })
            .map(|(field, value)| FieldChange {
                field: field.to_owned(),
                old: "—".to_owned(),
                new: value,
            })
            .collect(),
        Some(previous) => {
            let changed = version.changes_from(previous);
            columns(previous)
                .into_iter()
                .zip(new)
                .filter(|((field, _), _)| changed.contains(field))
                .map(|((field, old), (_, new))| FieldChange {
                    field: field.to_owned(),
                    old,
                    new,
                })
                .collect()
        }
    }
}

/// The versions of a page as rows: with the versions before them, the events that made them and
/// the names of the users.
async fn entries(
    state: &AppState,
    versions: &[AnnotationVersion],
    names: &BTreeMap<i64, String>,
) -> Result<Vec<Entry>, ApiError> {
    let ids: Vec<i64> = {
        let mut ids: Vec<i64> = versions.iter().map(|v| v.id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let all = state.read.versions_of(&ids).await?;
    let by_version: HashMap<(i64, i64), &AnnotationVersion> =
        all.iter().map(|v| ((v.id, v.version), v)).collect();
    let positions: Vec<i64> = versions.iter().map(|v| v.valid_from).collect();
    let events: HashMap<i64, _> = state
        .read
        .events_at(&positions)
        .await?
        .into_iter()
        .map(|e| (e.position, e))
        .collect();
    let name = |id: Option<i64>| user_name(names, id);
    let mut rows = Vec::with_capacity(versions.len());
    for v in versions {
        let event = events.get(&v.valid_from);
        let metadata: Value = event
            .and_then(|e| serde_json::from_str(&e.metadata).ok())
            .unwrap_or_default();
        let payload: Value = event
            .and_then(|e| serde_json::from_str(&e.payload).ok())
            .unwrap_or_default();
        let verdict = match v.event_type.as_str() {
            "AnnotationVerified" => {
                let whose = name(payload["user"].as_i64());
                let which = if payload["verified"] == Value::Bool(true) {
                    "accepted"
                } else {
                    "rejected"
                };
                Some(match payload.get("signature") {
                    Some(s) if s.is_object() => format!(
                        "{which}: signed {} by {} (version {})",
                        s["meaning"].as_str().unwrap_or_default(),
                        s["name"].as_str().unwrap_or_default(),
                        s["version"]
                    ),
                    _ => format!("{which} by {whose}"),
                })
            }
            "AnnotationVerdictWithdrawn" => Some(format!(
                "verdict of {} taken back",
                name(payload["user"].as_i64())
            )),
            _ => None,
        };
        let previous = by_version.get(&(v.id, v.version - 1)).copied();
        rows.push(Entry {
            position: v.valid_from,
            time: format_time(v.recorded_at),
            event: v.event_type.clone(),
            subject: format!("#{} v{} · image {}", v.id, v.version, v.image),
            subject_link: Some(format!("/audit/?annotation={}", v.id)),
            annotation: v.id,
            user: name(v.actor),
            verdict,
            changes: if v.event_type == "AnnotationVerified"
                || v.event_type == "AnnotationVerdictWithdrawn"
            {
                Vec::new()
            } else {
                field_changes(v, previous)
            },
            reason: v.reason.clone(),
            source: metadata["source"].as_str().unwrap_or_default().to_owned(),
            address: metadata["client_addr"].as_str().map(str::to_owned),
        });
    }
    Ok(rows)
}

/// Every account's name, by id.
pub(super) async fn user_names(state: &AppState) -> Result<BTreeMap<i64, String>, ApiError> {
    Ok(state
        .read
        .users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect())
}

/// The name a row shows for an actor: the account's, or Exact's own for the system.
pub(super) fn user_name(names: &BTreeMap<i64, String>, id: Option<i64>) -> String {
    match id {
        Some(id) => names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("user {id}")),
        None => "Exact".to_owned(),
    }
}

/// The rows `filter` selects, up to `limit` + 1 (one more says there are more): the
/// annotations' versions and, for a set or an image, their own events, in log order.
async fn merged_rows(
    state: &AppState,
    filter: &TimelineFilter,
    limit: i64,
) -> Result<Vec<Entry>, ApiError> {
    let filter = TimelineFilter {
        limit: limit + 1,
        ..filter.clone()
    };
    let versions = state.read.timeline(&filter).await?;
    // The accounts' names, read once for both kinds of rows.
    let names = user_names(state).await?;
    let mut rows = entries(state, &versions, &names).await?;
    rows.extend(super::audit_catalog::catalog_entries(state, &filter, &names).await?);
    rows.sort_by_key(|e| e.position);
    if !filter.ascending {
        rows.reverse();
    }
    rows.truncate(usize::try_from(limit + 1).unwrap_or(0));
    Ok(rows)
}

#[derive(Serialize)]
struct TimelineContext<'a> {
    frame: Frame<'a>,
    title: String,
    set_id: Option<i64>,
    scope_name: &'static str,
    scope_id: i64,
    types: Vec<(&'static str, bool)>,
    since: String,
    until: String,
    entries: Vec<Entry>,
    older: Option<String>,
    newest: Option<String>,
    report: Option<String>,
}

/// The query string naming the timeline's subject.
fn scope_query(scope: TimelineScope) -> String {
    match scope {
        TimelineScope::Annotation(id) => format!("annotation={id}"),
        TimelineScope::Image(id) => format!("image={id}"),
        TimelineScope::ImageSet(id) => format!("set={id}"),
        TimelineScope::User(id) => format!("user={id}"),
    }
}

/// The filters of `query` as a query string (for the links to other pages).
fn filters_query(query: &AuditQuery, limit: i64) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for t in &query.types {
        out.append_pair("type", t);
    }
    if let Some(since) = &query.since {
        out.append_pair("since", since);
    }
    if let Some(until) = &query.until {
        out.append_pair("until", until);
    }
    if limit != PAGE {
        out.append_pair("limit", &limit.to_string());
    }
    out.finish()
}

/// The page, or the error page that says why not.
fn or_error_page(user: &PageUser, page: Result<Response, ApiError>) -> Response {
    page.unwrap_or_else(|e| error_page(Some(user), &e))
}

pub async fn timeline_page(
    State(state): State<AppState>,
    user: PageUser,
    RawQuery(raw): RawQuery,
) -> Response {
    or_error_page(&user, timeline(&state, &user, raw.as_deref()).await)
}

async fn timeline(
    state: &AppState,
    user: &PageUser,
    raw: Option<&str>,
) -> Result<Response, ApiError> {
    let query = AuditQuery::parse(raw)?;
    let (scope, subject, set_id) = scope(state, user, &query).await?;
    let limit = query.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    let filter = TimelineFilter {
        event_types: query.types.clone(),
        since: query.time("since")?,
        until: query.time("until")?,
        ..TimelineFilter::newest(scope, query.before, limit + 1)
    };
    let rows = merged_rows(state, &filter, limit).await?;
    let more = rows.len() as i64 > limit;
    let mut rows = rows;
    rows.truncate(limit as usize);
    let base = format!("/audit/?{}", scope_query(scope));
    let filters = filters_query(&query, limit);
    let with_filters = |extra: &str| {
        let mut link = base.clone();
        for part in [filters.as_str(), extra] {
            if !part.is_empty() {
                link.push('&');
                link.push_str(part);
            }
        }
        link
    };
    let older = more
        .then(|| {
            rows.last()
                .map(|e| with_filters(&format!("before={}", e.position)))
        })
        .flatten();
    let newest = query.before.map(|_| with_filters(""));
    let report = match scope {
        TimelineScope::ImageSet(id) => Some(format!("/audit/report/?set={id}")),
        _ => None,
    };
    let context = TimelineContext {
        frame: user.frame(),
        title: format!("Changes to {subject}"),
        set_id,
        scope_name: match scope {
            TimelineScope::Annotation(_) => "annotation",
            TimelineScope::Image(_) => "image",
            TimelineScope::ImageSet(_) => "set",
            TimelineScope::User(_) => "user",
        },
        scope_id: match scope {
            TimelineScope::Annotation(id)
            | TimelineScope::Image(id)
            | TimelineScope::ImageSet(id)
            | TimelineScope::User(id) => id,
        },
        types: event_types()
            .map(|t| (t, query.types.iter().any(|q| q == t)))
            .collect(),
        since: query.since.clone().unwrap_or_default(),
        until: query.until.clone().unwrap_or_default(),
        entries: rows,
        older,
        newest,
        report,
    };
    Ok(render(StatusCode::OK, "audit.html", context))
}

#[derive(Serialize)]
struct ReportContext<'a> {
    frame: Frame<'a>,
    title: String,
    set_id: i64,
    since: String,
    until: String,
    generated_at: String,
    generated_by: String,
    head_position: i64,
    head_hash: String,
    first_position: Option<i64>,
    last_position: Option<i64>,
    entries: Vec<Entry>,
    cut: bool,
    limit: i64,
}

pub async fn report_page(
    State(state): State<AppState>,
    user: PageUser,
    RawQuery(raw): RawQuery,
) -> Response {
    or_error_page(&user, report(&state, &user, raw.as_deref()).await)
}

async fn report(
    state: &AppState,
    user: &PageUser,
    raw: Option<&str>,
) -> Result<Response, ApiError> {
    let query = AuditQuery::parse(raw)?;
    let Some(set_id) = query.set else {
        return Err(
            ApiError::new(Code::Required, "a report is of one image set: set=ID").with_field("set"),
        );
    };
    let (scope, subject, _) = scope(state, user, &query).await?;
    // The report reads the read models up to the log's head as it is now, and names that head:
    // whatever is appended while it is read lies beyond it.
    let head_position = state.store.last_position().await?;
    let head_hash = match state.store.read_page(head_position, 1).await?.pop() {
        Some(e) if e.position == head_position => hex::encode(e.hash),
        _ => String::new(),
    };
    let filter = TimelineFilter {
        scope,
        event_types: query.types.clone(),
        since: query.time("since")?,
        until: query.time("until")?,
        before: None,
        up_to: Some(head_position),
        ascending: true,
        limit: REPORT_ROWS + 1,
    };
    let mut rows = merged_rows(state, &filter, REPORT_ROWS).await?;
    let cut = rows.len() as i64 > REPORT_ROWS;
    rows.truncate(REPORT_ROWS as usize);
    let context = ReportContext {
        frame: user.frame(),
        title: format!("Audit report: {subject}"),
        set_id,
        since: query
            .since
            .clone()
            .unwrap_or_else(|| "the beginning".to_owned()),
        until: query.until.clone().unwrap_or_else(|| "now".to_owned()),
        generated_at: format_time(chrono::Utc::now().timestamp_micros()),
        generated_by: user.user.username.clone(),
        head_position,
        head_hash,
        first_position: rows.first().map(|e| e.position),
        last_position: rows.last().map(|e| e.position),
        entries: rows,
        cut,
        limit: REPORT_ROWS,
    };
    Ok(render(StatusCode::OK, "audit-report.html", context))
}
