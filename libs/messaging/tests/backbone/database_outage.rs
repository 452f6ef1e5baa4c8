//! The consumer's database goes away (its link is cut: open connections
//! drop, new ones are refused) for longer than the retry budget, while the
//! messages keep arriving. Nothing may be parked as a dead letter for it:
//! once the database is back every message applies, once, in order per key.

use std::sync::Arc;
use std::time::Duration;

use messaging::dead_letters::{self, DeadLetterStatus};
use test_support::proxy::CuttableProxy;

use crate::harness::{recording, Harness, Recorder};

const PATIENCE: Duration = Duration::from_secs(90);
/// Far longer than the harness's budget (3 attempts, backoff up to 50 ms,
/// each attempt waiting at most `ACQUIRE_TIMEOUT` for a connection).
const OUTAGE: Duration = Duration::from_secs(8);
const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(500);

#[tokio::test]
async fn a_database_outage_longer_than_the_retry_budget_parks_nothing_and_loses_nothing() {
    let harness = Harness::new().await;
    let mut link = CuttableProxy::start(harness.database.server_address().await.unwrap())
        .await
        .unwrap();
    let consumer_pool = harness
        .database
        .pool_through("booking", 4, &link, ACQUIRE_TIMEOUT)
        .await
        .unwrap();
    let relay = harness.spawn_relay();
    let consumer = harness.spawn_consumer_on(Arc::new(Recorder::default()), consumer_pool);

    harness
        .enqueue((0..10).map(|seq| recording(&format!("k{}", seq % 4), seq)))
        .await;
    harness
        .eventually(PATIENCE, "the first ten messages are applied", || async {
            harness.effect_count().await == 10
        })
        .await;

    link.cut().await;
    // The relay has its own, intact link: these reach the consumer, which
    // cannot reach its database for any of them.
    harness
        .enqueue((10..30).map(|seq| recording(&format!("k{}", seq % 4), seq)))
        .await;
    harness
        .eventually(
            PATIENCE,
            "the relay publishes during the outage",
            || async { harness.unpublished().await == 0 },
        )
        .await;
    tokio::time::sleep(OUTAGE).await;
    assert_eq!(
        harness.effect_count().await,
        10,
        "nothing applies without the database"
    );

    link.restore().await.unwrap();
    harness
        .eventually(
            PATIENCE,
            "every message is applied once the database is back",
            || async { harness.effect_count().await == 30 },
        )
        .await;
    let parked = dead_letters::list(&harness.pool, Some(DeadLetterStatus::Parked), 10)
        .await
        .unwrap();
    assert!(parked.is_empty(), "parked for an outage: {parked:?}");
    consumer.stop().await;
    relay.stop().await;
    assert!(harness.applied_twice().await.is_empty());
    assert_eq!(harness.applied_out_of_order().await, 0);
}
