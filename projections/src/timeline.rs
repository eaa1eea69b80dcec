//! The audit timeline: every version of the annotations of one annotation, image, set or user,
//! newest first, paged by log position, with the events that made them (their metadata says
//! from where and why; a verdict's payload says whose and which).
//!
//! Versions come from the annotations read model (current rows and the replaced versions in
//! `annotation_history`), each half filtered and ordered through its own indexes; the events of
//! a page are then read from the log by position.

use sqlx::{PgPool, SqlitePool};

use crate::read::{AnnotationVersion, ReadDb};

/// Whose changes a timeline shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimelineScope {
    Annotation(i64),
    Image(i64),
    ImageSet(i64),
    /// The changes a user made (the versions' actor).
    User(i64),
}

/// Which versions, and how many.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineFilter {
    pub scope: TimelineScope,
    /// Event types to keep (`AnnotationChanged`, ...); empty keeps all.
    pub event_types: Vec<String>,
    /// Recorded at or after, in microseconds since 1970.
    pub since: Option<i64>,
    /// Recorded at or before, in microseconds since 1970.
    pub until: Option<i64>,
    /// Only versions made before this log position (the page after one ending there).
    pub before: Option<i64>,
    /// Only versions made at or before this log position (what a report covers).
    pub up_to: Option<i64>,
    /// Oldest first instead of newest first.
    pub ascending: bool,
    pub limit: i64,
}

/// One event of the log as the timeline shows it.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct LoggedEvent {
    pub position: i64,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub payload: String,
    pub metadata: String,
}

/// A value bound to a timeline query.
enum Bound {
    Int(i64),
    Text(String),
}

impl ReadDb {
    /// The versions `filter` asks for, newest first (or oldest first).
    pub async fn timeline(
        &self,
        filter: &TimelineFilter,
    ) -> Result<Vec<AnnotationVersion>, sqlx::Error> {
        let (sql, binds) = timeline_sql(filter);
        match self {
            ReadDb::Sqlite(pool, _) => fetch_sqlite(pool, &sql, binds).await,
            ReadDb::Postgres(pool) => fetch_postgres(pool, &sql, binds).await,
        }
    }

    /// Every version of the annotations `ids` (the versions before those a page shows, for
    /// their old values).
    pub async fn versions_of(&self, ids: &[i64]) -> Result<Vec<AnnotationVersion>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {} FROM annotation_history h WHERE h.id IN ({list}) \
             UNION ALL SELECT {} FROM annotations a WHERE a.id IN ({list})",
            crate::read::VERSION_COLUMNS,
            crate::read::CURRENT_VERSION_COLUMNS
        );
        match self {
            ReadDb::Sqlite(pool, _) => sqlx::query_as(&sql).fetch_all(pool).await,
            ReadDb::Postgres(pool) => sqlx::query_as(&sql).fetch_all(pool).await,
        }
    }

    /// The log's events at `positions`.
    pub async fn events_at(&self, positions: &[i64]) -> Result<Vec<LoggedEvent>, sqlx::Error> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let list = positions
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT position, type, payload, metadata FROM events WHERE position IN ({list}) \
             ORDER BY position"
        );
        match self {
            ReadDb::Sqlite(pool, _) => sqlx::query_as(&sql).fetch_all(pool).await,
            ReadDb::Postgres(pool) => sqlx::query_as(&sql).fetch_all(pool).await,
        }
    }
}

/// The query: each half (replaced versions, current rows) filtered on its own columns so that
/// its indexes serve the scope and the position order, then merged.
fn timeline_sql(filter: &TimelineFilter) -> (String, Vec<Bound>) {
    let mut binds = Vec::new();
    let mut bind = |value: Bound| {
        binds.push(value);
        format!("${}", binds.len())
    };
    let mut history = Vec::new();
    let mut current = Vec::new();
    match filter.scope {
        TimelineScope::Annotation(id) => {
            let p = bind(Bound::Int(id));
            history.push(format!("h.id = {p}"));
            current.push(format!("a.id = {p}"));
        }
        TimelineScope::Image(id) => {
            let p = bind(Bound::Int(id));
            history.push(format!("h.image = {p}"));
            current.push(format!("a.image = {p}"));
        }
        TimelineScope::ImageSet(id) => {
            let p = bind(Bound::Int(id));
            let images = format!("(SELECT id FROM images WHERE image_set = {p})");
            history.push(format!("h.image IN {images}"));
            current.push(format!("a.image IN {images}"));
        }
        TimelineScope::User(id) => {
            let p = bind(Bound::Int(id));
            history.push(format!("h.actor = {p}"));
            current.push(format!("a.last_editor = {p}"));
        }
    }
    if let Some(before) = filter.before {
        let p = bind(Bound::Int(before));
        history.push(format!("h.valid_from < {p}"));
        current.push(format!("a.position < {p}"));
    }
    if let Some(up_to) = filter.up_to {
        let p = bind(Bound::Int(up_to));
        history.push(format!("h.valid_from <= {p}"));
        current.push(format!("a.position <= {p}"));
    }
    if let Some(since) = filter.since {
        let p = bind(Bound::Int(since));
        history.push(format!("h.recorded_at >= {p}"));
        current.push(format!("a.last_edit_time >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = bind(Bound::Int(until));
        history.push(format!("h.recorded_at <= {p}"));
        current.push(format!("a.last_edit_time <= {p}"));
    }
    if !filter.event_types.is_empty() {
        let names: Vec<String> = filter
            .event_types
            .iter()
            .map(|t| bind(Bound::Text(t.clone())))
            .collect();
        let names = names.join(", ");
        history.push(format!("h.event_type IN ({names})"));
        current.push(format!("a.event_type IN ({names})"));
    }
    let order = if filter.ascending { "ASC" } else { "DESC" };
    let limit = bind(Bound::Int(filter.limit.max(1)));
    // Each half is limited on its own too: neither can give more than the page.
    let sql = format!(
        "SELECT * FROM (SELECT * FROM (SELECT {} FROM annotation_history h WHERE {} \
         ORDER BY h.valid_from {order} LIMIT {limit}) AS replaced \
         UNION ALL SELECT * FROM (SELECT {} FROM annotations a WHERE {} \
         ORDER BY a.position {order} LIMIT {limit}) AS live) AS versions \
         ORDER BY valid_from {order} LIMIT {limit}",
        crate::read::VERSION_COLUMNS,
        history.join(" AND "),
        crate::read::CURRENT_VERSION_COLUMNS,
        current.join(" AND "),
    );
    (sql, binds)
}

async fn fetch_sqlite(
    pool: &SqlitePool,
    sql: &str,
    binds: Vec<Bound>,
) -> Result<Vec<AnnotationVersion>, sqlx::Error> {
    let mut query = sqlx::query_as(sql);
    for value in binds {
        query = match value {
            Bound::Int(v) => query.bind(v),
            Bound::Text(v) => query.bind(v),
        };
    }
    query.fetch_all(pool).await
}

async fn fetch_postgres(
    pool: &PgPool,
    sql: &str,
    binds: Vec<Bound>,
) -> Result<Vec<AnnotationVersion>, sqlx::Error> {
    let mut query = sqlx::query_as(sql);
    for value in binds {
        query = match value {
            Bound::Int(v) => query.bind(v),
            Bound::Text(v) => query.bind(v),
        };
    }
    query.fetch_all(pool).await
}
