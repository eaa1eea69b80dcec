//! The annotations read model: each annotation's current state with its bounding box (for
//! viewport queries), each user's current verdict, and every version with the positions it was
//! valid between (for reads as of any past moment and for an annotation's history).
//!
//! It is an inline projection: updated in the append's transaction. Its SQL runs unchanged on
//! both backends; the spatial index is kept by the database (SQLite: an R*Tree filled by
//! triggers; PostgreSQL: a GiST index on a generated `box` column).

use async_trait::async_trait;
use exact_domain::annotation::{evolve, Annotation, AnnotationEvent};
use exact_domain::vector::Vector;
use exact_store::{Envelope, InlineProjection, Metadata, StoreError, Tx};
use serde_json::Value;

/// The name its checkpoint is kept under.
pub const NAME: &str = "annotations";

/// Keeps `annotations`, `verifications` and `annotation_history`.
#[derive(Debug, Default)]
pub struct AnnotationsProjection;

/// One row of `annotations`, as the projection reads and writes it.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct AnnotationRow {
    pub id: i64,
    pub image: i64,
    pub annotation_type: i64,
    pub vector: Option<String>,
    pub description: String,
    pub meta_data: Option<String>,
    pub concealed: bool,
    pub blurred: bool,
    pub deleted: bool,
    pub unique_identifier: String,
    pub user_id: i64,
    pub last_editor: Option<i64>,
    pub time: i64,
    pub last_edit_time: i64,
    pub version: i64,
    pub position: i64,
}

/// Runs one statement with its binds on whichever backend `tx` is.
macro_rules! execute {
    ($tx:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        match $tx {
            Tx::Sqlite(conn) => sqlx::query($sql)$(.bind($bind))*.execute(&mut **conn).await?.rows_affected(),
            Tx::Postgres(conn) => sqlx::query($sql)$(.bind($bind))*.execute(&mut **conn).await?.rows_affected(),
        }
    };
}

const ROW_COLUMNS: &str = "id, image, annotation_type, vector, description, meta_data, concealed, blurred, deleted, \
                           unique_identifier, user_id, last_editor, time, last_edit_time, version, position";

#[async_trait]
impl InlineProjection for AnnotationsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn apply(&self, tx: &mut Tx<'_>, events: &[Envelope]) -> exact_store::Result<()> {
        for envelope in events {
            let payload = envelope
                .payload_value()
                .map_err(|e| failure(envelope, &e))?;
            let Some(event) = AnnotationEvent::from_parts(&envelope.event_type, &payload) else {
                continue;
            };
            let event = event.map_err(|e| failure(envelope, &e))?;
            let metadata = envelope.metadata().map_err(|e| failure(envelope, &e))?;
            apply_event(tx, envelope, &metadata, &event).await?;
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx<'_>) -> exact_store::Result<()> {
        execute!(tx, "DELETE FROM annotations");
        execute!(tx, "DELETE FROM verifications");
        execute!(tx, "DELETE FROM annotation_history");
        Ok(())
    }
}

fn failure(envelope: &Envelope, error: &dyn std::fmt::Display) -> StoreError {
    StoreError::Projection {
        name: NAME.into(),
        reason: format!(
            "event at position {} does not decode: {error}",
            envelope.position
        ),
    }
}

