//! At-least-once delivery turned into exactly-once effects.

use std::sync::Arc;
use std::time::Duration;

use contracts::Envelope;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use crate::harness::{recording, Harness, Recorder, CONSUMER, TOPIC};

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_message_delivered_twice_is_applied_once() {
    let harness = Harness::new().await;
    let envelope = Envelope::new(recording("k", 1), Uuid::now_v7());
    let payload = serde_json::to_vec(&envelope.to_json().unwrap()).unwrap();
    harness.publish_raw([payload.clone(), payload]).await;

    let consumer = harness.spawn_consumer(Arc::new(Recorder::default()));
    let stats = consumer.stats.clone().unwrap();
    harness
        .eventually(PATIENCE, "both deliveries are consumed", || async {
            stats.applied() + stats.duplicates() == 2
        })
        .await;
    consumer.stop().await;

    assert_eq!(stats.applied(), 1);
    assert_eq!(stats.duplicates(), 1);
    assert_eq!(harness.effect_count().await, 1);
}

#[tokio::test]
async fn a_message_past_its_expiry_is_dropped_unapplied_and_the_others_apply() {
    let harness = Harness::new().await;
    let now = chrono::Utc::now();
    let envelopes = [
        (1, Some(now - chrono::TimeDelta::seconds(1))),
        (2, Some(now + chrono::TimeDelta::hours(1))),
        (3, None),
    ]
    .map(|(seq, expires_at)| {
        Envelope::new(recording("k", seq), Uuid::now_v7()).expiring_at(expires_at)
    });
    harness
        .publish_raw(
            envelopes
                .iter()
                .map(|envelope| serde_json::to_vec(&envelope.to_json().unwrap()).unwrap()),
        )
        .await;

    let consumer = harness.spawn_consumer(Arc::new(Recorder::default()));
    let stats = consumer.stats.clone().unwrap();
    harness
        .eventually(PATIENCE, "all three are consumed", || async {
            stats.applied() + stats.expired() == 3
        })
        .await;
    consumer.stop().await;

    assert_eq!(stats.expired(), 1);
    assert_eq!(stats.applied(), 2);
    assert_eq!(harness.effect_count().await, 2);
}

#[tokio::test]
async fn a_relay_that_crashes_after_publishing_publishes_again_and_the_effect_happens_once() {
    let harness = Harness::new().await;
    harness
        .enqueue((1..=5).map(|seq| recording("k", seq)))
        .await;

    // The crash: published, acknowledged, never marked.
    let relay = harness.relay();
    assert_eq!(relay.publish_without_marking().await.unwrap(), 5);
    assert_eq!(harness.unpublished().await, 5);
    // The restarted relay finds the rows unpublished and sends them again.
    assert_eq!(relay.relay_batch().await.unwrap(), 5);
    assert_eq!(harness.unpublished().await, 0);

    let consumer = harness.spawn_consumer(Arc::new(Recorder::default()));
    let stats = consumer.stats.clone().unwrap();
    harness
        .eventually(PATIENCE, "all ten deliveries are consumed", || async {
            stats.applied() + stats.duplicates() == 10
        })
        .await;
    consumer.stop().await;

    assert_eq!(stats.applied(), 5);
    assert_eq!(stats.duplicates(), 5);
    assert_eq!(harness.effect_count().await, 5);
    assert!(harness.applied_twice().await.is_empty());
}

#[tokio::test]
async fn a_consumer_that_crashes_before_committing_offsets_sees_the_messages_again_and_applies_none_twice(
) {
    let harness = Harness::new().await;
    harness
        .enqueue((1..=20).map(|seq| recording(&format!("k{}", seq % 4), seq)))
        .await;
    harness.relay().relay_batch().await.unwrap();

    let first = harness.spawn_consumer(Arc::new(Recorder::default()));
    harness
        .eventually(
            PATIENCE,
            "the first consumer applies everything",
            || async { harness.effect_count().await == 20 },
        )
        .await;
    first.stop().await;

    // The crash leaves the database ahead of the broker: effects committed,
    // offsets not. Recreate exactly that state by rewinding the group.
    rewind_group(&harness);

    let second = harness.spawn_consumer(Arc::new(Recorder::default()));
    let stats = second.stats.clone().unwrap();
    harness
        .eventually(PATIENCE, "the redeliveries are consumed", || async {
            stats.duplicates() == 20
        })
        .await;
    second.stop().await;

    assert_eq!(stats.applied(), 0);
    assert_eq!(harness.effect_count().await, 20);
    assert!(harness.applied_twice().await.is_empty());
}

fn rewind_group(harness: &Harness) {
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &harness.kafka.brokers)
        .set("group.id", harness.kafka.name(CONSUMER))
        .create()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    for partition in 0..harness.kafka.partitions {
        offsets
            .add_partition_offset(&harness.kafka.name(TOPIC), partition, Offset::Offset(0))
            .unwrap();
    }
    group.commit(&offsets, CommitMode::Sync).unwrap();
}
