//! The annotations read model under load: bulk creation with the projection inline, viewport
//! queries now and as of a past position, and a rebuild. Printed as a Markdown table.
//!
//! `cargo bench -p exact-projections --bench annotations`; `EXACT_BENCH_ANNOTATIONS` sets the
//! count (default 200,000); `EXACT_TEST_DATABASE_URL` adds the PostgreSQL rows.
//! Annotations are clustered like cells on tissue: boxes, points and polygons around random
//! centres on a 100,000 x 80,000 px slide.

use exact_domain::DomainEvent;
use std::sync::Arc;
use std::time::{Duration, Instant};

use exact_domain::annotation::{AnnotationCreated, AnnotationEvent};
use exact_projections::{AnnotationsProjection, ReadDb, Rect};
use exact_store::testing::TestDb;
use exact_store::{AppendContext, Backend, Expected, NewEvent, Source, StreamAppend};
use serde_json::{json, Value};

const WIDTH: f64 = 100_000.0;
const HEIGHT: f64 = 80_000.0;
const BATCH: i64 = 1_000;

/// xorshift64: deterministic, and no dependency for a benchmark's dice.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, from the sum of four uniforms.
    fn spread(&mut self, sigma: f64) -> f64 {
        ((0..4).map(|_| self.unit()).sum::<f64>() - 2.0) * sigma
    }
}

fn vector(dice: &mut Dice, centres: &[(f64, f64)]) -> Value {
    let (cx, cy) = centres[(dice.next() % centres.len() as u64) as usize];
    let x = (cx + dice.spread(1_500.0)).clamp(0.0, WIDTH - 60.0);
    let y = (cy + dice.spread(1_500.0)).clamp(0.0, HEIGHT - 60.0);
    match dice.next() % 3 {
        0 => json!({"x1": x, "y1": y, "x2": x + 40.0, "y2": y + 36.0}),
        1 => json!({"x1": x, "y1": y, "x2": x + 25.0, "y2": y + 25.0}),
        _ => {
            json!({"x1": x, "y1": y, "x2": x + 30.0, "y2": y + 5.0, "x3": x + 22.0, "y3": y + 33.0, "x4": x + 3.0, "y4": y + 28.0})
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn bench(backend: Backend, count: i64) {
    let db = TestDb::new(backend).await;
    let store = db
        .open_with_projections(vec![Arc::new(AnnotationsProjection)])
        .await;
    let read = ReadDb::connect(&db.url).await.unwrap();
    let mut dice = Dice(0x2545_F491_4F6C_DD1D);
    let centres: Vec<(f64, f64)> = (0..400)
        .map(|_| (dice.unit() * WIDTH, dice.unit() * HEIGHT))
        .collect();

    let start = Instant::now();
    let mut middle = 0;
    for batch in 0..count / BATCH {
        let appends = (0..BATCH)
            .map(|i| {
                let id = batch * BATCH + i + 1;
                let event = AnnotationEvent::AnnotationCreated(AnnotationCreated {
                    id,
                    image: 1,
                    annotation_type: 1 + id % 3,
                    vector: vector(&mut dice, &centres),
                    description: String::new(),
                    meta_data: Value::Null,
                    concealed: false,
                    blurred: false,
                    unique_identifier: uuid::Uuid::from_u128(id as u128),
                    user: 2,
                });
                let (name, payload) = event.to_parts();
                StreamAppend::new(
                    format!("annotation-{id}"),
                    Expected::NoStream,
                    vec![NewEvent::new(name, payload)],
                )
            })
            .collect();
        let stored = store
            .append_many(appends, AppendContext::new(Source::Import, Some(2)))
            .await
            .unwrap();
        if batch == count / BATCH / 2 {
            middle = stored.last().unwrap().position;
        }
    }
    let created = start.elapsed();
    println!(
        "| {} | create {count} annotations in batches of {BATCH} | {:.2} s | {:.0} /s |",
        backend.name(),
        created.as_secs_f64(),
        count as f64 / created.as_secs_f64()
    );

    // Windows of 2,000 x 2,000 px at full resolution, centred on clusters (where the viewer is).
    let windows: Vec<Rect> = (0..200)
        .map(|i| {
            let (cx, cy) = centres[i % centres.len()];
            let (x, y) = (
                (cx - 1_000.0).clamp(0.0, WIDTH - 2_000.0),
                (cy - 1_000.0).clamp(0.0, HEIGHT - 2_000.0),
            );
            Rect {
                min_x: x,
                min_y: y,
                max_x: x + 2_000.0,
                max_y: y + 2_000.0,
            }
        })
        .collect();
    for (label, as_of) in [
        ("viewport 2000x2000, now", None),
        ("viewport 2000x2000, as of the middle", Some(middle)),
    ] {
        let mut times = Vec::new();
        let mut rows = 0;
        for window in &windows {
            let t = Instant::now();
            rows += match as_of {
                None => read.viewport(1, *window).await.unwrap().len(),
                Some(position) => read
                    .viewport_as_of(1, *window, position)
                    .await
                    .unwrap()
                    .len(),
            };
            times.push(t.elapsed());
        }
        times.sort_unstable();
        println!(
            "| {} | {label} ({} rows on average) | p50 {} ms | p95 {} ms |",
            backend.name(),
            rows / windows.len(),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95))
        );
    }

    for multiple in [1, 16] {
        let mut times = Vec::new();
        let mut cells = 0;
        for _ in 0..50 {
            let t = Instant::now();
            cells = read.overview(1, None, multiple).await.unwrap().len();
            times.push(t.elapsed());
        }
        times.sort_unstable();
        let edge = 1024 * multiple;
        println!(
            "| {} | whole-image overview, counts per {edge} px cell ({cells} cells) | p50 {} ms | p95 {} ms |",
            backend.name(),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95))
        );
    }

    let start = Instant::now();
    let applied = store
        .rebuild(exact_projections::annotations::NAME, Arc::new(|_, _| {}))
        .await
        .unwrap();
    let rebuilt = start.elapsed();
    println!(
        "| {} | rebuild the read model ({applied} events) | {:.2} s | {:.0} events/s |",
        backend.name(),
        rebuilt.as_secs_f64(),
        applied as f64 / rebuilt.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let count: i64 = std::env::var("EXACT_BENCH_ANNOTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    println!("| backend | operation | time | rate or latency |");
    println!("|---|---|---:|---:|");
    bench(Backend::Sqlite, count).await;
    if std::env::var("EXACT_TEST_DATABASE_URL").is_ok() {
        bench(Backend::Postgres, count).await;
    } else {
        eprintln!("EXACT_TEST_DATABASE_URL is not set: PostgreSQL rows skipped (run `make bench`)");
    }
}
