//! The state of a flight, the fold that builds it, and the queries on it.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use contracts::Money;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::decide::MAX_SEATS_PER_HOLD;
use super::error::FlightError;
use super::events::FlightEvent;
use super::status::FlightStatus;
use super::values::{AirportCode, FlightNumber};

/// A flight as its events made it: `Flight::default()` is the flight that has
/// not been scheduled yet, and every event is folded in by [`Flight::apply`].
///
/// It serializes, so that it can be snapshotted: loading a flight is then the
/// latest snapshot plus the events after it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flight {
    scheduled: Option<ScheduledFlight>,
}

/// Everything a flight has once it is scheduled.
///
/// Read-only from outside: the only way to change a flight is an event, and
/// [`Flight`] hands out `&ScheduledFlight` only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledFlight {
    pub id: Uuid,
    pub number: FlightNumber,
    pub origin: AirportCode,
    pub destination: AirportCode,
    pub departure: DateTime<Utc>,
    pub arrival: DateTime<Utc>,
    pub capacity: u32,
    /// The current per-seat fare; a hold locks the fare of its moment.
    pub fare: Money,
    /// `Cancelled` is the cancelled flag: nothing leaves it.
    pub status: FlightStatus,
    pub cancellation_reason: Option<String>,
    /// Every hold ever made, by hold id, in whatever state it ended. Settled
    /// holds are kept so that a retried command finds its earlier outcome.
    pub holds: BTreeMap<Uuid, Hold>,
    pub last_position: Option<Position>,
}

/// Seats set aside for one booking, and what became of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    pub booking_id: Uuid,
    pub seats: u32,
    /// Per seat, locked when the hold was made.
    pub fare: Money,
    pub total: Money,
    pub expires_at: DateTime<Utc>,
    pub state: HoldState,
}

impl Hold {
    /// Active and not yet past its expiry.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.state == HoldState::Active && now < self.expires_at
    }

    /// Active in the state, but past its expiry: the `HoldExpired` event has
    /// not been decided yet. It no longer counts for confirming or selling.
    pub fn has_lapsed_at(&self, now: DateTime<Utc>) -> bool {
        self.state == HoldState::Active && now >= self.expires_at
    }
}

/// `Active` → `Confirmed` (sold) | `Released` | `Expired`; `Confirmed` → `Released`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// The seats are held: counted in `held`.
    Active,
    /// The seats are sold: counted in `sold`.
    Confirmed,
    /// The seats went back to inventory on request.
    Released,
    /// The hold lapsed unconfirmed and its seats went back to inventory.
    Expired,
}

impl fmt::Display for HoldState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HoldState::Active => "active",
            HoldState::Confirmed => "confirmed",
            HoldState::Released => "released",
            HoldState::Expired => "expired",
        })
    }
}

/// The last reported position of a flight in the air.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub latitude: f64,
    pub longitude: f64,
    pub altitude_ft: i32,
    pub reported_at: DateTime<Utc>,
}

/// How a flight's seats divide: `available + held + sold == capacity`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    pub capacity: u32,
    pub available: u32,
    pub held: u32,
    pub sold: u32,
}

