//! Random command sequences against the aggregate's invariants.
//!
//! After every step of any sequence of commands, decided and applied as a
//! command handler would:
//! - seats add up: `held + sold <= capacity` and `available + held + sold == capacity`;
//! - no hold is made on a flight that is closed for sale;
//! - an expired or released hold no longer holds seats;
//! - replaying the log from `Flight::default()` gives the live state, and so
//!   does a snapshot round trip;
//! - every successful command, decided again at once, decides nothing
//!   (except `schedule`, which is refused): retries are harmless.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use contracts::{Currency, Money};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;

#[derive(Debug, Clone)]
enum Step {
    Schedule {
        capacity: u32,
    },
    Hold {
        hold: u8,
        booking: u8,
        seats: u32,
        ttl_minutes: i64,
    },
    Release {
        hold: u8,
        reason: ReleaseReason,
    },
    Confirm {
        hold: u8,
    },
    ExpireHolds,
    Wait {
        minutes: i64,
    },
    ChangeFare {
        cents: i64,
        currency: Currency,
    },
    ChangeStatus(FlightStatus),
    ReportPosition {
        quarter_degrees: i32,
    },
    Cancel,
}

fn step() -> impl Strategy<Value = Step> {
    let reason = prop_oneof![
        Just(ReleaseReason::BookingFailed),
        Just(ReleaseReason::BookingCancelled),
        Just(ReleaseReason::FlightCancelled),
    ];
    let currency = prop_oneof![9 => Just(Currency::Usd), 1 => Just(Currency::Eur)];
    prop_oneof![
        2 => (0..=12u32).prop_map(|capacity| Step::Schedule { capacity }),
        36 => (0..8u8, 0..3u8, 0..=10u32, 1..=30i64).prop_map(
            |(hold, booking, seats, ttl_minutes)| Step::Hold { hold, booking, seats, ttl_minutes }
        ),
        12 => (0..8u8, reason).prop_map(|(hold, reason)| Step::Release { hold, reason }),
        18 => (0..8u8).prop_map(|hold| Step::Confirm { hold }),
        6 => Just(Step::ExpireHolds),
        12 => (0..=20i64).prop_map(|minutes| Step::Wait { minutes }),
        6 => (0..=50_000i64, currency)
            .prop_map(|(cents, currency)| Step::ChangeFare { cents, currency }),
        9 => proptest::sample::select(FlightStatus::ALL.to_vec()).prop_map(Step::ChangeStatus),
        6 => (-360..=360i32).prop_map(|quarter_degrees| Step::ReportPosition { quarter_degrees }),
        1 => Just(Step::Cancel),
    ]
}

/// Sequences that usually start with a valid schedule, so that most steps
/// act on a real flight.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    (1..=12u32, proptest::collection::vec(step(), 0..60)).prop_map(|(capacity, mut steps)| {
        steps.insert(0, Step::Schedule { capacity });
        steps
    })
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 5, 1, 9, 0, 0).unwrap()
}

fn hold_id(hold: u8) -> Uuid {
    Uuid::from_u128(1_000 + u128::from(hold))
}

