//! `contrail-admin`: the privileged tasks no service may do for itself.
//!
//! - `provision`: create the database, one login role per service and the
//!   schema that role owns, and revoke everything else (run by `make up`, or
//!   as a Kubernetes Job before the services start);
//! - `drop-test-databases`: remove the `contrail_test_*` databases the test suite leaves behind.

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use service_kit::db::{provision, quote_ident, SchemaOwner};
use sqlx::{Connection, Executor, PgConnection};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A superuser (or CREATEDB + CREATEROLE) connection to the cluster.
    #[arg(
        long,
        env = "CONTRAIL_ADMIN_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    admin_url: SecretString,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the database, the services' roles and their schemas (idempotent).
    Provision {
        #[arg(long, default_value = "contrail")]
        database: String,
    },
    /// Drop every `contrail_test_*` database.
    DropTestDatabases,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    service_kit::telemetry::init("contrail-admin", &Default::default())?;
    match cli.command {
        Command::Provision { database } => {
            let owners: Vec<SchemaOwner> = contracts::services::ALL
                .iter()
                .map(|(_, role)| SchemaOwner {
                    role: (*role).to_owned(),
                    schema: (*role).to_owned(),
                    // Where the cluster does not trust local connections, each role's
                    // password comes from CONTRAIL_DB_PASSWORD_<ROLE>.
                    password: std::env::var(format!(
                        "CONTRAIL_DB_PASSWORD_{}",
                        role.to_ascii_uppercase()
                    ))
                    .ok()
                    .map(SecretString::from),
                })
                .collect();
            provision(&cli.admin_url, &database, &owners).await?;
            tracing::info!(database, roles = owners.len(), "provisioned");
        }
        Command::DropTestDatabases => drop_test_databases(&cli.admin_url).await?,
    }
    Ok(())
}

async fn drop_test_databases(admin_url: &SecretString) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let mut admin = PgConnection::connect(admin_url.expose_secret())
        .await
        .context("connect as administrator")?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'contrail\\_test\\_%'",
    )
    .fetch_all(&mut admin)
    .await
    .context("list test databases")?;
    for name in &names {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
        admin
            .execute(statement.as_str())
            .await
            .with_context(|| format!("drop database {name}"))?;
    }
    tracing::info!(dropped = names.len(), "test databases dropped");
    Ok(())
}
