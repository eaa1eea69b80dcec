//! The annotations read model: each annotation's current state with its bounding box (for
//! viewport queries), each user's current verdict, and every version it had before, with the
//! positions it was valid between (for reads as of any past moment and for an annotation's
//! history). The current row is the latest version: a creation writes one row, a change
//! copies the row it replaces into `annotation_history`.
//!
//! It is an inline projection: updated in the append's transaction. Its SQL runs unchanged on
//! both backends, but for the spatial index: SQLite's is an R*Tree over the cells of a loose
//! grid ([`crate::spatial_cell`]), which this projection registers, with each row's cell in an
//! ordinary index; PostgreSQL's is a GiST index on a generated `box` column.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;

use crate::spatial_cell::{cell_of, SpatialCell};
use async_trait::async_trait;
use exact_domain::annotation::{evolve, Annotation, AnnotationEvent, Consensus};
use exact_domain::vector::{Bounds, Vector};
use exact_domain::DomainEvent;
use exact_store::{Decoded, Envelope, InlineProjection, SqlRow, SqlValue, StoreError, Tx};
use serde::Deserialize;
use serde_json::Value;
use uuid::fmt::Hyphenated;

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

impl AnnotationRow {
    /// The row a creation's envelope makes, as this read model writes it (`None` for any other
    /// event): what a client is answered needs no read after the append.
    pub fn created_by(envelope: &Envelope) -> exact_store::Result<Option<Self>> {
        let steps = decode(std::slice::from_ref(envelope))?;
        Ok(match steps.into_iter().next() {
            Some(Step::Create(version)) => Some(version.into_row()),
            _ => None,
        })
    }
}

/// Read from a row of `ROW_COLUMNS` (or `AS_OF_COLUMNS`), in that order.
impl SqlRow for AnnotationRow {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            image: row.get(1)?,
            annotation_type: row.get(2)?,
            vector: row.get(3)?,
            description: row.get(4)?,
            meta_data: row.get(5)?,
            concealed: row.get(6)?,
            blurred: row.get(7)?,
            deleted: row.get(8)?,
            unique_identifier: row.get(9)?,
            user_id: row.get(10)?,
            last_editor: row.get(11)?,
            time: row.get(12)?,
            last_edit_time: row.get(13)?,
            version: row.get(14)?,
            position: row.get(15)?,
        })
    }
}

/// The columns of [`AnnotationRow`], for a query that names `annotations` as `a`.
pub(crate) const ROW_COLUMNS: &str = "a.id, a.image, a.annotation_type, a.vector, a.description, a.meta_data, \
     a.concealed, a.blurred, a.deleted, a.unique_identifier, a.user_id, a.last_editor, a.time, a.last_edit_time, \
     a.version, a.position";

/// The indexes a rebuild on SQLite drops before it writes the rows and builds again after
/// them: each row lands at a random place in these (they are ordered by spatial cell), and a
/// sort of the finished table is cheaper than a million random inserts. The others stay: a
/// rebuild writes rows in log order, so each row lands at the end of its image's, type's or
/// editor's run in them (ordered by position or by id, which grow with the log), and inserting
/// there costs less than sorting: a million creations rebuilt at 0.86-0.96 of the time SQLite
/// alone takes to refill the table, against 0.72-0.89 with every index built after the rows
/// (alternated runs). Constraints' indexes (UNIQUE) cannot be dropped and stay too.
pub const INDEXES_BUILT_AFTER_ROWS: &[&str] =
    &["annotations_by_cell", "annotation_history_by_cell"];

/// Creations written per batch of rows.
const INSERT_CHUNK: usize = 500;

