//! EXACT's export language: a team's templates (name, base, image, annotation, vector and
//! not-in-image) with `%%` placeholders and `%%if...%%endif` conditionals, rendered over a
//! dataset. Output matches EXACT's for its templates, with these deliberate differences:
//!
//! - placeholders are substituted in one pass, so a value that happens to contain `%%type`
//!   stays as written (EXACT's chained `str.replace` substituted inside values);
//! - `min_verifications` is applied: an annotation is exported when its accepts minus rejects
//!   reach it (EXACT stored the field and ignored it);
//! - a format without annotation types exports every type (EXACT's exported nothing);
//! - deleted annotations are exported when the annotation template uses `%%deleted` (EXACT
//!   looked for the word "deleted" anywhere in it);
//! - `%%meta_data` is JSON (EXACT wrote Python's `repr` of a dict), `%%view` lists the image
//!   log as it stood at the export's position (read only when the base template uses it:
//!   [`uses_views`]), and the centre of a point stored as its box is the box's centre (EXACT
//!   took the first corner).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use exact_domain::export_format::FormatSettings;
use exact_domain::vector::VectorType;

use super::numbers::{json_number, py_float};
use super::{vector_of, Dataset, ImageRecord, TypeRecord};
use crate::annotations::AnnotationRow;

/// One export in EXACT's language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// From `name_format`.
    pub file_name: String,
    pub text: String,
    /// Annotations written.
    pub annotations: usize,
}

const NAME_PLACEHOLDERS: &[&str] = &["imageset", "team", "setlocation", "exportid"];
const BASE_PLACEHOLDERS: &[&str] = &[
    "content",
    "imageset",
    "setdescription",
    "team",
    "setlocation",
    "view",
];
const IMAGE_PLACEHOLDERS: &[&str] = &[
    "imagename",
    "imagewidth",
    "imageheight",
    "imageset",
    "annotations",
    "annoamount",
    "frame",
];
const NOT_IN_IMAGE_PLACEHOLDERS: &[&str] =
    &["imageset", "imagewidth", "imageheight", "imagename", "type"];
const ANNOTATION_PLACEHOLDERS: &[&str] = &[
    "imageset",
    "imagewidth",
    "imageheight",
    "imagename",
    "type",
    "vector",
    "frame",
    "first_editor",
    "first_timepoint",
    "last_editor",
    "last_timepoint",
    "UUID",
    "meta_data",
    "deleted",
    "rad",
    "dia",
    "cx",
    "cy",
    "minx",
    "miny",
    "maxx",
    "maxy",
    "width",
    "height",
    "relrad",
    "reldia",
    "relcx",
    "relcy",
    "relminx",
    "relminy",
    "relmaxx",
    "relmaxy",
    "relwidth",
    "relheight",
];
const VECTOR_PLACEHOLDERS: &[&str] = &["count0", "count1", "x", "y", "relx", "rely", "br"];

/// The conditionals of the annotation template; not nestable, as EXACT's.
const CONDITIONALS: [&str; 4] = [
    "%%ifblurred",
    "%%ifnotblurred",
    "%%ifconcealed",
    "%%ifnotconcealed",
];

