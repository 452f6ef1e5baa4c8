//! `contrail-admin`: the privileged tasks no service may do for itself.
//!
//! - `provision`: create the database, one login role per service and the
//!   schema that role owns, and revoke everything else (run by `make up`, or
//!   as a Kubernetes Job before the services start);
//! - `drop-test-databases`: remove the `contrail_test_*` databases the test suite leaves behind;
//! - `drop-test-topics`: remove the topics the test suite leaves on a broker;
//! - `keygen`: create a development token issuer (an Ed25519 key pair in
//!   `.local/auth/`, never committed) unless one exists;
//! - `token`: mint a development bearer token from that key
//!   (`--customer cust-42`, `--admin`, `--service booking`). Production
//!   tokens come from the identity provider, which alone holds its key.

use std::path::PathBuf;

use anyhow::Context;
use chrono::TimeDelta;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use service_kit::auth::Scope;
use service_kit::db::{provision, SchemaOwner};
use sqlx::{Connection, PgConnection};

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
    /// Delete the topics earlier test runs left on the broker (named with
    /// `test_support::unique_topic_prefix`: `t` + 32 hex digits + `.`).
    /// Every partition holds open files, and a broker that accumulates
    /// tens of thousands stops accepting connections.
    DropTestTopics {
        #[arg(long, default_value = "127.0.0.1:9092")]
        brokers: String,
    },
    /// Create the development token issuer's key pair, unless it exists.
    Keygen {
        #[arg(long, default_value = ".local/auth")]
        dir: PathBuf,
    },
    /// Everything a development stack needs for auth, in DIR: the issuer
    /// (kept), booking's service token (fresh, `booking.token`) and its
    /// request-fingerprint key (kept, `fingerprint.key`).
    DevAuth {
        #[arg(long, default_value = ".local/auth")]
        dir: PathBuf,
    },
    /// Print a development bearer token signed with the `keygen` key.
    Token {
        /// Act for this customer only.
        #[arg(long, group = "scope")]
        customer: Option<String>,
        /// Operate the system (flights, sagas, dead letters, miles credits).
        #[arg(long, group = "scope")]
        admin: bool,
        /// A service of the system calling another (`booking`).
        #[arg(long, group = "scope")]
        service: Option<String>,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 12)]
        hours: i64,
        #[arg(long, default_value = ".local/auth")]
        dir: PathBuf,
    },
}

use service_kit::auth::development;

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
        Command::DropTestTopics { brokers } => {
            let kafka = messaging::KafkaSettings::for_brokers(brokers);
            let deleted = messaging::topics::delete_topics_where(&kafka, is_test_topic).await?;
            tracing::info!(deleted, "test topics deleted");
        }
        Command::Keygen { dir } => {
            development::keygen(&dir)?;
            tracing::info!(dir = %dir.display(), "the development token issuer is ready");
        }
        Command::DevAuth { dir } => {
            development::prepare(&dir)?;
            tracing::info!(dir = %dir.display(), "development auth material ready");
        }
        Command::Token {
            customer,
            admin,
            service,
            hours,
            dir,
        } => {
            let (scope, subject) = match (customer, admin, service) {
                (Some(customer), false, None) => (Scope::Customer, customer),
                (None, true, None) => (Scope::Admin, "operator".to_owned()),
                (None, false, Some(service)) => (Scope::Service, service),
                _ => anyhow::bail!(
                    "say who the token is for: --customer ID, --admin or --service NAME"
                ),
            };
            let token =
                development::issuer(&dir)?.issue(scope, &subject, TimeDelta::hours(hours))?;
            std::io::Write::write_all(&mut std::io::stdout(), format!("{token}\n").as_bytes())
                .context("print the token")?;
        }
    }
    Ok(())
}

/// Whether `topic` belongs to a test: `t` + 32 lowercase hex digits + `.`,
/// the shape of `test_support::unique_topic_prefix`.
fn is_test_topic(topic: &str) -> bool {
    topic.split_once('.').is_some_and(|(prefix, _)| {
        prefix.len() == 33
            && prefix.starts_with('t')
            && prefix[1..]
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    })
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
        service_kit::db::drop_database(&mut admin, name).await?;
    }
    tracing::info!(dropped = names.len(), "test databases dropped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_topics_with_a_test_prefix_are_test_topics() {
        assert!(is_test_topic(
            "t019ae1b2c3d4e5f60718293a4b5c6d7e.booking.events"
        ));
        assert!(!is_test_topic("booking.events"));
        assert!(!is_test_topic("chaos42.booking.events"));
        assert!(!is_test_topic(
            "t019AE1B2C3D4E5F60718293A4B5C6D7E.booking.events"
        ));
        assert!(!is_test_topic("t019ae1b2c3d4e5f6.booking.events"));
    }
}
