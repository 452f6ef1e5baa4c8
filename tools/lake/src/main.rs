//! `contrail-lake`: write the data lake, query it, verify it, rebuild it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use contrail_lake::health::{self, Heartbeat};
use contrail_lake::{query, rebuild, verify, LakeStore, LakeWriter, WriterSettings};
use messaging::KafkaSettings;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "contrail-lake",
    about = "The read-only data lake of Contrail's domain events"
)]
struct Cli {
    /// The lake's directory.
    #[arg(
        long,
        env = "CONTRAIL_LAKE_ROOT",
        default_value = ".local/lake",
        global = true
    )]
    root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct BrokerArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "CONTRAIL_LAKE_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// The environment's prefix of topics and consumer groups.
    #[arg(long, env = "CONTRAIL_LAKE_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// The writer's consumer group.
    #[arg(long, env = "CONTRAIL_LAKE_GROUP", default_value = contrail_lake::writer::DEFAULT_GROUP)]
    group: String,
    /// Records per batch (one batch is one set of files) at most.
    #[arg(long, env = "CONTRAIL_LAKE_MAX_BATCH", default_value_t = 10_000)]
    max_batch: usize,
    /// How long a batch stays open after its first record, in milliseconds.
    #[arg(long, env = "CONTRAIL_LAKE_BATCH_WAIT_MS", default_value_t = 5_000)]
    batch_wait_ms: u64,
}

impl BrokerArgs {
    fn kafka(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.brokers.clone(),
            topic_prefix: self.topic_prefix.clone(),
            partitions: 3,
            replication_factor: 1,
            relay: Default::default(),
            consumer: Default::default(),
            client: Default::default(),
        }
    }

    fn writer(&self) -> WriterSettings {
        WriterSettings {
            group: self.group.clone(),
            max_batch: self.max_batch,
            batch_wait: Duration::from_millis(self.batch_wait_ms),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Copy every `*.events` topic into the lake until stopped (SIGTERM, ctrl-c).
    Write {
        #[command(flatten)]
        broker: BrokerArgs,
        /// Serve `/health/live` and `/health/ready` on this port (for Kubernetes probes).
        #[arg(long, env = "CONTRAIL_LAKE_HEALTH_PORT")]
        health_port: Option<u16>,
    },
    /// Run SQL over the lake and print the result as a table.
    Query {
        /// e.g. "SELECT origin, destination, count(*) FROM booking_events GROUP BY 1, 2"
        sql: String,
    },
    /// Compare the lake with what each service's schema recorded; non-zero exit on a difference.
    Verify {
        /// A role that may read every service's schema (an operator's, or the admin's).
        #[arg(
            long,
            env = "CONTRAIL_LAKE_SOURCE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/contrail"
        )]
        source_url: SecretString,
    },
    /// Rebuild the lake from the beginning of the topics (stop the writer first).
    Rebuild {
        #[command(flatten)]
        broker: BrokerArgs,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "contrail-lake failed");
            eprintln!("contrail-lake: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let _telemetry = service_kit::telemetry::init("contrail-lake", &Default::default())?;
    match cli.command {
        Command::Write {
            broker,
            health_port,
        } => {
            let store = LakeStore::local(&cli.root)?;
            let writer = LakeWriter::subscribe(&broker.kafka(), store, broker.writer())?;
            let shutdown = CancellationToken::new();
            let signal = shutdown.clone();
            tokio::spawn(async move {
                service_kit::runtime::shutdown_signal().await;
                signal.cancel();
            });
            let heartbeat = Heartbeat::default();
            heartbeat.beat();
            let health = health_port.map(|port| {
                // A batch may take its wait plus the time to put its files.
                let stall = broker.writer().batch_wait + Duration::from_secs(60);
                tokio::spawn(health::serve(
                    port,
                    heartbeat.clone(),
                    stall,
                    shutdown.clone(),
                ))
            });
            let written = writer.run(shutdown.clone(), heartbeat).await;
            shutdown.cancel();
            if let Some(health) = health {
                health.await.context("the health endpoint task")??;
            }
            written?;
        }
        Command::Query { sql } => {
            let store = LakeStore::local(&cli.root)?;
            let batches = query::query(&store, &sql).await?;
            print(&query::render(&batches)?);
        }
        Command::Verify { source_url } => {
            let store = LakeStore::local(&cli.root)?;
            let options: PgConnectOptions = source_url
                .expose_secret()
                .parse()
                .context("the source URL")?;
            // Read only, whatever the role may do.
            let mut source = options
                .options([("default_transaction_read_only", "on")])
                .connect()
                .await
                .context("connect to the services' database")?;
            let report = verify::verify(&store, &mut source).await?;
            print(&report.render());
            if !report.matches() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Rebuild { broker } => {
            let rebuilt = rebuild::rebuild(&broker.kafka(), &cli.root, &broker.writer()).await?;
            print(&format!(
                "rebuilt {} from {} records{}",
                cli.root.display(),
                rebuilt.records,
                rebuilt
                    .previous
                    .map(|previous| format!("; the previous lake is at {}", previous.display()))
                    .unwrap_or_default()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The command's answer, on stdout.
#[allow(clippy::print_stdout)]
fn print(text: &str) {
    println!("{text}");
}