/// `format` over `dataset`; `export_id` is what `%%exportid` names.
pub fn render(dataset: &Dataset, format: &FormatSettings, export_id: i64) -> Rendered {
    let set = &dataset.set;
    let images = dataset.image_map();
    let with_deleted = format.annotation_format.contains("%%deleted");
    let chosen = |a: &&AnnotationRow| {
        let Some(kind) = dataset.types.get(&a.annotation_type) else {
            return false;
        };
        (with_deleted || !a.deleted)
            && (format.annotations_types.is_empty()
                || format.annotations_types.contains(&a.annotation_type))
            && (format.include_blurred || !blurred(a, kind))
            && (format.include_concealed || !concealed(a, kind))
            && dataset
                .verdicts
                .get(&a.id)
                .copied()
                .unwrap_or_default()
                .balance()
                >= format.min_verifications
    };
    let mut count = 0;
    let mut content = String::from("\n");
    if format.image_aggregation {
        let mut by_image: HashMap<i64, Vec<&AnnotationRow>> = HashMap::new();
        for a in dataset.annotations.iter().filter(chosen) {
            by_image.entry(a.image).or_default().push(a);
        }
        for image in &dataset.images {
            let Some(annotations) = by_image.get(&image.id) else {
                continue;
            };
            let mut lines = String::new();
            for a in annotations {
                lines.push_str(&annotation_line(dataset, format, image, a));
                lines.push('\n');
            }
            count += annotations.len();
            // EXACT's `%%frame` of an image is that of its last annotation.
            let frame = annotations.last().map_or(1, |a| frame_of(a));
            content.push_str(&substitute(
                &format.image_format,
                IMAGE_PLACEHOLDERS,
                |name| match name {
                    "imagename" => image.name.clone(),
                    "imagewidth" => image.width.to_string(),
                    "imageheight" => image.height.to_string(),
                    "imageset" => set.name.clone(),
                    "annotations" => lines.clone(),
                    "annoamount" => annotations.len().to_string(),
                    _ => frame.to_string(),
                },
            ));
            content.push('\n');
        }
    } else {
        for a in dataset.annotations.iter().filter(chosen) {
            let Some(image) = images.get(&a.image) else {
                continue;
            };
            content.push_str(&annotation_line(dataset, format, image, a));
            content.push('\n');
            count += 1;
        }
    }
    let text = substitute(&format.base_format, BASE_PLACEHOLDERS, |name| match name {
        "content" => content.clone(),
        "view" => views(dataset, &images),
        "imageset" => set.name.clone(),
        "setdescription" => set.description.clone(),
        "team" => set.team.clone(),
        "setlocation" => set.location.clone(),
        _ => String::new(),
    });
    let file_name = substitute(&format.name_format, NAME_PLACEHOLDERS, |name| match name {
        "imageset" => set.name.clone(),
        "team" => set.team.clone(),
        "setlocation" => set.location.clone(),
        _ => export_id.to_string(),
    });
    Rendered {
        file_name,
        text,
        annotations: count,
    }
}