#[async_trait]
impl InlineProjection for AnnotationsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn apply(&self, tx: &mut Tx<'_>, events: &[Envelope]) -> exact_store::Result<()> {
        let decoded = decode(events)?;
        apply_decoded(tx, events, decoded).await
    }

    fn decode(&self, events: &[Envelope]) -> exact_store::Result<Option<Decoded>> {
        Ok(Some(Box::new(decode(events)?)))
    }

    async fn apply_decoded(
        &self,
        tx: &mut Tx<'_>,
        events: &[Envelope],
        decoded: Option<Decoded>,
    ) -> exact_store::Result<()> {
        let steps = steps_of(events, decoded)?;
        apply_decoded(tx, events, steps).await
    }

    /// The overview's counts and the statistics a page of creations adds are summed over the
    /// pages and written once; the spatial cells the pages register are each asked for once.
    async fn apply_page(
        &self,
        tx: &mut Tx<'_>,
        events: &[Envelope],
        decoded: Option<Decoded>,
        carry: &mut Option<Decoded>,
    ) -> exact_store::Result<()> {
        let steps = steps_of(events, decoded)?;
        let carried = carry
            .get_or_insert_with(|| Box::new(Carried::default()))
            .downcast_mut::<Carried>()
            .expect("the annotations projection carries its own");
        apply_steps(tx, events, steps, carried).await
    }

    async fn finish_pages(
        &self,
        tx: &mut Tx<'_>,
        carry: Option<Decoded>,
    ) -> exact_store::Result<()> {
        match carry.and_then(|c| c.downcast::<Carried>().ok()) {
            Some(carried) => write_carried(tx, &carried).await,
            None => Ok(()),
        }
    }

    async fn reset(&self, tx: &mut Tx<'_>) -> exact_store::Result<()> {
        if let Tx::Sqlite(_) = tx {
            // The cells of the spatial index stay when the R*Tree agrees with them: a cell's
            // box is a function of its id (the grid's, not the log's), and putting 70,000
            // cells into the R*Tree again took a tenth of a rebuild. The rows add the cells
            // they lack as they go; `finish_rebuild` drops those no version uses.
            if !cells_match_tree(tx).await? {
                // Made again from its own stored definition: a DELETE empties a virtual table
                // a row at a time. Emptied first, it also makes the delete trigger of
                // `annotation_cells` trivial.
                const TABLE: &str = "annotation_cells_rtree";
                let definition: Option<(String,)> = tx
                    .fetch_optional(
                        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = $1",
                        &[TABLE.into()],
                    )
                    .await?;
                let Some((definition,)) = definition else {
                    return Err(StoreError::Projection {
                        name: NAME.into(),
                        reason: format!("the spatial index {TABLE} is missing"),
                    });
                };
                execute!(tx, &format!("DROP TABLE {TABLE}"));
                execute!(tx, &definition);
                execute!(tx, "DELETE FROM annotation_cells");
            }
            // The indexes of `INDEXES_BUILT_AFTER_ROWS` take rows at random places; a rebuild
            // builds them once from the finished tables instead (`finish_rebuild`), from their
            // stored definitions, kept meanwhile in a table of the writer's own connection.
            execute!(
                tx,
                &format!(
                    "CREATE TEMP TABLE rebuild_deferred_indexes AS SELECT name, sql FROM sqlite_master \
                     WHERE type = 'index' AND name IN ('{}')",
                    INDEXES_BUILT_AFTER_ROWS.join("', '")
                )
            );
            let deferred: Vec<(String,)> = tx
                .fetch_all("SELECT name FROM temp.rebuild_deferred_indexes", &[])
                .await?;
            for (name,) in deferred {
                execute!(tx, &format!("DROP INDEX \"{name}\""));
            }
        }
        execute!(tx, "DELETE FROM annotations");
        execute!(tx, "DELETE FROM verifications");
        execute!(tx, "DELETE FROM annotation_history");
        execute!(tx, "DELETE FROM annotation_density");
        execute!(tx, "DELETE FROM annotation_statistics");
        Ok(())
    }

    async fn finish_rebuild(&self, tx: &mut Tx<'_>) -> exact_store::Result<()> {
        if let Tx::Sqlite(_) = tx {
            let deferred: Vec<(String,)> = tx
                .fetch_all("SELECT sql FROM temp.rebuild_deferred_indexes", &[])
                .await?;
            let definitions: Vec<String> = deferred.into_iter().map(|(sql,)| sql).collect();
            tx.create_indexes(&definitions).await?;
            execute!(tx, "DROP TABLE temp.rebuild_deferred_indexes");
            // Cells that only versions before the rebuild used (none, unless the read model
            // had strayed from the log).
            execute!(
                tx,
                "DELETE FROM annotation_cells \
                 WHERE NOT EXISTS (SELECT 1 FROM annotations a WHERE a.cell = annotation_cells.cell) \
                 AND NOT EXISTS (SELECT 1 FROM annotation_history h WHERE h.cell = annotation_cells.cell)"
            );
        }
        Ok(())
    }
}

/// What an event of the log asks of this read model, worked out without the database.
// Creations are most of a log's annotation events; boxing their versions would add an
// allocation to each, made on a decoding thread and freed on the writer's.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// Not an annotation event.
    Skip,
    /// A creation: its first version, whole.
    Create(Version),
    /// A change, deletion, restoration or verdict: applied to the stored row.
    Change(AnnotationEvent, Who),
}

/// What this read model keeps of an event's metadata: who acted and why. The rest (the time
/// is the envelope's own column, the client's address, the correlation) is not parsed: a
/// rebuild reads a million.
#[derive(Deserialize)]
struct Who {
    actor: Option<i64>,
    #[serde(default)]
    reason: Option<String>,
}

