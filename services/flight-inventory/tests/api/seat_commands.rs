use std::time::Duration;

use contracts::inventory::{
    CommandRefused, HoldSeats, Refusal, ReleaseReason, ReleaseSeats, SeatsHeld, SeatsReleased,
};
use contracts::saga::StepRef;
use contracts::{topics, Envelope, Message};
use messaging::testing::{publish, TopicReader};
use serde_json::json;
use test_support::strings_of;
use uuid::Uuid;

use crate::helpers::{InventoryApi, TestInventory};

const PATIENCE: Duration = Duration::from_secs(60);

fn step(saga_id: Uuid, name: &str) -> StepRef {
    StepRef {
        saga_id,
        step: name.to_owned(),
        attempt: 1,
    }
}

#[tokio::test]
async fn seat_commands_over_kafka_are_applied_once_and_answered() {
    let inventory = TestInventory::spawn().await;
    let flight = inventory.schedule(5, "120.00").await;
    let kafka = inventory.kafka();
    let replies = TopicReader::new(&kafka, topics::SAGA_REPLIES).unwrap();
    let saga = Uuid::now_v7();
    let hold_id = Uuid::now_v7();
    let hold = HoldSeats {
        step: step(saga, "HoldSeats"),
        flight_id: flight,
        booking_id: saga,
        hold_id,
        seats: 2,
    };

    // The same command twice, as a retrying saga would send it: two messages, one hold.
    for _ in 0..2 {
        publish(
            &kafka,
            topics::INVENTORY_COMMANDS,
            &flight.to_string(),
            &Envelope::new(hold.clone(), saga),
        )
        .await
        .unwrap();
    }
    let held = replies
        .collect(2, PATIENCE, |e| e.message_type == SeatsHeld::MESSAGE_TYPE)
        .await
        .unwrap();
    assert_eq!(held.len(), 2, "both commands are answered");
    for reply in &held {
        let reply = reply.decode::<SeatsHeld>().unwrap();
        assert_eq!(reply.correlation_id, saga);
        assert_eq!(reply.payload.hold_id, hold_id);
        assert_eq!(reply.payload.total.to_string(), "240.00 USD");
    }
    let (_, availability) = inventory
        .get(&format!("/flights/{flight}/availability"))
        .await;
    assert_eq!(
        availability,
        json!({"capacity": 5, "available": 3, "held": 2, "sold": 0})
    );

    let too_many = HoldSeats {
        step: step(Uuid::now_v7(), "HoldSeats"),
        flight_id: flight,
        booking_id: Uuid::now_v7(),
        hold_id: Uuid::now_v7(),
        seats: 4,
    };
    publish(
        &kafka,
        topics::INVENTORY_COMMANDS,
        &flight.to_string(),
        &Envelope::new(too_many, Uuid::now_v7()),
    )
    .await
    .unwrap();
    let refused = replies
        .collect(1, PATIENCE, |e| {
            e.message_type == CommandRefused::MESSAGE_TYPE
        })
        .await
        .unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0]
            .decode::<CommandRefused>()
            .unwrap()
            .payload
            .refusal,
        Refusal::SoldOut
    );

    let release = ReleaseSeats {
        step: step(saga, "ReleaseSeats"),
        flight_id: flight,
        hold_id,
        reason: ReleaseReason::BookingFailed,
    };
    publish(
        &kafka,
        topics::INVENTORY_COMMANDS,
        &flight.to_string(),
        &Envelope::new(release, saga),
    )
    .await
    .unwrap();
    let released = replies
        .collect(1, PATIENCE, |e| {
            e.message_type == SeatsReleased::MESSAGE_TYPE
        })
        .await
        .unwrap();
    assert_eq!(released.len(), 1);
    let (_, availability) = inventory
        .get(&format!("/flights/{flight}/availability"))
        .await;
    assert_eq!(
        availability,
        json!({"capacity": 5, "available": 5, "held": 0, "sold": 0})
    );

    let (_, history) = inventory.get(&format!("/flights/{flight}/history")).await;
    let types = strings_of(&history["items"], "type");
    assert_eq!(types, ["FlightScheduled", "SeatsHeld", "SeatsReleased"]);
}
