use flight_inventory::FlightInventory;
use test_support::conformance::check_service_conformance;

#[tokio::test]
async fn flight_inventory_meets_the_service_conformance_suite() {
    check_service_conformance::<FlightInventory>(&[])
        .await
        .unwrap();
}
