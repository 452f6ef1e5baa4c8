//! The waiting room under a flood: many bookings at once against small
//! admission limits. Nothing accepted is lost, nothing is sold twice, every
//! refusal is a clean 503, reads are never held up, and a refused request
//! retried with its key later is booked once. And the backlog gate: while
//! sagas already started are stuck, new bookings are refused the same way
//! until they drain.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use test_support::read_json;
use uuid::Uuid;

use crate::helpers::{booking_body, eventually, System, APPROVED, PATIENCE};

/// What one `POST /bookings` of the flood got back.
#[derive(Debug)]
struct Answer {
    key: String,
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: Value,
}

async fn book(system: &System, key: String, body: &Value) -> Answer {
    let response = system
        .booking
        .request(Method::POST, "/bookings")
        .header("Idempotency-Key", &key)
        .json(body)
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let (status, content_type, body) = read_json(response).await;
    Answer {
        key,
        status,
        content_type,
        retry_after,
        body,
    }
}

#[tokio::test]
async fn a_flood_of_bookings_waits_its_turn_or_is_refused_cleanly_and_nothing_is_lost_or_sold_twice(
) {
    const FLOOD: usize = 40;
    // Room for every booking of the flood and the retry: what is tested is
    // the waiting room, not the race for the last seats (saga.rs has that).
    const CAPACITY: u32 = FLOOD as u32 + 1;
    let system = System::start_with(&[
        ("admission.max_concurrent", "2".to_owned()),
        ("admission.max_waiting", "3".to_owned()),
        ("admission.max_wait_ms", "250".to_owned()),
    ])
    .await;
    let flight = system.schedule_flight(CAPACITY, "120.00").await;
    let body = booking_body("cust-flood", flight, 1, Some(APPROVED), 0);

    let bookings = join_all((0..FLOOD).map(|i| book(&system, format!("flood-{i}"), &body)));
    // Reads while the bookings queue: none waits behind them or is shed.
    let reads = join_all((0..10).map(|_| system.booking.get("/customers/cust-flood/bookings")));
    let (answers, reads) = tokio::join!(bookings, reads);

    for (status, body) in &reads {
        assert_eq!(*status, 200, "a read during the flood: {body}");
    }
    let (accepted, refused): (Vec<&Answer>, Vec<&Answer>) =
        answers.iter().partition(|answer| answer.status == 202);
    assert!(!accepted.is_empty(), "some bookings were admitted");
    assert!(
        !refused.is_empty(),
        "{FLOOD} bookings at once exceed 2 running + 3 waiting"
    );
    for answer in &refused {
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(
            answer.content_type, "application/problem+json",
            "{answer:?}"
        );
        assert_eq!(
            answer.body["type"], "/problems/waiting-room-full",
            "{answer:?}"
        );
        assert!(
            answer
                .retry_after
                .as_deref()
                .is_some_and(|secs| secs.parse::<u64>().is_ok_and(|secs| secs >= 1)),
            "{answer:?}"
        );
    }

    // Every accepted booking settles, confirmed; the seats sold are exactly
    // those bookings' seats.
    for answer in &accepted {
        let booking_id: Uuid = answer.body["booking_id"].as_str().unwrap().parse().unwrap();
        let booking = system.settled(booking_id).await;
        assert_eq!(booking["status"], "confirmed", "{booking}");
    }
    let availability = system.availability(flight).await;
    assert_eq!(availability["sold"], accepted.len(), "{availability}");
    assert_eq!(availability["held"], 0, "{availability}");

    // A refused request retried later with its key is booked, once.
    let retried = refused[0];
    let first_retry = book(&system, retried.key.clone(), &body).await;
    let second_retry = book(&system, retried.key.clone(), &body).await;
    assert_eq!(first_retry.status, 202, "{first_retry:?}");
    assert_eq!(second_retry.status, 202, "{second_retry:?}");
    assert_eq!(
        first_retry.body["booking_id"],
        second_retry.body["booking_id"]
    );
    let retried_id: Uuid = first_retry.body["booking_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(system.settled(retried_id).await["status"], "confirmed");
    assert_eq!(
        system.availability(flight).await["sold"],
        accepted.len() + 1
    );

    // Nothing else was made: a refused request left no booking behind.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&system.booking.pool().await)
        .await
        .unwrap();
    assert_eq!(stored, accepted.len() as i64 + 1);
    let checker = system.checker().await;
    let report = checker.run().await.unwrap();
    assert!(report.passed, "{}", report.render_table());
}

#[tokio::test]
async fn new_bookings_are_refused_while_earlier_sagas_are_stuck_and_taken_again_once_they_drain() {
    // A gate of three sagas undecided after a second, measured every 100 ms;
    // payments wait a minute for an answer, so the stuck sagas wait for
    // payment to come back instead of giving up.
    let mut system = System::start_with(&[
        ("backlog.max", "3".to_owned()),
        ("backlog.older_than_ms", "1000".to_owned()),
        ("backlog.poll_interval_ms", "100".to_owned()),
        ("backlog.retry_after_secs", "1".to_owned()),
        ("saga.take_payment.timeout_ms", "60000".to_owned()),
    ])
    .await;
    let flight = system.schedule_flight(10, "100.00").await;
    let customers = ["cust-stuck-0", "cust-stuck-1", "cust-stuck-2", "cust-later"];
    for customer in customers {
        system.credit_miles(customer, 20_000).await;
    }
    // Payment away: miles-only bookings are still taken (no card to
    // tokenize), and each saga waits at TakePayment.
    system.payment.shut_down().await;
    let mut stuck = Vec::new();
    for customer in &customers[..3] {
        stuck.push(
            system
                .book(&booking_body(customer, flight, 1, None, 20_000))
                .await,
        );
    }

    // Probed with a request that is invalid, so that it makes nothing while
    // the gate is still open (422) and shows when it closes (503).
    let invalid = json!({"customer_id": "cust-later"});
    eventually(PATIENCE, "the gate closes on the stuck sagas", || async {
        let probe = book(&system, "probe".to_owned(), &invalid).await;
        assert!(matches!(probe.status, 422 | 503), "{probe:?}");
        probe.status == 503
    })
    .await;
    // Closed until the backlog drains, and payment is still away.
    let later = booking_body("cust-later", flight, 1, None, 20_000);
    let refusal = book(&system, "later".to_owned(), &later).await;
    assert_eq!(refusal.status, 503, "{refusal:?}");
    assert_eq!(
        refusal.content_type, "application/problem+json",
        "{refusal:?}"
    );
    assert_eq!(refusal.body["type"], "/problems/backlog", "{refusal:?}");
    assert_eq!(refusal.body["reason"], "backlog", "{refusal:?}");
    assert_eq!(refusal.retry_after.as_deref(), Some("1"), "{refusal:?}");
    // Reads and cancellations still pass: a cancellation shortens the backlog.
    let (status, body) = system.booking.get(&format!("/bookings/{}", stuck[0])).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = system
        .booking
        .post(
            &format!("/bookings/{}/cancel", stuck[0]),
            json!({"reason": "tired of waiting"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    // The refused request made nothing.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&system.booking.pool().await)
        .await
        .unwrap();
    assert_eq!(stored, 3);

    // Payment is back: the stuck sagas finish, the gate opens, and the
    // refused request retried with its key is booked.
    system.payment.start().await;
    assert_eq!(system.settled(stuck[0]).await["status"], "cancelled");
    for booking_id in &stuck[1..] {
        assert_eq!(system.settled(*booking_id).await["status"], "confirmed");
    }
    let taken = std::sync::Mutex::new(None);
    eventually(
        PATIENCE,
        "the refused booking is taken once the backlog drained",
        || async {
            let answer = book(&system, "later".to_owned(), &later).await;
            let accepted = answer.status == 202;
            if accepted {
                *taken.lock().unwrap() = Some(answer.body["booking_id"].clone());
            }
            accepted
        },
    )
    .await;
    // Asked again with its key, it is the same booking.
    let accepted = book(&system, "later".to_owned(), &later).await;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    assert_eq!(
        Some(accepted.body["booking_id"].clone()),
        *taken.lock().unwrap()
    );
    let later_id: Uuid = accepted.body["booking_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(system.settled(later_id).await["status"], "confirmed");
    assert_eq!(system.availability(flight).await["sold"], 3);
    let report = system.checker().await.run().await.unwrap();
    assert!(report.passed, "{}", report.render_table());
}
