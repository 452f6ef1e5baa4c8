//! Messaging over Kafka: the only crate in Contrail that talks to the broker.
//!
//! - [`outbox`]: [`outbox::enqueue`] writes a message in the caller's
//!   transaction; [`outbox::OutboxRelay`] publishes committed messages;
//! - [`consumer`]: [`consumer::Consumer`] applies each message effectively
//!   once through the inbox, with retries and dead letters;
//! - [`participant`]: the kit a service applies its messages with —
//!   handlers registered per message type with their payload type, decoded
//!   once, replies to the saga through one helper, an after-commit hook;
//! - [`stream`]: [`stream::RecordStream`], a plain record stream whose
//!   offsets the caller commits once its own effect is durable (the data
//!   lake's files), and the hand-over of positions to a group;
//! - [`dead_letters`]: parked messages, listed and replayed over HTTP and CLI;
//! - [`topics`]: topic bootstrap;
//! - [`KafkaSettings`]: the `[kafka]` section each service embeds in its settings;
//! - [`BrokerReadiness`]: the readiness check for `/health/ready`.
//!
//! The tables live in each service's own schema, created by [`MIGRATOR`],
//! which services compose with their own migrations.

pub mod consumer;
pub mod dead_letters;
pub mod outbox;
pub mod participant;
pub mod producer;
mod settings;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topics;
mod trace_context;

mod wiring;

pub use consumer::{Consumer, HandlerError, Incoming, MessageHandler};
pub use outbox::{enqueue, enqueue_event, OutboxRelay};
pub use participant::{Delivery, Handles, Participant};
pub use producer::Producer;
pub use settings::{BrokerReadiness, ConsumerSettings, KafkaSettings, RelaySettings};
pub use wiring::{Backbone, MessagingCommand};

/// The outbox, inbox and dead-letter tables (migrations 1000+).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
