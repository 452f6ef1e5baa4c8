use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use flight_inventory::domain::decide::HoldSeats;
use flight_inventory::domain::error::FlightError;
use flight_inventory::store::{CommandError, FlightStore};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{InventoryApi, TestInventory};

#[tokio::test]
async fn five_hundred_concurrent_holds_on_a_hundred_seats_sell_exactly_a_hundred() {
    let inventory = TestInventory::spawn().await;
    let flight = inventory.schedule(100, "199.00").await;
    let store = Arc::new(FlightStore::new(inventory.pool().await, 50));

    let attempts = (0..500).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let hold = HoldSeats {
                hold_id: Uuid::now_v7(),
                booking_id: Uuid::now_v7(),
                seats: 1,
                hold_ttl: TimeDelta::minutes(15),
            };
            store
                .decide(flight, |current| {
                    Ok((current.hold_seats(hold, Utc::now())?, ()))
                })
                .await
        })
    });
    let mut held = 0;
    let mut sold_out = 0;
    for outcome in futures::future::join_all(attempts).await {
        match outcome.unwrap() {
            Ok(decided) => {
                assert_eq!(decided.appended, 1);
                held += 1;
            }
            Err(CommandError::Refused(FlightError::SoldOut { .. })) => sold_out += 1,
            Err(CommandError::Unexpected(error)) => panic!("unexpected failure: {error:#}"),
            Err(other) => panic!("unexpected refusal: {other}"),
        }
    }
    assert_eq!((held, sold_out), (100, 400));
    let (_, availability) = inventory
        .get(&format!("/flights/{flight}/availability"))
        .await;
    assert_eq!(
        availability,
        json!({"capacity": 100, "available": 0, "held": 100, "sold": 0})
    );
}

#[tokio::test]
async fn loading_from_a_snapshot_and_its_tail_equals_replaying_every_event() {
    let inventory = TestInventory::spawn().await;
    let flight = inventory.schedule(300, "100.00").await;
    let store = FlightStore::new(inventory.pool().await, 10);
    for seats in 1..=9 {
        for _ in 0..3 {
            let hold = HoldSeats {
                hold_id: Uuid::now_v7(),
                booking_id: Uuid::now_v7(),
                seats,
                hold_ttl: TimeDelta::minutes(15),
            };
            store
                .decide(flight, |current| {
                    Ok((current.hold_seats(hold, Utc::now())?, ()))
                })
                .await
                .unwrap();
        }
    }
    let snapshotted: i64 = sqlx::query_scalar("SELECT version FROM snapshots WHERE stream_id = $1")
        .bind(flight_inventory::store::stream_of(flight))
        .fetch_one(&inventory.pool().await)
        .await
        .unwrap();
    assert_eq!(snapshotted, 20, "a snapshot every 10 events; 28 events");

    let loaded = store.load(flight).await.unwrap();
    let events = eventstore::EventStore::read_stream(
        store.events(),
        &flight_inventory::store::stream_of(flight),
        1,
    )
    .await
    .unwrap();
    let replayed = flight_inventory::domain::flight::Flight::replay(
        &events
            .iter()
            .map(|event| event.decode().unwrap())
            .collect::<Vec<_>>(),
    );
    assert_eq!(loaded.version, 28);
    assert_eq!(loaded.state, replayed);
}
