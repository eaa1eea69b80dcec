//! Annotation geometry: EXACT's vector types and the JSON vectors they carry, validated before
//! they become events.
//!
//! A vector is EXACT's JSON object `{"x1": .., "y1": .., "x2": .., "y2": .., ..}` in level-0
//! pixels from the image's top-left corner, with an optional `"frame"` (1-based) on multi-frame
//! images; `null` means "not in image" and is the only vector a GLOBAL type takes. EXACT casts
//! every value to an integer and validates GLOBAL vectors as boxes; here coordinates stay
//! floating point (sub-pixel cell outlines survive) and each type has its own rules.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// EXACT's `VECTOR_TYPE`, with its integer codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum VectorType {
    BoundingBox = 1,
    /// Drawn as a circle; stored as the box around it, or as its centre alone.
    Point = 2,
    Line = 3,
    MultiLine = 4,
    Polygon = 5,
    FixedSizeBoundingBox = 6,
    /// A label for the whole image: no shape at all.
    Global = 7,
}

impl VectorType {
    pub const ALL: [VectorType; 7] = [
        VectorType::BoundingBox,
        VectorType::Point,
        VectorType::Line,
        VectorType::MultiLine,
        VectorType::Polygon,
        VectorType::FixedSizeBoundingBox,
        VectorType::Global,
    ];

    pub fn code(self) -> i64 {
        self as i64
    }
}

impl TryFrom<i64> for VectorType {
    type Error = String;

    fn try_from(code: i64) -> Result<Self, String> {
        VectorType::ALL
            .into_iter()
            .find(|t| t.code() == code)
            .ok_or_else(|| format!("vector_type must be 1 to 7, not {code}"))
    }
}

impl From<VectorType> for i64 {
    fn from(t: VectorType) -> i64 {
        t.code()
    }
}

/// Most nodes one vector may have: far beyond any hand-drawn or segmented outline, well short
/// of a payload that would hurt.
pub const MAX_NODES: usize = 100_000;

/// How far outside the image a node may lie, as a share of the image's width or height: drawing
/// tools overshoot the edge a little, and a box around a cell at the border is still right.
pub const OUTSIDE_TOLERANCE: f64 = 0.05;

/// A parsed vector: its nodes in order, and its frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Vector {
    pub nodes: Vec<(f64, f64)>,
    pub frame: Option<u32>,
}

/// The smallest axis-aligned box around a vector, for the spatial index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    pub min_x: f64,
    pub min_y: f64,
    pub max_x: f64,
    pub max_y: f64,
}

/// What the vector must fit: the annotation type's rules and the image's extent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    pub vector_type: VectorType,
    /// Required nodes for polygons and multi-lines; 0 accepts any number.
    pub node_count: u32,
    pub image_width: f64,
    pub image_height: f64,
    pub image_frames: u32,
}

/// Why a vector was refused; each names what to fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum VectorError {
    #[error("a vector is a JSON object like {{\"x1\": 10, \"y1\": 20, ..}} or null")]
    NotAnObject,
    #[error("unknown key {0:?}: a vector has x1, y1, x2, y2, .. and an optional frame")]
    UnknownKey(String),
    #[error("{0} must be a number")]
    NotANumber(String),
    #[error("{0} is missing: nodes are numbered from 1 without gaps, each with x and y")]
    MissingCoordinate(String),
    #[error("a vector has at most {MAX_NODES} nodes")]
    TooManyNodes,
    #[error(
        "frame must be a whole number from 1 to the image's frame count ({frames}), not {value}"
    )]
    BadFrame { value: String, frames: u32 },
    #[error("a {vector_type:?} has {expected} nodes, this vector has {found}")]
    WrongNodeCount {
        vector_type: VectorType,
        expected: String,
        found: usize,
    },
    #[error("the annotation type requires {expected} nodes, this vector has {found}")]
    TypeNodeCount { expected: u32, found: usize },
    #[error("a box needs x1 < x2 and y1 < y2")]
    CornersNotOrdered,
    #[error("a line needs two different end points")]
    DegenerateLine,
    #[error("node {node} ({x}, {y}) lies outside the image ({width} x {height})")]
    OutsideImage {
        node: usize,
        x: f64,
        y: f64,
        width: f64,
        height: f64,
    },
    #[error("a global annotation has no vector: send null")]
    GlobalWithShape,
}

