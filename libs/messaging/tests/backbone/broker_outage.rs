//! The broker goes away while the service keeps committing: the outbox grows,
//! then drains once the broker is back. Nothing lost, nothing applied twice.

use std::sync::Arc;
use std::time::Duration;

use test_support::broker::PrivateBroker;

use crate::harness::{recording, Harness, Recorder};

const PATIENCE: Duration = Duration::from_secs(120);

#[tokio::test]
async fn messages_committed_while_the_broker_is_down_are_delivered_once_after_it_returns() {
    let mut broker = PrivateBroker::start().await.unwrap();
    let harness = Harness::with_brokers(&broker.address()).await;
    let relay = harness.spawn_relay();
    let consumer = harness.spawn_consumer(Arc::new(Recorder::default()));

    for batch in 0..5 {
        harness
            .enqueue((0..10).map(|n| recording("before", batch * 10 + n)))
            .await;
    }
    harness
        .eventually(PATIENCE, "the first 50 messages are applied", || async {
            harness.effect_count().await == 50
        })
        .await;

    broker.stop().await.unwrap();
    // Ten seconds of business as usual: a transaction a second, each with ten messages.
    for batch in 0..10 {
        harness
            .enqueue((0..10).map(|n| recording("during", batch * 10 + n)))
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        harness.unpublished().await,
        100,
        "the outbox holds everything committed during the outage"
    );
    assert_eq!(harness.effect_count().await, 50);

    broker.restart().await.unwrap();
    harness
        .eventually(
            PATIENCE,
            "the outbox drains and every message is applied",
            || async { harness.unpublished().await == 0 && harness.effect_count().await == 150 },
        )
        .await;
    consumer.stop().await;
    relay.stop().await;
    assert!(harness.applied_twice().await.is_empty());
}