/// One step per envelope, in order.
fn decode(events: &[Envelope]) -> exact_store::Result<Vec<Step>> {
    let mut steps = Vec::with_capacity(events.len());
    for envelope in events {
        let Some(event) = AnnotationEvent::from_json(&envelope.event_type, &envelope.payload)
        else {
            steps.push(Step::Skip);
            continue;
        };
        let event = event.map_err(|e| failure(envelope, &e))?;
        let metadata: Who =
            serde_json::from_str(&envelope.metadata).map_err(|e| failure(envelope, &e))?;
        steps.push(match event {
            AnnotationEvent::AnnotationCreated(created) => {
                let at = envelope.recorded_at.timestamp_micros();
                let state = Annotation::created(created);
                let creator = state.user;
                Step::Create(Version::new(envelope, &metadata, state, creator, at))
            }
            event => Step::Change(event, metadata),
        });
    }
    Ok(steps)
}

/// Writes the `steps` of `events`. Runs of creations (a bulk import, a client's list POST) are
/// written a chunk of rows at a time, their counts once for the whole page; everything else one
/// event at a time, in log order.
/// What `decode` made of `events`, or `events` decoded now.
fn steps_of(events: &[Envelope], decoded: Option<Decoded>) -> exact_store::Result<Vec<Step>> {
    match decoded.and_then(|d| d.downcast::<Vec<Step>>().ok()) {
        Some(steps) => Ok(*steps),
        None => decode(events),
    }
}

async fn apply_decoded(
    tx: &mut Tx<'_>,
    events: &[Envelope],
    steps: Vec<Step>,
) -> exact_store::Result<()> {
    let mut carried = Carried::default();
    apply_steps(tx, events, steps, &mut carried).await?;
    write_carried(tx, &carried).await
}

/// Applies `steps`; what creations add to the overview and the statistics goes into `carried`.
///
/// Changes are applied together, up to [`CHANGE_CHUNK`] of distinct annotations at a time (a
/// statement for all their rows, not seven for each: on PostgreSQL each is a round trip, and
/// 350,000 changes took 400 s one by one). A change waits for the creations before it; a
/// creation after it may go in first, as it touches other rows and counts only sums.
async fn apply_steps(
    tx: &mut Tx<'_>,
    events: &[Envelope],
    steps: Vec<Step>,
    carried: &mut Carried,
) -> exact_store::Result<()> {
    let mut created: Vec<Version> = Vec::new();
    let mut changes: Vec<Change<'_>> = Vec::new();
    let mut changing: BTreeSet<i64> = BTreeSet::new();
    for (envelope, step) in events.iter().zip(steps) {
        match step {
            Step::Skip => {}
            Step::Create(version) => {
                created.push(version);
                if created.len() == INSERT_CHUNK {
                    insert_created(tx, &created, carried).await?;
                    created.clear();
                }
            }
            Step::Change(event, metadata) => {
                let id = event.annotation_id();
                // A second change of one annotation applies to what the first one leaves.
                if changes.len() == CHANGE_CHUNK || !changing.insert(id) {
                    flush(tx, &mut created, &mut changes, carried).await?;
                    changing = BTreeSet::from([id]);
                }
                changes.push(Change {
                    envelope,
                    metadata,
                    event,
                });
            }
        }
    }
    flush(tx, &mut created, &mut changes, carried).await
}

/// Writes the creations waiting, then the changes (which may be of them), and empties both.
async fn flush(
    tx: &mut Tx<'_>,
    created: &mut Vec<Version>,
    changes: &mut Vec<Change<'_>>,
    carried: &mut Carried,
) -> exact_store::Result<()> {
    insert_created(tx, created, carried).await?;
    created.clear();
    apply_changes(tx, changes, &mut carried.cells).await?;
    changes.clear();
    Ok(())
}

/// Writes what `carried` holds for the end of the transaction: the new cells of the spatial
/// index, the overview's counts and the statistics.
async fn write_carried(tx: &mut Tx<'_>, carried: &Carried) -> exact_store::Result<()> {
    add_cells(tx, &carried.cells).await?;
    // In the cells' order, as the table keeps them.
    let mut density: Vec<(&Cell, &i64)> = carried.density.iter().collect();
    density.sort_unstable();
    add_density(tx, density.into_iter()).await?;
    write_statistics(tx, &carried.statistics).await
}

fn failure(envelope: &Envelope, error: &dyn std::fmt::Display) -> StoreError {
    crate::undecodable(NAME, envelope, error)
}