impl Vector {
    /// Parses EXACT's JSON form; `null` is `Ok(None)`, "not in image".
    pub fn from_json(value: &Value) -> Result<Option<Vector>, VectorError> {
        let map = match value {
            Value::Null => return Ok(None),
            Value::Object(map) => map,
            _ => return Err(VectorError::NotAnObject),
        };
        let mut frame = None;
        let mut xs: Vec<Option<f64>> = Vec::new();
        let mut ys: Vec<Option<f64>> = Vec::new();
        for (key, value) in map {
            if key == "frame" {
                frame = Some(parse_frame(value)?);
                continue;
            }
            let (axis, index) =
                split_key(key).ok_or_else(|| VectorError::UnknownKey(key.clone()))?;
            if index > MAX_NODES {
                return Err(VectorError::TooManyNodes);
            }
            let number = value
                .as_f64()
                .ok_or_else(|| VectorError::NotANumber(key.clone()))?;
            let column = if axis == 'x' { &mut xs } else { &mut ys };
            if column.len() < index {
                column.resize(index, None);
            }
            column[index - 1] = Some(number);
        }
        let count = xs.len().max(ys.len());
        let mut nodes = Vec::with_capacity(count);
        for i in 0..count {
            let x = xs
                .get(i)
                .copied()
                .flatten()
                .ok_or_else(|| VectorError::MissingCoordinate(format!("x{}", i + 1)))?;
            let y = ys
                .get(i)
                .copied()
                .flatten()
                .ok_or_else(|| VectorError::MissingCoordinate(format!("y{}", i + 1)))?;
            nodes.push((x, y));
        }
        if nodes.is_empty() {
            return Err(VectorError::MissingCoordinate("x1".into()));
        }
        Ok(Some(Vector { nodes, frame }))
    }

    /// EXACT's JSON form.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        for (i, (x, y)) in self.nodes.iter().enumerate() {
            map.insert(format!("x{}", i + 1), number(*x));
            map.insert(format!("y{}", i + 1), number(*y));
        }
        if let Some(frame) = self.frame {
            map.insert("frame".into(), Value::from(frame));
        }
        Value::Object(map)
    }

    pub fn bounds(&self) -> Bounds {
        let mut b = Bounds {
            min_x: f64::INFINITY,
            min_y: f64::INFINITY,
            max_x: f64::NEG_INFINITY,
            max_y: f64::NEG_INFINITY,
        };
        for &(x, y) in &self.nodes {
            b.min_x = b.min_x.min(x);
            b.min_y = b.min_y.min(y);
            b.max_x = b.max_x.max(x);
            b.max_y = b.max_y.max(y);
        }
        b
    }
}

/// Whole numbers stay integers in the JSON, as EXACT's clients send and expect them.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

fn split_key(key: &str) -> Option<(char, usize)> {
    let mut chars = key.chars();
    let axis = chars.next().filter(|c| *c == 'x' || *c == 'y')?;
    let digits = chars.as_str();
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(|index| (axis, index))
}

fn parse_frame(value: &Value) -> Result<u32, VectorError> {
    value
        .as_u64()
        .and_then(|f| u32::try_from(f).ok())
        .filter(|f| *f >= 1)
        .ok_or_else(|| VectorError::BadFrame {
            value: value.to_string(),
            frames: 0,
        })
}

