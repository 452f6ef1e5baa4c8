//! `bookings` partitioned by month: the migration that moves a table already
//! holding bookings, look-ups that read one partition, and the partitions
//! the service keeps created ahead.

use std::borrow::Cow;
use std::time::Duration;

use booking::Booking;
use chrono::{DateTime, Months, Utc};
use serde_json::{json, Value};
use service_kit::db::compose_migrators;
use service_kit::partitions::{Month, MonthlyPartitions, PartitionSettings};
use service_kit::Service;
use sqlx::migrate::Migrator;
use sqlx::PgPool;
use test_support::{eventually, unique_topic_prefix, TestApp, TestDatabase};
use uuid::{NoContext, Timestamp, Uuid};

/// The migration that partitions `bookings` (migrations/booking/0003).
const PARTITIONING: i64 = 3;

/// Every migration booking had before it partitioned `bookings`: the
/// previous release's schema.
fn previous_release() -> Migrator {
    let current = Booking::migrator();
    let earlier = current
        .migrations
        .iter()
        .filter(|migration| migration.version != PARTITIONING)
        .cloned()
        .collect();
    compose_migrators(&[&Migrator {
        migrations: Cow::Owned(earlier),
        ..Migrator::DEFAULT
    }])
}

/// A UUIDv7 made at `at`, as `Uuid::now_v7` would have made it then.
fn uuidv7_at(at: DateTime<Utc>) -> Uuid {
    let millis = u64::try_from(at.timestamp_millis()).unwrap();
    Uuid::new_v7(Timestamp::from_unix(
        NoContext,
        millis / 1000,
        u32::try_from(millis % 1000).unwrap() * 1_000_000,
    ))
}

/// Inserts a booking as the previous release did: its idempotency key and
/// fingerprint columns on the booking's own row.
async fn insert_as_previous_release(
    pool: &PgPool,
    customer_id: &str,
    created_at: DateTime<Utc>,
    idempotency_key: &str,
) -> Uuid {
    let booking_id = uuidv7_at(created_at);
    let flight_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO bookings (booking_id, customer_id, flight_id, status, seats, total_amount, currency,
                               hold_id, passengers, contact, payment, flight, idempotency_key,
                               request_fingerprint, created_at, updated_at)
         VALUES ($1, $2, $3, 'confirmed', 1, 99.00, 'USD', $4, $5, $6, $7, $8, $9, NULL, $10, $10)",
    )
    .bind(booking_id)
    .bind(customer_id)
    .bind(flight_id)
    .bind(Uuid::now_v7())
    .bind(json!([{"first_name": "Ada", "last_name": "Lovelace"}]))
    .bind(json!({"email": "ada@example.com"}))
    .bind(json!({"miles": 0}))
    .bind(json!({
        "flight_id": flight_id, "flight_number": "CT100", "origin": "ICN",
        "destination": "NRT", "departure": created_at + chrono::Duration::days(30),
    }))
    .bind(idempotency_key)
    .bind(created_at)
    .execute(pool)
    .await
    .unwrap();
    booking_id
}

fn booking_request(customer_id: &str) -> Value {
    json!({
        "customer_id": customer_id,
        "flight_id": Uuid::now_v7(),
        "passengers": [{"first_name": "Ada", "last_name": "Lovelace"}],
        "payment": {"card": {"number": "4242424242424242", "expiry": "12/35", "cvc": "123"}, "miles": 0},
        "contact": {"email": "ada@example.com"},
    })
}