/// One version of an annotation, as its current row stores it. It keeps no JSON trees: a rebuild
/// works these out on another thread, and freeing them there spares the writer.
struct Version {
    id: i64,
    image: i64,
    annotation_type: i64,
    description: String,
    concealed: bool,
    blurred: bool,
    deleted: bool,
    unique_identifier: uuid::Uuid,
    consensus: Consensus,
    vector: Option<String>,
    meta_data: Option<String>,
    bounds: [Option<f64>; 4],
    frame: Option<i64>,
    /// Its cell of SQLite's spatial index (also written on PostgreSQL, which ignores it).
    cell: Option<SpatialCell>,
    /// The overview's cell that counts it, if any.
    density: Option<Cell>,
    creator: i64,
    created_at: i64,
    at: i64,
    actor: Option<i64>,
    reason: Option<String>,
    /// One of the event types' names (no allocation per row), or the envelope's own text.
    event_type: Cow<'static, str>,
    version: i64,
    position: i64,
}

impl Version {
    /// The columns of `annotations` that [`AnnotationRow`] reads, as [`write_versions`] writes
    /// them.
    fn into_row(self) -> AnnotationRow {
        AnnotationRow {
            id: self.id,
            image: self.image,
            annotation_type: self.annotation_type,
            vector: self.vector,
            description: self.description,
            meta_data: self.meta_data,
            concealed: self.concealed,
            blurred: self.blurred,
            deleted: self.deleted,
            unique_identifier: self.unique_identifier.to_string(),
            user_id: self.creator,
            last_editor: self.actor,
            time: self.created_at,
            last_edit_time: self.at,
            version: self.version,
            position: self.position,
        }
    }

    fn new(
        envelope: &Envelope,
        metadata: &Who,
        state: Annotation,
        creator: i64,
        created_at: i64,
    ) -> Self {
        let (bounds, frame, cell, density) = match Vector::from_json(&state.vector) {
            Ok(Some(v)) => {
                let b = v.bounds();
                (
                    [Some(b.min_x), Some(b.min_y), Some(b.max_x), Some(b.max_y)],
                    v.frame.map(i64::from),
                    cell_of(state.image, &b),
                    density_cell_at(&state, &b),
                )
            }
            _ => ([None; 4], None, None, None),
        };
        Self {
            vector: json_text(&state.vector),
            meta_data: json_text(&state.meta_data),
            id: state.id,
            image: state.image,
            annotation_type: state.annotation_type,
            consensus: state.consensus(),
            unique_identifier: state.unique_identifier,
            description: state.description,
            concealed: state.concealed,
            blurred: state.blurred,
            deleted: state.deleted,
            bounds,
            frame,
            cell,
            density,
            creator,
            created_at,
            at: envelope.recorded_at.timestamp_micros(),
            actor: metadata.actor,
            reason: metadata.reason.clone(),
            event_type: type_name(&envelope.event_type),
            version: envelope.version,
            position: envelope.position,
        }
    }
}

const INSERT_ANNOTATIONS: &str = "INSERT INTO annotations (id, image, annotation_type, vector, description, \
     meta_data, concealed, blurred, deleted, unique_identifier, user_id, last_editor, time, last_edit_time, min_x, \
     min_y, max_x, max_y, frame, version, position, cell, event_type, reason) ";
const UPSERT_ANNOTATIONS: &str = " ON CONFLICT (id) DO UPDATE SET image = excluded.image, annotation_type = \
     excluded.annotation_type, vector = excluded.vector, description = excluded.description, meta_data = \
     excluded.meta_data, concealed = excluded.concealed, blurred = excluded.blurred, deleted = excluded.deleted, \
     last_editor = excluded.last_editor, last_edit_time = excluded.last_edit_time, min_x = excluded.min_x, \
     min_y = excluded.min_y, max_x = excluded.max_x, max_y = excluded.max_y, frame = excluded.frame, \
     version = excluded.version, position = excluded.position, cell = excluded.cell, \
     event_type = excluded.event_type, reason = excluded.reason";
/// The current row of annotation `$2` becomes a past version, valid until position `$1`.
const SUPERSEDE: &str = "INSERT INTO annotation_history (id, version, valid_from, valid_to, event_type, actor, \
     recorded_at, reason, image, annotation_type, vector, description, meta_data, concealed, blurred, deleted, \
     min_x, min_y, max_x, max_y, cell) \
     SELECT id, version, position, $1, event_type, last_editor, last_edit_time, reason, image, annotation_type, \
     vector, description, meta_data, concealed, blurred, deleted, min_x, min_y, max_x, max_y, cell \
     FROM annotations WHERE id = $2";
/// [`SUPERSEDE`] of many rows, around `VALUES ($1 position, $2 id), ...` (PostgreSQL).
const SUPERSEDE_MANY_HEAD: &str = "INSERT INTO annotation_history (id, version, valid_from, valid_to, \
     event_type, actor, recorded_at, reason, image, annotation_type, vector, description, meta_data, concealed, \
     blurred, deleted, min_x, min_y, max_x, max_y, cell) \
     SELECT a.id, a.version, a.position, v.valid_to, a.event_type, a.last_editor, a.last_edit_time, a.reason, \
     a.image, a.annotation_type, a.vector, a.description, a.meta_data, a.concealed, a.blurred, a.deleted, \
     a.min_x, a.min_y, a.max_x, a.max_y, a.cell FROM annotations a JOIN (";
