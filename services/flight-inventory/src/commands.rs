//! Seat commands over Kafka (`inventory.commands`, keyed by flight id), the
//! saga's way of changing inventory. Each is applied in the consumer's
//! transaction — inbox row, flight events, their outbox messages and the
//! reply commit together — and answered on `booking.saga-replies`.
//!
//! A refusal (sold out, flight closed, hold no longer active) is an answer,
//! not a failure: it commits with its reply and the saga compensates. Only
//! unexpected failures (the database) are retried and, in the end, parked.
//!
//! A flight a command changed has its cached views invalidated once the
//! consumer's transaction has committed ([`CommittedFlights`]).

use chrono::{TimeDelta, Utc};
use contracts::inventory::{
    CommandRefused, ConfirmSeats, HoldSeats, Refusal, ReleaseSeats, SeatsConfirmed, SeatsHeld,
    SeatsReleased,
};
use contracts::saga::StepRef;
use messaging::{Delivery, HandlerError, Handles, Participant};
use uuid::Uuid;

use crate::domain::decide;
use crate::domain::error::FlightError;
use crate::read_cache::CommittedFlights;
use crate::store::{CommandError, Decided, FlightStore};

/// The consumer's name: its consumer group and its inbox key.
pub const CONSUMER: &str = "flight-inventory.seat-commands";

#[derive(Debug, Clone)]
pub struct SeatCommands {
    pub store: FlightStore,
    pub hold_ttl: TimeDelta,
    /// Flights changed in transactions the read cache waits to see commit.
    pub changed: CommittedFlights,
}

impl SeatCommands {
    /// The seat commands, as the consumer applies them. After each commit
    /// the changed flights' cached views are invalidated and the event
    /// store's subscribers (the search projection) are woken.
    pub fn participant(self) -> Participant<Self> {
        let store = self.store.clone();
        let changed = self.changed.clone();
        Participant::new(self)
            .on::<HoldSeats>()
            .on::<ReleaseSeats>()
            .on::<ConfirmSeats>()
            .after_commit(move || {
                let store = store.clone();
                let changed = changed.clone();
                async move {
                    if store.cache().is_enabled() {
                        changed
                            .invalidate_committed(store.events().pool(), store.cache())
                            .await;
                    }
                    store.notify_appended().await
                }
            })
    }

    /// Records a decision that appended events, for invalidation after the commit.
    async fn changed<R>(
        &self,
        delivery: &mut Delivery<'_>,
        flight_id: Uuid,
        decided: &Decided<R>,
    ) -> Result<(), HandlerError> {
        if decided.appended == 0 || !self.store.cache().is_enabled() {
            return Ok(());
        }
        self.changed
            .record(delivery.conn, flight_id)
            .await
            .map_err(HandlerError::Transient)
    }
}

impl Handles<HoldSeats> for SeatCommands {
    async fn handle(
        &self,
        mut delivery: Delivery<'_>,
        command: HoldSeats,
    ) -> Result<(), HandlerError> {
        let hold = decide::HoldSeats {
            hold_id: command.hold_id,
            booking_id: command.booking_id,
            seats: command.seats,
            hold_ttl: self.hold_ttl,
        };
        let now = Utc::now();
        let decided = self
            .store
            .decide_in(
                delivery.conn,
                command.flight_id,
                Some(delivery.cause),
                |flight| Ok((flight.hold_seats(hold, now)?, ())),
            )
            .await;
        let decided = match decided {
            Ok(decided) => decided,
            Err(error) => return refuse(delivery, command.step, command.flight_id, error).await,
        };
        self.changed(&mut delivery, command.flight_id, &decided)
            .await?;
        // A retried command decides nothing new; its reply repeats the original's.
        let Some(held) = decided.flight.hold(command.hold_id) else {
            return Err(HandlerError::Transient(anyhow::anyhow!(
                "hold {} missing after it was decided",
                command.hold_id
            )));
        };
        let reply = SeatsHeld {
            step: command.step.clone(),
            flight_id: command.flight_id,
            hold_id: command.hold_id,
            seats: held.seats,
            fare: held.fare,
            total: held.total,
            expires_at: held.expires_at,
        };
        delivery.reply(&command.step, reply).await
    }
}

impl Handles<ReleaseSeats> for SeatCommands {
    async fn handle(
        &self,
        mut delivery: Delivery<'_>,
        command: ReleaseSeats,
    ) -> Result<(), HandlerError> {
        let decided = self
            .store
            .decide_in(
                delivery.conn,
                command.flight_id,
                Some(delivery.cause),
                |flight| {
                    // Nothing to release on a flight that does not exist: the compensation is done.
                    if flight.scheduled().is_none() {
                        return Ok((Vec::new(), ()));
                    }
                    Ok((flight.release_seats(command.hold_id, command.reason)?, ()))
                },
            )
            .await;
        let decided = match decided {
            Ok(decided) => decided,
            Err(error) => return refuse(delivery, command.step, command.flight_id, error).await,
        };
        self.changed(&mut delivery, command.flight_id, &decided)
            .await?;
        let reply = SeatsReleased {
            step: command.step.clone(),
            flight_id: command.flight_id,
            hold_id: command.hold_id,
        };
        delivery.reply(&command.step, reply).await
    }
}

impl Handles<ConfirmSeats> for SeatCommands {
    async fn handle(
        &self,
        mut delivery: Delivery<'_>,
        command: ConfirmSeats,
    ) -> Result<(), HandlerError> {
        let now = Utc::now();
        let decided = self
            .store
            .decide_in(
                delivery.conn,
                command.flight_id,
                Some(delivery.cause),
                |flight| Ok((flight.confirm_seats(command.hold_id, now)?, ())),
            )
            .await;
        let decided = match decided {
            Ok(decided) => decided,
            Err(error) => return refuse(delivery, command.step, command.flight_id, error).await,
        };
        self.changed(&mut delivery, command.flight_id, &decided)
            .await?;
        let reply = SeatsConfirmed {
            step: command.step.clone(),
            flight_id: command.flight_id,
            hold_id: command.hold_id,
        };
        delivery.reply(&command.step, reply).await
    }
}

/// Answers a refused command with why; an unexpected failure is left to the
/// consumer to retry.
async fn refuse(
    mut delivery: Delivery<'_>,
    step: StepRef,
    flight_id: Uuid,
    error: CommandError,
) -> Result<(), HandlerError> {
    let refusal = match error {
        CommandError::Unexpected(error) => return Err(HandlerError::Transient(error)),
        CommandError::Refused(refusal) => refusal,
    };
    tracing::info!(%flight_id, step = step.step, refusal = %refusal, "seat command refused");
    let reply = CommandRefused {
        step: step.clone(),
        flight_id,
        refusal: refusal_of(&refusal),
        detail: refusal.to_string(),
    };
    delivery.reply(&step, reply).await
}

/// How a domain refusal reads to the saga.
fn refusal_of(error: &FlightError) -> Refusal {
    match error {
        FlightError::NotScheduled => Refusal::FlightNotFound,
        FlightError::SoldOut { .. } => Refusal::SoldOut,
        FlightError::FlightClosed { .. }
        | FlightError::NotAirborne { .. }
        | FlightError::InvalidTransition { .. } => Refusal::FlightClosed,
        FlightError::HoldNotActive { .. } | FlightError::HoldNotFound { .. } => {
            Refusal::HoldNotActive
        }
        FlightError::AlreadyScheduled { .. }
        | FlightError::Invalid { .. }
        | FlightError::HoldMismatch { .. }
        | FlightError::CurrencyMismatch { .. } => Refusal::Invalid,
    }
}
