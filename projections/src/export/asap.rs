//! ASAP XML (the annotation file of ASAP, the Computational Pathology Group's slide viewer),
//! one file per image: an `Annotation` per shape with its `Coordinate`s, its group the type
//! (`PartOfGroup`), its name the UUID (so that an import finds it again), and a `Group` per
//! type with the type's colour. Boxes are `Rectangle`s, closed polygons `Polygon`s, points
//! `Dot`s (the centre), lines and open polygons `Spline`s. Whole-image labels have no shape in
//! ASAP and are left out.

use std::collections::BTreeMap;
use std::io::{self, Write};

use exact_domain::vector::VectorType;

use super::voc::escape;
use super::{json_number, vector_of, Dataset, ImageRecord};

/// Writes the annotations of `image`; the annotations written.
pub fn write_image(
    dataset: &Dataset,
    image: &ImageRecord,
    out: &mut impl Write,
) -> io::Result<usize> {
    writeln!(out, "<?xml version=\"1.0\"?>")?;
    writeln!(out, "<ASAP_Annotations>")?;
    writeln!(out, "  <Annotations>")?;
    let mut groups = BTreeMap::new();
    let mut written = 0;
    for a in dataset.live().filter(|a| a.image == image.id) {
        let (Some(kind), Some(vector)) = (dataset.types.get(&a.annotation_type), vector_of(a))
        else {
            continue;
        };
        groups.insert(kind.name.as_str(), kind.color_code.as_str());
        let b = vector.bounds();
        let (shape, nodes): (&str, Vec<(f64, f64)>) = match kind.vector_type {
            VectorType::BoundingBox | VectorType::FixedSizeBoundingBox => (
                "Rectangle",
                vec![
                    (b.min_x, b.min_y),
                    (b.max_x, b.min_y),
                    (b.max_x, b.max_y),
                    (b.min_x, b.max_y),
                ],
            ),
            VectorType::Point => (
                "Dot",
                vec![((b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0)],
            ),
            VectorType::Polygon if kind.closed => ("Polygon", vector.nodes.clone()),
            _ => ("Spline", vector.nodes.clone()),
        };
        writeln!(
            out,
            "    <Annotation Name=\"{}\" Type=\"{shape}\" PartOfGroup=\"{}\" Color=\"{}\">",
            a.unique_identifier,
            escape(&kind.name),
            escape(&kind.color_code)
        )?;
        writeln!(out, "      <Coordinates>")?;
        for (order, (x, y)) in nodes.iter().enumerate() {
            writeln!(
                out,
                "        <Coordinate Order=\"{order}\" X=\"{}\" Y=\"{}\" />",
                json_number(*x),
                json_number(*y)
            )?;
        }
        writeln!(out, "      </Coordinates>")?;
        writeln!(out, "    </Annotation>")?;
        written += 1;
    }
    writeln!(out, "  </Annotations>")?;
    writeln!(out, "  <AnnotationGroups>")?;
    for (name, color) in groups {
        writeln!(
            out,
            "    <Group Name=\"{}\" PartOfGroup=\"None\" Color=\"{}\"><Attributes /></Group>",
            escape(name),
            escape(color)
        )?;
    }
    writeln!(out, "  </AnnotationGroups>")?;
    writeln!(out, "</ASAP_Annotations>")?;
    Ok(written)
}