const SUPERSEDE_MANY_TAIL: &str = ") AS v (valid_to, id) ON a.id = v.id";

/// What the rows [`write_versions`] writes take the place of.
#[derive(Clone, Copy)]
enum Replacing {
    /// Nothing: creations, whose ids are new. A row already there is an error, not overwritten
    /// (and a plain insert spares SQLite the statement journal an upsert may need).
    Nothing,
    /// The annotations' current rows.
    CurrentRows,
}

/// Writes `versions` as the current rows of `annotations`; their cells of SQLite's spatial
/// index go to `cells`, to be added at the end of the transaction.
async fn write_versions(
    tx: &mut Tx<'_>,
    versions: &[Version],
    replacing: Replacing,
    cells: &mut Cells,
) -> exact_store::Result<()> {
    if let Tx::Sqlite(_) = tx {
        cells.note(versions);
    }
    // The unique identifiers' text, in one buffer: a `String` each was an allocation per row
    // made on a decoding thread and freed on the writer's.
    let mut identifiers = String::with_capacity(versions.len() * Hyphenated::LENGTH);
    for v in versions {
        identifiers.push_str(
            v.unique_identifier
                .hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        );
    }
    let identifier = |i: usize| &identifiers[i * Hyphenated::LENGTH..(i + 1) * Hyphenated::LENGTH];
    let mut rows: Vec<SqlValue<'_>> = Vec::with_capacity(versions.len() * 24);
    for (i, v) in versions.iter().enumerate() {
        rows.extend([
            v.id.into(),
            v.image.into(),
            v.annotation_type.into(),
            (&v.vector).into(),
            (&v.description).into(),
            (&v.meta_data).into(),
            v.concealed.into(),
            v.blurred.into(),
            v.deleted.into(),
            identifier(i).into(),
            v.creator.into(),
            v.actor.into(),
            v.created_at.into(),
            v.at.into(),
            v.bounds[0].into(),
            v.bounds[1].into(),
            v.bounds[2].into(),
            v.bounds[3].into(),
            v.frame.into(),
            v.version.into(),
            v.position.into(),
            v.cell.map(|c| c.id).into(),
            v.event_type.as_ref().into(),
            (&v.reason).into(),
        ]);
    }
    let on_conflict = match replacing {
        Replacing::Nothing => "",
        Replacing::CurrentRows => UPSERT_ANNOTATIONS,
    };
    tx.insert_rows(INSERT_ANNOTATIONS, 24, on_conflict, &rows)
        .await?;
    Ok(())
}

/// Whether the R*Tree holds exactly the cells of `annotation_cells` (SQLite): a rebuild keeps
/// them only then.
async fn cells_match_tree(tx: &mut Tx<'_>) -> exact_store::Result<bool> {
    let counts: Option<(i64, i64, i64)> = tx
        .fetch_optional(
            "SELECT (SELECT COUNT(*) FROM annotation_cells), \
             (SELECT COUNT(*) FROM annotation_cells c JOIN annotation_cells_rtree r ON r.cell = c.cell), \
             (SELECT COUNT(*) FROM annotation_cells_rtree)",
            &[],
        )
        .await?;
    Ok(counts.is_some_and(|(cells, in_tree, tree)| cells == in_tree && cells == tree))
}

/// The cells of SQLite's spatial index that a transaction's versions use, by id, each noted
/// once: hashed, as a rebuild's million rows fall in some 70,000 cells; ordered once, when
/// they are added at the transaction's end.
#[derive(Default)]
struct Cells(FxHashMap<i64, SpatialCell>);

impl Cells {
    fn note(&mut self, versions: &[Version]) {
        for cell in versions.iter().filter_map(|v| v.cell) {
            self.0.entry(cell.id).or_insert(cell);
        }
    }
}