async fn partition_of(pool: &PgPool, booking_id: Uuid) -> String {
    sqlx::query_scalar("SELECT tableoid::regclass::text FROM bookings WHERE booking_id = $1")
        .bind(booking_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The tables a query's plan reads.
async fn relations_read(pool: &PgPool, query: &str) -> Vec<String> {
    let plan: Value = sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) {query}"))
        .fetch_one(pool)
        .await
        .unwrap();
    let mut relations = Vec::new();
    let mut nodes = vec![&plan[0]["Plan"]];
    while let Some(node) = nodes.pop() {
        if let Some(relation) = node["Relation Name"].as_str() {
            relations.push(relation.to_owned());
        }
        if let Some(children) = node["Plans"].as_array() {
            nodes.extend(children);
        }
    }
    relations
}

#[tokio::test]
async fn bookings_made_before_partitioning_are_found_after_the_move() {
    let database = TestDatabase::create().await.unwrap();
    let pool = database.pool_as("booking", 2).await.unwrap();
    previous_release().run(&pool).await.unwrap();
    let now = Utc::now();
    let two_months_ago = now.checked_sub_months(Months::new(2)).unwrap();
    let last_month = now.checked_sub_months(Months::new(1)).unwrap();
    let oldest =
        insert_as_previous_release(&pool, "cust-moved", two_months_ago, "key-oldest").await;
    let middle = insert_as_previous_release(&pool, "cust-moved", last_month, "key-middle").await;
    let newest = insert_as_previous_release(&pool, "cust-moved", now, "key-newest").await;
    let someone_else = insert_as_previous_release(&pool, "cust-other", now, "key-other").await;

    Booking::migrator().run(&pool).await.unwrap();

    let partitioned: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'bookings'::regclass)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(partitioned, "bookings is a partitioned table now");
    let partitions = MonthlyPartitions::new("bookings", PartitionSettings::default());
    for (booking_id, created_at) in [
        (oldest, two_months_ago),
        (middle, last_month),
        (newest, now),
    ] {
        assert_eq!(
            partition_of(&pool, booking_id).await,
            partitions.partition_name(Month::of(created_at)),
            "each booking in the partition of the month it was made"
        );
    }
    assert_eq!(
        relations_read(
            &pool,
            &format!("SELECT * FROM bookings WHERE booking_id = '{middle}'")
        )
        .await,
        vec![partitions.partition_name(Month::of(last_month))],
        "a look-up by id reads one partition"
    );

    // The service, on the moved table, finds everything the old one held.
    let app = TestApp::<Booking>::spawn_on(database, unique_topic_prefix(), &[]).await;
    for booking_id in [oldest, middle, newest, someone_else] {
        let booking = app.get_ok(&format!("/bookings/{booking_id}")).await;
        assert_eq!(booking["status"], "confirmed", "{booking}");
    }
    let first_page = app
        .get_items("/customers/cust-moved/bookings?limit=2")
        .await;
    let ids: Vec<&str> = first_page
        .iter()
        .map(|b| b["booking_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [newest.to_string(), middle.to_string()],
        "newest first"
    );
    let second_page = app
        .get_items(&format!(
            "/customers/cust-moved/bookings?limit=2&before={middle}"
        ))
        .await;
    assert_eq!(second_page.len(), 1);
    assert_eq!(second_page[0]["booking_id"], oldest.to_string());
    // An idempotency key the old table held still names its booking.
    let (status, replayed) = app
        .post_with_headers(
            "/bookings",
            &[("Idempotency-Key", "key-middle")],
            booking_request("cust-moved"),
        )
        .await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["booking_id"], middle.to_string());
}

#[tokio::test]
async fn the_service_keeps_the_next_months_partitions_created() {
    let app = TestApp::<Booking>::spawn_with(&[("partitions.months_ahead", "5".to_owned())]).await;
    let pool = app.pool().await;
    let partitions = MonthlyPartitions::new(
        "bookings",
        PartitionSettings {
            months_ahead: 5,
            ..PartitionSettings::default()
        },
    );

    eventually(
        Duration::from_secs(30),
        "five months ahead have partitions",
        || {
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await.unwrap();
                partitions
                    .months_ahead(&mut conn, Utc::now())
                    .await
                    .unwrap()
                    >= 5
            }
        },
    )
    .await;

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Every test in this binary shares one metrics recorder, so the value
    // may be another service's; that the gauge is exported is what counts.
    assert!(
        metrics.contains(r#"db_partitions_ahead{table="bookings"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn replicas_creating_the_same_partitions_at_once_both_succeed() {
    let app = TestApp::<Booking>::spawn().await;
    let pool = app.pool().await;
    let partitions = MonthlyPartitions::new("bookings", PartitionSettings::default());
    // Months no one has made yet: the two passes race for every one of them.
    let later = Utc::now().checked_add_months(Months::new(24)).unwrap();

    let (first, second) = tokio::join!(
        partitions.ensure(&pool, later),
        partitions.ensure(&pool, later)
    );

    assert_eq!(first.unwrap(), 3);
    assert_eq!(second.unwrap(), 3);
    let mut month = Month::of(later);
    for _ in 0..=3 {
        let name = partitions.partition_name(month);
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&name)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(exists, "{name} was created");
        month = month.next();
    }
    // A booking made in such a month is looked up in its partition alone.
    let made_then = uuidv7_at(later);
    assert_eq!(
        relations_read(
            &pool,
            &format!("SELECT * FROM bookings WHERE booking_id = '{made_then}'")
        )
        .await,
        vec![partitions.partition_name(Month::of(later))]
    );
}

