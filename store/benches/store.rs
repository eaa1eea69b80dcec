//! Event store throughput on SQLite and PostgreSQL, printed as a Markdown table.
//!
//! `make bench` runs it beside a throwaway PostgreSQL cluster (default settings, fsync on); on
//! its own (`cargo bench -p exact-store --bench store`) it needs `EXACT_TEST_DATABASE_URL` for
//! the PostgreSQL rows. `EXACT_BENCH_SCALE` multiplies the event counts (default 1).

use std::time::{Duration, Instant};

use exact_store::testing::TestDb;
use exact_store::{
    AppendContext, Backend, EventStore, Expected, NewEvent, Source, Store, StreamAppend,
};
use futures_util::StreamExt;
use serde_json::json;

/// A payload the size of a typical annotation event (~250 bytes).
fn annotation(n: usize) -> NewEvent {
    NewEvent::new(
        "AnnotationCreated",
        json!({
            "id": n, "image": 7, "annotation_type": 3, "user": 2,
            "unique_identifier": "0193c5a1-7c3e-7b4d-9a51-3f0e2b8c9d10",
            "vector": {"x1": 1020.5 + n as f64, "y1": 2045.25, "x2": 1080.0, "y2": 2101.75},
            "description": "", "meta_data": null,
        }),
    )
}

fn context() -> AppendContext {
    AppendContext::new(Source::Api, Some(2))
}

struct Row {
    what: String,
    events: usize,
    elapsed: Duration,
    latency: Option<(Duration, Duration)>,
}

impl Row {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn sequential_single(store: &Store, count: usize) -> Row {
    let mut latencies = Vec::with_capacity(count);
    let start = Instant::now();
    for n in 0..count {
        let t = Instant::now();
        store
            .append(
                &format!("single-{n}"),
                Expected::NoStream,
                vec![annotation(n)],
                context(),
            )
            .await
            .unwrap();
        latencies.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Row {
        what: "append 1 event, sequential".into(),
        events: count,
        elapsed,
        latency: Some((percentile(&latencies, 0.5), percentile(&latencies, 0.99))),
    }
}

async fn concurrent_single(store: &Store, writers: usize, each: usize) -> Row {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(each);
            for n in 0..each {
                let t = Instant::now();
                let stream = format!("writer-{w}-{n}");
                store
                    .append(&stream, Expected::NoStream, vec![annotation(n)], context())
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Row {
        what: format!("append 1 event, {writers} concurrent writers"),
        events: writers * each,
        elapsed,
        latency: Some((percentile(&latencies, 0.5), percentile(&latencies, 0.99))),
    }
}

async fn batches(store: &Store, batches: usize, size: usize) -> Row {
    let start = Instant::now();
    for b in 0..batches {
        // One stream per annotation, as a bulk import of annotations writes them.
        let appends = (0..size)
            .map(|n| {
                StreamAppend::new(
                    format!("bulk-{b}-{n}"),
                    Expected::NoStream,
                    vec![annotation(n)],
                )
            })
            .collect();
        store.append_many(appends, context()).await.unwrap();
    }
    Row {
        what: format!("append batches of {size} events"),
        events: batches * size,
        elapsed: start.elapsed(),
        latency: None,
    }
}

async fn read_everything(store: &dyn EventStore) -> Row {
    let start = Instant::now();
    let mut events = store.read_all(1);
    let mut count = 0;
    while let Some(e) = events.next().await {
        e.unwrap();
        count += 1;
    }
    Row {
        what: "read the whole log".into(),
        events: count,
        elapsed: start.elapsed(),
        latency: None,
    }
}

async fn verify_everything(store: &dyn EventStore) -> Row {
    let start = Instant::now();
    let report = store.verify(1, None).await.unwrap();
    assert!(report.is_intact());
    Row {
        what: "verify the chain".into(),
        events: report.checked as usize,
        elapsed: start.elapsed(),
        latency: None,
    }
}

async fn bench(backend: Backend, scale: usize) -> Vec<Row> {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    vec![
        sequential_single(&store, 500 * scale).await,
        concurrent_single(&store, 16, 100 * scale).await,
        batches(&store, 200 * scale, 1_000).await,
        read_everything(store.as_ref()).await,
        verify_everything(store.as_ref()).await,
    ]
}

fn millis(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let scale: usize = std::env::var("EXACT_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut backends = vec![Backend::Sqlite];
    if std::env::var("EXACT_TEST_DATABASE_URL").is_ok() {
        backends.push(Backend::Postgres);
    } else {
        eprintln!("EXACT_TEST_DATABASE_URL is not set: PostgreSQL rows skipped (run `make bench`)");
    }
    println!("| backend | operation | events | seconds | events/s | p50 ms | p99 ms |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for backend in backends {
        for row in bench(backend, scale).await {
            let (p50, p99) = row
                .latency
                .map_or((String::new(), String::new()), |(a, b)| {
                    (millis(a), millis(b))
                });
            println!(
                "| {} | {} | {} | {:.2} | {:.0} | {p50} | {p99} |",
                backend.name(),
                row.what,
                row.events,
                row.elapsed.as_secs_f64(),
                row.rate()
            );
        }
    }
}
