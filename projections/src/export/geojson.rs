//! GeoJSON, one FeatureCollection per image in its pixel coordinates (y down, as slides and
//! QuPath have them): boxes and closed polygons as Polygons (ring closed), open polygons, lines
//! and multi-lines as LineStrings, points as Points (a circle's centre).
//!
//! Two flavours: QuPath's (`objectType` and `classification {name, color}` as QuPath writes
//! and reads them, the UUID as the feature's id) and a plain one for any GIS tool, whose
//! properties carry the annotation's fields. Whole-image labels have no geometry: QuPath's
//! files leave them out, the plain ones keep them with `"geometry": null` (valid GeoJSON).

use std::io::{self, Write};

use exact_domain::vector::VectorType;
use serde_json::{json, Value};

use super::{vector_of, Dataset, ImageRecord};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    QuPath,
    Plain,
}

/// Writes the live annotations of `image` as one FeatureCollection; the features written.
pub fn write_image(
    dataset: &Dataset,
    image: &ImageRecord,
    flavour: Flavour,
    out: &mut impl Write,
) -> io::Result<usize> {
    out.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
    let mut written = 0;
    for a in dataset.live().filter(|a| a.image == image.id) {
        let Some(kind) = dataset.types.get(&a.annotation_type) else {
            continue;
        };
        let geometry = vector_of(a).map(|v| {
            let points: Vec<[f64; 2]> = v.nodes.iter().map(|&(x, y)| [x, y]).collect();
            let b = v.bounds();
            match kind.vector_type {
                VectorType::BoundingBox | VectorType::FixedSizeBoundingBox => json!({
                    "type": "Polygon",
                    "coordinates": [[[b.min_x, b.min_y], [b.max_x, b.min_y], [b.max_x, b.max_y],
                                     [b.min_x, b.max_y], [b.min_x, b.min_y]]],
                }),
                VectorType::Point => json!({
                    "type": "Point",
                    "coordinates": [(b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0],
                }),
                VectorType::Polygon if kind.closed && points.len() >= 3 => {
                    let mut ring = points.clone();
                    ring.push(points[0]);
                    json!({"type": "Polygon", "coordinates": [ring]})
                }
                _ => json!({"type": "LineString", "coordinates": points}),
            }
        });
        let feature = match (flavour, geometry) {
            (Flavour::QuPath, None) => continue,
            (Flavour::QuPath, Some(geometry)) => json!({
                "type": "Feature",
                "id": a.unique_identifier,
                "geometry": geometry,
                "properties": {
                    "objectType": "annotation",
                    "classification": {"name": kind.name, "color": rgb(&kind.color_code)},
                    "isLocked": false,
                },
            }),
            (Flavour::Plain, geometry) => json!({
                "type": "Feature",
                "id": a.unique_identifier,
                "geometry": geometry,
                "properties": {
                    "id": a.id,
                    "unique_identifier": a.unique_identifier,
                    "image": image.name,
                    "annotation_type": kind.name,
                    "vector_type": kind.vector_type.code(),
                    "frame": vector_of(a).and_then(|v| v.frame),
                    "concealed": a.concealed,
                    "blurred": a.blurred,
                    "description": a.description,
                    "meta_data": a.meta_data.as_deref()
                        .and_then(|m| serde_json::from_str::<Value>(m).ok()),
                },
            }),
        };
        if written > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, &feature)?;
        written += 1;
    }
    out.write_all(b"]}")?;
    Ok(written)
}

/// `#RRGGBB` as QuPath's `[r, g, b]`; grey for anything else.
fn rgb(code: &str) -> [u8; 3] {
    let hex = code.trim_start_matches('#');
    let channel = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(128)
    };
    if hex.len() == 6 {
        [channel(0), channel(2), channel(4)]
    } else {
        [128, 128, 128]
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn colours_are_qupaths_rgb() {
        assert_eq!(super::rgb("#CC4444"), [204, 68, 68]);
        assert_eq!(super::rgb("red"), [128, 128, 128]);
    }
}
