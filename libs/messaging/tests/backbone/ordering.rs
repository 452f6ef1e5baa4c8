//! Per-key order from the outbox to the handler.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::harness::{recording, Harness, Recorder};

const MESSAGES: i64 = 10_000;
const KEYS: i64 = 50;

#[tokio::test]
async fn ten_thousand_messages_over_three_partitions_arrive_in_order_per_key() {
    let harness = Harness::new().await;
    // Ten transactions of a thousand, interleaving the keys.
    for batch in 0..10 {
        let recordings = (batch * 1000..(batch + 1) * 1000)
            .map(|n| recording(&format!("key-{}", n % KEYS), n / KEYS));
        harness.enqueue(recordings).await;
    }
    let relay = harness.spawn_relay();
    let consumer = harness.spawn_consumer(Arc::new(Recorder::default()));
    harness
        .eventually(
            Duration::from_secs(240),
            "all messages are applied",
            || async { harness.effect_count().await == MESSAGES },
        )
        .await;
    consumer.stop().await;
    relay.stop().await;

    let applied: Vec<(String, i64)> =
        sqlx::query_as("SELECT key, seq FROM effects ORDER BY received")
            .fetch_all(&harness.pool)
            .await
            .unwrap();
    let mut last_seen: HashMap<String, i64> = HashMap::new();
    for (key, seq) in applied {
        if let Some(previous) = last_seen.insert(key.clone(), seq) {
            assert_eq!(seq, previous + 1, "{key}: {seq} arrived after {previous}");
        } else {
            assert_eq!(seq, 0, "{key} started at {seq}");
        }
    }
    assert_eq!(last_seen.len(), KEYS as usize);
    assert!(harness.applied_twice().await.is_empty());
    assert_eq!(harness.unpublished().await, 0);
}
