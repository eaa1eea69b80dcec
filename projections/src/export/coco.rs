//! COCO JSON (the object-detection format of cocodataset.org, as pycocotools reads it): images
//! with their size, categories from the annotation types, and an annotation per shape with its
//! box `[x, y, width, height]`, area and, for boxes and polygons, a polygon segmentation.
//!
//! Lines, multi-lines and points have a box and no segmentation (area 0 for a point given by
//! its centre). Labels of a whole image (no shape) and deleted annotations are not written:
//! COCO has no place for them. Each annotation carries its `exact_uuid`, so that an import finds
//! it again.

use std::io::{self, Write};

use exact_domain::vector::VectorType;
use serde::Serialize;

use super::{vector_of, Dataset};

#[derive(Serialize)]
struct Coco<'a> {
    info: Info<'a>,
    licenses: [(); 0],
    images: Vec<Image<'a>>,
    categories: Vec<Category<'a>>,
    annotations: Annotations<'a>,
}

#[derive(Serialize)]
struct Info<'a> {
    description: &'a str,
    /// The log position the dataset was read at.
    version: String,
    date_created: String,
    contributor: &'a str,
}

#[derive(Serialize)]
struct Image<'a> {
    id: i64,
    file_name: &'a str,
    width: i64,
    height: i64,
}

#[derive(Serialize)]
struct Category<'a> {
    id: i64,
    name: &'a str,
    supercategory: &'a str,
}

#[derive(Serialize)]
struct Annotation<'a> {
    id: i64,
    image_id: i64,
    category_id: i64,
    bbox: [f64; 4],
    area: f64,
    segmentation: Vec<Vec<f64>>,
    iscrowd: u8,
    exact_uuid: &'a str,
}

/// The annotations, serialized one by one as they are read (never all built at once), and
/// counted as they go.
struct Annotations<'a>(&'a Dataset, std::cell::Cell<usize>);

impl Serialize for Annotations<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(annotations(self.0).inspect(|_| self.1.set(self.1.get() + 1)))
    }
}

fn annotations(dataset: &Dataset) -> impl Iterator<Item = Annotation<'_>> {
    dataset.live().filter_map(move |a| {
        let kind = dataset.types.get(&a.annotation_type)?;
        let vector = vector_of(a)?;
        let b = vector.bounds();
        let bbox = [b.min_x, b.min_y, b.max_x - b.min_x, b.max_y - b.min_y];
        let ring = || vector.nodes.iter().flat_map(|&(x, y)| [x, y]).collect();
        let (segmentation, area) = match kind.vector_type {
            VectorType::BoundingBox | VectorType::FixedSizeBoundingBox => (
                vec![vec![
                    b.min_x, b.min_y, b.max_x, b.min_y, b.max_x, b.max_y, b.min_x, b.max_y,
                ]],
                bbox[2] * bbox[3],
            ),
            VectorType::Polygon if kind.closed && vector.nodes.len() >= 3 => {
                (vec![ring()], polygon_area(&vector.nodes))
            }
            // A point drawn as a circle: the circle's area.
            VectorType::Point => (Vec::new(), std::f64::consts::PI * bbox[2] * bbox[3] / 4.0),
            _ => (Vec::new(), 0.0),
        };
        Some(Annotation {
            id: a.id,
            image_id: a.image,
            category_id: a.annotation_type,
            bbox,
            area,
            segmentation,
            iscrowd: 0,
            exact_uuid: &a.unique_identifier,
        })
    })
}

/// The shoelace formula.
pub fn polygon_area(nodes: &[(f64, f64)]) -> f64 {
    let n = nodes.len();
    let twice: f64 = (0..n)
        .map(|i| {
            let (x1, y1) = nodes[i];
            let (x2, y2) = nodes[(i + 1) % n];
            x1 * y2 - x2 * y1
        })
        .sum();
    twice.abs() / 2.0
}

/// Writes `dataset` as one COCO JSON document; the annotations written.
pub fn write(dataset: &Dataset, out: &mut impl Write) -> io::Result<usize> {
    let coco = Coco {
        info: Info {
            description: &dataset.set.name,
            version: format!("position {}", dataset.position),
            date_created: super::rfc3339(dataset.read_at),
            contributor: &dataset.set.team,
        },
        licenses: [],
        images: dataset
            .images
            .iter()
            .map(|i| Image {
                id: i.id,
                file_name: &i.name,
                width: i.width,
                height: i.height,
            })
            .collect(),
        categories: dataset
            .types
            .values()
            .map(|t| Category {
                id: t.id,
                name: &t.name,
                supercategory: "",
            })
            .collect(),
        annotations: Annotations(dataset, std::cell::Cell::new(0)),
    };
    serde_json::to_writer(&mut *out, &coco)?;
    Ok(coco.annotations.1.get())
}

#[cfg(test)]
mod tests {
    use super::polygon_area;

    #[test]
    fn the_area_of_a_polygon_is_its_surface() {
        let square = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)];
        assert_eq!(polygon_area(&square), 100.0);
        let triangle = [(0.0, 0.0), (0.0, 4.0), (3.0, 0.0)];
        assert_eq!(polygon_area(&triangle), 6.0);
    }
}