/// Decides one step against `flight` at `now`.
fn decide(
    flight: &Flight,
    step: &Step,
    now: DateTime<Utc>,
) -> Result<Vec<FlightEvent>, FlightError> {
    match *step {
        Step::Schedule { capacity } => flight.schedule(
            ScheduleFlight {
                flight_id: Uuid::from_u128(1),
                flight_number: "CT123".to_owned(),
                origin: "ICN".to_owned(),
                destination: "NRT".to_owned(),
                departure: start() + TimeDelta::days(30),
                arrival: start() + TimeDelta::days(30) + TimeDelta::hours(2),
                capacity,
                fare: Money::parse("199.00", Currency::Usd).unwrap(),
            },
            now,
        ),
        Step::Hold {
            hold,
            booking,
            seats,
            ttl_minutes,
        } => flight.hold_seats(
            HoldSeats {
                hold_id: hold_id(hold),
                booking_id: Uuid::from_u128(2_000 + u128::from(booking)),
                seats,
                hold_ttl: TimeDelta::minutes(ttl_minutes),
            },
            now,
        ),
        Step::Release { hold, reason } => flight.release_seats(hold_id(hold), reason),
        Step::Confirm { hold } => flight.confirm_seats(hold_id(hold), now),
        Step::ExpireHolds => Ok(flight.expire_holds(now)),
        Step::Wait { .. } => Ok(vec![]),
        Step::ChangeFare { cents, currency } => {
            let amount = format!("{}.{:02}", cents / 100, cents % 100);
            flight.change_fare(Money::parse(&amount, currency).unwrap())
        }
        Step::ChangeStatus(to) => flight.change_status(to),
        Step::ReportPosition { quarter_degrees } => {
            let degrees = f64::from(quarter_degrees) / 4.0;
            flight.report_position(
                ReportPosition {
                    latitude: degrees / 4.0,
                    longitude: degrees,
                    altitude_ft: 35_000,
                    reported_at: now,
                },
                now,
            )
        }
        Step::Cancel => flight.cancel("operational reasons"),
    }
}

fn check_seats(flight: &Flight) -> Result<(), TestCaseError> {
    if let Some(scheduled) = flight.scheduled() {
        let Availability {
            capacity,
            available,
            held,
            sold,
        } = flight.availability();
        prop_assert_eq!(capacity, scheduled.capacity);
        prop_assert!(
            held + sold <= capacity,
            "held {held} + sold {sold} > {capacity}"
        );
        prop_assert_eq!(available + held + sold, capacity);
    } else {
        prop_assert_eq!(flight.availability(), Availability::default());
    }
    Ok(())
}

/// Runs `steps` as a command handler would, checking the invariants after each.
fn run(steps: &[Step]) -> Result<(), TestCaseError> {
    let mut now = start();
    let mut live = Flight::default();
    let mut log: Vec<FlightEvent> = Vec::new();

    for step in steps {
        if let Step::Wait { minutes } = step {
            now += TimeDelta::minutes(*minutes);
        }
        let Ok(events) = decide(&live, step, now) else {
            continue;
        };

        for event in &events {
            match event {
                FlightEvent::SeatsHeld { .. } => {
                    let status = live.status();
                    prop_assert!(
                        status.is_some_and(FlightStatus::is_open_for_sale),
                        "hold decided on a {status:?} flight"
                    );
                }
                FlightEvent::FlightStatusChanged { to, .. } => {
                    prop_assert_ne!(*to, FlightStatus::Cancelled);
                }
                _ => {}
            }
            let json = serde_json::to_value(event).unwrap();
            prop_assert_eq!(&serde_json::from_value::<FlightEvent>(json).unwrap(), event);
        }

        live.apply_all(&events);
        log.extend(events.iter().cloned());

        check_seats(&live)?;
        for event in &events {
            if let FlightEvent::SeatsReleased { hold_id, .. }
            | FlightEvent::HoldExpired { hold_id, .. } = event
            {
                let state = live.hold(*hold_id).map(|hold| hold.state);
                prop_assert!(
                    matches!(state, Some(HoldState::Released | HoldState::Expired)),
                    "hold {hold_id} is {state:?} after being freed"
                );
            }
        }
        prop_assert_eq!(&Flight::replay(&log), &live);

        // A retry of what just succeeded changes nothing.
        if !matches!(step, Step::Schedule { .. }) {
            prop_assert_eq!(decide(&live, step, now), Ok(vec![]), "retry of {:?}", step);
        }
    }

    let snapshot = serde_json::to_value(&live).unwrap();
    prop_assert_eq!(serde_json::from_value::<Flight>(snapshot).unwrap(), live);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_command_sequence_keeps_the_invariants_and_replays_to_the_same_state(steps in steps()) {
        run(&steps)?;
    }
}
