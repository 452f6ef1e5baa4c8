#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::cli::run::<
        flight_inventory::FlightInventory,
        flight_inventory::admin::InventoryCommand,
    >()
    .await
}
