//! Any bytes uploaded as a zip archive: extraction never panics, and whatever it accepts lands
//! inside the folder it was given (no traversal, no links), within the size limits.
#![no_main]

use std::path::Path;

use exact_api::uploads::{extract_zip, ZipLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("upload.zip");
    std::fs::write(&archive, data).unwrap();
    let into = work.path().join("extracted");
    std::fs::create_dir(&into).unwrap();
    let limits = ZipLimits {
        max_entries: 100,
        max_total_bytes: 1 << 20,
        max_ratio: 100,
    };
    let result = extract_zip(&archive, &into, limits);
    // Nothing outside the folder, whatever the answer.
    for entry in std::fs::read_dir(work.path()).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            name == "upload.zip" || name == "extracted",
            "extraction wrote {name:?} beside its folder"
        );
    }
    let written = walk(&into);
    assert!(
        written <= limits.max_total_bytes,
        "{written} bytes extracted"
    );
    if let Ok(received) = result {
        for file in received {
            let path = into.join(&file.path);
            assert!(path.starts_with(&into), "{path:?} is outside");
            let meta = std::fs::symlink_metadata(&path).unwrap();
            assert!(meta.is_file(), "{path:?} is not a plain file");
        }
    }
});

/// The bytes of every file under `folder`; fails on a link.
fn walk(folder: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(folder).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        assert!(
            !kind.is_symlink(),
            "a link was extracted: {:?}",
            entry.path()
        );
        if kind.is_dir() {
            total += walk(&entry.path());
        } else {
            total += entry.metadata().unwrap().len();
        }
    }
    total
}