impl Flight {
    /// The state after `events`, folded from the unscheduled flight.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a FlightEvent>) -> Self {
        let mut flight = Self::default();
        flight.apply_all(events);
        flight
    }

    /// Folds one event into the state.
    ///
    /// Total: it accepts any event in any state and never fails or panics.
    /// An event that makes no sense where it stands (a hold confirmed twice,
    /// anything before `FlightScheduled`, a second `FlightScheduled`) changes
    /// nothing; deciders never produce one, and the log must stay readable
    /// if something else ever did.
    pub fn apply(&mut self, event: &FlightEvent) {
        match &mut self.scheduled {
            Some(flight) => flight.apply(event),
            None => {
                if let FlightEvent::FlightScheduled {
                    flight_id,
                    flight_number,
                    origin,
                    destination,
                    departure,
                    arrival,
                    capacity,
                    fare,
                } = event
                {
                    self.scheduled = Some(ScheduledFlight {
                        id: *flight_id,
                        number: flight_number.clone(),
                        origin: origin.clone(),
                        destination: destination.clone(),
                        departure: *departure,
                        arrival: *arrival,
                        capacity: *capacity,
                        fare: *fare,
                        status: FlightStatus::Scheduled,
                        cancellation_reason: None,
                        holds: BTreeMap::new(),
                        last_position: None,
                    });
                }
            }
        }
    }

    pub fn apply_all<'a>(&mut self, events: impl IntoIterator<Item = &'a FlightEvent>) {
        for event in events {
            self.apply(event);
        }
    }

    /// The flight, once scheduled.
    pub fn scheduled(&self) -> Option<&ScheduledFlight> {
        self.scheduled.as_ref()
    }

    pub(super) fn require_scheduled(&self) -> Result<&ScheduledFlight, FlightError> {
        self.scheduled.as_ref().ok_or(FlightError::NotScheduled)
    }

    pub fn status(&self) -> Option<FlightStatus> {
        self.scheduled.as_ref().map(|flight| flight.status)
    }

    pub fn hold(&self, hold_id: Uuid) -> Option<&Hold> {
        self.scheduled.as_ref()?.holds.get(&hold_id)
    }

    /// Capacity, available, held and sold seats; all zero before scheduling.
    ///
    /// Held counts every active hold, including one past its expiry whose
    /// `HoldExpired` has not been decided yet: the state only changes through
    /// events. Deciders look past such lapsed holds, so they never cost a sale.
    pub fn availability(&self) -> Availability {
        self.scheduled
            .as_ref()
            .map(ScheduledFlight::availability)
            .unwrap_or_default()
    }

    /// The price of `seats` seats at the current fare, as a hold made now
    /// would lock it. Does not check that the seats are available.
    pub fn quote(&self, seats: u32) -> Result<Money, FlightError> {
        let flight = self.require_scheduled()?;
        if !(1..=MAX_SEATS_PER_HOLD).contains(&seats) {
            return Err(FlightError::invalid(
                "seats",
                format!("must be between 1 and {MAX_SEATS_PER_HOLD}"),
            ));
        }
        if !flight.status.is_open_for_sale() {
            return Err(FlightError::FlightClosed {
                status: flight.status,
            });
        }
        flight
            .fare
            .times(seats)
            .map_err(|error| FlightError::invalid("seats", error))
    }
}

impl ScheduledFlight {
    fn apply(&mut self, event: &FlightEvent) {
        match event {
            FlightEvent::FlightScheduled { .. } => {}
            FlightEvent::FareIncreased { to, .. } | FlightEvent::FareDecreased { to, .. } => {
                self.fare = *to;
            }
            FlightEvent::SeatsHeld {
                hold_id,
                booking_id,
                seats,
                fare,
                total,
                expires_at,
            } => {
                self.holds.entry(*hold_id).or_insert(Hold {
                    booking_id: *booking_id,
                    seats: *seats,
                    fare: *fare,
                    total: *total,
                    expires_at: *expires_at,
                    state: HoldState::Active,
                });
            }
            FlightEvent::SeatsReleased { hold_id, .. } => {
                self.settle(
                    *hold_id,
                    &[HoldState::Active, HoldState::Confirmed],
                    HoldState::Released,
                );
            }
            FlightEvent::SeatsConfirmed { hold_id, .. } => {
                self.settle(*hold_id, &[HoldState::Active], HoldState::Confirmed);
            }
            FlightEvent::HoldExpired { hold_id, .. } => {
                self.settle(*hold_id, &[HoldState::Active], HoldState::Expired);
            }
            FlightEvent::FlightStatusChanged { to, .. } => self.status = *to,
            FlightEvent::PositionReported {
                latitude,
                longitude,
                altitude_ft,
                reported_at,
            } => {
                self.last_position = Some(Position {
                    latitude: *latitude,
                    longitude: *longitude,
                    altitude_ft: *altitude_ft,
                    reported_at: *reported_at,
                });
            }
            FlightEvent::FlightCancelled { reason } => {
                self.status = FlightStatus::Cancelled;
                self.cancellation_reason = Some(reason.clone());
            }
        }
    }

    /// Moves a hold to `to` if it is in one of the `from` states.
    fn settle(&mut self, hold_id: Uuid, from: &[HoldState], to: HoldState) {
        if let Some(hold) = self.holds.get_mut(&hold_id) {
            if from.contains(&hold.state) {
                hold.state = to;
            }
        }
    }

