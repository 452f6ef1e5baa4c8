//! The whole system through its public APIs: flight-inventory, payment,
//! notification and booking in one process, against real Postgres and the broker.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

use test_support::process::ServiceEntry;

mod authorization;
mod bookings;
mod browser;
mod checker;
mod console;
mod domain_events;
mod helpers;
mod lake;
mod operator;
mod saga;
mod waiting_room;

/// Not a test: the entry point of the service processes that crash tests
/// start and kill with `kill -9` (see `test_support::process`). Ignored, so a
/// normal run skips it.
#[test]
#[ignore = "the entry point of a service process a crash test starts; not a test"]
fn service_process() {
    test_support::process::serve(&[
        ServiceEntry::of::<booking::Booking>(),
        ServiceEntry::of::<flight_inventory::FlightInventory>(),
        ServiceEntry::of::<payment::Payment>(),
        ServiceEntry::of::<notification::Notification>(),
    ]);
}
