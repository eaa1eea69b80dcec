//! Any text as a client's file name or a query value: a name always becomes a safe one inside
//! the data folder, ids and times parse or are refused without panicking, and a parsed time
//! survives its own formatting.
#![no_main]

use std::path::{Component, Path};

use exact_api::rest::params::{format_time, parse_ids, parse_time};
use exact_api::uploads::{inside, safe_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let root = Path::new("/data/exact");
    let name = safe_name(&text);
    assert!(!name.is_empty() && name.len() <= 120, "{name:?}");
    assert!(name.is_ascii(), "{name:?}");
    let path = inside(root, &[&text, &text]);
    assert!(path.starts_with(root), "{path:?} left the root");
    assert!(
        path.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_))),
        "{path:?}"
    );
    let _ = parse_ids(&text);
    if let Some(micros) = parse_time(&text) {
        assert_eq!(parse_time(&format_time(micros)), Some(micros), "{text:?}");
    }
});
