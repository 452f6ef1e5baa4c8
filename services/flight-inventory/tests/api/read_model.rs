use std::time::Duration;

use eventstore::{ProjectionRunner, ProjectionSettings};
use flight_inventory::search::{checksum, FlightSearchProjection};
use flight_inventory::store::FlightStore;
use serde_json::json;

use crate::helpers::{eventually, InventoryApi, TestInventory};

#[tokio::test]
async fn search_finds_flights_by_route_and_date_with_the_seats_left() {
    let inventory = TestInventory::spawn().await;
    let flight = inventory.schedule(180, "199.00").await;
    inventory
        .post(
            &format!("/flights/{flight}/fare"),
            json!({"fare": {"amount": "149.00", "currency": "USD"}}),
        )
        .await;
    let date = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    let url = format!("/flights?origin=icn&destination=NRT&date={date}");
    eventually(
        Duration::from_secs(30),
        "the read model shows the new fare",
        || async {
            let (_, results) = inventory.get(&url).await;
            results["items"][0]["fare"]["amount"] == "149.00"
        },
    )
    .await;
    let (_, results) = inventory.get(&url).await;
    assert_eq!(results["items"].as_array().unwrap().len(), 1);
    assert_eq!(results["items"][0]["flight_id"], flight.to_string());
    assert_eq!(results["items"][0]["seats_available"], 180);

    let (_, elsewhere) = inventory
        .get(&format!("/flights?origin=NRT&destination=ICN&date={date}"))
        .await;
    assert_eq!(elsewhere["items"], json!([]));
}

#[tokio::test]
async fn a_rebuilt_read_model_is_identical_to_the_live_one() {
    let inventory = TestInventory::spawn().await;
    for fare in ["199.00", "229.00", "99.00"] {
        let flight = inventory.schedule(150, fare).await;
        inventory
            .post(
                &format!("/flights/{flight}/status"),
                json!({"status": "delayed"}),
            )
            .await;
    }
    let pool = inventory.pool().await;
    eventually(
        Duration::from_secs(30),
        "the live read model has every flight",
        || async {
            let (_, results) = inventory.get("/flights").await;
            results["items"].as_array().is_some_and(|items| {
                items.len() == 3 && items.iter().all(|i| i["status"] == "delayed")
            })
        },
    )
    .await;
    let live = checksum(&pool).await.unwrap();

    let store = FlightStore::new(pool.clone(), 0);
    let runner = ProjectionRunner::new(
        store.events().clone(),
        FlightSearchProjection,
        ProjectionSettings::default(),
    )
    .unwrap();
    let rebuilt = runner.rebuild().await.unwrap();
    assert!(rebuilt.generation() > 1);
    assert_eq!(checksum(&pool).await.unwrap(), live);
    let (_, results) = inventory.get("/flights").await;
    assert_eq!(
        results["items"].as_array().unwrap().len(),
        3,
        "the rebuilt model serves the same flights"
    );
}
