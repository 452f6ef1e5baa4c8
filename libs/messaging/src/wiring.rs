//! How a service plugs into the messaging backbone, the same way for every service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::settings::KafkaSettings;
use service_kit::cli::AdminCommands;
use service_kit::ServiceApp;
use sqlx::PgPool;

use crate::dead_letters::{self, DeadLetterCommand};
use crate::outbox::OutboxRelay;
use crate::producer::Producer;
use crate::topics::ensure_topics;
use crate::{BrokerReadiness, Consumer, MessageHandler};

/// A service's part of the messaging backbone: the topics it writes or
/// reads, the consumers it runs, and (always) its outbox relay.
///
/// ```ignore
/// messaging::Backbone::new(Self::NAME, &pool, &settings.kafka)
///     .topics(&TOPICS)
///     .consume(commands::CONSUMER, &[topics::PAYMENT_COMMANDS], commands.participant())
///     .attach(app)
///     .await
/// ```
#[derive(Debug)]
pub struct Backbone<'a> {
    service: &'static str,
    pool: &'a PgPool,
    kafka: &'a KafkaSettings,
    topics: Vec<&'static str>,
    consumers: Vec<Consumer>,
}

impl<'a> Backbone<'a> {
    pub fn new(service: &'static str, pool: &'a PgPool, kafka: &'a KafkaSettings) -> Self {
        Self {
            service,
            pool,
            kafka,
            topics: Vec::new(),
            consumers: Vec::new(),
        }
    }

    /// Topics this service writes or reads: created at start if missing,
    /// each with its dead-letter topic.
    #[must_use]
    pub fn topics(mut self, topics: &[&'static str]) -> Self {
        self.topics.extend_from_slice(topics);
        self
    }

    /// A consumer group `name` on `topics`, applying what it receives with
    /// `handler` (usually a [`crate::Participant`]); `kafka.consumer.instances`
    /// members of it run in this process.
    #[must_use]
    pub fn consume(mut self, name: &str, topics: &[&str], handler: impl MessageHandler) -> Self {
        self.consumers.push(Consumer::new(
            name,
            topics,
            Arc::new(handler),
            self.pool.clone(),
            self.kafka,
        ));
        self
    }

    /// Gives `app` the backbone: creates the topics, runs the outbox relay
    /// and the consumers as workers, serves the dead-letter endpoints, and
    /// adds the broker to the readiness checks.
    pub async fn attach(self, app: ServiceApp) -> anyhow::Result<ServiceApp> {
        let Self {
            service,
            pool,
            kafka,
            topics,
            consumers,
        } = self;
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