/// One annotation in the annotation (or not-in-image) template, EXACT's trailing-comma fix
/// applied.
fn annotation_line(
    dataset: &Dataset,
    format: &FormatSettings,
    image: &ImageRecord,
    a: &AnnotationRow,
) -> String {
    let kind = &dataset.types[&a.annotation_type];
    let Some(vector) = vector_of(a) else {
        let line = substitute(
            &format.not_in_image_format,
            NOT_IN_IMAGE_PLACEHOLDERS,
            |name| match name {
                "imageset" => dataset.set.name.clone(),
                "imagewidth" => image.width.to_string(),
                "imageheight" => image.height.to_string(),
                "imagename" => image.name.clone(),
                _ => kind.name.clone(),
            },
        );
        return line.replace(",}", "}");
    };
    let (w, h) = (image.width as f64, image.height as f64);
    let mut points = String::new();
    for (i, &(x, y)) in vector.nodes.iter().enumerate() {
        points.push_str(&substitute(
            &format.vector_format,
            VECTOR_PLACEHOLDERS,
            |name| match name {
                "count0" => i.to_string(),
                "count1" => (i + 1).to_string(),
                "x" => json_number(x),
                "y" => json_number(y),
                "relx" => py_float(x / w),
                "rely" => py_float(y / h),
                _ => "\n".into(),
            },
        ));
    }
    let g = Geometry::of(&vector.nodes, kind);
    let mut template = format.annotation_format.clone();
    for conditional in CONDITIONALS {
        let keep = match conditional {
            "%%ifblurred" => blurred(a, kind),
            "%%ifnotblurred" => !blurred(a, kind),
            "%%ifconcealed" => concealed(a, kind),
            _ => !concealed(a, kind),
        };
        template = apply_conditional(&template, conditional, keep);
    }
    let whole = |x: f64| {
        if g.whole {
            json_number(x)
        } else {
            py_float(x)
        }
    };
    let relative_radius = (g.radius() / w + g.radius() / h) / 2.0;
    let line = substitute(&template, ANNOTATION_PLACEHOLDERS, |name| match name {
        "imageset" => dataset.set.name.clone(),
        "imagewidth" => image.width.to_string(),
        "imageheight" => image.height.to_string(),
        "imagename" => image.name.clone(),
        "type" => kind.name.clone(),
        "vector" => points.clone(),
        "frame" => vector.frame.unwrap_or(1).to_string(),
        "first_editor" => dataset.username(a.user_id).to_owned(),
        "first_timepoint" => python_time(a.time),
        "last_editor" => a
            .last_editor
            .map_or_else(|| "-1".into(), |u| dataset.username(u).to_owned()),
        "last_timepoint" => python_time(a.last_edit_time),
        "UUID" => a.unique_identifier.clone(),
        "meta_data" => a.meta_data.clone().unwrap_or_else(|| "null".into()),
        "deleted" => if a.deleted { "True" } else { "False" }.into(),
        "rad" => py_float(g.radius()),
        "dia" => py_float(g.diameter()),
        "cx" => py_float(g.cx()),
        "cy" => py_float(g.cy()),
        "minx" => whole(g.min_x),
        "miny" => whole(g.min_y),
        "maxx" => whole(g.max_x),
        "maxy" => whole(g.max_y),
        "width" => whole(g.width()),
        "height" => whole(g.height()),
        "relrad" => py_float(relative_radius),
        "reldia" => py_float(relative_radius * 2.0),
        "relcx" => py_float(g.cx() / w),
        "relcy" => py_float(g.cy() / h),
        "relminx" => py_float(g.min_x / w),
        "relminy" => py_float(g.min_y / h),
        "relmaxx" => py_float(g.max_x / w),
        "relmaxy" => py_float(g.max_y / h),
        "relwidth" => py_float(g.width() / w),
        _ => py_float(g.height() / h),
    });
    line.replace(",}", "}")
}

/// The box around a shape and what EXACT derives from it.
struct Geometry {
    min_x: f64,
    min_y: f64,
    max_x: f64,
    max_y: f64,
    /// Every coordinate is a whole number (then so are the box and its size, as in EXACT).
    whole: bool,
    /// Whether the type has a diameter (EXACT: boxes and polygons; here points' circles too).
    round: bool,
    /// A line: its centre is its midpoint, as a box's.
    centred: bool,
}

impl Geometry {
    fn of(nodes: &[(f64, f64)], kind: &TypeRecord) -> Self {
        let mut g = Geometry {
            min_x: f64::INFINITY,
            min_y: f64::INFINITY,
            max_x: f64::NEG_INFINITY,
            max_y: f64::NEG_INFINITY,
            whole: true,
            round: matches!(
                kind.vector_type,
                VectorType::BoundingBox
                    | VectorType::Polygon
                    | VectorType::Point
                    | VectorType::FixedSizeBoundingBox
            ),
            centred: !matches!(kind.vector_type, VectorType::MultiLine),
        };
        for &(x, y) in nodes {
            g.min_x = g.min_x.min(x);
            g.min_y = g.min_y.min(y);
            g.max_x = g.max_x.max(x);
            g.max_y = g.max_y.max(y);
            g.whole &= x.fract() == 0.0 && y.fract() == 0.0;
        }
        g
    }

    fn width(&self) -> f64 {
        self.max_x - self.min_x
    }

    fn height(&self) -> f64 {
        self.max_y - self.min_y
    }

    fn diameter(&self) -> f64 {
        if self.round {
            (self.width() + self.height()) / 2.0
        } else {
            0.0
        }
    }

    fn radius(&self) -> f64 {
        self.diameter() / 2.0
    }

    fn cx(&self) -> f64 {
        if self.centred {
            self.min_x + self.width() / 2.0
        } else {
            0.0
        }
    }

    fn cy(&self) -> f64 {
        if self.centred {
            self.min_y + self.height() / 2.0
        } else {
            0.0
        }
    }
}

