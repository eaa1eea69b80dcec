//! Writes a test slide: `exact-slide-fixture aperio|generic WIDTH HEIGHT OUT`.
//!
//! The same generator the tests use, for benchmarks and for trying the viewer without a
//! scanner. Broken variants: `truncated`, `garbage` or `empty` as a fifth argument.

use std::path::PathBuf;
use std::process::ExitCode;

use exact_tiles::fixture::{self, Breakage, SlideSpec};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: exact-slide-fixture aperio|generic WIDTH HEIGHT OUT [truncated|garbage|empty]";
    let (Some(flavor), Some(width), Some(height), Some(out)) = (
        args.first(),
        args.get(1).and_then(|w| w.parse().ok()),
        args.get(2).and_then(|h| h.parse().ok()),
        args.get(3),
    ) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let spec = match flavor.as_str() {
        "aperio" => SlideSpec::aperio(width, height),
        "generic" => SlideSpec::generic(width, height),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let out = PathBuf::from(out);
    let result = match args.get(4).map(String::as_str) {
        None => fixture::write_slide(&out, &spec),
        Some("truncated") => fixture::write_broken(&out, &spec, Breakage::Truncated),
        Some("garbage") => fixture::write_broken(&out, &spec, Breakage::Garbage),
        Some("empty") => fixture::write_broken(&out, &spec, Breakage::Empty),
        Some(other) => {
            eprintln!("unknown breakage {other:?}; {usage}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => {
            println!(
                "wrote {} ({} x {} px, {flavor})",
                out.display(),
                width,
                height
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}
