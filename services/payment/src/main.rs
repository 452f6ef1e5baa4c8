#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::cli::run::<payment::Payment, messaging::MessagingCommand>().await
}
