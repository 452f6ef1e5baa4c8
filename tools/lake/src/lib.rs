//! Contrail's data lake: a read-only copy of every domain event, as Parquet,
//! with SQL over it. Never a system of record: no service reads it, nothing
//! updates it in place, and it can be rebuilt from the topics at any time.
//!
//! - [`tables`]: the tables (one per `*.events` topic), their Arrow
//!   schemas, and each event contract as a row;
//! - [`store`]: where files go (`object_store`; a local directory by
//!   default), put whole so no reader sees half a file;
//! - [`writer`]: the consumer group that writes files, then commits offsets;
//! - [`health`]: the writer's liveness for probes;
//! - [`query`]: DataFusion over the files, deduplicated by message id;
//! - [`verify`]: the lake against what each service's schema recorded;
//! - [`rebuild`]: the lake again from the beginning of the topics.
//!
//! The layout, the schema and example queries are in `docs/lake.md`.

pub mod health;
pub mod query;
pub mod rebuild;
pub mod store;
pub mod tables;
pub mod verify;
pub mod writer;

pub use store::LakeStore;
pub use writer::{LakeWriter, WriterSettings};
