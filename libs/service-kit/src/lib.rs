//! The one bootstrap every Contrail service uses.
//!
//! A service is a library that describes itself with [`Service`] and hands
//! service-kit a [`ServiceApp`]: its router, its readiness checks and its
//! background workers. service-kit owns everything around that:
//!
//! - [`admission`]: the waiting room, a bounded FIFO queue in front of chosen routes;
//!   [`backlog`]: a gate that refuses new work while the work already taken is stuck;
//! - [`auth`]: bearer tokens verified once: who calls ([`auth::Caller`]) and what they may do;
//! - [`settings`]: typed, layered configuration (defaults → file → environment);
//! - [`telemetry`]: JSON/pretty logs, OpenTelemetry export when configured;
//!   [`json_log`]: log lines that carry the fields of every span they are in;
//!   [`trace_context`]: W3C trace context kept as data (headers, saga rows);
//! - [`problem`]: the one error vocabulary, rendered as RFC 9457 problem+json;
//! - [`extract`]: `Json`/`Path`/`Query` extractors whose rejections are problems,
//!   the `Idempotency-Key` header and the `limit` of a paged list;
//! - [`http`]: the middleware stack, health and metrics endpoints;
//! - [`routes`]: a router that records its `(method, path)` pairs, and the
//!   `/openapi.json` route;
//! - [`db`]: connection pools, migrations and schema/role provisioning;
//! - [`partitions`]: monthly range partitions on a UUIDv7 key, created ahead;
//! - [`runtime`]: binding, serving, workers and graceful shutdown;
//! - [`cli`]: the `serve` / `migrate` command line shared by every service;
//! - [`wakeup`]: waking a worker in the same process without `NOTIFY`.

pub mod admission;
pub mod auth;
pub mod backlog;
pub mod cli;
pub mod db;
pub mod extract;
pub mod http;
pub mod json_log;
pub mod metrics;
pub mod partitions;
pub mod pool_metrics;
pub mod problem;
pub mod routes;
pub mod runtime;
pub mod settings;
pub mod telemetry;
pub mod trace_context;
pub mod wakeup;

pub use extract::{IdempotencyKey, Json, PageLimit, Path, Query};
pub use problem::{ApiError, ErrorCode};
pub use routes::{Route, Routes};
pub use runtime::{
    shutdown_signal, BoundService, ReadinessCheck, Service, ServiceApp, WorkerContext,
};
