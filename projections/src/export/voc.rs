//! Pascal VOC XML: one file per image (`Annotations/<image>.xml`), an object per annotation
//! with its box; shapes other than boxes are written as the box around them (VOC has only
//! boxes). Whole-image labels and deleted annotations are not written.

use std::io::{self, Write};

use super::{vector_of, Dataset, ImageRecord};

/// Writes the objects of `image`; the objects written.
pub fn write_image(
    dataset: &Dataset,
    image: &ImageRecord,
    out: &mut impl Write,
) -> io::Result<usize> {
    writeln!(out, "<annotation>")?;
    writeln!(out, "  <folder>{}</folder>", escape(&dataset.set.name))?;
    writeln!(out, "  <filename>{}</filename>", escape(&image.name))?;
    writeln!(out, "  <source><database>Exact</database></source>")?;
    writeln!(
        out,
        "  <size><width>{}</width><height>{}</height><depth>3</depth></size>",
        image.width, image.height
    )?;
    writeln!(out, "  <segmented>0</segmented>")?;
    let mut written = 0;
    for a in dataset.live().filter(|a| a.image == image.id) {
        let (Some(kind), Some(vector)) = (dataset.types.get(&a.annotation_type), vector_of(a))
        else {
            continue;
        };
        let b = vector.bounds();
        writeln!(out, "  <object>")?;
        writeln!(out, "    <name>{}</name>", escape(&kind.name))?;
        writeln!(out, "    <pose>Unspecified</pose>")?;
        writeln!(out, "    <truncated>0</truncated>")?;
        writeln!(out, "    <difficult>0</difficult>")?;
        writeln!(
            out,
            "    <bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox>",
            super::json_number(b.min_x),
            super::json_number(b.min_y),
            super::json_number(b.max_x),
            super::json_number(b.max_y)
        )?;
        writeln!(out, "    <exact_uuid>{}</exact_uuid>", a.unique_identifier)?;
        writeln!(out, "  </object>")?;
        written += 1;
    }
    writeln!(out, "</annotation>")?;
    Ok(written)
}

/// Text as XML character data.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_is_escaped() {
        assert_eq!(
            super::escape("a<b & \"c\"'"),
            "a&lt;b &amp; &quot;c&quot;&apos;"
        );
    }
}
