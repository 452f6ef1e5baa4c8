//! A poison message is parked after its retry budget; the rest keep flowing;
//! a replay after the fix applies it once.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use messaging::dead_letters::{self, DeadLetterStatus, ReplayError};

use crate::harness::{recording, Harness, Recorder, Recording};

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_poison_message_is_parked_while_the_messages_behind_it_flow_and_replays_once_fixed() {
    let harness = Harness::new().await;
    let poison = Recording {
        key: "k".to_owned(),
        seq: 2,
        poison: true,
    };
    let ids = harness
        .enqueue([
            recording("k", 1),
            poison,
            recording("k", 3),
            recording("k", 4),
        ])
        .await;
    let relay = harness.spawn_relay();
    let recorder = Arc::new(Recorder::default());
    let consumer = harness.spawn_consumer(Arc::clone(&recorder));
    let stats = consumer.stats.clone().unwrap();

    harness
        .eventually(
            PATIENCE,
            "the messages behind the poison are applied",
            || async { harness.effect_count().await == 3 },
        )
        .await;
    let parked = dead_letters::list(&harness.pool, Some(DeadLetterStatus::Parked), 10)
        .await
        .unwrap();
    assert_eq!(parked.len(), 1);
    let dead_letter = &parked[0];
    assert_eq!(dead_letter.message_id, Some(ids[1]));
    assert_eq!(
        dead_letter.attempts, 3,
        "parked after the whole retry budget"
    );
    assert!(
        dead_letter.error.contains("poison"),
        "{}",
        dead_letter.error
    );
    assert_eq!(stats.dead_lettered(), 1);
    // The dead letter also went to the dead-letter topic, through the outbox.
    harness
        .eventually(PATIENCE, "the dead-letter topic message is published", || async {
            let published: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM outbox WHERE topic = 'test.recordings.dlq' AND published_at IS NOT NULL",
            )
            .fetch_one(&harness.pool)
            .await
            .unwrap();
            published == 1
        })
        .await;

    recorder.cured.store(true, Ordering::SeqCst);
    dead_letters::request_replay(&harness.pool, dead_letter.id)
        .await
        .unwrap();
    harness
        .eventually(PATIENCE, "the replay is applied", || async {
            harness.effect_count().await == 4
        })
        .await;
    let replayed = dead_letters::list(&harness.pool, Some(DeadLetterStatus::Replayed), 10)
        .await
        .unwrap();
    assert_eq!(replayed.len(), 1);
    // A second replay is refused: the message is no longer parked.
    let again = dead_letters::request_replay(&harness.pool, dead_letter.id).await;
    assert!(
        matches!(again, Err(ReplayError::NotParked { .. })),
        "{again:?}"
    );

    consumer.stop().await;
    relay.stop().await;
    assert!(harness.applied_twice().await.is_empty());
    assert_eq!(stats.replayed(), 1);
}

#[tokio::test]
async fn a_message_that_is_not_an_envelope_is_parked_and_the_consumer_moves_on() {
    let harness = Harness::new().await;
    harness.publish_raw([b"definitely not json".to_vec()]).await;
    harness.enqueue([recording("k", 1)]).await;
    let relay = harness.spawn_relay();
    let consumer = harness.spawn_consumer(Arc::new(Recorder::default()));
    harness
        .eventually(
            PATIENCE,
            "the good message behind the garbage is applied",
            || async { harness.effect_count().await == 1 },
        )
        .await;
    consumer.stop().await;
    relay.stop().await;
    let parked = dead_letters::list(&harness.pool, Some(DeadLetterStatus::Parked), 10)
        .await
        .unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].message_id, None);
    assert!(
        parked[0].error.contains("not an envelope"),
        "{}",
        parked[0].error
    );
}
