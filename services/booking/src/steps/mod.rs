//! The booking saga, step by step. Read in this order:
//!
//! - [`itinerary`]: the steps as a type ([`BookingStep`]), their policies
//!   (from settings) and the forward itinerary, hardest to undo last;
//! - [`variables`]: what the saga carries ([`BookingVariables`]) and what its
//!   steps returned, read back with their types ([`HeldSeats`], …);
//! - [`commands`]: each step as the command its participant receives;
//! - [`replies`]: each participant's reply as the outcome of the step it
//!   answers, and the consumer that feeds them to the orchestrator;
//! - [`cancellation`]: who cancelled, and what that means for released seats;
//! - [`status`]: what booking mirrors when the slip changes.
//!
//! ```text
//! HoldSeats ──► TakePayment ──► ConfirmBooking ──► SendConfirmation
//! (ReleaseSeats)   (Refund)       pivot              retriable
//! ```

pub mod cancellation;
pub mod commands;
pub mod itinerary;
pub mod replies;
pub mod status;
pub mod variables;

use futures::future::BoxFuture;
use saga::{Action, RoutingSlip, SagaStatus, StepExecutor};
use sqlx::PgConnection;

pub use cancellation::{cancellation, Canceller};
pub use itinerary::{BookingStep, SagaSettings, SAGA_TYPE};
pub use replies::SagaReplies;
pub use status::STATUS_CHANNEL;
pub use variables::{BookingVariables, HeldSeats};

/// The booking saga's side of the orchestrator: sends each step's command
/// and mirrors the slip's outcome on the booking.
#[derive(Debug, Clone, Default)]
pub struct BookingSteps;

impl StepExecutor for BookingSteps {
    type Step = BookingStep;

    fn execute<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        slip: &'a RoutingSlip,
        step: BookingStep,
        action: &'a Action,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(commands::send(conn, slip, step, action))
    }

    fn on_change<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        _previous: SagaStatus,
        slip: &'a RoutingSlip,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(status::mirror(conn, slip))
    }
}
