//! The flight aggregate: pure domain logic, no I/O, no async, no database.
//!
//! A flight is event-sourced. Its state is not stored; it is the left fold of
//! its events over [`Flight::default()`], the flight that has not been
//! scheduled yet. Changing a flight is two steps:
//!
//! 1. **Decide.** A command (`hold_seats`, `change_fare`, …) looks at the
//!    current state and either refuses with a [`FlightError`] or returns the
//!    events that record what happened: `Ok(vec![])` when there is nothing to
//!    do, one event usually, several when one decision has several
//!    consequences (cancelling a flight releases its holds, then cancels it).
//!    Deciders take `&self`: deciding never changes anything.
//! 2. **Apply.** Each event is folded into the state with [`Flight::apply`].
//!    An event is a fact that has already happened and been stored, so apply
//!    never fails, never validates and never panics; it is total even over a
//!    sequence no decider would produce, because the log is read back years
//!    later by code that did not write it. All the rules live in the deciders.
//!
//! The caller (the command handler) loads the flight, decides, appends the
//! events with the version it loaded (optimistic concurrency settles races
//! between two deciders), and only then applies them. Replaying the same
//! events into `Flight::default()` gives the same state as applying them live
//! — the property the tests check after every step of random command
//! sequences, and the reason snapshots and read models can be rebuilt.
//!
//! **Idempotency.** Commands reach this service over an at-least-once broker,
//! and the saga retries a step whose reply it did not see. The inbox drops a
//! redelivered *message*, but a retry is a new message carrying the same
//! intent. So seat commands name their hold with a caller-chosen `hold_id`:
//! holding the same hold again, releasing a released hold or confirming a
//! confirmed one decides no events, and the caller can answer the retry with
//! the same reply as the original. The same holds for status, fare, position
//! and cancellation commands: asking for the state the flight is already in
//! is a success that changes nothing.
//!
//! **Time is an argument.** Deciders that depend on the clock take `now`
//! instead of reading it. A decision is then a pure function of state,
//! command and time: tests say exactly when a hold lapses without sleeping
//! or mocking a clock, and the same inputs always decide the same events.
//! Events record the resulting instants (`expires_at`), never "now", so
//! replaying them later decides nothing anew.
//!
//! Parts:
//! - [`events`]: [`FlightEvent`], the facts of a flight's life;
//! - [`flight`]: [`Flight`], the state, its `apply` and the queries on it;
//! - [`decide`]: the commands and the deciders that turn them into events;
//! - [`status`]: [`FlightStatus`] and its transition table;
//! - [`values`]: validated values ([`FlightNumber`], [`AirportCode`]);
//! - [`error`]: [`FlightError`], why a command was refused.

pub mod decide;
pub mod error;
pub mod events;
pub mod flight;
pub mod status;
pub mod values;

#[cfg(test)]
mod proptests;

pub use decide::{HoldSeats, ReportPosition, ScheduleFlight};
pub use error::FlightError;
pub use events::{FlightEvent, ReleaseReason};
pub use flight::{Availability, Flight, Hold, HoldState, Position, ScheduledFlight};
pub use status::FlightStatus;
pub use values::{AirportCode, FlightNumber, InvalidValue};
