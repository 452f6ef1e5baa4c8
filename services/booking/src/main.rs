#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::cli::run::<booking::Booking, messaging::MessagingCommand>().await
}
