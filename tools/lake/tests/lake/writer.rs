use std::collections::BTreeSet;
use std::time::Duration;

use contrail_lake::tables::Table;

use crate::harness::{TestLake, PATIENCE};

#[tokio::test]
async fn events_of_every_service_arrive_exactly_once_across_a_writer_that_dies_before_committing() {
    let lake = TestLake::new().await;
    let mut published = Vec::new();
    for _ in 0..10 {
        published.extend(lake.publish_one_of_each().await);
    }

    // A writer puts one batch's files, then dies before committing its offsets.
    let crashed = lake.writer();
    let written = crashed
        .write_batch(PATIENCE)
        .await
        .unwrap()
        .expect("a batch");
    assert!(!written.files.is_empty());
    assert!(written.records < published.len(), "only part of the stream");
    drop(crashed);

    // More events arrive while no writer runs.
    for _ in 0..5 {
        published.extend(lake.publish_one_of_each().await);
    }
    let expected: BTreeSet<String> = published.iter().map(|(_, id)| id.to_string()).collect();

    // A new writer resumes from the last commit: the batch is read again.
    let writer = lake.writer();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while lake.all_ids().await != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lake never caught up"
        );
        if let Some(written) = writer.write_batch(Duration::from_secs(1)).await.unwrap() {
            writer.commit(&written).unwrap();
        }
    }

    for table in Table::ALL {
        let wanted = published.iter().filter(|(t, _)| *t == table).count();
        let in_files = lake.message_ids(&format!("{}_files", table.name())).await;
        let distinct: BTreeSet<&String> = in_files.iter().collect();
        assert_eq!(
            (in_files.len(), distinct.len()),
            (wanted, wanted),
            "{}: every event once, even in the raw files",
            table.name()
        );
    }
}

#[tokio::test]
async fn a_query_example_answers_bookings_and_revenue_per_route_per_day() {
    let lake = TestLake::new().await;
    for _ in 0..3 {
        lake.publish_one_of_each().await;
    }
    let writer = lake.writer();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while lake.all_ids().await.len() < 12 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lake never filled"
        );
        if let Some(written) = writer.write_batch(Duration::from_secs(1)).await.unwrap() {
            writer.commit(&written).unwrap();
        }
    }

    let bookings = lake
        .scalar(
            "SELECT count(*) FROM booking_events
             WHERE message_type = 'booking.BookingCreated.v1' AND origin = 'ICN' AND destination = 'NRT'",
        )
        .await;
    assert_eq!(bookings, 3);
    let batches = contrail_lake::query::query(
        &lake.store,
        "SELECT origin, destination, CAST(created_at AS DATE) AS day, count(*) AS bookings,
                CAST(sum(total_amount) AS VARCHAR) AS revenue, currency
         FROM booking_events WHERE message_type = 'booking.BookingCreated.v1'
         GROUP BY origin, destination, CAST(created_at AS DATE), currency",
    )
    .await
    .unwrap();
    let table = contrail_lake::query::render(&batches).unwrap();
    assert!(table.contains("| ICN    | NRT         |"), "{table}");
    assert!(table.contains("1194.000"), "3 × 398.00: {table}");
    let seats_held = lake
        .scalar("SELECT CAST(sum(seats) AS BIGINT) FROM inventory_events")
        .await;
    assert_eq!(seats_held, 6);
}
