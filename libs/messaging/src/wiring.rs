//! How a service plugs into the messaging backbone, the same way for every service.

use std::future::Future;
use std::pin::Pin;

use crate::settings::KafkaSettings;
use service_kit::cli::AdminCommands;
use service_kit::ServiceApp;
use sqlx::PgPool;

use crate::dead_letters::{self, DeadLetterCommand};
use crate::outbox::OutboxRelay;
use crate::producer::Producer;
use crate::topics::ensure_topics;
use crate::{BrokerReadiness, Consumer};

/// Gives `app` the messaging backbone: creates `topics` and their dead-letter
/// topics, runs the outbox relay and each consumer (`kafka.consumer.instances`
/// members of its group) as workers, serves the
/// dead-letter endpoints, and adds the broker to the readiness checks.
pub async fn attach(
    app: ServiceApp,
    service: &str,
    pool: &PgPool,
    kafka: &KafkaSettings,
    topics: &[&str],
    consumers: Vec<Consumer>,
) -> anyhow::Result<ServiceApp> {
    let mut all_topics: Vec<String> = topics.iter().map(|topic| (*topic).to_owned()).collect();
    all_topics.extend(
        topics
            .iter()
            .map(|topic| contracts::topics::dead_letter_topic(topic)),
    );
    let topic_refs: Vec<&str> = all_topics.iter().map(String::as_str).collect();
    ensure_topics(kafka, &topic_refs).await?;

    let producer = Producer::new(kafka, service)?;
    let relay = OutboxRelay::new(pool.clone(), producer, kafka);
    let mut app = app
        .readiness(BrokerReadiness::new(kafka, service)?)
        .routes(dead_letters::router(pool.clone()))
        .worker("outbox-relay", move |context| relay.run(context.shutdown));
    for consumer in consumers {
        for _ in 0..kafka.consumer.instances.max(1) {
            let member = consumer.clone();
            app = app.worker("consumer", move |context| member.run(context.shutdown));
        }
    }
    Ok(app)
}

/// The messaging subcommands every service's binary has.
#[derive(Debug, clap::Subcommand)]
pub enum MessagingCommand {
    /// Inspect, replay or discard dead letters.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
}

impl AdminCommands for MessagingCommand {
    fn run(self, pool: PgPool) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> {
        Box::pin(async move {
            match self {
                Self::DeadLetters(command) => command.run(&pool).await,
            }
        })
    }
}
