use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use service_kit::settings::KafkaSettings;
use service_kit::ReadinessCheck;

/// A client configuration with the bootstrap servers set.
pub(crate) fn client_config(settings: &KafkaSettings, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("client.id", client_id);
    config
}

/// Readiness: the broker answers a metadata request.
#[derive(Clone)]
pub struct BrokerReadiness {
    client: Arc<BaseConsumer>,
}

impl std::fmt::Debug for BrokerReadiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerReadiness").finish_non_exhaustive()
    }
}

impl BrokerReadiness {
    pub fn new(settings: &KafkaSettings, client_id: &str) -> anyhow::Result<Self> {
        let client: BaseConsumer = client_config(settings, client_id)
            .create()
            .context("create the broker readiness client")?;
        Ok(Self {
            client: Arc::new(client),
        })
    }
}

impl ReadinessCheck for BrokerReadiness {
    fn name(&self) -> &'static str {
        "broker"
    }

    fn check(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        let client = Arc::clone(&self.client);
        Box::pin(async move {
            // fetch_metadata blocks its thread until the broker answers or the timeout passes.
            tokio::task::spawn_blocking(move || {
                client
                    .fetch_metadata(None, Duration::from_millis(1500))
                    .map(|_| ())
                    .context("fetch broker metadata")
            })
            .await
            .context("join the metadata request")?
        })
    }
}
