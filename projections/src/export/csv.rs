//! CSV: one row per annotation, deleted ones included, with every field of the annotation, its
//! image and type by id and name, its box, and the verdicts on it (RFC 4180 quoting).

use std::io::{self, Write};

use super::{rfc3339, vector_of, Dataset};

pub const HEADER: [&str; 26] = [
    "id",
    "unique_identifier",
    "image",
    "image_name",
    "annotation_type",
    "annotation_type_name",
    "vector",
    "min_x",
    "min_y",
    "max_x",
    "max_y",
    "frame",
    "concealed",
    "blurred",
    "deleted",
    "description",
    "meta_data",
    "user",
    "username",
    "time",
    "last_editor",
    "last_editor_username",
    "last_edit_time",
    "version",
    "accepted",
    "rejected",
];

/// Writes `dataset` as CSV; the rows written.
pub fn write(dataset: &Dataset, out: &mut impl Write) -> io::Result<usize> {
    let images = dataset.image_map();
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(HEADER)?;
    let mut rows = 0;
    for a in &dataset.annotations {
        let image = images.get(&a.image).map_or("", |i| i.name.as_str());
        let kind = dataset
            .types
            .get(&a.annotation_type)
            .map_or("", |t| t.name.as_str());
        let vector = vector_of(a);
        let bounds = vector.as_ref().map(exact_domain::vector::Vector::bounds);
        let number = |x: Option<f64>| x.map(super::json_number).unwrap_or_default();
        let flag = |b: bool| if b { "true" } else { "false" };
        let verdicts = dataset.verdicts.get(&a.id).copied().unwrap_or_default();
        csv.write_record([
            a.id.to_string().as_str(),
            &a.unique_identifier,
            &a.image.to_string(),
            image,
            &a.annotation_type.to_string(),
            kind,
            a.vector.as_deref().unwrap_or(""),
            &number(bounds.map(|b| b.min_x)),
            &number(bounds.map(|b| b.min_y)),
            &number(bounds.map(|b| b.max_x)),
            &number(bounds.map(|b| b.max_y)),
            &vector
                .and_then(|v| v.frame)
                .map(|f| f.to_string())
                .unwrap_or_default(),
            flag(a.concealed),
            flag(a.blurred),
            flag(a.deleted),
            &a.description,
            a.meta_data.as_deref().unwrap_or(""),
            &a.user_id.to_string(),
            dataset.username(a.user_id),
            &rfc3339(a.time),
            &a.last_editor.map(|u| u.to_string()).unwrap_or_default(),
            a.last_editor.map_or("", |u| dataset.username(u)),
            &rfc3339(a.last_edit_time),
            &a.version.to_string(),
            &verdicts.accepted.to_string(),
            &verdicts.rejected.to_string(),
        ])?;
        rows += 1;
    }
    csv.flush()?;
    Ok(rows)
}
