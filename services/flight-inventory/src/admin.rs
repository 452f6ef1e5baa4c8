//! `flight-inventory` subcommands beside `serve` and `migrate`.

use std::future::Future;
use std::pin::Pin;

use eventstore::{ProjectionRunner, ProjectionSettings};
use messaging::MessagingCommand;
use service_kit::cli::AdminCommands;
use sqlx::PgPool;

use crate::search::{self, FlightSearchProjection};
use crate::store::FlightStore;

#[derive(Debug, clap::Subcommand)]
pub enum InventoryCommand {
    #[command(flatten)]
    Messaging(MessagingCommand),
    /// Read models.
    #[command(subcommand)]
    Projections(ProjectionCommand),
    /// Schedule the demo's sample network, unless flights exist already.
    SeedSampleNetwork,
}

#[derive(Debug, clap::Subcommand)]
pub enum ProjectionCommand {
    /// Rebuild the flight search read model from the event log beside the live one, then swap.
    Rebuild,
}

impl AdminCommands for InventoryCommand {
    fn run(self, pool: PgPool) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> {
        Box::pin(async move {
            match self {
                Self::Messaging(command) => command.run(pool).await,
                Self::Projections(ProjectionCommand::Rebuild) => {
                    let store = FlightStore::new(pool.clone(), 0);
                    let runner = ProjectionRunner::new(
                        store.events().clone(),
                        FlightSearchProjection,
                        ProjectionSettings::default(),
                    )?;
                    let before = search::checksum(&pool).await?;
                    let tables = runner.rebuild().await?;
                    let after = search::checksum(&pool).await?;
                    tracing::info!(generation = tables.generation(), %before, %after, "flight search rebuilt");
                    Ok(())
                }
                Self::SeedSampleNetwork => {
                    let store = FlightStore::new(pool.clone(), 0);
                    crate::sample::seed(&store, &pool).await.map(|_| ())
                }
            }
        })
    }
}
