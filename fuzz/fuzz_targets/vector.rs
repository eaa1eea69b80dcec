//! Any bytes as an annotation's `vector`: parsing never panics, a parsed vector survives its
//! own JSON unchanged, and checking it against every vector type never panics.
#![no_main]

use exact_domain::vector::{validate, Fit, Vector, VectorType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(parsed) = Vector::from_json(&value) else {
        return;
    };
    if let Some(vector) = &parsed {
        let again = Vector::from_json(&vector.to_json()).expect("a vector's own JSON parses");
        assert_eq!(
            again.as_ref(),
            Some(vector),
            "a vector changed through its JSON"
        );
    }
    for vector_type in VectorType::ALL {
        for node_count in [0, 4] {
            let fit = Fit {
                vector_type,
                node_count,
                image_width: 1000.0,
                image_height: 800.0,
                image_frames: 3,
            };
            let _ = validate(parsed.as_ref(), &fit);
        }
    }
});
