//! Topic bootstrap: services create the topics they use, with their dead-letter topics.

use std::time::Duration;

use crate::settings::KafkaSettings;
use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::settings::client_config;

/// Creates each of `topics` (environment prefix applied) with `kafka.partitions`
/// partitions if it does not exist yet; existing topics are left as they are.
pub async fn ensure_topics(kafka: &KafkaSettings, topics: &[&str]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka, "contrail-topic-bootstrap")
        .create()
        .context("create the kafka admin client")?;
    let names: Vec<String> = topics.iter().map(|topic| kafka.name(topic)).collect();
    let new_topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                kafka.partitions,
                TopicReplication::Fixed(kafka.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new_topics.iter(), &options)
        .await
        .context("create topics")?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(topic, partitions = kafka.partitions, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("create topic {topic}: {code}"),
        }
    }
    Ok(())
}
