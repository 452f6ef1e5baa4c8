//! Commands, and the deciders that turn them into events.
//!
//! Every decider follows the same order, and the order matters:
//!
//! 1. **Validate the command** on its own (`Invalid`): a malformed command is
//!    malformed whatever the flight's state.
//! 2. **Find an earlier outcome** of the same command (the hold id, the
//!    status already reached…) and answer it with no events, *before*
//!    checking whether the command would still be allowed: a retried
//!    `HoldSeats` whose hold exists must succeed even if the flight has sold
//!    out since, because it is the hold that sold it out.
//! 3. **Check the rules** against the state, and decide the events.
//!
//! Commands carry what the caller asked for, unvalidated (strings, raw
//! numbers); events carry validated values. A decider is where one becomes
//! the other.

use chrono::{DateTime, TimeDelta, Utc};
use contracts::Money;
use uuid::Uuid;

use super::error::FlightError;
use super::events::{FlightEvent, ReleaseReason};
use super::flight::{Flight, HoldState, ScheduledFlight};
use super::status::FlightStatus;
use super::values::{AirportCode, FlightNumber};

/// The most seats any aircraft flies (an all-economy A380).
pub const MAX_CAPACITY: u32 = 853;
/// The most seats one booking may hold, as airlines sell them online.
pub const MAX_SEATS_PER_HOLD: u32 = 9;
/// The longest a hold may keep seats from sale.
pub const MAX_HOLD_TTL: TimeDelta = TimeDelta::hours(1);
/// Longer than any scheduled flight; catches a mistyped arrival date.
pub const MAX_FLIGHT_DURATION: TimeDelta = TimeDelta::hours(24);
/// How far a position report may be ahead of our clock.
pub const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);
/// The longest cancellation reason, in characters.
pub const MAX_REASON_LEN: usize = 500;

/// Schedule a new flight. The caller chooses `flight_id`, the id of its stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleFlight {
    pub flight_id: Uuid,
    pub flight_number: String,
    pub origin: String,
    pub destination: String,
    pub departure: DateTime<Utc>,
    pub arrival: DateTime<Utc>,
    pub capacity: u32,
    /// Per seat; must be positive.
    pub fare: Money,
}

/// Hold `seats` seats for `booking_id` for `hold_ttl`. The caller chooses
/// `hold_id` and repeats it on every retry: it is the idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldSeats {
    pub hold_id: Uuid,
    pub booking_id: Uuid,
    pub seats: u32,
    pub hold_ttl: TimeDelta,
}

/// Where the flight is, as its transponder says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportPosition {
    pub latitude: f64,
    pub longitude: f64,
    pub altitude_ft: i32,
    pub reported_at: DateTime<Utc>,
}

impl Flight {
    /// Schedules the flight: the first event of its stream.
    ///
    /// Refused if already scheduled; the route must be two different IATA
    /// airports, the flight number like `CT123`, the departure in the future
    /// and the arrival after it (within a day), the capacity 1 to
    /// [`MAX_CAPACITY`] and the fare positive.
    pub fn schedule(
        &self,
        command: ScheduleFlight,
        now: DateTime<Utc>,
    ) -> Result<Vec<FlightEvent>, FlightError> {
        let ScheduleFlight {
            flight_id,
            flight_number,
            origin,
            destination,
            departure,
            arrival,
            capacity,
            fare,
        } = command;
        if flight_id.is_nil() {
            return Err(FlightError::invalid("flight_id", "must not be nil"));
        }
        let flight_number = FlightNumber::parse(&flight_number)
            .map_err(|error| FlightError::invalid("flight_number", error))?;
        let origin =
            AirportCode::parse(&origin).map_err(|error| FlightError::invalid("origin", error))?;
        let destination = AirportCode::parse(&destination)
            .map_err(|error| FlightError::invalid("destination", error))?;
        if origin == destination {
            return Err(FlightError::invalid(
                "destination",
                "must differ from the origin",
            ));
        }
        if departure <= now {
            return Err(FlightError::invalid("departure", "must be in the future"));
        }
        if arrival <= departure {
            return Err(FlightError::invalid(
                "arrival",
                "must be after the departure",
            ));
        }
        if arrival - departure > MAX_FLIGHT_DURATION {
            return Err(FlightError::invalid(
                "arrival",
                "must be within 24 hours of the departure",
            ));
        }
        if !(1..=MAX_CAPACITY).contains(&capacity) {
            return Err(FlightError::invalid(
                "capacity",
                format!("must be between 1 and {MAX_CAPACITY}"),
            ));
        }
        validate_fare(&fare)?;

        if let Some(existing) = self.scheduled() {
            return Err(FlightError::AlreadyScheduled {
                flight_id: existing.id,
            });
        }
        Ok(vec![FlightEvent::FlightScheduled {
            flight_id,
            flight_number,
            origin,
            destination,
            departure,
            arrival,
            capacity,
            fare,
        }])
    }