/// Adds the cells noted in `cells` that SQLite's spatial index does not hold yet (a trigger
/// puts each new one into its R*Tree), in the order of their ids.
///
/// Once per transaction, not per chunk of rows: a statement that fires a trigger may abort
/// after writing, so SQLite copies each page it changes into a statement journal first, once
/// per statement. Early in a million creations most of a batch's cells are new; added with
/// each chunk of 500 rows (in runs of 50 and single rows), they took 2.25 s of the million's
/// creation, 0.84 s of it in the first quarter; added once a batch, in the order of the
/// tree's cells, 1.46 s and 0.52 s (BENCHMARKS.md, "the spatial index's cells once a batch").
async fn add_cells(tx: &mut Tx<'_>, cells: &Cells) -> exact_store::Result<()> {
    if cells.0.is_empty() {
        return Ok(());
    }
    let mut ordered: Vec<&SpatialCell> = cells.0.values().collect();
    ordered.sort_unstable_by_key(|c| c.id);
    let mut values: Vec<SqlValue<'_>> = Vec::with_capacity(ordered.len() * 6);
    for c in ordered {
        values.extend([
            c.id.into(),
            c.image.into(),
            c.min_x.into(),
            c.min_y.into(),
            c.max_x.into(),
            c.max_y.into(),
        ]);
    }
    tx.insert_rows(
        "INSERT INTO annotation_cells (cell, image, min_x, min_y, max_x, max_y) ",
        6,
        " ON CONFLICT (cell) DO NOTHING",
        &values,
    )
    .await?;
    Ok(())
}

/// New annotations have no earlier version to close: rows go straight in; what they add to the
/// overview and the statistics goes into `carried`.
async fn insert_created(
    tx: &mut Tx<'_>,
    created: &[Version],
    carried: &mut Carried,
) -> exact_store::Result<()> {
    if created.is_empty() {
        return Ok(());
    }
    write_versions(tx, created, Replacing::Nothing, &mut carried.cells).await?;
    for v in created {
        if let Some(cell) = v.density {
            *carried.density.entry(cell).or_default() += 1;
        }
        count_version(
            &mut carried.statistics,
            v.image,
            v.annotation_type,
            v.deleted,
            v.consensus,
            1,
        );
    }
    Ok(())
}

/// What the pages of one transaction carry over: what creations add to the overview's cells
/// and to the statistics, written once (both are sums, so writing them after the pages' other
/// events changes nothing), and the cells of the spatial index its versions use (added at its
/// end: nothing reads them before the commit).
#[derive(Default)]
struct Carried {
    /// Hashed, not ordered: a rebuild adds each of a million creations to one of tens of
    /// thousands of cells, on the writer's thread.
    density: FxHashMap<Cell, i64>,
    statistics: Statistics,
    cells: Cells,
}

/// (image, annotation type) → [total, accepted, rejected, unverified].
type Statistics = BTreeMap<(i64, i64), [i64; 4]>;

/// Adds `sign` times `a` to its image and type's counts; deleted annotations count nowhere.
fn count(statistics: &mut Statistics, a: &Annotation, sign: i64) {
    count_version(
        statistics,
        a.image,
        a.annotation_type,
        a.deleted,
        a.consensus(),
        sign,
    );
}

/// [`count`] of an annotation of `image` and `annotation_type` with its `deleted` flag and
/// `consensus`.
fn count_version(
    statistics: &mut Statistics,
    image: i64,
    annotation_type: i64,
    deleted: bool,
    consensus: Consensus,
    sign: i64,
) {
    if deleted {
        return;
    }
    let counts = statistics.entry((image, annotation_type)).or_default();
    counts[0] += sign;
    let column = match consensus {
        Consensus::Accepted => 1,
        Consensus::Rejected => 2,
        Consensus::Unverified => 3,
    };
    counts[column] += sign;
}

/// Adds `delta` to `annotation_statistics`, a statement for all of it. A key whose counts sum
/// to nothing is still written (its row made if missing), as the changes that touched it would
/// each have written it.
async fn write_statistics(tx: &mut Tx<'_>, delta: &Statistics) -> exact_store::Result<()> {
    if delta.is_empty() {
        return Ok(());
    }
    let mut values: Vec<SqlValue<'_>> = Vec::with_capacity(delta.len() * 6);
    for ((image, kind), counts) in delta {
        values.extend([(*image).into(), (*kind).into()]);
        values.extend(counts.iter().map(SqlValue::from));
    }
    tx.insert_rows(
        "INSERT INTO annotation_statistics (image, annotation_type, total, accepted, rejected, unverified) ",
        6,
        " ON CONFLICT (image, annotation_type) DO UPDATE SET \
         total = annotation_statistics.total + excluded.total, \
         accepted = annotation_statistics.accepted + excluded.accepted, \
         rejected = annotation_statistics.rejected + excluded.rejected, \
         unverified = annotation_statistics.unverified + excluded.unverified",
        &values,
    )
    .await?;
    Ok(())
}

/// The edge of a density cell, in level-0 pixels.
pub const DENSITY_CELL: f64 = 1024.0;

/// (image, annotation type, column, row) of a density cell.
type Cell = (i64, i64, i64, i64);

