//! Members join and leave a consumer group while messages flow: each
//! partition moves between members, and still every message is applied
//! exactly once and each key's messages in order.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::{recording, Harness, Recorder};

const PATIENCE: Duration = Duration::from_secs(120);
const KEYS: i64 = 24;
const ROUNDS: i64 = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_joining_and_leaving_under_load_apply_every_message_once_and_in_order_per_key() {
    let harness = Arc::new(Harness::new().await);
    let relay = harness.spawn_relay();
    let first = harness.spawn_consumer(Arc::new(Recorder::default()));

    // The producer writes a round (one message per key) every 20 ms, for
    // the whole time the group changes shape under it.
    let producer = {
        let harness = Arc::clone(&harness);
        tokio::spawn(async move {
            for seq in 0..ROUNDS {
                harness
                    .enqueue((0..KEYS).map(|key| recording(&format!("key-{key}"), seq)))
                    .await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let applied_at_least = |count: i64| {
        let harness = Arc::clone(&harness);
        move || {
            let harness = Arc::clone(&harness);
            async move { harness.effect_count().await >= count }
        }
    };
    let total = KEYS * ROUNDS;

    harness
        .eventually(
            PATIENCE,
            "the first member applies",
            applied_at_least(total / 8),
        )
        .await;
    let second = harness.spawn_consumer(Arc::new(Recorder::default()));
    let third = harness.spawn_consumer(Arc::new(Recorder::default()));
    harness
        .eventually(PATIENCE, "three members apply", applied_at_least(total / 3))
        .await;
    // The first member leaves while the others hold the rest of the group.
    let first_stats = first.stats.clone().unwrap();
    first.stop().await;
    harness
        .eventually(
            PATIENCE,
            "the group goes on without it",
            applied_at_least(total * 2 / 3),
        )
        .await;
    let second_stats = second.stats.clone().unwrap();
    second.stop().await;
    producer.await.unwrap();
    harness
        .eventually(
            PATIENCE,
            "every message is applied",
            applied_at_least(total),
        )
        .await;
    let third_stats = third.stats.clone().unwrap();
    third.stop().await;
    relay.stop().await;

    assert_eq!(harness.effect_count().await, total);
    assert!(
        harness.applied_twice().await.is_empty(),
        "a message was applied twice"
    );
    assert_eq!(
        harness.applied_out_of_order().await,
        0,
        "each key's messages apply in order"
    );
    let applied = [
        first_stats.applied(),
        second_stats.applied(),
        third_stats.applied(),
    ];
    assert_eq!(applied.iter().sum::<u64>(), total as u64, "{applied:?}");
    assert!(
        applied.iter().filter(|&&count| count > 0).count() >= 2,
        "partitions moved between members: {applied:?}"
    );
}