    /// Changes the per-seat fare: a `FareIncreased` or a `FareDecreased`, or
    /// nothing if the fare is already `new_fare`. Holds keep the fare they
    /// locked. Only while the flight is open for sale, and in its currency.
    pub fn change_fare(&self, new_fare: Money) -> Result<Vec<FlightEvent>, FlightError> {
        validate_fare(&new_fare)?;
        let flight = self.require_scheduled()?;
        let current = flight.fare;
        if new_fare.currency() != current.currency() {
            return Err(FlightError::CurrencyMismatch {
                expected: current.currency(),
                actual: new_fare.currency(),
            });
        }
        if new_fare == current {
            return Ok(vec![]);
        }
        require_open_for_sale(flight)?;
        let event = if new_fare > current {
            FlightEvent::FareIncreased {
                from: current,
                to: new_fare,
            }
        } else {
            FlightEvent::FareDecreased {
                from: current,
                to: new_fare,
            }
        };
        Ok(vec![event])
    }

    /// Holds seats for a booking at the current fare until `now + hold_ttl`.
    ///
    /// Idempotent on `hold_id`: if the hold already exists for the same
    /// booking and seats, and is still active or already confirmed, no events.
    /// The same id for other seats or another booking is a `HoldMismatch`; an
    /// id whose hold expired or was released is `HoldNotActive` (a new hold
    /// needs a new id).
    ///
    /// Holds past their expiry do not take seats from a new hold: their
    /// `HoldExpired` events are decided first, in the same batch.
    pub fn hold_seats(
        &self,
        command: HoldSeats,
        now: DateTime<Utc>,
    ) -> Result<Vec<FlightEvent>, FlightError> {
        let HoldSeats {
            hold_id,
            booking_id,
            seats,
            hold_ttl,
        } = command;
        if !(1..=MAX_SEATS_PER_HOLD).contains(&seats) {
            return Err(FlightError::invalid(
                "seats",
                format!("must be between 1 and {MAX_SEATS_PER_HOLD}"),
            ));
        }
        if hold_ttl <= TimeDelta::zero() || hold_ttl > MAX_HOLD_TTL {
            return Err(FlightError::invalid(
                "hold_ttl",
                "must be positive and at most an hour",
            ));
        }
        let expires_at = now
            .checked_add_signed(hold_ttl)
            .ok_or_else(|| FlightError::invalid("hold_ttl", "expires out of range"))?;

        let flight = self.require_scheduled()?;
        if let Some(hold) = flight.holds.get(&hold_id) {
            if hold.booking_id != booking_id || hold.seats != seats {
                return Err(FlightError::HoldMismatch { hold_id });
            }
            return match hold.state {
                HoldState::Active if hold.is_active_at(now) => Ok(vec![]),
                HoldState::Confirmed => Ok(vec![]),
                // Active here means lapsed: expired, though not yet recorded.
                HoldState::Active | HoldState::Expired => Err(FlightError::HoldNotActive {
                    hold_id,
                    state: HoldState::Expired,
                }),
                HoldState::Released => Err(FlightError::HoldNotActive {
                    hold_id,
                    state: HoldState::Released,
                }),
            };
        }
        require_open_for_sale(flight)?;

        let mut events = lapsed_holds(flight, now);
        let freed = events.iter().fold(0u32, |freed, event| match event {
            FlightEvent::HoldExpired { seats, .. } => freed.saturating_add(*seats),
            _ => freed,
        });
        let available = flight.available().saturating_add(freed);
        if seats > available {
            return Err(FlightError::SoldOut {
                requested: seats,
                available,
            });
        }
        let fare = flight.fare;
        let total = fare
            .times(seats)
            .map_err(|error| FlightError::invalid("seats", error))?;
        events.push(FlightEvent::SeatsHeld {
            hold_id,
            booking_id,
            seats,
            fare,
            total,
            expires_at,
        });
        Ok(events)
    }

    /// Returns a hold's seats to inventory: an active hold's, or a confirmed
    /// hold's sold seats when a booking is cancelled (not once the flight has
    /// departed: flown seats stay sold).
    ///
    /// Idempotent: an unknown, already released or expired hold decides no
    /// events. A compensation must be able to run whether or not the hold it
    /// undoes ever happened, and however many times it is retried.
    pub fn release_seats(
        &self,
        hold_id: Uuid,
        reason: ReleaseReason,
    ) -> Result<Vec<FlightEvent>, FlightError> {
        let flight = self.require_scheduled()?;
        let Some(hold) = flight.holds.get(&hold_id) else {
            return Ok(vec![]);
        };
        match hold.state {
            HoldState::Released | HoldState::Expired => Ok(vec![]),
            HoldState::Confirmed if flight.status.has_departed() => {
                Err(FlightError::FlightClosed {
                    status: flight.status,
                })
            }
            HoldState::Active | HoldState::Confirmed => Ok(vec![FlightEvent::SeatsReleased {
                hold_id,
                seats: hold.seats,
                reason,
            }]),
        }
    }

