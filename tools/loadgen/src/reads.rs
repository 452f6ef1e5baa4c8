//! The read mix: what people do far more often than book — search flights,
//! look at one, check its seats, check a booking — sent closed-loop by a
//! fixed number of readers for a fixed time, with flight-inventory's read
//! cache on, then with it off (an admin's `Cache-Control: no-cache` reads
//! past it), so the two figures come from one running system.

use std::time::{Duration, Instant};

use bench_support::Latencies;
use chrono::{Days, Utc};
use reqwest::header::{HeaderValue, CACHE_CONTROL};
use serde::Deserialize;
use uuid::Uuid;

use crate::setup::World;
use crate::Targets;

/// One read of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadKind {
    Search,
    Detail,
    Availability,
    BookingStatus,
}

impl ReadKind {
    pub fn label(self) -> &'static str {
        match self {
            ReadKind::Search => "search",
            ReadKind::Detail => "flight detail",
            ReadKind::Availability => "availability",
            ReadKind::BookingStatus => "booking status",
        }
    }
}

/// The mix, per ten reads: browsing dominates, a booking is checked now and then.
const MIX: [ReadKind; 10] = [
    ReadKind::Search,
    ReadKind::Search,
    ReadKind::Search,
    ReadKind::Detail,
    ReadKind::Detail,
    ReadKind::Detail,
    ReadKind::Availability,
    ReadKind::Availability,
    ReadKind::Availability,
    ReadKind::BookingStatus,
];

/// The `sequence`th read: its kind and its URL. Flights, dates and bookings
/// rotate, so the readers touch many keys, not one.
pub fn read_at(
    sequence: u64,
    targets: &Targets,
    world: &World,
    bookings: &[Uuid],
) -> (ReadKind, String) {
    let mut kind = MIX[(sequence % MIX.len() as u64) as usize];
    if kind == ReadKind::BookingStatus && bookings.is_empty() {
        kind = ReadKind::Availability;
    }
    let turn = sequence / MIX.len() as u64;
    let flights = &world.big_flights;
    let flight = (!flights.is_empty()).then(|| flights[(turn % flights.len() as u64) as usize]);
    let url = match (kind, flight) {
        (ReadKind::Search, _) | (_, None) => {
            // setup schedules ICN → NRT a month out, over about three weeks.
            let date = Utc::now().date_naive() + Days::new(30 + turn % 21);
            format!(
                "{}/flights?origin=ICN&destination=NRT&date={date}",
                targets.inventory_url
            )
        }
        (ReadKind::Detail, Some(flight)) => format!("{}/flights/{flight}", targets.inventory_url),
        (ReadKind::Availability, Some(flight)) => {
            format!("{}/flights/{flight}/availability", targets.inventory_url)
        }
        (ReadKind::BookingStatus, Some(_)) => format!(
            "{}/bookings/{}",
            targets.booking_url,
            bookings[(turn % bookings.len() as u64) as usize]
        ),
    };
    (kind, url)
}

#[derive(Debug, Clone)]
pub struct ReadPlan {
    pub readers: usize,
    pub duration: Duration,
    /// Read past flight-inventory's cache (booking status has none either way).
    pub cache_off: bool,
}

#[derive(Debug, Default)]
pub struct ReadFigures {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub all: Latencies,
    pub by_kind: Vec<(ReadKind, Latencies)>,
}

impl ReadFigures {
    pub fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            (self.requests - self.errors) as f64 / seconds
        } else {
            0.0
        }
    }
}

#[derive(Debug, Deserialize)]
struct BookingList {
    items: Vec<BookingId>,
}

#[derive(Debug, Deserialize)]
struct BookingId {
    booking_id: Uuid,
}

/// Up to `limit` bookings of the run's customers, for the booking-status reads.
pub async fn some_bookings(
    http: &reqwest::Client,
    targets: &Targets,
    world: &World,
    limit: usize,
) -> anyhow::Result<Vec<Uuid>> {
    let mut bookings = Vec::new();
    for customer in world.customers.iter().take(20) {
        let url = format!("{}/customers/{customer}/bookings", targets.booking_url);
        let list: BookingList = http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        bookings.extend(list.items.into_iter().map(|item| item.booking_id));
        if bookings.len() >= limit {
            break;
        }
    }
    bookings.truncate(limit);
    Ok(bookings)
}

