//! Hostile input, generated (proptest, a bounded number of cases each so that `make test` stays
//! quick; `PROPTEST_CASES=N` runs more): query strings on every list, JSON and other bodies on
//! the annotation writes, paths on the pixel routes, multipart and zip bytes on the upload, files
//! of labels (and zips of them) on every import format, templates on the export preview. What
//! must hold for every input: an answer below 500, a refusal as JSON naming its code, and a
//! refusal changes nothing. A failure prints the input, shrunk.

mod support;

use axum::http::{Method, StatusCode};
use exact_store::testing::TestDb;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use support::{box_annotation, image, project, Answer, TestApp, ADMIN};

/// One store for all the cases of a test: a set with an image, a type and an annotation, so
/// that valid ids are there to be mixed with wrong ones.
struct World {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    image: i64,
    annotation_type: i64,
    annotation: i64,
    set: i64,
}

fn world() -> World {
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (app, image, annotation_type, annotation, set) = runtime.block_on(async {
            let app = TestApp::new(TestDb::sqlite()).await;
            let p = project(&app, ADMIN, "hostile", 1).await;
            let image = image(&app, ADMIN, p.set, "cells.png", 300, 200).await;
            let annotation = box_annotation(&app, ADMIN, image, p.annotation_type).await;
            (app, image, p.annotation_type, annotation, p.set)
        });
        World {
            runtime,
            app,
            image,
            annotation_type,
            annotation,
            set,
        }
    }
}

fn cases(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// What every answer to hostile input must be: not a server error, and a refusal that says
/// what is wrong in JSON.
fn holds(what: &str, answer: &Answer) -> Result<(), TestCaseError> {
    prop_assert!(
        !answer.status.is_server_error(),
        "{what}: answered {answer:?}"
    );
    if answer.status.is_client_error() {
        let code = answer.json.get("code").and_then(Value::as_str);
        prop_assert!(
            code.is_some(),
            "{what}: a refusal without a code: {answer:?}"
        );
    }
    Ok(())
}

/// Names a list filter may have, and anything else.
fn parameter_name() -> impl Strategy<Value = String> {
    let known = [
        "id",
        "id__in",
        "image",
        "image_set",
        "annotation_type",
        "annotation",
        "user",
        "team",
        "product",
        "name",
        "name__contains",
        "name__in",
        "filename",
        "deleted",
        "in_bbox",
        "time__range",
        "time__lte",
        "time__gte",
        "limit",
        "offset",
        "fields",
        "omit",
        "expand",
        "ordering",
        "vector_type",
        "verified",
        "search",
        "after",
        "image__in",
        "is_active",
    ];
    prop_oneof![
        3 => prop::sample::select(known.to_vec()).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
    ]
}

/// Values a filter may be given: numbers of every size, lists, ranges, text, injections.
fn parameter_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,25}",
        "[0-9,]{0,20}",
        "-?[0-9]{1,6}(,-?[0-9]{1,6}){0,5}",
        "\\PC{0,30}",
        Just("' OR '1'='1".to_owned()),
        Just("1; DROP TABLE events; --".to_owned()),
        Just("1) UNION SELECT password_hash FROM users --".to_owned()),
        Just("%".to_owned()),
        Just("_".to_owned()),
        Just("NaN".to_owned()),
        Just("1e999".to_owned()),
        Just("true".to_owned()),
        Just("2026-13-45T99:99:99Z,".to_owned()),
    ]
}

/// The lists of the API document (GET operations without a path parameter).
fn lists() -> Vec<String> {
    let document = exact_api::rest::openapi::document();
    let mut lists: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, item)| !path.contains('{') && item.get("get").is_some())
        .map(|(path, _)| path.clone())
        .filter(|path| path != "/api/v1/events/") // a stream: rest.rs reads it
        .collect();
    lists.sort();
    lists
}

#[test]
fn every_list_answers_any_query_string_without_failing() {
    let world = world();
    let before = world.runtime.block_on(world.app.position());
    let lists = lists();
    assert!(lists.len() >= 15, "{lists:?}");
    let query = (
        prop::sample::select(lists),
        prop::collection::vec((parameter_name(), parameter_value()), 0..5),
    );
    let mut runner = TestRunner::new(cases(400));
    runner
        .run(&query, |(list, pairs)| {
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            let path = format!("{list}?{encoded}");
            let answer = world.runtime.block_on(world.app.get(&path, ADMIN));
            holds(&path, &answer)
        })
        .unwrap();
    // Raw query strings: broken escapes, empty names, repeated separators.
    let raw = (
        prop::sample::select(self::lists()),
        "[%&=a-z0-9_+;.\\-]{0,40}",
    );
    runner
        .run(&raw, |(list, query)| {
            let path = format!("{list}?{query}");
            let answer = world.runtime.block_on(world.app.get(&path, ADMIN));
            holds(&path, &answer)
        })
        .unwrap();
    assert_eq!(world.runtime.block_on(world.app.position()), before);
}