    /// Holds that still hold seats in the state.
    pub fn active_holds(&self) -> impl Iterator<Item = (Uuid, &Hold)> {
        self.holds
            .iter()
            .filter(|(_, hold)| hold.state == HoldState::Active)
            .map(|(id, hold)| (*id, hold))
    }

    /// Seats in active holds.
    pub fn held(&self) -> u32 {
        self.seats_in(HoldState::Active)
    }

    /// Seats in confirmed holds.
    pub fn sold(&self) -> u32 {
        self.seats_in(HoldState::Confirmed)
    }

    /// `capacity - held - sold`.
    pub fn available(&self) -> u32 {
        self.capacity
            .saturating_sub(self.held().saturating_add(self.sold()))
    }

    pub fn availability(&self) -> Availability {
        Availability {
            capacity: self.capacity,
            available: self.available(),
            held: self.held(),
            sold: self.sold(),
        }
    }

    fn seats_in(&self, state: HoldState) -> u32 {
        self.holds
            .values()
            .filter(|hold| hold.state == state)
            .fold(0, |total, hold| total.saturating_add(hold.seats))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};
    use contracts::Currency;

    use super::*;
    use crate::domain::events::ReleaseReason;

    fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::Usd).unwrap()
    }

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 5, 1, 9, minute, 0).unwrap()
    }

    fn scheduled() -> FlightEvent {
        FlightEvent::FlightScheduled {
            flight_id: Uuid::from_u128(1),
            flight_number: FlightNumber::parse("CT123").unwrap(),
            origin: AirportCode::parse("ICN").unwrap(),
            destination: AirportCode::parse("JFK").unwrap(),
            departure: at(0) + TimeDelta::days(7),
            arrival: at(0) + TimeDelta::days(7) + TimeDelta::hours(13),
            capacity: 10,
            fare: usd("199"),
        }
    }

    fn held(hold: u128, seats: u32) -> FlightEvent {
        FlightEvent::SeatsHeld {
            hold_id: Uuid::from_u128(hold),
            booking_id: Uuid::from_u128(100 + hold),
            seats,
            fare: usd("199"),
            total: usd("199").times(seats).unwrap(),
            expires_at: at(15),
        }
    }

    #[test]
    fn the_default_flight_is_not_scheduled_and_has_no_seats() {
        let flight = Flight::default();
        assert!(flight.scheduled().is_none());
        assert_eq!(flight.status(), None);
        assert_eq!(flight.availability(), Availability::default());
        assert_eq!(flight.quote(1), Err(FlightError::NotScheduled));
    }

    #[test]
    fn scheduling_sets_the_route_times_capacity_and_fare() {
        let flight = Flight::replay(&[scheduled()]);
        let details = flight.scheduled().unwrap();
        assert_eq!(details.id, Uuid::from_u128(1));
        assert_eq!(details.number.as_str(), "CT123");
        assert_eq!(
            (details.origin.as_str(), details.destination.as_str()),
            ("ICN", "JFK")
        );
        assert_eq!(details.status, FlightStatus::Scheduled);
        assert_eq!(details.fare, usd("199"));
        assert_eq!(
            flight.availability(),
            Availability {
                capacity: 10,
                available: 10,
                held: 0,
                sold: 0
            }
        );
    }

    #[test]
    fn holds_move_seats_between_available_held_and_sold() {
        let mut flight = Flight::replay(&[scheduled(), held(1, 2), held(2, 3), held(3, 1)]);
        assert_eq!(
            flight.availability(),
            Availability {
                capacity: 10,
                available: 4,
                held: 6,
                sold: 0
            }
        );
        flight.apply(&FlightEvent::SeatsConfirmed {
            hold_id: Uuid::from_u128(1),
            seats: 2,
        });
        flight.apply(&FlightEvent::HoldExpired {
            hold_id: Uuid::from_u128(2),
            seats: 3,
        });
        flight.apply(&FlightEvent::SeatsReleased {
            hold_id: Uuid::from_u128(3),
            seats: 1,
            reason: ReleaseReason::BookingFailed,
        });
        assert_eq!(
            flight.availability(),
            Availability {
                capacity: 10,
                available: 8,
                held: 0,
                sold: 2
            }
        );
        let states: Vec<_> = flight
            .scheduled()
            .unwrap()
            .holds
            .values()
            .map(|h| h.state)
            .collect();
        assert_eq!(
            states,
            [
                HoldState::Confirmed,
                HoldState::Expired,
                HoldState::Released
            ]
        );

        // Releasing a sale returns its seats.
        flight.apply(&FlightEvent::SeatsReleased {
            hold_id: Uuid::from_u128(1),
            seats: 2,
            reason: ReleaseReason::BookingCancelled,
        });
        assert_eq!(flight.availability().available, 10);
    }

    #[test]
    fn fare_changes_set_the_current_fare_but_not_the_locked_one() {
        let mut flight = Flight::replay(&[scheduled(), held(1, 2)]);
        flight.apply(&FlightEvent::FareIncreased {
            from: usd("199"),
            to: usd("250"),
        });
        assert_eq!(flight.scheduled().unwrap().fare, usd("250"));
        assert_eq!(flight.hold(Uuid::from_u128(1)).unwrap().fare, usd("199"));
        flight.apply(&FlightEvent::FareDecreased {
            from: usd("250"),
            to: usd("99.99"),
        });
        assert_eq!(flight.quote(2), Ok(usd("199.98")));
    }

    #[test]
    fn status_position_and_cancellation_are_recorded() {
        let mut flight = Flight::replay(&[scheduled()]);
        flight.apply(&FlightEvent::FlightStatusChanged {
            from: FlightStatus::Scheduled,
            to: FlightStatus::Boarding,
        });
        assert_eq!(flight.status(), Some(FlightStatus::Boarding));
        let position = Position {
            latitude: 37.5,
            longitude: 126.25,
            altitude_ft: 12_000,
            reported_at: at(30),
        };
        flight.apply(&FlightEvent::PositionReported {
            latitude: position.latitude,
            longitude: position.longitude,
            altitude_ft: position.altitude_ft,
            reported_at: position.reported_at,
        });
        assert_eq!(flight.scheduled().unwrap().last_position, Some(position));
        flight.apply(&FlightEvent::FlightCancelled {
            reason: "typhoon".to_owned(),
        });
        assert_eq!(flight.status(), Some(FlightStatus::Cancelled));
        assert_eq!(
            flight.scheduled().unwrap().cancellation_reason.as_deref(),
            Some("typhoon")
        );
    }

    #[test]
    fn apply_is_total_over_sequences_no_decider_produces() {
        let confirm = FlightEvent::SeatsConfirmed {
            hold_id: Uuid::from_u128(1),
            seats: 2,
        };
        // Anything before scheduling is ignored.
        let flight = Flight::replay(&[held(1, 2), confirm.clone()]);
        assert_eq!(flight, Flight::default());

        let mut flight = Flight::replay(&[scheduled(), held(1, 2)]);
        let before = flight.clone();
        // A second schedule, a duplicate hold, unknown holds: no change.
        flight.apply_all(&[
            scheduled(),
            held(1, 9),
            FlightEvent::HoldExpired {
                hold_id: Uuid::from_u128(7),
                seats: 1,
            },
        ]);
        assert_eq!(flight, before);
        // Settled holds do not move again, except a sale back to inventory.
        flight.apply_all(&[confirm.clone(), confirm, held(2, 1)]);
        flight.apply(&FlightEvent::HoldExpired {
            hold_id: Uuid::from_u128(1),
            seats: 2,
        });
        assert_eq!(
            flight.hold(Uuid::from_u128(1)).unwrap().state,
            HoldState::Confirmed
        );

        // Absurd numbers saturate instead of overflowing.
        flight.apply_all(&[held(3, u32::MAX), held(4, u32::MAX)]);
        let availability = flight.availability();
        assert_eq!((availability.available, availability.held), (0, u32::MAX));
    }

    #[test]
    fn the_state_round_trips_through_a_snapshot() {
        let mut flight = Flight::replay(&[scheduled(), held(1, 2), held(2, 1)]);
        flight.apply(&FlightEvent::SeatsConfirmed {
            hold_id: Uuid::from_u128(2),
            seats: 1,
        });
        let snapshot = serde_json::to_value(&flight).unwrap();
        assert_eq!(serde_json::from_value::<Flight>(snapshot).unwrap(), flight);
        let empty = serde_json::to_value(Flight::default()).unwrap();
        assert_eq!(
            serde_json::from_value::<Flight>(empty).unwrap(),
            Flight::default()
        );
    }
}
