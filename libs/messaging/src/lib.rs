//! Messaging over Kafka: the only crate in Contrail that talks to the broker.
//!
//! Services describe the broker with [`KafkaSettings`] and see typed
//! envelopes; rdkafka never leaks out of this crate.

mod settings;

pub use service_kit::settings::KafkaSettings;
pub use settings::BrokerReadiness;
