//! `copy` moves a whole log between backends with its chain intact.

use exact_store::testing::TestDb;
use exact_store::{copy, AppendContext, Expected, NewEvent, Source, StoreError, StreamAppend};
use futures_util::TryStreamExt;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_back_preserves_positions_hashes_and_counters() {
    let sqlite = TestDb::sqlite();
    let source = sqlite.open().await;
    let batch = (0..12_000)
        .map(|n| NewEvent::new("Counted", json!({ "n": n, "f": n as f64 * 0.1 })))
        .collect();
    source
        .append(
            "big",
            Expected::NoStream,
            batch,
            AppendContext::new(Source::Import, Some(1)),
        )
        .await
        .unwrap();
    source
        .append_built(
            AppendContext::new(Source::Api, Some(2)).with_reason("moving house"),
            Box::new(|ids| {
                vec![StreamAppend::new(
                    format!("team-{}", ids.next("team")),
                    Expected::NoStream,
                    vec![NewEvent::new("TeamCreated", json!({"name": "Pathology"}))],
                )]
            }),
        )
        .await
        .unwrap();
    let original: Vec<_> = source.read_all(1).try_collect().await.unwrap();

    let postgres = TestDb::postgres().await;
    let middle = postgres.open_with(false).await;
    let report = copy(source.as_ref(), middle.as_ref()).await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.last, Some(12_002));
    let copied: Vec<_> = middle.read_all(1).try_collect().await.unwrap();
    assert_eq!(copied, original);
    assert_eq!(
        middle.counters().await.unwrap(),
        source.counters().await.unwrap()
    );

    let back = TestDb::sqlite();
    let target = back.open_with(false).await;
    copy(middle.as_ref(), target.as_ref()).await.unwrap();
    let returned: Vec<_> = target.read_all(1).try_collect().await.unwrap();
    assert_eq!(returned, original);
    // The copy goes on where the source stopped, ids included.
    let next = target
        .append_built(
            AppendContext::new(Source::Api, Some(2)),
            Box::new(|ids| {
                vec![StreamAppend::new(
                    format!("team-{}", ids.next("team")),
                    Expected::NoStream,
                    vec![NewEvent::new("TeamCreated", json!({}))],
                )]
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        (next[0].stream.as_str(), next[0].position),
        ("team-2", 12_003)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_refuses_a_target_that_holds_events() {
    let source = TestDb::sqlite();
    let target = TestDb::postgres().await;
    let from = source.open().await;
    let to = target.open().await;
    let err = copy(from.as_ref(), to.as_ref()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::TargetNotEmpty { events: 1 }),
        "{err:?}"
    );
    assert_eq!(to.last_position().await.unwrap(), 1);
}