/// Any JSON value, with the keys of an annotation more likely than others.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e12..1e12_f64).prop_map(Value::from),
        prop_oneof![Just(1e308), Just(-1e308), Just(5e-324)].prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
    ];
    let key = prop_oneof![
        prop::sample::select(vec![
            "image",
            "annotation_type",
            "vector",
            "x1",
            "y1",
            "x2",
            "y2",
            "x3",
            "y3",
            "frame",
            "description",
            "unique_identifier",
            "meta_data",
            "concealed",
            "blurred",
            "deleted",
            "verified",
            "last_editor",
            "id",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,8}",
    ];
    leaf.prop_recursive(3, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A nearly valid annotation: the world's ids or wrong ones, a vector of wild numbers.
fn nearly_valid_annotation(image: i64, annotation_type: i64) -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        (-10_000..10_000_i64).prop_map(Value::from),
        (-1e6..1e6_f64).prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!("12")),
        Just(json!(null)),
    ];
    let id = |valid: i64| {
        prop_oneof![
            4 => Just(json!(valid)),
            1 => any::<i64>().prop_map(Value::from),
            1 => Just(json!(valid.to_string())),
            1 => Just(json!(null)),
        ]
    };
    let some_keys = prop::collection::btree_map(
        prop::sample::select(vec!["x1", "y1", "x2", "y2", "x3", "y3", "frame", "x", "y"]),
        number.clone(),
        0..7,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    let a_box = (number.clone(), number.clone(), number.clone(), number)
        .prop_map(|(x1, y1, x2, y2)| json!({"x1": x1, "y1": y1, "x2": x2, "y2": y2}));
    let vector = prop_oneof![some_keys, a_box];
    (id(image), id(annotation_type), vector, any_json()).prop_map(
        |(image, annotation_type, vector, extra)| {
            json!({"image": image, "annotation_type": annotation_type, "vector": vector,
                   "meta_data": extra})
        },
    )
}