/// Sends the mix with `plan.readers` readers, each sending its next read
/// when the last one answered, until `plan.duration` is up.
pub async fn run_reads(
    http: &reqwest::Client,
    targets: &Targets,
    world: &World,
    bookings: &[Uuid],
    plan: &ReadPlan,
) -> ReadFigures {
    let started = Instant::now();
    let deadline = started + plan.duration;
    let readers = (0..plan.readers.max(1) as u64).map(|reader| async move {
        let mut samples: Vec<(ReadKind, Duration)> = Vec::new();
        let mut errors = 0u64;
        let mut sequence = reader * 7919;
        while Instant::now() < deadline {
            let (kind, url) = read_at(sequence, targets, world, bookings);
            sequence += 1;
            let mut request = http.get(&url);
            if plan.cache_off {
                request = request.header(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            }
            let sent = Instant::now();
            let ok = match request.send().await {
                Ok(response) => {
                    let ok = response.status().is_success();
                    // The whole body, as a client would read it.
                    ok && response.bytes().await.is_ok()
                }
                Err(_) => false,
            };
            if ok {
                samples.push((kind, sent.elapsed()));
            } else {
                errors += 1;
            }
        }
        (samples, errors)
    });
    let results = futures::future::join_all(readers).await;
    let elapsed = started.elapsed();
    let mut figures = ReadFigures {
        elapsed,
        ..ReadFigures::default()
    };
    let mut all = Vec::new();
    let mut by_kind: std::collections::BTreeMap<ReadKind, Vec<Duration>> = Default::default();
    for (samples, errors) in results {
        figures.errors += errors;
        figures.requests += errors + samples.len() as u64;
        for (kind, latency) in samples {
            all.push(latency);
            by_kind.entry(kind).or_default().push(latency);
        }
    }
    figures.all = all.into();
    figures.by_kind = by_kind
        .into_iter()
        .map(|(kind, samples)| (kind, samples.into()))
        .collect();
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(flights: usize) -> World {
        World {
            run_id: "r".to_owned(),
            big_flights: (0..flights).map(|_| Uuid::now_v7()).collect(),
            small_flights: Vec::new(),
            customers: Vec::new(),
        }
    }

    fn targets() -> Targets {
        Targets {
            booking_url: "http://127.0.0.1:8080".to_owned(),
            inventory_url: "http://127.0.0.1:8081".to_owned(),
            payment_url: "http://127.0.0.1:8082".to_owned(),
        }
    }

    #[test]
    fn every_ten_reads_are_three_searches_three_details_three_availabilities_and_a_booking() {
        let world = world(5);
        let bookings = vec![Uuid::now_v7()];
        let mut counts = std::collections::BTreeMap::new();
        for sequence in 0..1000 {
            let (kind, _) = read_at(sequence, &targets(), &world, &bookings);
            *counts.entry(kind).or_insert(0) += 1;
        }
        assert_eq!(counts[&ReadKind::Search], 300);
        assert_eq!(counts[&ReadKind::Detail], 300);
        assert_eq!(counts[&ReadKind::Availability], 300);
        assert_eq!(counts[&ReadKind::BookingStatus], 100);
    }

    #[test]
    fn reads_rotate_over_the_flights_and_go_to_the_service_that_owns_them() {
        let world = world(3);
        let booking = Uuid::now_v7();
        let details: std::collections::BTreeSet<String> = (0..60)
            .map(|sequence| read_at(sequence, &targets(), &world, &[booking]))
            .filter(|(kind, _)| *kind == ReadKind::Detail)
            .map(|(_, url)| url)
            .collect();
        assert_eq!(details.len(), 3, "{details:?}");
        assert!(details
            .iter()
            .all(|url| url.starts_with("http://127.0.0.1:8081/flights/")));
        let (_, status) = read_at(9, &targets(), &world, &[booking]);
        assert_eq!(status, format!("http://127.0.0.1:8080/bookings/{booking}"));
    }

    #[test]
    fn without_bookings_the_booking_read_checks_availability_instead() {
        let (kind, url) = read_at(9, &targets(), &world(2), &[]);
        assert_eq!(kind, ReadKind::Availability);
        assert!(url.ends_with("/availability"), "{url}");
    }
}
