//! Search, detail and availability through the Redis read cache: hits after
//! misses, every change visible at once, and Redis gone (refusing, or
//! accepting and never answering) costing nothing but the cache.

use std::time::Duration;

use contracts::inventory::{HoldSeats, SeatsHeld};
use contracts::saga::StepRef;
use contracts::{topics, Envelope, Message};
use messaging::testing::{publish, TopicReader};
use serde_json::json;
use test_support::redis::{redis_url, refused_redis_url, unique_key_prefix, SilentRedis};
use uuid::Uuid;

use crate::helpers::{InventoryApi, TestInventory};

const PATIENCE: Duration = Duration::from_secs(60);

/// How long a cache call may take against the real Redis: generous, because
/// these tests are about hits and invalidation, and a slow machine must not
/// turn a working Redis into misses.
const WORKING_REDIS_TIMEOUT_MS: u64 = 5_000;
/// Against a Redis that refuses or never answers, the timeout is the fault
/// under test; short, so the test does not wait long for each miss.
const BROKEN_REDIS_TIMEOUT_MS: u64 = 100;

/// flight-inventory with its read cache on `redis_url`, keys under a prefix
/// of this test's, each Redis call bounded by `timeout_ms`.
async fn spawn_cached(redis_url: String, timeout_ms: u64) -> (TestInventory, String) {
    let prefix = unique_key_prefix();
    let inventory = TestInventory::spawn_with(&[
        ("cache.redis_url", redis_url),
        ("cache.key_prefix", prefix.clone()),
        ("cache.timeout_ms", timeout_ms.to_string()),
    ])
    .await;
    (inventory, prefix)
}

/// Whether Redis holds `key` (the cache's own keys, read behind its back).
async fn redis_has(key: &str) -> bool {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<bool>(&mut connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_flight_read_twice_is_loaded_once_and_then_served_from_the_cache() {
    let (inventory, prefix) = spawn_cached(redis_url(), WORKING_REDIS_TIMEOUT_MS).await;
    let flight = inventory.schedule(180, "199.00").await;
    let hits_before = inventory
        .counter("cache_hits_total", "cache=\"flight_detail\"")
        .await;

    let first = inventory.get_ok(&format!("/flights/{flight}")).await;
    assert!(redis_has(&format!("{prefix}:flight:{flight}:detail")).await);
    let second = inventory.get_ok(&format!("/flights/{flight}")).await;

    assert_eq!(first, second);
    assert_eq!(
        second["fare"],
        json!({"amount": "199.00", "currency": "USD"})
    );
    let hits_after = inventory
        .counter("cache_hits_total", "cache=\"flight_detail\"")
        .await;
    assert!(hits_after > hits_before, "{hits_before} -> {hits_after}");
}

#[tokio::test]
async fn a_fare_change_is_read_at_once_through_the_cache() {
    let (inventory, _) = spawn_cached(redis_url(), WORKING_REDIS_TIMEOUT_MS).await;
    let flight = inventory.schedule(180, "199.00").await;
    let detail = format!("/flights/{flight}");
    // Cached, twice over.
    inventory.get_ok(&detail).await;
    inventory.get_ok(&detail).await;

    let (status, changed) = inventory
        .post(
            &format!("{detail}/fare"),
            json!({"fare": {"amount": "249.00", "currency": "USD"}}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");

    let after = inventory.get_ok(&detail).await;
    assert_eq!(
        after["fare"],
        json!({"amount": "249.00", "currency": "USD"})
    );
    assert_eq!(after["version"], changed["version"]);
    // Search follows the read model; once it shows the new fare, it never
    // goes back to the cached old one.
    let search = "/flights?origin=ICN&destination=NRT&limit=200";
    test_support::eventually(PATIENCE, "search shows the new fare", || async {
        inventory.get_items(search).await.iter().any(|hit| {
            hit["flight_id"] == json!(flight) && hit["fare"]["amount"] == json!("249.00")
        })
    })
    .await;
    for _ in 0..3 {
        let hits = inventory.get_items(search).await;
        let hit = hits
            .iter()
            .find(|hit| hit["flight_id"] == json!(flight))
            .unwrap();
        assert_eq!(hit["fare"]["amount"], json!("249.00"));
    }
}

#[tokio::test]
async fn a_seat_hold_changes_the_cached_availability_at_once() {
    let (inventory, _) = spawn_cached(redis_url(), WORKING_REDIS_TIMEOUT_MS).await;
    let flight = inventory.schedule(5, "120.00").await;
    let availability = format!("/flights/{flight}/availability");
    inventory.get_ok(&availability).await;
    assert_eq!(
        inventory.get_ok(&availability).await,
        json!({"capacity": 5, "available": 5, "held": 0, "sold": 0}),
        "cached"
    );

    let kafka = inventory.kafka();
    let replies = TopicReader::new(&kafka, topics::SAGA_REPLIES).unwrap();
    let saga = Uuid::now_v7();
    let hold = HoldSeats {
        step: StepRef {
            saga_id: saga,
            step: "HoldSeats".to_owned(),
            attempt: 1,
        },
        flight_id: flight,
        booking_id: saga,
        hold_id: Uuid::now_v7(),
        seats: 2,
    };
    let key = flight.to_string();
    publish(
        &kafka,
        topics::INVENTORY_COMMANDS,
        &key,
        &Envelope::new(hold, saga),
    )
    .await
    .unwrap();
    replies
        .collect(1, PATIENCE, |e| e.message_type == SeatsHeld::MESSAGE_TYPE)
        .await
        .unwrap();

    assert_eq!(
        inventory.get_ok(&availability).await,
        json!({"capacity": 5, "available": 3, "held": 2, "sold": 0})
    );
    let detail = inventory.get_ok(&format!("/flights/{flight}")).await;
    assert_eq!(detail["availability"]["held"], 2);
}

/// Every cached endpoint answers 200 from Postgres, readiness stays green and
/// the errors are counted.
async fn reads_survive_a_redis_that_is_gone(redis_url: String) {
    let (inventory, _) = spawn_cached(redis_url, BROKEN_REDIS_TIMEOUT_MS).await;
    let errors_before = inventory
        .counter("cache_errors_total", "cache=\"flight_")
        .await;
    let flight = inventory.schedule(180, "199.00").await;

    for _ in 0..2 {
        inventory.get_ok(&format!("/flights/{flight}")).await;
        inventory
            .get_ok(&format!("/flights/{flight}/availability"))
            .await;
        inventory.get_ok("/flights?origin=ICN").await;
    }
    let (status, changed) = inventory
        .post(
            &format!("/flights/{flight}/fare"),
            json!({"fare": {"amount": "99.00", "currency": "USD"}}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let after = inventory.get_ok(&format!("/flights/{flight}")).await;
    assert_eq!(after["fare"]["amount"], json!("99.00"));

    let (status, ready) = inventory.get("/health/ready").await;
    assert_eq!(status, 200, "{ready}");
    let errors_after = inventory
        .counter("cache_errors_total", "cache=\"flight_")
        .await;
    assert!(
        errors_after >= errors_before + 7.0,
        "{errors_before} -> {errors_after}"
    );
}

#[tokio::test]
async fn with_redis_refusing_connections_reads_are_answered_from_postgres() {
    reads_survive_a_redis_that_is_gone(refused_redis_url().await).await;
}

#[tokio::test]
async fn with_a_redis_that_never_answers_reads_are_answered_from_postgres() {
    let silent = SilentRedis::start().await;
    reads_survive_a_redis_that_is_gone(silent.url()).await;
}