/// Checks a parsed vector (or "not in image") against its type and image.
pub fn validate(vector: Option<&Vector>, fit: &Fit) -> Result<(), VectorError> {
    let Some(vector) = vector else {
        // "Not in image" is a valid answer for every type; for GLOBAL it is the only one.
        return Ok(());
    };
    let found = vector.nodes.len();
    let wrong = |expected: &str| VectorError::WrongNodeCount {
        vector_type: fit.vector_type,
        expected: expected.to_owned(),
        found,
    };
    match fit.vector_type {
        VectorType::Global => return Err(VectorError::GlobalWithShape),
        VectorType::BoundingBox | VectorType::FixedSizeBoundingBox => {
            if found != 2 {
                return Err(wrong("2 (x1, y1, x2, y2)"));
            }
            let [(x1, y1), (x2, y2)] = [vector.nodes[0], vector.nodes[1]];
            if !(x1 < x2 && y1 < y2) {
                return Err(VectorError::CornersNotOrdered);
            }
        }
        VectorType::Point => {
            if !(1..=2).contains(&found) {
                return Err(wrong("1 or 2 (the centre, or the box around it)"));
            }
        }
        VectorType::Line => {
            if found != 2 {
                return Err(wrong("2"));
            }
            if vector.nodes[0] == vector.nodes[1] {
                return Err(VectorError::DegenerateLine);
            }
        }
        VectorType::MultiLine | VectorType::Polygon => {
            let least = if fit.vector_type == VectorType::Polygon {
                3
            } else {
                2
            };
            if found < least {
                return Err(wrong(&format!("at least {least}")));
            }
            if fit.node_count != 0 && fit.node_count as usize != found {
                return Err(VectorError::TypeNodeCount {
                    expected: fit.node_count,
                    found,
                });
            }
        }
    }
    if let Some(frame) = vector.frame {
        if frame == 0 || frame > fit.image_frames.max(1) {
            return Err(VectorError::BadFrame {
                value: frame.to_string(),
                frames: fit.image_frames.max(1),
            });
        }
    }
    let (slack_x, slack_y) = (
        fit.image_width * OUTSIDE_TOLERANCE,
        fit.image_height * OUTSIDE_TOLERANCE,
    );
    for (i, &(x, y)) in vector.nodes.iter().enumerate() {
        let inside = (-slack_x..=fit.image_width + slack_x).contains(&x)
            && (-slack_y..=fit.image_height + slack_y).contains(&y);
        if !inside {
            return Err(VectorError::OutsideImage {
                node: i + 1,
                x,
                y,
                width: fit.image_width,
                height: fit.image_height,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn fit(vector_type: VectorType) -> Fit {
        Fit {
            vector_type,
            node_count: 0,
            image_width: 1000.0,
            image_height: 800.0,
            image_frames: 3,
        }
    }

    fn check(t: VectorType, v: &Value) -> Result<(), VectorError> {
        let parsed = Vector::from_json(v)?;
        validate(parsed.as_ref(), &fit(t))
    }

    #[test]
    fn accepts_each_type_in_exact_form() {
        let good = [
            (
                VectorType::BoundingBox,
                json!({"x1": 10, "y1": 20, "x2": 110.5, "y2": 220}),
            ),
            (
                VectorType::FixedSizeBoundingBox,
                json!({"x1": 0, "y1": 0, "x2": 50, "y2": 50}),
            ),
            (
                VectorType::Point,
                json!({"x1": 500, "y1": 400, "x2": 525, "y2": 425}),
            ),
            (VectorType::Point, json!({"x1": 500.25, "y1": 400.75})),
            (
                VectorType::Line,
                json!({"x1": 1, "y1": 1, "x2": 1, "y2": 9}),
            ),
            (
                VectorType::MultiLine,
                json!({"x1": 1, "y1": 1, "x2": 5, "y2": 9}),
            ),
            (
                VectorType::Polygon,
                json!({"x1": 1, "y1": 1, "x2": 9, "y2": 1, "x3": 5, "y3": 7, "frame": 3}),
            ),
            (VectorType::Global, Value::Null),
            (VectorType::BoundingBox, Value::Null),
        ];
        for (t, v) in good {
            assert_eq!(check(t, &v), Ok(()), "{t:?} {v}");
        }
    }

    #[test]
    fn refuses_what_does_not_fit_with_a_reason() {
        use VectorError as E;
        type Expectation = fn(&VectorError) -> bool;
        let bad: Vec<(VectorType, Value, Expectation)> = vec![
            (VectorType::BoundingBox, json!([1, 2]), |e| {
                matches!(e, E::NotAnObject)
            }),
            (
                VectorType::BoundingBox,
                json!({"x1": 1, "y1": 1, "x2": 5, "y2": 5, "z1": 0}),
                |e| matches!(e, E::UnknownKey(k) if k == "z1"),
            ),
            (
                VectorType::BoundingBox,
                json!({"x1": "1", "y1": 1, "x2": 5, "y2": 5}),
                |e| matches!(e, E::NotANumber(k) if k == "x1"),
            ),
            (
                VectorType::BoundingBox,
                json!({"x1": 1, "y1": 1, "x2": 5}),
                |e| matches!(e, E::MissingCoordinate(k) if k == "y2"),
            ),
            (
                VectorType::Polygon,
                json!({"x1": 1, "y1": 1, "x3": 5, "y3": 5}),
                |e| matches!(e, E::MissingCoordinate(k) if k == "x2"),
            ),
            (VectorType::BoundingBox, json!({"x01": 1, "y1": 1}), |e| {
                matches!(e, E::UnknownKey(_))
            }),
            (VectorType::BoundingBox, json!({}), |e| {
                matches!(e, E::MissingCoordinate(_))
            }),
            (
                VectorType::BoundingBox,
                json!({"x1": 50, "y1": 1, "x2": 5, "y2": 9}),
                |e| matches!(e, E::CornersNotOrdered),
            ),
            (
                VectorType::BoundingBox,
                json!({"x1": 5, "y1": 1, "x2": 5, "y2": 9}),
                |e| matches!(e, E::CornersNotOrdered),
            ),
            (VectorType::BoundingBox, json!({"x1": 1, "y1": 1}), |e| {
                matches!(e, E::WrongNodeCount { found: 1, .. })
            }),
            (
                VectorType::Line,
                json!({"x1": 3, "y1": 3, "x2": 3, "y2": 3}),
                |e| matches!(e, E::DegenerateLine),
            ),
            (
                VectorType::Polygon,
                json!({"x1": 1, "y1": 1, "x2": 5, "y2": 5}),
                |e| matches!(e, E::WrongNodeCount { found: 2, .. }),
            ),
            (VectorType::MultiLine, json!({"x1": 1, "y1": 1}), |e| {
                matches!(e, E::WrongNodeCount { found: 1, .. })
            }),
            (
                VectorType::Global,
                json!({"x1": 1, "y1": 1, "x2": 5, "y2": 5}),
                |e| matches!(e, E::GlobalWithShape),
            ),
            (
                VectorType::BoundingBox,
                json!({"x1": 1, "y1": 1, "x2": 5, "y2": 5, "frame": 4}),
                |e| matches!(e, E::BadFrame { frames: 3, .. }),
            ),
            (
                VectorType::BoundingBox,
                json!({"x1": 1, "y1": 1, "x2": 5, "y2": 5, "frame": 0}),
                |e| matches!(e, E::BadFrame { .. }),
            ),
            (
                VectorType::BoundingBox,
                json!({"x1": 1, "y1": 1, "x2": 5, "y2": 5, "frame": 1.5}),
                |e| matches!(e, E::BadFrame { .. }),
            ),
            (
                VectorType::BoundingBox,
                json!({"x1": 1, "y1": 1, "x2": 1200, "y2": 5}),
                |e| matches!(e, E::OutsideImage { node: 2, .. }),
            ),
            (VectorType::Point, json!({"x1": -60, "y1": 1}), |e| {
                matches!(e, E::OutsideImage { node: 1, .. })
            }),
        ];
        for (t, v, expected) in bad {
            let err = check(t, &v).expect_err(&format!("{t:?} {v} must be refused"));
            assert!(expected(&err), "{t:?} {v}: got {err:?}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn the_types_node_count_is_enforced_only_when_set() {
        let square =
            json!({"x1": 0, "y1": 0, "x2": 9, "y2": 0, "x3": 9, "y3": 9, "x4": 0, "y4": 9});
        let parsed = Vector::from_json(&square).unwrap();
        let mut rules = fit(VectorType::Polygon);
        assert_eq!(validate(parsed.as_ref(), &rules), Ok(()));
        rules.node_count = 4;
        assert_eq!(validate(parsed.as_ref(), &rules), Ok(()));
        rules.node_count = 5;
        assert_eq!(
            validate(parsed.as_ref(), &rules),
            Err(VectorError::TypeNodeCount {
                expected: 5,
                found: 4
            })
        );
    }

    #[test]
    fn nodes_slightly_outside_the_edge_are_tolerated() {
        assert_eq!(
            check(
                VectorType::BoundingBox,
                &json!({"x1": -20, "y1": 0, "x2": 1040, "y2": 830})
            ),
            Ok(())
        );
    }

    #[test]
    fn vector_types_use_exacts_codes() {
        assert_eq!(serde_json::to_value(VectorType::Polygon).unwrap(), json!(5));
        assert_eq!(
            serde_json::from_value::<VectorType>(json!(7)).unwrap(),
            VectorType::Global
        );
        assert!(serde_json::from_value::<VectorType>(json!(8)).is_err());
    }

    fn nodes(min: usize) -> impl Strategy<Value = Vec<(f64, f64)>> {
        prop::collection::vec((-100.0..1100.0f64, -100.0..900.0f64), min..40)
    }

    proptest! {
        /// Whatever comes in, parsing then writing gives a vector that parses to the same nodes,
        /// and its bounds contain every node.
        #[test]
        fn json_round_trips_and_bounds_contain_every_node(points in nodes(1), frame in prop::option::of(1u32..5)) {
            let vector = Vector { nodes: points, frame };
            let back = Vector::from_json(&vector.to_json()).unwrap().unwrap();
            prop_assert_eq!(&back, &vector);
            let b = vector.bounds();
            for &(x, y) in &vector.nodes {
                prop_assert!(b.min_x <= x && x <= b.max_x && b.min_y <= y && y <= b.max_y);
            }
        }

        /// Validation never panics, and what it accepts is finite, in the image's frames and
        /// within the tolerance around it.
        #[test]
        fn accepted_vectors_are_inside_the_image(
            points in nodes(1),
            frame in prop::option::of(0u32..6),
            t in prop::sample::select(VectorType::ALL.to_vec()),
        ) {
            let vector = Vector { nodes: points, frame };
            let rules = fit(t);
            if validate(Some(&vector), &rules).is_ok() {
                prop_assert!(t != VectorType::Global);
                prop_assert!(frame.is_none_or(|f| (1..=3).contains(&f)));
                for &(x, y) in &vector.nodes {
                    prop_assert!(x.is_finite() && y.is_finite());
                    prop_assert!((-50.0..=1050.0).contains(&x) && (-40.0..=840.0).contains(&y));
                }
            }
        }

        /// Arbitrary JSON never panics the parser.
        #[test]
        fn arbitrary_objects_parse_or_fail_cleanly(keys in prop::collection::vec("[a-z]{1,2}[0-9]{0,3}", 0..8), values in prop::collection::vec(-1e6..1e6f64, 0..8)) {
            let map: Map<String, Value> = keys.into_iter().zip(values.into_iter().map(Value::from)).collect();
            let _ = Vector::from_json(&Value::Object(map));
        }
    }
}
