//! flight-inventory's endpoints as test helpers on the shared [`TestApp`].

use flight_inventory::FlightInventory;
pub use test_support::eventually;
pub use test_support::fixtures::schedule_body;
use test_support::TestApp;
use uuid::Uuid;

pub type TestInventory = TestApp<FlightInventory>;

pub trait InventoryApi {
    /// `POST /flights` for a flight departing tomorrow; returns its id.
    async fn schedule(&self, capacity: u32, fare: &str) -> Uuid;
}

impl InventoryApi for TestInventory {
    async fn schedule(&self, capacity: u32, fare: &str) -> Uuid {
        let (status, body) = self.post("/flights", schedule_body(capacity, fare)).await;
        assert_eq!(status, 201, "{body}");
        body["flight_id"].as_str().unwrap().parse().unwrap()
    }
}