#[test]
fn annotation_writes_take_any_body_without_failing() {
    let world = world();
    let app = &world.app;
    let runtime = &world.runtime;
    let one = format!("/api/v1/annotations/annotations/{}/", world.annotation);
    let mut runner = TestRunner::new(cases(300));
    let written = std::cell::Cell::new(0);
    let body = prop_oneof![
        any_json(),
        nearly_valid_annotation(world.image, world.annotation_type)
    ];
    let target = prop::sample::select(vec![Method::POST, Method::PATCH]);
    runner
        .run(&(target, body), |(method, body)| {
            let path = if method == Method::POST {
                "/api/v1/annotations/annotations/"
            } else {
                one.as_str()
            };
            let before = runtime.block_on(app.position());
            let answer = runtime.block_on(app.json(method.clone(), path, ADMIN, body.clone()));
            let what = format!("{method} {path} {body}");
            holds(&what, &answer)?;
            let after = runtime.block_on(app.position());
            if answer.status.is_client_error() {
                prop_assert_eq!(after, before, "{} was refused but wrote", what);
            } else if after > before {
                written.set(written.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    // Bytes that are not what they claim to be.
    let bytes = (
        prop::sample::select(vec![
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "multipart/form-data",
            "text/plain",
        ]),
        prop::collection::vec(any::<u8>(), 0..300),
    );
    runner
        .run(&bytes, |(content_type, bytes)| {
            let before = runtime.block_on(app.position());
            let answer = runtime.block_on(app.send(
                Method::POST,
                "/api/v1/annotations/annotations/",
                Some(ADMIN),
                Some(content_type),
                bytes.clone(),
                &[],
            ));
            holds(&format!("{content_type} {bytes:?}"), &answer)?;
            if answer.status.is_client_error() {
                prop_assert_eq!(runtime.block_on(app.position()), before);
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "annotation writes: {} of the generated bodies were taken",
        written.get()
    );
}

/// A path segment: numbers, traversal in every spelling, escapes, text.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,22}",
        Just("..".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("..%2f..%2fetc%2fpasswd".to_owned()),
        Just("%00".to_owned()),
        Just("0_0.jpeg".to_owned()),
        Just("99999_99999.jpeg".to_owned()),
        Just("1_1.png".to_owned()),
        "[a-zA-Z0-9_.%-]{0,24}",
    ]
}

#[test]
fn pixel_routes_take_any_path_without_failing() {
    let world = world();
    let image = world.image.to_string();
    let shapes = vec![
        "/api/v1/images/images/{image}/{a}/{b}/tile/",
        "/api/v1/images/images/{image}/{a}/{b}/tile_files/{c}/{d}",
        "/api/v1/images/image/{a}/{b}/{c}/tile/",
        "/api/v1/images/images/{a}/thumbnail/",
        "/api/v1/images/images/{image}/get_patch/?x={a}&y={b}&w={c}&h={d}",
        "/api/v1/images/api/image/download/{a}/",
        "/api/v1/{a}/{b}/{c}/",
    ];
    let mut runner = TestRunner::new(cases(300));
    let paths = (
        prop::sample::select(shapes),
        segment(),
        segment(),
        segment(),
        segment(),
    );
    runner
        .run(&paths, |(shape, a, b, c, d)| {
            let path = shape
                .replace("{image}", &image)
                .replace("{a}", &a)
                .replace("{b}", &b)
                .replace("{c}", &c)
                .replace("{d}", &d);
            let Ok(uri) = path.parse::<axum::http::Uri>() else {
                return Ok(()); // not a request a client can send
            };
            let answer = world
                .runtime
                .block_on(world.app.get(&uri.to_string(), ADMIN));
            holds(&path, &answer)?;
            // Nothing but the image's own pixels or descriptor ever comes back.
            if answer.status == StatusCode::OK {
                let body = String::from_utf8_lossy(&answer.bytes);
                prop_assert!(!body.contains("root:"), "{}: {}", path, body);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn uploads_take_any_bytes_without_failing() {
    let world = world();
    let app = &world.app;
    let runtime = &world.runtime;
    let set = world.set.to_string();
    let mut runner = TestRunner::new(cases(100));
    let name = prop::sample::select(vec![
        "a.png",
        "b.zip",
        "c.svs",
        "d.tif",
        "e.ndpi",
        "f.mrxs",
        "g.jpg",
        "../../h.png",
        "i",
    ]);
    // Some bytes start as a zip or a PNG does, to get past the first look.
    let start = prop::sample::select(vec![
        b"".to_vec(),
        b"PK\x03\x04".to_vec(),
        b"\x89PNG\r\n\x1a\n".to_vec(),
        b"II*\x00".to_vec(),
    ]);
    let upload = (name, start, prop::collection::vec(any::<u8>(), 0..2_000));
    runner
        .run(&upload, |(name, start, rest)| {
            let mut bytes = start;
            bytes.extend(rest);
            let before = runtime.block_on(app.position());
            let answer = runtime.block_on(app.upload(
                ADMIN,
                &[("image_set", &set)],
                &[("file_path", name, &bytes)],
            ));
            holds(&format!("{name}: {} bytes", bytes.len()), &answer)?;
            prop_assert!(answer.status.is_client_error(), "{name}: {answer:?}");
            prop_assert_eq!(runtime.block_on(app.position()), before);
            Ok(())
        })
        .unwrap();
    // No file of a refused upload stays, anywhere in the data folder.
    let staging = app.data.path().join("uploads");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// Text made of the pieces a file of labels or a template is made of, in any order: close
/// enough to valid to get past the first look, wrong in every other way.
fn pieces(of: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(of).prop_map(str::to_owned),
            1 => "[ -~]{0,12}",
            1 => any::<char>().prop_map(String::from),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

#[test]
fn imports_take_any_file_without_failing() {
    let world = world();
    let app = &world.app;
    let runtime = &world.runtime;
    let path = format!("/api/v1/images/image_sets/{}/import/", world.set);
    const PIECES: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\n",
        "|",
        "<",
        ">",
        "/>",
        "</",
        "=",
        " ",
        "\"images\"",
        "\"annotations\"",
        "\"categories\"",
        "\"bbox\"",
        "\"segmentation\"",
        "\"id\"",
        "\"image_id\"",
        "\"category_id\"",
        "\"file_name\": \"cells.png\"",
        "\"name\": \"cell\"",
        "\"type\": \"Feature\"",
        "\"geometry\"",
        "\"coordinates\"",
        "\"Polygon\"",
        "\"FeatureCollection\"",
        "\"features\"",
        "\"classification\"",
        "cells.png|cell|",
        "{\"x1\": 1, \"y1\": 2, \"x2\": 9, \"y2\": 9}",
        "not in image",
        "1e400",
        "-1",
        "NaN",
        "null",
        "0.5",
        "12",
        "<?xml version=\"1.0\"?>",
        "<Annotations>",
        "<Annotation Name=\"a\" Type=\"Rectangle\" PartOfGroup=\"cell\">",
        "<Coordinates>",
        "<Coordinate Order=\"0\" X=\"1\" Y=\"2\"/>",
        "<Region Id=\"1\" Type=\"1\" Text=\"cell\">",
        "<Vertex X=\"3\" Y=\"4\"/>",
        "<object>",
        "<bndbox>",
        "<xmin>1</xmin>",
        "<name>cell</name>",
        "<filename>cells.png</filename>",
        "&amp;",
        "&bogus;",
        "image_name,annotation_type_name,vector,flags,unique_identifier",
        "0 0.5 0.5 0.1 0.1",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    ];
    let format = prop::sample::select(vec![
        "exact",
        "coco",
        "csv",
        "geojson",
        "asap",
        "imagescope",
        "voc",
        "yolo",
    ]);
    let name = prop::sample::select(vec![
        "labels.txt",
        "cells.png.geojson",
        "cells.xml",
        "cells.png.xml",
        "annotations.csv",
        "annotations.coco.json",
        "labels/cells.txt",
    ]);
    let file = (format, name, pieces(PIECES), any::<bool>());
    let mut runner = TestRunner::new(cases(150));
    runner
        .run(&file, |(format, name, text, zipped)| {
            // Half of them in a zip, beside a classes.txt (YOLO's) and the file itself.
            let bytes = if zipped {
                let mut out = std::io::Cursor::new(Vec::new());
                {
                    let mut zip = zip::ZipWriter::new(&mut out);
                    let options = zip::write::SimpleFileOptions::default();
                    for (entry, content) in [("classes.txt", "cell\n"), (name, text.as_str())] {
                        zip.start_file(entry, options).unwrap();
                        std::io::Write::write_all(&mut zip, content.as_bytes()).unwrap();
                    }
                    zip.finish().unwrap();
                }
                out.into_inner()
            } else {
                text.clone().into_bytes()
            };
            let before = runtime.block_on(app.position());
            let answer = runtime.block_on(app.multipart(
                &format!("{path}?format={format}&create_types=true"),
                ADMIN,
                &[],
                &[("file", name, &bytes)],
            ));
            holds(
                &format!("{format} {name} (zipped: {zipped}): {text:?}"),
                &answer,
            )?;
            if !answer.status.is_success() {
                prop_assert_eq!(runtime.block_on(app.position()), before, "a refusal wrote");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn export_templates_take_any_text_without_failing() {
    let world = world();
    let app = &world.app;
    let runtime = &world.runtime;
    const PIECES: &[&str] = &[
        "%%content",
        "%%imageset",
        "%%setdescription",
        "%%team",
        "%%setlocation",
        "%%view",
        "%%imagename",
        "%%imagewidth",
        "%%annotations",
        "%%annoamount",
        "%%frame",
        "%%type",
        "%%vector",
        "%%UUID",
        "%%meta_data",
        "%%deleted",
        "%%rad",
        "%%relcx",
        "%%first_editor",
        "%%last_timepoint",
        "%%count0",
        "%%count1",
        "%%x",
        "%%y",
        "%%relx",
        "%%br",
        "%%exportid",
        "%%ifblurred",
        "%%ifnotblurred",
        "%%ifconcealed",
        "%%ifnotconcealed",
        "%%endif",
        "%%",
        "%",
        "{",
        "}",
        ",}",
        "|",
        "\n",
        "\"",
    ];
    let templates = (
        pieces(PIECES),
        pieces(PIECES),
        pieces(PIECES),
        pieces(PIECES),
        any::<bool>(),
        0i64..3,
    );
    let mut runner = TestRunner::new(cases(150));
    runner
        .run(
            &templates,
            |(base, image, annotation, vector, aggregate, min)| {
                let body = json!({
                    "image_set": world.set,
                    "base_format": base,
                    "image_format": image,
                    "annotation_format": annotation,
                    "vector_format": vector,
                    "name_format": "%%imageset-%%exportid.txt",
                    "image_aggregation": aggregate,
                    "min_verifications": min,
                });
                let answer = runtime.block_on(app.post(
                    "/api/v1/administration/export_formats/preview/",
                    ADMIN,
                    body.clone(),
                ));
                holds(&format!("{body}"), &answer)?;
                prop_assert_eq!(answer.status, StatusCode::OK, "{}", body);
                Ok(())
            },
        )
        .unwrap();
}
