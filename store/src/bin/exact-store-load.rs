//! Appends events to a store from several tasks at once: the second process of the
//! multi-process tests, and a load generator for trying a store by hand.
//!
//! `exact-store-load URL TASKS APPENDS PREFIX` appends APPENDS single-event batches from each of
//! TASKS tasks, task `t` to stream `PREFIX-t`, each with the expected version it last saw.

use exact_store::{open, AppendContext, Expected, NewEvent, OpenOptions, Source, StoreUrl};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, tasks, appends, prefix] = args.as_slice() else {
        return Err("usage: exact-store-load URL TASKS APPENDS PREFIX".into());
    };
    let store = open(&StoreUrl::parse(url)?, OpenOptions::default()).await?;
    let appends: i64 = appends.parse()?;
    let mut handles = Vec::new();
    for task in 0..tasks.parse::<usize>()? {
        let store = store.clone();
        let stream = format!("{prefix}-{task}");
        handles.push(tokio::spawn(async move {
            for version in 0..appends {
                let expected = if version == 0 {
                    Expected::NoStream
                } else {
                    Expected::Exact(version)
                };
                let event = NewEvent::new(
                    "LoadAppended",
                    serde_json::json!({ "task": task, "n": version }),
                );
                store
                    .append(
                        &stream,
                        expected,
                        vec![event],
                        AppendContext::new(Source::Cli, None),
                    )
                    .await?;
            }
            Ok::<_, exact_store::StoreError>(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    Ok(())
}
