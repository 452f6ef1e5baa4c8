use flight_inventory::FlightInventory;
use test_support::conformance::{check_openapi_document, check_service_conformance};

#[tokio::test]
async fn flight_inventory_meets_the_service_conformance_suite() {
    check_service_conformance::<FlightInventory>(&[
        ("POST", "/flights", "{\"flight_number\": ", 400),
        ("POST", "/flights", "{\"flight_number\": \"CT1\"}", 422),
        ("GET", "/flights/not-a-uuid", "", 400),
        (
            "GET",
            "/flights/0193a0c2-0000-7000-8000-000000000000",
            "",
            404,
        ),
        ("GET", "/flights?origin=TOOLONG", "", 400),
        ("GET", "/flights?date=yesterday", "", 400),
    ])
    .await
    .unwrap();
}

/// The document lists exactly the routes the running service registered.
#[tokio::test]
async fn flight_inventory_documents_exactly_the_routes_it_serves() {
    check_openapi_document::<FlightInventory>().await.unwrap();
}
