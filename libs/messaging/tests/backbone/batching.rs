//! What a fetch returns is applied in batches, one transaction each; a
//! message that breaks its contract is parked without undoing its neighbours.

use std::sync::Arc;
use std::time::Duration;

use contracts::{Envelope, Message};
use messaging::dead_letters::{self, DeadLetterStatus};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::harness::{recording, Harness, Recorder, Recording, TOPIC};

const PATIENCE: Duration = Duration::from_secs(60);
const MESSAGES: i64 = 300;

/// Claims to be a `Recording` but carries a sequence number as text.
#[derive(Debug, Serialize, Deserialize)]
struct BrokenRecording {
    key: String,
    seq: String,
}

impl Message for BrokenRecording {
    const MESSAGE_TYPE: &'static str = Recording::MESSAGE_TYPE;
}

#[tokio::test]
async fn a_backlog_is_applied_in_batches_and_a_broken_message_in_it_is_parked_alone() {
    let harness = Harness::new().await;
    // The whole backlog is on the broker before the consumer starts, so its
    // fetches return many messages at once.
    harness
        .enqueue((0..MESSAGES / 2).map(|seq| recording(&format!("k{}", seq % 7), seq)))
        .await;
    let broken_id = {
        let mut tx = harness.pool.begin().await.unwrap();
        let envelope = Envelope::new(
            BrokenRecording {
                key: "k0".to_owned(),
                seq: "one hundred and fifty".to_owned(),
            },
            Uuid::now_v7(),
        );
        messaging::enqueue(&mut tx, TOPIC, "k0", &envelope)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        envelope.message_id
    };
    harness
        .enqueue((MESSAGES / 2..MESSAGES).map(|seq| recording(&format!("k{}", seq % 7), seq)))
        .await;
    let relay = harness.spawn_relay();
    harness
        .eventually(PATIENCE, "the backlog is on the broker", || async {
            harness.unpublished().await == 0
        })
        .await;

    let consumer = harness.spawn_consumer(Arc::new(Recorder::default()));
    let stats = consumer.stats.clone().unwrap();
    harness
        .eventually(PATIENCE, "every good message is applied", || async {
            harness.effect_count().await == MESSAGES
        })
        .await;
    harness
        .eventually(PATIENCE, "the broken message is parked", || async {
            stats.dead_lettered() == 1
        })
        .await;

    let parked = dead_letters::list(&harness.pool, Some(DeadLetterStatus::Parked), 10)
        .await
        .unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].message_id, Some(broken_id));
    assert_eq!(parked[0].attempts, 1, "a contract violation is not retried");
    assert!(harness.applied_twice().await.is_empty());
    assert_eq!(stats.applied(), MESSAGES as u64);
    assert!(
        stats.batches() < MESSAGES as u64 / 2,
        "{} messages took {} transactions",
        MESSAGES + 1,
        stats.batches()
    );
    assert_eq!(
        harness.applied_out_of_order().await,
        0,
        "each key's messages apply in order"
    );

    // The offsets moved past every message, the parked one included: a new
    // member of the group is handed nothing again.
    consumer.stop().await;
    let successor = harness.spawn_consumer(Arc::new(Recorder::default()));
    let successor_stats = successor.stats.clone().unwrap();
    harness.enqueue([recording("after", 0)]).await;
    harness
        .eventually(
            PATIENCE,
            "the successor applies the new message",
            || async { harness.effect_count().await == MESSAGES + 1 },
        )
        .await;
    assert_eq!(successor_stats.applied(), 1);
    assert_eq!(successor_stats.duplicates(), 0, "nothing was redelivered");
    assert_eq!(successor_stats.dead_lettered(), 0);
    successor.stop().await;
    relay.stop().await;
}
