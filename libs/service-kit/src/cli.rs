//! The command line every service shares: `serve` (the default) and `migrate`.

use clap::{Parser, Subcommand};

use crate::runtime::{self, Service};
use crate::settings::ServiceSettings;
use crate::{settings, telemetry};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service until SIGTERM or ctrl-c (the default).
    Serve,
    /// Apply the service's database migrations and exit.
    Migrate,
}

/// The whole `main` of a service: parse the command, load settings, init
/// telemetry, then serve or migrate.
pub async fn run<S: Service>() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings: ServiceSettings<S::Domain> = settings::load(S::NAME, S::DEFAULT_SETTINGS)?;
    let _telemetry = telemetry::init(S::NAME, &settings.telemetry)?;
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match runtime::launch::<S>(settings).await {
            Ok(service) => service.run_until(runtime::shutdown_signal()).await,
            Err(error) => Err(error),
        },
        Command::Migrate => migrate::<S>(&settings).await,
    };
    if let Err(error) = &outcome {
        tracing::error!(
            service = S::NAME,
            error = format!("{error:#}"),
            "exiting with an error"
        );
    }
    outcome
}

async fn migrate<S: Service>(settings: &ServiceSettings<S::Domain>) -> anyhow::Result<()> {
    let pool = crate::db::connect(&settings.database, S::NAME).await?;
    crate::db::migrate(&pool, S::migrator()).await?;
    tracing::info!(service = S::NAME, "migrations applied");
    Ok(())
}
