//! The command line every service shares: `serve` (the default), `migrate`,
//! and the administrative subcommands a service adds (dead letters, projections).

use std::future::Future;
use std::pin::Pin;

use clap::{Parser, Subcommand};
use sqlx::PgPool;

use crate::runtime::{self, Service};
use crate::settings::ServiceSettings;
use crate::{settings, telemetry};

/// Administrative subcommands that work on the service's database.
pub trait AdminCommands: Subcommand + Send + 'static {
    fn run(self, pool: PgPool) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
}

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli<X: AdminCommands> {
    #[command(subcommand)]
    command: Option<Command<X>>,
}

#[derive(Debug, Subcommand)]
enum Command<X: AdminCommands> {
    /// Run the service until SIGTERM or ctrl-c (the default).
    Serve,
    /// Apply the service's database migrations and exit.
    Migrate,
    #[command(flatten)]
    Admin(X),
}

/// The whole `main` of a service: parse the command, load settings, init
/// telemetry, then serve, migrate or run an administrative command.
pub async fn run<S: Service, X: AdminCommands>() -> anyhow::Result<()> {
    let cli = Cli::<X>::parse();
    let settings: ServiceSettings<S::Domain> = settings::load(S::NAME, S::DEFAULT_SETTINGS)?;
    let _telemetry = telemetry::init(S::NAME, &settings.telemetry)?;
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match runtime::launch::<S>(settings).await {
            Ok(service) => service.run_until(runtime::shutdown_signal()).await,
            Err(error) => Err(error),
        },
        Command::Migrate => migrated_pool::<S>(&settings).await.map(|_| ()),
        Command::Admin(command) => match migrated_pool::<S>(&settings).await {
            Ok(pool) => command.run(pool).await,
            Err(error) => Err(error),
        },
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

async fn migrated_pool<S: Service>(
    settings: &ServiceSettings<S::Domain>,
) -> anyhow::Result<PgPool> {
    let pool = crate::db::connect(&settings.database, S::NAME).await?;
    crate::db::migrate(&pool, &S::migrator()).await?;
    tracing::info!(service = S::NAME, "migrations applied");
    Ok(pool)
}