/// EXACT's effective flags: the type must allow them and the annotation have a shape.
fn blurred(a: &AnnotationRow, kind: &TypeRecord) -> bool {
    a.blurred && kind.enable_blurred && a.vector.is_some()
}

fn concealed(a: &AnnotationRow, kind: &TypeRecord) -> bool {
    a.concealed && kind.enable_concealed && a.vector.is_some()
}

fn frame_of(a: &AnnotationRow) -> u32 {
    vector_of(a).and_then(|v| v.frame).unwrap_or(1)
}

/// Whether `format` lists the image log (`%%view`), which the dataset then needs
/// ([`super::add_views`]).
pub fn uses_views(format: &FormatSettings) -> bool {
    format.base_format.contains("%%view")
}

/// EXACT's `%%view`: `[image|user|time|action]` a line, for each entry of the images' log.
fn views(dataset: &Dataset, images: &HashMap<i64, &ImageRecord>) -> String {
    let mut text = String::new();
    for view in &dataset.views {
        let image = images.get(&view.image).map_or("", |i| i.name.as_str());
        text.push_str(&format!(
            "[{image}|{}|{}|{}]\n",
            dataset.username(view.user),
            python_time(view.at),
            view.action
        ));
    }
    text
}

/// Python's `str(datetime)` of an aware UTC time, as EXACT's `%%first_timepoint`.
fn python_time(micros: i64) -> String {
    let Some(at) = DateTime::<Utc>::from_timestamp_micros(micros) else {
        return String::new();
    };
    if micros % 1_000_000 == 0 {
        at.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
    } else {
        at.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
    }
}

/// EXACT's conditional: every `conditional ... %%endif` (the text up to the first `%%endif`
/// after the first one) kept without its markers, or dropped.
pub fn apply_conditional(text: &str, conditional: &str, keep: bool) -> String {
    let mut text = text.to_owned();
    while let Some(start) = text.find(conditional) {
        let inner_start = start + conditional.len();
        let Some(length) = text[inner_start..].find("%%endif") else {
            // Unclosed: EXACT looped forever; the text stays as written.
            break;
        };
        let inner = text[inner_start..inner_start + length].to_owned();
        let whole = format!("{conditional}{inner}%%endif");
        text = text.replace(&whole, if keep { &inner } else { "" });
    }
    text
}

/// `template` with each `%%name` of `names` replaced by `value(name)`, in one pass, longest
/// name first; anything else stays as written.
pub fn substitute(template: &str, names: &[&str], value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(at) = rest.find("%%") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let name = names
            .iter()
            .filter(|n| after.starts_with(**n))
            .max_by_key(|n| n.len());
        match name {
            Some(name) => {
                out.push_str(&value(name));
                rest = &after[name.len()..];
            }
            None => {
                out.push_str("%%");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_substituted_once_longest_first() {
        let names = &["x", "relx", "count1"];
        let text = substitute("%%relx|%%x|%%count1|%%unknown|%%", names, |n| {
            format!("<{n}%%x>")
        });
        assert_eq!(text, "<relx%%x>|<x%%x>|<count1%%x>|%%unknown|%%");
    }

    #[test]
    fn conditionals_keep_or_drop_their_text() {
        let t = "a%%ifblurredB%%endif c %%ifblurredB%%endif%%ifnotblurredN%%endif";
        assert_eq!(
            apply_conditional(t, "%%ifblurred", true),
            "aB c B%%ifnotblurredN%%endif"
        );
        assert_eq!(
            apply_conditional(t, "%%ifblurred", false),
            "a c %%ifnotblurredN%%endif"
        );
        assert_eq!(
            apply_conditional("x%%ifblurred y", "%%ifblurred", true),
            "x%%ifblurred y"
        );
    }

    #[test]
    fn times_are_pythons() {
        assert_eq!(
            python_time(1_600_000_000_000_000),
            "2020-09-13 12:26:40+00:00"
        );
        assert_eq!(
            python_time(1_600_000_000_000_123),
            "2020-09-13 12:26:40.000123+00:00"
        );
    }
}