/// A booking as `POST /bookings` would store it, made now.
fn new_booking() -> booking::db::Booking {
    let now = Utc::now();
    let flight_id = Uuid::now_v7();
    booking::db::Booking {
        booking_id: Uuid::now_v7(),
        customer_id: "cust-race".to_owned(),
        flight_id,
        status: booking::db::BookingStatus::Pending,
        seats: 1,
        total: contracts::Money::new(
            rust_decimal::Decimal::new(9900, 2),
            contracts::Currency::Usd,
        )
        .unwrap(),
        hold_id: Uuid::now_v7(),
        passengers: vec![contracts::notification::Passenger {
            first_name: "Ada".to_owned(),
            last_name: "Lovelace".to_owned(),
        }],
        contact: contracts::notification::Contact {
            email: Some("ada@example.com".to_owned()),
            phone: None,
        },
        payment: booking::db::PaymentRecord {
            card: None,
            miles: 20_000,
        },
        flight: contracts::notification::FlightSummary {
            flight_id,
            flight_number: "CT100".to_owned(),
            origin: "ICN".to_owned(),
            destination: "NRT".to_owned(),
            departure: now + chrono::Duration::days(30),
        },
        created_at: now,
        updated_at: now,
    }
}

#[tokio::test]
async fn two_bookings_racing_for_one_idempotency_key_make_one_booking() {
    let app = TestApp::<Booking>::spawn().await;
    let pool = app.pool().await;
    let (first, second) = (new_booking(), new_booking());

    let mut first_tx = pool.begin().await.unwrap();
    let first_inserted = booking::db::insert(&mut first_tx, &first, "race-key", "fp")
        .await
        .unwrap();
    // The second waits on the key's unique index until the first commits.
    let racer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            let inserted = booking::db::insert(&mut tx, &second, "race-key", "fp")
                .await
                .unwrap();
            tx.commit().await.unwrap();
            inserted
        })
    };
    first_tx.commit().await.unwrap();
    let second_inserted = racer.await.unwrap();

    assert!(first_inserted);
    assert!(!second_inserted, "the key was taken");
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        booking::db::find_by_key(&mut conn, "race-key")
            .await
            .unwrap(),
        Some((first.booking_id, Some("fp".to_owned())))
    );
    let bookings: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(bookings, 1, "the loser's booking row went with its key");
}

#[tokio::test]
async fn creating_a_partition_while_bookings_are_inserted_fails_neither() {
    let app = TestApp::<Booking>::spawn().await;
    let pool = app.pool().await;
    let partitions = MonthlyPartitions::new("bookings", PartitionSettings::default());
    let later = Utc::now().checked_add_months(Months::new(36)).unwrap();
    // An insert in progress holds its locks on the key table and `bookings`.
    let mut first_tx = pool.begin().await.unwrap();
    assert!(
        booking::db::insert(&mut first_tx, &new_booking(), "in-progress", "fp")
            .await
            .unwrap()
    );

    // The partition worker queues for `bookings` behind it …
    let creating = {
        let pool = pool.clone();
        tokio::spawn(async move { partitions.ensure(&pool, later).await })
    };
    let pool_for_locks = pool.clone();
    eventually(Duration::from_secs(10), "partition creation waits for a lock", || {
        let pool = pool_for_locks.clone();
        async move {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'bookings'::regclass",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            waiting > 0
        }
    })
    .await;
    // … and another insert arrives behind both.
    let inserting = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await?;
            let inserted = booking::db::insert(&mut tx, &new_booking(), "arriving", "fp").await?;
            tx.commit().await?;
            anyhow::Ok(inserted)
        })
    };
    first_tx.commit().await.unwrap();

    assert_eq!(
        creating.await.unwrap().unwrap(),
        3,
        "the partitions were made"
    );
    assert!(
        inserting.await.unwrap().unwrap(),
        "the insert waited its turn instead of failing"
    );
}
