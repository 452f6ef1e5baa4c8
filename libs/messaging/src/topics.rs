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

/// Deletes every topic on `kafka`'s brokers whose name `doomed` accepts, in
/// batches; returns how many were deleted. For tools that clean up after
/// tests, never for a service.
pub async fn delete_topics_where(
    kafka: &KafkaSettings,
    doomed: impl Fn(&str) -> bool,
) -> anyhow::Result<usize> {
    const BATCH: usize = 500;
    let admin: AdminClient<DefaultClientContext> = client_config(kafka, "contrail-topic-cleanup")
        .create()
        .context("create the kafka admin client")?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(30))
        .context("list the topics")?;
    let names: Vec<String> = metadata
        .topics()
        .iter()
        .map(|topic| topic.name().to_owned())
        .filter(|name| doomed(name))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    for batch in names.chunks(BATCH) {
        let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
        let results = admin
            .delete_topics(&batch, &options)
            .await
            .context("delete topics")?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => anyhow::bail!("delete topic {topic}: {code}"),
            }
        }
    }
    Ok(names.len())
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
