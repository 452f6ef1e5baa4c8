//! The public events flight-inventory publishes on `inventory.events`:
//! one per fact of the flight's history that others may read, in its
//! public shape, with the fact's place in the history.

use contracts::inventory::{FareChanged, FlightScheduled};
use contracts::topics::INVENTORY_EVENTS;
use contracts::{Currency, Money};
use serde_json::json;

use crate::helpers::{InventoryApi, TestInventory};

#[tokio::test]
async fn a_scheduled_flight_and_its_fare_changes_are_published_once_each_in_history_order() {
    let inventory = TestInventory::spawn().await;
    let flight = inventory.schedule(180, "199.00").await;
    for fare in ["249.00", "219.00"] {
        let (status, changed) = inventory
            .post(
                &format!("/flights/{flight}/fare"),
                json!({"fare": {"amount": fare, "currency": "USD"}}),
            )
            .await;
        assert_eq!(status, 200, "{changed}");
    }
    let key = flight.to_string();
    let usd = |amount: &str| Money::parse(amount, Currency::Usd).unwrap();

    let scheduled = inventory
        .outbox_events::<FlightScheduled>(INVENTORY_EVENTS, &key)
        .await;
    assert_eq!(scheduled.len(), 1);
    let scheduled = &scheduled[0].payload;
    assert_eq!((scheduled.flight_id, scheduled.version), (flight, 1));
    assert_eq!(scheduled.capacity, 180);
    assert_eq!(scheduled.fare, usd("199.00"));
    assert_eq!(scheduled.origin.len(), 3, "an IATA code: {scheduled:?}");

    let changes: Vec<_> = inventory
        .outbox_events::<FareChanged>(INVENTORY_EVENTS, &key)
        .await
        .into_iter()
        .map(|event| (event.payload.version, event.payload.from, event.payload.to))
        .collect();
    assert_eq!(
        changes,
        [
            (2, usd("199.00"), usd("249.00")),
            (3, usd("249.00"), usd("219.00")),
        ],
        "a rise and a fall, both as a FareChanged"
    );
}
