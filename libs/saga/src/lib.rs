//! Orchestrated sagas with a routing slip.
//!
//! - [`slip`]: the [`RoutingSlip`] (itinerary, activity log, compensation
//!   log, variables, status) and the pure state machine that moves it: replies,
//!   timeouts, retries with backoff, deadlines, compensation in reverse,
//!   cancellation and operator retries. No I/O; property-tested.
//! - [`store`]: slips in the owning service's `sagas` table ([`MIGRATOR`]).
//! - [`orchestrator`]: applies inputs under the saga's row lock and has the
//!   service's [`StepExecutor`] write the resulting commands in the same
//!   transaction; runs the timer worker.
//!
//! - [`step`]: steps as types. The owning service names its steps once, as
//!   an enum implementing [`SagaStep`], builds its itinerary from them, is
//!   handed them back by the orchestrator, and reads each step's result
//!   back with its type ([`RoutingSlip::result_of`]).
//!
//! The library knows no step by name: the owning service defines its
//! itinerary, turns steps into commands and replies into [`Reply`]s.

pub mod orchestrator;
pub mod slip;
pub mod step;
pub mod store;

pub use orchestrator::{
    Cancellation, Orchestrator, ReplyOutcome, SagaError, StepExecutor, TimerSettings,
};
pub use slip::{
    Action, Phase, Reply, RetryPolicy, RoutingSlip, SagaStatus, SlipError, StepDefinition,
    StepKind, StepOutcome,
};
pub use step::{ResultError, SagaStep};

/// The `sagas` table (migration 3001), composed into the owning service's migrator.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[cfg(test)]
mod slip_tests;