    /// Turns an active hold into a sale.
    ///
    /// Idempotent: confirming a confirmed hold decides no events. A hold that
    /// expired (even if its `HoldExpired` is not decided yet) or was released
    /// is `HoldNotActive`; the booking has lost its seats.
    pub fn confirm_seats(
        &self,
        hold_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<FlightEvent>, FlightError> {
        let flight = self.require_scheduled()?;
        let hold = flight
            .holds
            .get(&hold_id)
            .ok_or(FlightError::HoldNotFound { hold_id })?;
        match hold.state {
            HoldState::Confirmed => return Ok(vec![]),
            HoldState::Released | HoldState::Expired => {
                return Err(FlightError::HoldNotActive {
                    hold_id,
                    state: hold.state,
                });
            }
            HoldState::Active if hold.has_lapsed_at(now) => {
                return Err(FlightError::HoldNotActive {
                    hold_id,
                    state: HoldState::Expired,
                });
            }
            HoldState::Active => {}
        }
        if flight.status.has_departed() || flight.status == FlightStatus::Cancelled {
            return Err(FlightError::FlightClosed {
                status: flight.status,
            });
        }
        Ok(vec![FlightEvent::SeatsConfirmed {
            hold_id,
            seats: hold.seats,
        }])
    }

    /// One `HoldExpired` for every active hold whose expiry has passed: the
    /// sweeper's command. Nothing before scheduling.
    pub fn expire_holds(&self, now: DateTime<Utc>) -> Vec<FlightEvent> {
        self.scheduled()
            .map(|flight| lapsed_holds(flight, now))
            .unwrap_or_default()
    }

    /// Moves the flight along its day, following the table in
    /// [`super::status`]. The current status again decides no events;
    /// `Cancelled` is reached only through [`Flight::cancel`].
    pub fn change_status(&self, to: FlightStatus) -> Result<Vec<FlightEvent>, FlightError> {
        let flight = self.require_scheduled()?;
        let from = flight.status;
        if to == FlightStatus::Cancelled || !(from == to || from.can_change_to(to)) {
            return Err(FlightError::InvalidTransition { from, to });
        }
        if from == to {
            return Ok(vec![]);
        }
        Ok(vec![FlightEvent::FlightStatusChanged { from, to }])
    }

    /// Records where the flight is. Only between departure and arrival;
    /// a report no newer than the last one (a duplicate, or one overtaken in
    /// transit) decides no events.
    pub fn report_position(
        &self,
        command: ReportPosition,
        now: DateTime<Utc>,
    ) -> Result<Vec<FlightEvent>, FlightError> {
        let ReportPosition {
            latitude,
            longitude,
            altitude_ft,
            reported_at,
        } = command;
        if !(-90.0..=90.0).contains(&latitude) {
            return Err(FlightError::invalid(
                "latitude",
                "must be between -90 and 90",
            ));
        }
        if !(-180.0..=180.0).contains(&longitude) {
            return Err(FlightError::invalid(
                "longitude",
                "must be between -180 and 180",
            ));
        }
        if !(-2_000..=60_000).contains(&altitude_ft) {
            return Err(FlightError::invalid(
                "altitude_ft",
                "must be between -2000 and 60000",
            ));
        }
        if reported_at > now + MAX_CLOCK_SKEW {
            return Err(FlightError::invalid(
                "reported_at",
                "must not be in the future",
            ));
        }

        let flight = self.require_scheduled()?;
        if flight
            .last_position
            .is_some_and(|last| reported_at <= last.reported_at)
        {
            return Ok(vec![]);
        }
        if flight.status != FlightStatus::Departed {
            return Err(FlightError::NotAirborne {
                status: flight.status,
            });
        }
        Ok(vec![FlightEvent::PositionReported {
            latitude,
            longitude,
            altitude_ft,
            reported_at,
        }])
    }

    /// Cancels the flight: releases every active hold, then records the
    /// cancellation. Sold seats stay sold until each booking's own
    /// cancellation saga releases them. Not once departed; cancelling a
    /// cancelled flight decides no events.
    pub fn cancel(&self, reason: &str) -> Result<Vec<FlightEvent>, FlightError> {
        let reason = reason.trim();
        if reason.is_empty()
            || reason.chars().count() > MAX_REASON_LEN
            || reason.chars().any(char::is_control)
        {
            return Err(FlightError::invalid(
                "reason",
                format!("must be 1 to {MAX_REASON_LEN} printable characters"),
            ));
        }
        let flight = self.require_scheduled()?;
        match flight.status {
            FlightStatus::Cancelled => return Ok(vec![]),
            from if from.has_departed() => {
                return Err(FlightError::InvalidTransition {
                    from,
                    to: FlightStatus::Cancelled,
                });
            }
            _ => {}
        }
        let mut events: Vec<FlightEvent> = flight
            .active_holds()
            .map(|(hold_id, hold)| FlightEvent::SeatsReleased {
                hold_id,
                seats: hold.seats,
                reason: ReleaseReason::FlightCancelled,
            })
            .collect();
        events.push(FlightEvent::FlightCancelled {
            reason: reason.to_owned(),
        });
        Ok(events)
    }
}

fn validate_fare(fare: &Money) -> Result<(), FlightError> {
    if fare.is_zero() {
        return Err(FlightError::invalid("fare", "must be positive"));
    }
    Ok(())
}

fn require_open_for_sale(flight: &ScheduledFlight) -> Result<(), FlightError> {
    if flight.status.is_open_for_sale() {
        Ok(())
    } else {
        Err(FlightError::FlightClosed {
            status: flight.status,
        })
    }
}

fn lapsed_holds(flight: &ScheduledFlight, now: DateTime<Utc>) -> Vec<FlightEvent> {
    flight
        .active_holds()
        .filter(|(_, hold)| hold.has_lapsed_at(now))
        .map(|(hold_id, hold)| FlightEvent::HoldExpired {
            hold_id,
            seats: hold.seats,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use contracts::Currency;

    use super::*;
    use crate::domain::flight::Availability;

    fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::Usd).unwrap()
    }

    /// 2030-05-01 09:00 UTC plus `minutes`.
    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 5, 1, 9, 0, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn schedule_command() -> ScheduleFlight {
        ScheduleFlight {
            flight_id: id(1),
            flight_number: "CT123".to_owned(),
            origin: "ICN".to_owned(),
            destination: "JFK".to_owned(),
            departure: at(0) + TimeDelta::days(7),
            arrival: at(0) + TimeDelta::days(7) + TimeDelta::hours(13),
            capacity: 10,
            fare: usd("199"),
        }
    }

    fn hold_command(hold: u128, seats: u32) -> HoldSeats {
        HoldSeats {
            hold_id: id(hold),
            booking_id: id(100 + hold),
            seats,
            hold_ttl: TimeDelta::minutes(15),
        }
    }

    /// Decides, then applies the events as a command handler would after
    /// appending them, and returns them.
    fn run(
        flight: &mut Flight,
        decide: impl FnOnce(&Flight) -> Result<Vec<FlightEvent>, FlightError>,
    ) -> Vec<FlightEvent> {
        let events = decide(flight).unwrap();
        flight.apply_all(&events);
        events
    }

    fn scheduled_flight() -> Flight {
        let mut flight = Flight::default();
        run(&mut flight, |f| f.schedule(schedule_command(), at(0)));
        flight
    }

    fn flight_in(status: FlightStatus) -> Flight {
        let mut flight = scheduled_flight();
        let path: &[FlightStatus] = match status {
            FlightStatus::Scheduled => &[],
            FlightStatus::Delayed => &[FlightStatus::Delayed],
            FlightStatus::Boarding => &[FlightStatus::Boarding],
            FlightStatus::Departed => &[FlightStatus::Boarding, FlightStatus::Departed],
            FlightStatus::Arrived => &[
                FlightStatus::Boarding,
                FlightStatus::Departed,
                FlightStatus::Arrived,
            ],
            FlightStatus::Cancelled => {
                run(&mut flight, |f| f.cancel("typhoon"));
                &[]
            }
        };
        for to in path {
            run(&mut flight, |f| f.change_status(*to));
        }
        assert_eq!(flight.status(), Some(status));
        flight
    }

    fn invalid_field(error: FlightError) -> &'static str {
        match error {
            FlightError::Invalid { field, .. } => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    // schedule

    #[test]
    fn scheduling_records_the_validated_flight() {
        let events = Flight::default()
            .schedule(schedule_command(), at(0))
            .unwrap();
        let [FlightEvent::FlightScheduled {
            flight_id,
            flight_number,
            capacity,
            fare,
            ..
        }] = events.as_slice()
        else {
            panic!("expected one FlightScheduled, got {events:?}");
        };
        assert_eq!(*flight_id, id(1));
        assert_eq!(flight_number.as_str(), "CT123");
        assert_eq!((*capacity, *fare), (10, usd("199")));
    }

    #[test]
    fn scheduling_twice_is_refused() {
        let flight = scheduled_flight();
        assert_eq!(
            flight.schedule(schedule_command(), at(0)),
            Err(FlightError::AlreadyScheduled { flight_id: id(1) })
        );
    }

    #[test]
    fn scheduling_validates_every_field() {
        type Change = fn(&mut ScheduleFlight);
        let cases: [(&str, Change); 14] = [
            ("flight_id", |c| c.flight_id = Uuid::nil()),
            ("flight_number", |c| c.flight_number = "CT12345".to_owned()),
            ("flight_number", |c| c.flight_number = "ct123".to_owned()),
            ("origin", |c| c.origin = "IC".to_owned()),
            ("origin", |c| c.origin = "icn".to_owned()),
            ("destination", |c| c.destination = "JFK1".to_owned()),
            ("destination", |c| c.destination = "ICN".to_owned()),
            ("departure", |c| c.departure = at(0)),
            ("arrival", |c| c.arrival = c.departure),
            ("arrival", |c| {
                c.arrival = c.departure + TimeDelta::hours(25)
            }),
            ("capacity", |c| c.capacity = 0),
            ("capacity", |c| c.capacity = MAX_CAPACITY + 1),
            ("fare", |c| c.fare = Money::zero(Currency::Usd)),
            ("fare", |c| c.fare = Money::zero(Currency::Krw)),
        ];
        for (field, change) in cases {
            let mut command = schedule_command();
            change(&mut command);
            let error = Flight::default().schedule(command, at(0)).unwrap_err();
            assert_eq!(invalid_field(error), field);
        }
        let mut largest = schedule_command();
        largest.capacity = MAX_CAPACITY;
        assert!(Flight::default().schedule(largest, at(0)).is_ok());
    }

    #[test]
    fn commands_on_an_unscheduled_flight_are_refused() {
        let flight = Flight::default();
        let not_scheduled = Err(FlightError::NotScheduled);
        assert_eq!(flight.change_fare(usd("1")), not_scheduled);
        assert_eq!(flight.hold_seats(hold_command(1, 1), at(0)), not_scheduled);
        assert_eq!(
            flight.release_seats(id(1), ReleaseReason::BookingFailed),
            not_scheduled
        );
        assert_eq!(flight.confirm_seats(id(1), at(0)), not_scheduled);
        assert_eq!(flight.change_status(FlightStatus::Delayed), not_scheduled);
        let position = ReportPosition {
            latitude: 0.0,
            longitude: 0.0,
            altitude_ft: 0,
            reported_at: at(0),
        };
        assert_eq!(flight.report_position(position, at(0)), not_scheduled);
        assert_eq!(flight.cancel("typhoon"), not_scheduled);
        assert_eq!(flight.expire_holds(at(0)), vec![]);
    }

    // change_fare

    #[test]
    fn a_higher_fare_is_an_increase_and_a_lower_one_a_decrease() {
        let mut flight = scheduled_flight();
        let events = run(&mut flight, |f| f.change_fare(usd("249.99")));
        assert_eq!(
            events,
            [FlightEvent::FareIncreased {
                from: usd("199"),
                to: usd("249.99")
            }]
        );
        let events = run(&mut flight, |f| f.change_fare(usd("149")));
        assert_eq!(
            events,
            [FlightEvent::FareDecreased {
                from: usd("249.99"),
                to: usd("149")
            }]
        );
        assert_eq!(flight.quote(2), Ok(usd("298")));
    }

    #[test]
    fn the_same_fare_changes_nothing() {
        let flight = scheduled_flight();
        assert_eq!(flight.change_fare(usd("199.00")), Ok(vec![]));
    }

    #[test]
    fn a_fare_must_be_positive_and_in_the_flights_currency() {
        let flight = scheduled_flight();
        let error = flight.change_fare(Money::zero(Currency::Usd)).unwrap_err();
        assert_eq!(invalid_field(error), "fare");
        let euros = Money::parse("199", Currency::Eur).unwrap();
        assert_eq!(
            flight.change_fare(euros),
            Err(FlightError::CurrencyMismatch {
                expected: Currency::Usd,
                actual: Currency::Eur
            })
        );
    }

    #[test]
    fn the_fare_changes_only_while_open_for_sale() {
        assert!(flight_in(FlightStatus::Delayed)
            .change_fare(usd("1"))
            .is_ok());
        for status in [
            FlightStatus::Boarding,
            FlightStatus::Departed,
            FlightStatus::Arrived,
            FlightStatus::Cancelled,
        ] {
            assert_eq!(
                flight_in(status).change_fare(usd("1")),
                Err(FlightError::FlightClosed { status })
            );
        }
    }

    #[test]
    fn holds_keep_the_fare_they_locked() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 2), at(0)));
        run(&mut flight, |f| f.change_fare(usd("500")));
        let hold = flight.hold(id(1)).unwrap();
        assert_eq!((hold.fare, hold.total), (usd("199"), usd("398")));
        assert_eq!(flight.quote(2), Ok(usd("1000")));
    }

    // hold_seats

    #[test]
    fn holding_seats_locks_the_fare_until_the_hold_expires() {
        let mut flight = scheduled_flight();
        let events = run(&mut flight, |f| f.hold_seats(hold_command(1, 3), at(0)));
        assert_eq!(
            events,
            [FlightEvent::SeatsHeld {
                hold_id: id(1),
                booking_id: id(101),
                seats: 3,
                fare: usd("199"),
                total: usd("597"),
                expires_at: at(15),
            }]
        );
        assert_eq!(
            flight.availability(),
            Availability {
                capacity: 10,
                available: 7,
                held: 3,
                sold: 0
            }
        );
    }

    #[test]
    fn holding_validates_seats_and_ttl() {
        let flight = scheduled_flight();
        for seats in [0, MAX_SEATS_PER_HOLD + 1] {
            let error = flight
                .hold_seats(hold_command(1, seats), at(0))
                .unwrap_err();
            assert_eq!(invalid_field(error), "seats");
        }
        for ttl in [
            TimeDelta::zero(),
            TimeDelta::seconds(-1),
            MAX_HOLD_TTL + TimeDelta::seconds(1),
        ] {
            let command = HoldSeats {
                hold_ttl: ttl,
                ..hold_command(1, 1)
            };
            let error = flight.hold_seats(command, at(0)).unwrap_err();
            assert_eq!(invalid_field(error), "hold_ttl");
        }
    }

    #[test]
    fn holding_more_seats_than_are_left_is_sold_out() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 9), at(0)));
        assert_eq!(
            flight.hold_seats(hold_command(2, 2), at(1)),
            Err(FlightError::SoldOut {
                requested: 2,
                available: 1
            })
        );
        run(&mut flight, |f| f.hold_seats(hold_command(2, 1), at(1)));
        assert_eq!(flight.availability().available, 0);
    }

    #[test]
    fn the_same_hold_again_decides_nothing_even_when_sold_out() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 9), at(0)));
        run(&mut flight, |f| f.hold_seats(hold_command(2, 1), at(0)));
        assert_eq!(flight.hold_seats(hold_command(1, 9), at(5)), Ok(vec![]));
        run(&mut flight, |f| f.confirm_seats(id(1), at(5)));
        assert_eq!(flight.hold_seats(hold_command(1, 9), at(20)), Ok(vec![]));
    }

    #[test]
    fn the_same_hold_id_for_other_seats_or_booking_is_a_mismatch() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 2), at(0)));
        let mismatch = Err(FlightError::HoldMismatch { hold_id: id(1) });
        assert_eq!(flight.hold_seats(hold_command(1, 3), at(0)), mismatch);
        let other_booking = HoldSeats {
            booking_id: id(999),
            ..hold_command(1, 2)
        };
        assert_eq!(flight.hold_seats(other_booking, at(0)), mismatch);
    }

    #[test]
    fn a_hold_id_whose_hold_ended_cannot_hold_again() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 2), at(0)));
        // Lapsed, but not yet expired by the sweeper.
        assert_eq!(
            flight.hold_seats(hold_command(1, 2), at(15)),
            Err(FlightError::HoldNotActive {
                hold_id: id(1),
                state: HoldState::Expired
            })
        );
        run(&mut flight, |f| f.hold_seats(hold_command(2, 1), at(0)));
        run(&mut flight, |f| {
            f.release_seats(id(2), ReleaseReason::BookingFailed)
        });
        assert_eq!(
            flight.hold_seats(hold_command(2, 1), at(1)),
            Err(FlightError::HoldNotActive {
                hold_id: id(2),
                state: HoldState::Released
            })
        );
    }

    #[test]
    fn lapsed_holds_are_expired_before_they_cost_a_sale() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 6), at(0)));
        run(&mut flight, |f| f.hold_seats(hold_command(2, 4), at(10)));
        assert!(matches!(
            flight.hold_seats(hold_command(3, 5), at(14)),
            Err(FlightError::SoldOut { available: 0, .. })
        ));
        // Hold 1 lapsed at minute 15; nobody has expired it yet.
        let events = run(&mut flight, |f| f.hold_seats(hold_command(3, 5), at(15)));
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0],
            FlightEvent::HoldExpired {
                hold_id: id(1),
                seats: 6
            }
        );
        assert!(matches!(events[1], FlightEvent::SeatsHeld { seats: 5, .. }));
        assert_eq!(
            flight.availability(),
            Availability {
                capacity: 10,
                available: 1,
                held: 9,
                sold: 0
            }
        );
    }

    #[test]
    fn seats_are_held_only_while_open_for_sale() {
        assert!(flight_in(FlightStatus::Delayed)
            .hold_seats(hold_command(1, 1), at(0))
            .is_ok());
        for status in [
            FlightStatus::Boarding,
            FlightStatus::Departed,
            FlightStatus::Arrived,
            FlightStatus::Cancelled,
        ] {
            assert_eq!(
                flight_in(status).hold_seats(hold_command(1, 1), at(0)),
                Err(FlightError::FlightClosed { status })
            );
        }
    }

    // release_seats

    #[test]
    fn releasing_a_hold_frees_its_seats() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 4), at(0)));
        let events = run(&mut flight, |f| {
            f.release_seats(id(1), ReleaseReason::BookingFailed)
        });
        assert_eq!(
            events,
            [FlightEvent::SeatsReleased {
                hold_id: id(1),
                seats: 4,
                reason: ReleaseReason::BookingFailed
            }]
        );
        assert_eq!(flight.availability().available, 10);
        assert_eq!(flight.hold(id(1)).unwrap().state, HoldState::Released);
    }

    #[test]
    fn releasing_is_idempotent() {
        let mut flight = scheduled_flight();
        let reason = ReleaseReason::BookingFailed;
        assert_eq!(flight.release_seats(id(42), reason), Ok(vec![]));
        run(&mut flight, |f| f.hold_seats(hold_command(1, 4), at(0)));
        run(&mut flight, |f| f.release_seats(id(1), reason));
        assert_eq!(flight.release_seats(id(1), reason), Ok(vec![]));
        run(&mut flight, |f| f.hold_seats(hold_command(2, 1), at(0)));
        run(&mut flight, |f| Ok(f.expire_holds(at(15))));
        assert_eq!(flight.release_seats(id(2), reason), Ok(vec![]));
    }

    #[test]
    fn releasing_a_confirmed_hold_returns_sold_seats_until_departure() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 3), at(0)));
        run(&mut flight, |f| f.confirm_seats(id(1), at(1)));
        assert_eq!(flight.availability().sold, 3);
        let events = run(&mut flight, |f| {
            f.release_seats(id(1), ReleaseReason::BookingCancelled)
        });
        assert_eq!(events.len(), 1);
        assert_eq!(
            flight.availability(),
            Availability {
                capacity: 10,
                available: 10,
                held: 0,
                sold: 0
            }
        );

        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 3), at(0)));
        run(&mut flight, |f| f.confirm_seats(id(1), at(1)));
        run(&mut flight, |f| f.change_status(FlightStatus::Boarding));
        run(&mut flight, |f| f.change_status(FlightStatus::Departed));
        assert_eq!(
            flight.release_seats(id(1), ReleaseReason::BookingCancelled),
            Err(FlightError::FlightClosed {
                status: FlightStatus::Departed
            })
        );
    }

    // confirm_seats

    #[test]
    fn confirming_turns_a_hold_into_a_sale_once() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 2), at(0)));
        let events = run(&mut flight, |f| f.confirm_seats(id(1), at(14)));
        assert_eq!(
            events,
            [FlightEvent::SeatsConfirmed {
                hold_id: id(1),
                seats: 2
            }]
        );
        assert_eq!(
            flight.availability(),
            Availability {
                capacity: 10,
                available: 8,
                held: 0,
                sold: 2
            }
        );
        // Again, even after the hold would have expired: nothing to do.
        assert_eq!(flight.confirm_seats(id(1), at(60)), Ok(vec![]));
        assert_eq!(flight.expire_holds(at(60)), vec![]);
    }

    #[test]
    fn a_hold_that_expired_or_was_released_cannot_be_confirmed() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 2), at(0)));
        let expired = Err(FlightError::HoldNotActive {
            hold_id: id(1),
            state: HoldState::Expired,
        });
        assert_eq!(flight.confirm_seats(id(1), at(15)), expired);
        run(&mut flight, |f| Ok(f.expire_holds(at(15))));
        assert_eq!(flight.confirm_seats(id(1), at(15)), expired);

        run(&mut flight, |f| f.hold_seats(hold_command(2, 2), at(0)));
        run(&mut flight, |f| {
            f.release_seats(id(2), ReleaseReason::BookingFailed)
        });
        assert_eq!(
            flight.confirm_seats(id(2), at(1)),
            Err(FlightError::HoldNotActive {
                hold_id: id(2),
                state: HoldState::Released
            })
        );
        assert_eq!(
            flight.confirm_seats(id(3), at(1)),
            Err(FlightError::HoldNotFound { hold_id: id(3) })
        );
    }

    #[test]
    fn a_hold_made_before_departure_cannot_be_confirmed_after() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 2), at(0)));
        run(&mut flight, |f| f.change_status(FlightStatus::Boarding));
        assert!(flight.confirm_seats(id(1), at(1)).is_ok());
        run(&mut flight, |f| f.change_status(FlightStatus::Departed));
        assert_eq!(
            flight.confirm_seats(id(1), at(2)),
            Err(FlightError::FlightClosed {
                status: FlightStatus::Departed
            })
        );
    }

    // expire_holds

    #[test]
    fn expiring_holds_frees_exactly_the_lapsed_ones() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 2), at(0)));
        run(&mut flight, |f| f.hold_seats(hold_command(2, 3), at(5)));
        run(&mut flight, |f| f.hold_seats(hold_command(3, 1), at(6)));
        run(&mut flight, |f| f.confirm_seats(id(3), at(7)));
        assert_eq!(flight.expire_holds(at(14)), vec![]);
        let events = flight.expire_holds(at(20));
        assert_eq!(
            events,
            [
                FlightEvent::HoldExpired {
                    hold_id: id(1),
                    seats: 2
                },
                FlightEvent::HoldExpired {
                    hold_id: id(2),
                    seats: 3
                }
            ]
        );
        flight.apply_all(&events);
        assert_eq!(
            flight.availability(),
            Availability {
                capacity: 10,
                available: 9,
                held: 0,
                sold: 1
            }
        );
        assert_eq!(flight.expire_holds(at(20)), vec![]);
    }

    // change_status

    #[test]
    fn status_changes_follow_the_table() {
        for from in FlightStatus::ALL {
            for to in FlightStatus::ALL {
                let flight = flight_in(from);
                let decision = flight.change_status(to);
                if to == FlightStatus::Cancelled {
                    assert_eq!(decision, Err(FlightError::InvalidTransition { from, to }));
                } else if from == to {
                    assert_eq!(decision, Ok(vec![]), "{from} -> {to}");
                } else if from.can_change_to(to) {
                    assert_eq!(
                        decision,
                        Ok(vec![FlightEvent::FlightStatusChanged { from, to }])
                    );
                } else {
                    assert_eq!(decision, Err(FlightError::InvalidTransition { from, to }));
                }
            }
        }
    }

    // report_position

    fn position(latitude: f64, longitude: f64, altitude_ft: i32, minutes: i64) -> ReportPosition {
        ReportPosition {
            latitude,
            longitude,
            altitude_ft,
            reported_at: at(minutes),
        }
    }

    #[test]
    fn positions_are_reported_while_in_the_air_newest_first() {
        let mut flight = flight_in(FlightStatus::Departed);
        let events = run(&mut flight, |f| {
            f.report_position(position(37.5, 126.5, 10_000, 1), at(1))
        });
        assert_eq!(
            events,
            [FlightEvent::PositionReported {
                latitude: 37.5,
                longitude: 126.5,
                altitude_ft: 10_000,
                reported_at: at(1)
            }]
        );
        // A duplicate or an older report changes nothing.
        assert_eq!(
            flight.report_position(position(37.5, 126.5, 10_000, 1), at(2)),
            Ok(vec![])
        );
        assert_eq!(
            flight.report_position(position(37.0, 126.0, 5_000, 0), at(2)),
            Ok(vec![])
        );
        run(&mut flight, |f| {
            f.report_position(position(38.0, 127.0, 30_000, 2), at(2))
        });
        assert_eq!(
            flight
                .scheduled()
                .unwrap()
                .last_position
                .unwrap()
                .altitude_ft,
            30_000
        );
    }

    #[test]
    fn positions_are_refused_outside_the_flight() {
        for status in [
            FlightStatus::Scheduled,
            FlightStatus::Delayed,
            FlightStatus::Boarding,
            FlightStatus::Arrived,
            FlightStatus::Cancelled,
        ] {
            assert_eq!(
                flight_in(status).report_position(position(0.0, 0.0, 0, 0), at(0)),
                Err(FlightError::NotAirborne { status })
            );
        }
    }

    #[test]
    fn positions_are_validated() {
        let flight = flight_in(FlightStatus::Departed);
        let cases = [
            ("latitude", position(90.5, 0.0, 0, 0)),
            ("latitude", position(-91.0, 0.0, 0, 0)),
            ("latitude", position(f64::NAN, 0.0, 0, 0)),
            ("longitude", position(0.0, 180.5, 0, 0)),
            ("longitude", position(0.0, f64::INFINITY, 0, 0)),
            ("altitude_ft", position(0.0, 0.0, 60_001, 0)),
            ("altitude_ft", position(0.0, 0.0, -2_001, 0)),
            ("reported_at", position(0.0, 0.0, 0, 6)),
        ];
        for (field, command) in cases {
            let error = flight.report_position(command, at(0)).unwrap_err();
            assert_eq!(invalid_field(error), field);
        }
        assert!(flight
            .report_position(position(-90.0, 180.0, 60_000, 5), at(0))
            .is_ok());
    }

    // cancel

    #[test]
    fn cancelling_releases_active_holds_then_cancels() {
        let mut flight = scheduled_flight();
        run(&mut flight, |f| f.hold_seats(hold_command(1, 2), at(0)));
        run(&mut flight, |f| f.hold_seats(hold_command(2, 3), at(0)));
        run(&mut flight, |f| f.confirm_seats(id(2), at(1)));
        let events = run(&mut flight, |f| f.cancel("  typhoon  "));
        assert_eq!(
            events,
            [
                FlightEvent::SeatsReleased {
                    hold_id: id(1),
                    seats: 2,
                    reason: ReleaseReason::FlightCancelled
                },
                FlightEvent::FlightCancelled {
                    reason: "typhoon".to_owned()
                }
            ]
        );
        assert_eq!(flight.status(), Some(FlightStatus::Cancelled));
        assert_eq!(
            flight.availability(),
            Availability {
                capacity: 10,
                available: 7,
                held: 0,
                sold: 3
            }
        );
        // The bookings' cancellation sagas then return the sold seats.
        run(&mut flight, |f| {
            f.release_seats(id(2), ReleaseReason::FlightCancelled)
        });
        assert_eq!(flight.availability().sold, 0);
    }

    #[test]
    fn cancelling_is_idempotent_and_impossible_after_departure() {
        let flight = flight_in(FlightStatus::Cancelled);
        assert_eq!(flight.cancel("again"), Ok(vec![]));
        assert!(flight_in(FlightStatus::Boarding)
            .cancel("aircraft change")
            .is_ok());
        for from in [FlightStatus::Departed, FlightStatus::Arrived] {
            assert_eq!(
                flight_in(from).cancel("too late"),
                Err(FlightError::InvalidTransition {
                    from,
                    to: FlightStatus::Cancelled
                })
            );
        }
    }

    #[test]
    fn a_cancellation_needs_a_reason() {
        let flight = scheduled_flight();
        for reason in [
            "",
            "   ",
            &"x".repeat(MAX_REASON_LEN + 1),
            "ash\0cloud",
            "a\u{1b}[2J",
        ] {
            assert_eq!(invalid_field(flight.cancel(reason).unwrap_err()), "reason");
        }
    }

    // quote

    #[test]
    fn a_quote_is_the_current_fare_times_the_seats() {
        let flight = scheduled_flight();
        assert_eq!(flight.quote(3), Ok(usd("597")));
        assert_eq!(invalid_field(flight.quote(0).unwrap_err()), "seats");
        assert_eq!(
            invalid_field(flight.quote(MAX_SEATS_PER_HOLD + 1).unwrap_err()),
            "seats"
        );
        assert_eq!(
            flight_in(FlightStatus::Cancelled).quote(1),
            Err(FlightError::FlightClosed {
                status: FlightStatus::Cancelled
            })
        );
    }
}