/// The cell that counts `a`: where the centre of its box lies. Deleted annotations and those
/// without a shape count nowhere.
fn density_cell(a: &Annotation) -> Option<Cell> {
    let bounds = Vector::from_json(&a.vector).ok().flatten()?.bounds();
    density_cell_at(a, &bounds)
}

/// [`density_cell`] of `a`, whose vector's box is `bounds`.
fn density_cell_at(a: &Annotation, bounds: &Bounds) -> Option<Cell> {
    if a.deleted {
        return None;
    }
    let column = ((bounds.min_x + bounds.max_x) / 2.0 / DENSITY_CELL)
        .floor()
        .max(0.0) as i64;
    let row = ((bounds.min_y + bounds.max_y) / 2.0 / DENSITY_CELL)
        .floor()
        .max(0.0) as i64;
    Some((a.image, a.annotation_type, column, row))
}

/// Adds `delta` to each cell, a statement for all of them.
async fn add_density<'a>(
    tx: &mut Tx<'_>,
    delta: impl ExactSizeIterator<Item = (&'a Cell, &'a i64)>,
) -> exact_store::Result<()> {
    if delta.len() == 0 {
        return Ok(());
    }
    let mut values: Vec<SqlValue<'_>> = Vec::with_capacity(delta.len() * 5);
    for ((image, kind, col, row), count) in delta {
        values.extend([image, kind, col, row, count].map(SqlValue::from));
    }
    tx.insert_rows(
        "INSERT INTO annotation_density (image, annotation_type, col, row_index, count) ",
        5,
        " ON CONFLICT (image, annotation_type, col, row_index) \
         DO UPDATE SET count = annotation_density.count + excluded.count",
        &values,
    )
    .await?;
    Ok(())
}

/// Changes applied at a time: their rows read in one statement, written in one.
const CHANGE_CHUNK: usize = 1_000;

/// A change, deletion, restoration or verdict of an annotation, with its envelope.
struct Change<'a> {
    envelope: &'a Envelope,
    metadata: Who,
    event: AnnotationEvent,
}

/// Applies `changes`, each of another annotation: load them, evolve each, close their current
/// versions, write the new ones, with what they change of the verdicts, the overview and the
/// statistics. The same as one change at a time, in a statement per kind of row.
async fn apply_changes(
    tx: &mut Tx<'_>,
    changes: &[Change<'_>],
    cells: &mut Cells,
) -> exact_store::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = changes.iter().map(|c| c.event.annotation_id()).collect();
    let mut rows = load_rows(tx, &ids).await?;
    let mut verdicts = verdicts_of(tx, &ids).await?;
    let mut statistics = Statistics::new();
    let mut density: BTreeMap<Cell, i64> = BTreeMap::new();
    let mut verified: Vec<SqlValue<'_>> = Vec::new();
    let mut superseded: Vec<(i64, i64)> = Vec::with_capacity(changes.len());
    let mut versions: Vec<Version> = Vec::with_capacity(changes.len());
    for Change {
        envelope,
        metadata,
        event,
    } in changes
    {
        let id = event.annotation_id();
        let Some(row) = rows.remove(&id) else {
            return Err(StoreError::Projection {
                name: NAME.into(),
                reason: format!(
                    "position {}: annotation {id} was never created",
                    envelope.position
                ),
            });
        };
        let (verdicts, signed) = verdicts.remove(&id).unwrap_or_default();
        let mut before = to_domain(&row)?;
        before.verifications = verdicts;
        let moved_from = density_cell(&before);
        // Each change's own counts, as it would write them alone (a key it leaves as it was
        // is not written): the sum then writes the same rows.
        let mut own = Statistics::new();
        count(&mut own, &before, -1);
        let Some(after) = evolve(Some(before), event) else {
            continue;
        };
        count(&mut own, &after, 1);
        for (key, counts) in own {
            if counts.iter().any(|c| *c != 0) {
                let total = statistics.entry(key).or_default();
                for (sum, c) in total.iter_mut().zip(counts) {
                    *sum += c;
                }
            }
        }
        let moved_to = density_cell(&after);
        if moved_from != moved_to {
            if let Some(cell) = moved_from {
                *density.entry(cell).or_default() -= 1;
            }
            if let Some(cell) = moved_to {
                *density.entry(cell).or_default() += 1;
            }
        }
        let at = envelope.recorded_at.timestamp_micros();
        if let AnnotationEvent::AnnotationVerified {
            id,
            user,
            verified: accepted,
            signature,
        } = event
        {
            let signature = signature.as_ref();
            verified.extend([
                (*id).into(),
                (*user).into(),
                (*accepted).into(),
                at.into(),
                envelope.position.into(),
                signature.map(|s| s.name.as_str()).into(),
                signature.map(|s| s.meaning.as_str()).into(),
                signature.map(|s| s.version).into(),
                None::<i64>.into(),
            ]);
        }
        // A signature applies to the version signed: the first change after it ends that.
        if signed
            && matches!(
                event,
                AnnotationEvent::AnnotationChanged(_)
                    | AnnotationEvent::AnnotationDeleted { .. }
                    | AnnotationEvent::AnnotationRestored { .. }
            )
        {
            execute!(
                tx,
                "UPDATE verifications SET unsigned_at = $1 \
                 WHERE annotation = $2 AND signed_version IS NOT NULL AND unsigned_at IS NULL",
                envelope.position,
                id
            );
        }
        if let AnnotationEvent::AnnotationVerdictWithdrawn { id, user } = event {
            execute!(
                tx,
                "DELETE FROM verifications WHERE annotation = $1 AND user_id = $2",
                id,
                user
            );
        }
        superseded.push((envelope.position, id));
        versions.push(Version::new(
            envelope,
            metadata,
            after,
            row.user_id,
            row.time,
        ));
    }
    write_statistics(tx, &statistics).await?;
    add_density(tx, density.iter()).await?;
    tx.insert_rows(
        "INSERT INTO verifications (annotation, user_id, verified, time, position, signer, meaning, \
         signed_version, unsigned_at) ",
        9,
        " ON CONFLICT (annotation, user_id) DO UPDATE SET verified = excluded.verified, \
         time = excluded.time, position = excluded.position, signer = excluded.signer, \
         meaning = excluded.meaning, signed_version = excluded.signed_version, unsigned_at = NULL",
        &verified,
    )
    .await?;
    supersede(tx, &superseded).await?;
    write_versions(tx, &versions, Replacing::CurrentRows, cells).await
}

