#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::cli::run::<notification::Notification, messaging::MessagingCommand>().await
}