async fn apply_event(
    tx: &mut Tx<'_>,
    envelope: &Envelope,
    metadata: &Metadata,
    event: &AnnotationEvent,
) -> exact_store::Result<()> {
    let at = envelope.recorded_at.timestamp_micros();
    let (before, creator, created_at) = match event {
        AnnotationEvent::AnnotationCreated(c) => (None, c.user, at),
        _ => {
            let id = annotation_id(event);
            let Some(row) = load(tx, id).await? else {
                return Err(StoreError::Projection {
                    name: NAME.into(),
                    reason: format!(
                        "position {}: annotation {id} was never created",
                        envelope.position
                    ),
                });
            };
            let (user, time) = (row.user_id, row.time);
            (Some(to_domain(&row)?), user, time)
        }
    };
    let Some(after) = evolve(before, event) else {
        return Ok(());
    };
    if let AnnotationEvent::AnnotationVerified { id, user, verified } = event {
        execute!(
            tx,
            "INSERT INTO verifications (annotation, user_id, verified, time) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (annotation, user_id) DO UPDATE SET verified = excluded.verified, time = excluded.time",
            id,
            user,
            verified,
            at
        );
    }
    let vector = json_text(&after.vector);
    let meta_data = json_text(&after.meta_data);
    let (bounds, frame) = match Vector::from_json(&after.vector) {
        Ok(Some(v)) => (Some(v.bounds()), v.frame.map(i64::from)),
        _ => (None, None),
    };
    let [min_x, min_y, max_x, max_y] = bounds.map_or([None; 4], |b| {
        [Some(b.min_x), Some(b.min_y), Some(b.max_x), Some(b.max_y)]
    });
    execute!(
        tx,
        "INSERT INTO annotations (id, image, annotation_type, vector, description, meta_data, concealed, blurred, \
         deleted, unique_identifier, user_id, last_editor, time, last_edit_time, min_x, min_y, max_x, max_y, frame, \
         version, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
         $19, $20, $21) ON CONFLICT (id) DO UPDATE SET image = excluded.image, annotation_type = \
         excluded.annotation_type, vector = excluded.vector, description = excluded.description, meta_data = \
         excluded.meta_data, concealed = excluded.concealed, blurred = excluded.blurred, deleted = excluded.deleted, \
         last_editor = excluded.last_editor, last_edit_time = excluded.last_edit_time, min_x = excluded.min_x, \
         min_y = excluded.min_y, max_x = excluded.max_x, max_y = excluded.max_y, frame = excluded.frame, \
         version = excluded.version, position = excluded.position",
        after.id,
        after.image,
        after.annotation_type,
        &vector,
        &after.description,
        &meta_data,
        after.concealed,
        after.blurred,
        after.deleted,
        after.unique_identifier.to_string(),
        creator,
        metadata.actor,
        created_at,
        at,
        min_x,
        min_y,
        max_x,
        max_y,
        frame,
        envelope.version,
        envelope.position,
    );
    execute!(
        tx,
        "UPDATE annotation_history SET valid_to = $1 WHERE id = $2 AND valid_to IS NULL",
        envelope.position,
        after.id
    );
    execute!(
        tx,
        "INSERT INTO annotation_history (id, version, valid_from, valid_to, event_type, actor, recorded_at, reason, \
         image, annotation_type, vector, description, meta_data, concealed, blurred, deleted, min_x, min_y, max_x, \
         max_y) VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        after.id,
        envelope.version,
        envelope.position,
        &envelope.event_type,
        metadata.actor,
        at,
        &metadata.reason,
        after.image,
        after.annotation_type,
        &vector,
        &after.description,
        &meta_data,
        after.concealed,
        after.blurred,
        after.deleted,
        min_x,
        min_y,
        max_x,
        max_y,
    );
    Ok(())
}

fn annotation_id(event: &AnnotationEvent) -> i64 {
    match event {
        AnnotationEvent::AnnotationCreated(c) => c.id,
        AnnotationEvent::AnnotationChanged(c) => c.id,
        AnnotationEvent::AnnotationDeleted { id }
        | AnnotationEvent::AnnotationRestored { id }
        | AnnotationEvent::AnnotationVerified { id, .. } => *id,
    }
}

/// JSON null is stored as SQL NULL.
fn json_text(value: &Value) -> Option<String> {
    (!value.is_null()).then(|| value.to_string())
}

async fn load(tx: &mut Tx<'_>, id: i64) -> exact_store::Result<Option<AnnotationRow>> {
    let sql = format!("SELECT {ROW_COLUMNS} FROM annotations WHERE id = $1");
    Ok(match tx {
        Tx::Sqlite(conn) => {
            sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(&mut **conn)
                .await?
        }
        Tx::Postgres(conn) => {
            sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(&mut **conn)
                .await?
        }
    })
}

/// The stored row as the domain's state; verdicts live in their own table.
fn to_domain(row: &AnnotationRow) -> exact_store::Result<Annotation> {
    let corrupt = |what: &str| StoreError::Projection {
        name: NAME.into(),
        reason: format!("annotation {}: stored {what} does not decode", row.id),
    };
    let parse = |text: &Option<String>| -> Option<Value> {
        match text {
            None => Some(Value::Null),
            Some(t) => serde_json::from_str(t).ok(),
        }
    };
    Ok(Annotation {
        id: row.id,
        image: row.image,
        annotation_type: row.annotation_type,
        vector: parse(&row.vector).ok_or_else(|| corrupt("vector"))?,
        description: row.description.clone(),
        meta_data: parse(&row.meta_data).ok_or_else(|| corrupt("meta_data"))?,
        concealed: row.concealed,
        blurred: row.blurred,
        deleted: row.deleted,
        unique_identifier: row
            .unique_identifier
            .parse()
            .map_err(|_| corrupt("unique_identifier"))?,
        user: row.user_id,
        verifications: std::collections::BTreeMap::new(),
    })
}