/// The current rows of annotations `ids`, by id.
async fn load_rows(
    tx: &mut Tx<'_>,
    ids: &[i64],
) -> exact_store::Result<BTreeMap<i64, AnnotationRow>> {
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM annotations a WHERE a.id IN ({})",
        placeholders(ids.len())
    );
    let args: Vec<SqlValue<'_>> = ids.iter().map(|id| (*id).into()).collect();
    let rows: Vec<AnnotationRow> = tx.fetch_all(&sql, &args).await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

/// Each user's current verdict on each of annotations `ids`, and whether one of them is a
/// signature that still applies (to the current version).
async fn verdicts_of(
    tx: &mut Tx<'_>,
    ids: &[i64],
) -> exact_store::Result<BTreeMap<i64, (BTreeMap<i64, bool>, bool)>> {
    let sql = format!(
        "SELECT annotation, user_id, verified, \
         CASE WHEN signed_version IS NOT NULL AND unsigned_at IS NULL THEN 1 ELSE 0 END \
         FROM verifications WHERE annotation IN ({})",
        placeholders(ids.len())
    );
    let args: Vec<SqlValue<'_>> = ids.iter().map(|id| (*id).into()).collect();
    let rows: Vec<(i64, i64, bool, i32)> = tx.fetch_all(&sql, &args).await?;
    let mut verdicts: BTreeMap<i64, (BTreeMap<i64, bool>, bool)> = BTreeMap::new();
    for (annotation, user, verified, signed) in rows {
        let entry = verdicts.entry(annotation).or_default();
        entry.0.insert(user, verified);
        entry.1 |= signed == 1;
    }
    Ok(verdicts)
}

/// `$1, $2, ..., $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The current rows of `(position, id)` become past versions, each valid until its position.
async fn supersede(tx: &mut Tx<'_>, superseded: &[(i64, i64)]) -> exact_store::Result<()> {
    if let Tx::Sqlite(_) = tx {
        // In process, one prepared statement a row costs nothing to send.
        for (position, id) in superseded {
            execute!(tx, SUPERSEDE, position, id);
        }
        return Ok(());
    }
    let values: Vec<SqlValue<'_>> = superseded
        .iter()
        .flat_map(|(position, id)| [(*position).into(), (*id).into()])
        .collect();
    tx.insert_rows(SUPERSEDE_MANY_HEAD, 2, SUPERSEDE_MANY_TAIL, &values)
        .await?;
    Ok(())
}

/// `event_type` as the name of one of the annotation events, without an allocation.
fn type_name(event_type: &str) -> Cow<'static, str> {
    match AnnotationEvent::NAMES
        .iter()
        .find(|name| **name == event_type)
    {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(event_type.to_owned()),
    }
}

/// JSON null is stored as SQL NULL.
fn json_text(value: &Value) -> Option<String> {
    // The text `Display` writes, without going through a formatter (a sixth of a rebuild's
    // decoding did).
    (!value.is_null()).then(|| serde_json::to_string(value).expect("a JSON value serializes"))
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
        version: row.version,
    })
}
