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
/// Domain event topics (`*.events`) are created with unlimited retention.
pub async fn ensure_topics(kafka: &KafkaSettings, topics: &[&str]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka, "contrail-topic-bootstrap")
        .create()
        .context("create the kafka admin client")?;
    let names: Vec<String> = topics.iter().map(|topic| kafka.name(topic)).collect();
    let new_topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            let topic = NewTopic::new(
                name,
                kafka.partitions,
                TopicReplication::Fixed(kafka.replication_factor),
            );
            if is_domain_event_topic(name) {
                // The data lake is rebuilt by reading these from the start:
                // they are the lake's source of truth, so they are kept forever.
                topic.set("retention.ms", "-1")
            } else {
                topic
            }
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

/// `inventory.events`, `booking.events`, … (with or without a prefix), not their `.dlq`.
pub fn is_domain_event_topic(name: &str) -> bool {
    name.ends_with(".events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_domain_event_topics_are_kept_forever() {
        assert!(is_domain_event_topic("booking.events"));
        assert!(is_domain_event_topic("t-42.inventory.events"));
        assert!(!is_domain_event_topic("booking.events.dlq"));
        assert!(!is_domain_event_topic("payment.commands"));
        assert!(!is_domain_event_topic("booking.saga-replies"));
    }
}
