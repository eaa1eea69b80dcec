//! YOLO (Ultralytics' text format): a line per annotation in `labels/<image>.txt`, the class
//! index first, coordinates normalised to the image: boxes (and points, lines) as `class cx cy
//! w h`, closed polygons as YOLO segmentation (`class x1 y1 x2 y2 ...`). The classes are the
//! dataset's types in id order, listed in `classes.txt` and `data.yaml`.

use std::io::{self, Write};

use exact_domain::vector::VectorType;

use super::{vector_of, Dataset, ImageRecord};

/// The class index of each type: its place among the dataset's types, by id.
pub fn classes(dataset: &Dataset) -> Vec<(i64, &str)> {
    dataset
        .types
        .values()
        .map(|t| (t.id, t.name.as_str()))
        .collect()
}

/// `classes.txt`: a name per line, in class order.
pub fn write_classes(dataset: &Dataset, out: &mut impl Write) -> io::Result<()> {
    for (_, name) in classes(dataset) {
        writeln!(out, "{}", name.replace(['\n', '\r'], " "))?;
    }
    Ok(())
}

/// `data.yaml`: the class names as Ultralytics reads them.
pub fn write_data_yaml(dataset: &Dataset, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "path: .")?;
    writeln!(out, "names:")?;
    for (i, (_, name)) in classes(dataset).iter().enumerate() {
        writeln!(out, "  {i}: {}", serde_json::to_string(name)?)?;
    }
    Ok(())
}

/// The lines of `image`; the annotations written.
pub fn write_image(
    dataset: &Dataset,
    image: &ImageRecord,
    out: &mut impl Write,
) -> io::Result<usize> {
    let index: std::collections::HashMap<i64, usize> = classes(dataset)
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let (w, h) = (image.width.max(1) as f64, image.height.max(1) as f64);
    let mut written = 0;
    for a in dataset.live().filter(|a| a.image == image.id) {
        let (Some(kind), Some(vector)) = (dataset.types.get(&a.annotation_type), vector_of(a))
        else {
            continue;
        };
        let class = index[&kind.id];
        if kind.vector_type == VectorType::Polygon && kind.closed && vector.nodes.len() >= 3 {
            write!(out, "{class}")?;
            for &(x, y) in &vector.nodes {
                write!(out, " {:.6} {:.6}", x / w, y / h)?;
            }
            writeln!(out)?;
        } else {
            let b = vector.bounds();
            writeln!(
                out,
                "{class} {:.6} {:.6} {:.6} {:.6}",
                (b.min_x + b.max_x) / 2.0 / w,
                (b.min_y + b.max_y) / 2.0 / h,
                (b.max_x - b.min_x) / w,
                (b.max_y - b.min_y) / h
            )?;
        }
        written += 1;
    }
    Ok(written)
}
