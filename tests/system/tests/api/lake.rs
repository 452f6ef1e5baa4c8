//! The data lake over the whole system: after real bookings, `verify` finds
//! the lake equal to what the four services recorded — and unequal once a
//! file is gone.

use std::time::Duration;

use contrail_lake::tables::Table;
use contrail_lake::verify::{verify, Report};
use contrail_lake::{LakeStore, LakeWriter, WriterSettings};
use messaging::KafkaSettings;

use crate::helpers::{booking_body, System, APPROVED, DECLINED, PATIENCE};

#[tokio::test]
async fn the_lake_verifies_against_every_service_after_bookings_and_fails_once_a_file_is_removed() {
    let system = System::start().await;
    let flight = system.schedule_flight(10, "199.00").await;
    system.credit_miles("cust-lake", 10_000).await;
    let confirmed = system
        .book(&booking_body(
            "cust-lake",
            flight,
            2,
            Some(APPROVED),
            10_000,
        ))
        .await;
    let declined = system
        .book(&booking_body("cust-lake", flight, 1, Some(DECLINED), 0))
        .await;
    assert_eq!(system.settled(confirmed).await["status"], "confirmed");
    assert_eq!(system.settled(declined).await["status"], "failed");

    let directory = tempfile::tempdir().unwrap();
    let store = LakeStore::local(&directory.path().join("lake")).unwrap();
    let kafka: KafkaSettings = system.booking.kafka();
    let writer = LakeWriter::subscribe(
        &kafka,
        store.clone(),
        WriterSettings {
            group: "contrail-lake".to_owned(),
            max_batch: 1_000,
            batch_wait: Duration::from_millis(200),
        },
    )
    .unwrap();
    let mut source = system
        .booking
        .database
        .connect_as("postgres")
        .await
        .unwrap();

    // The writer catches up with everything the services publish, the
    // notifications' deliveries included, which follow the sagas' end.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut report: Report;
    loop {
        if let Some(written) = writer.write_batch(Duration::from_secs(1)).await.unwrap() {
            writer.commit(&written).unwrap();
        }
        report = verify(&store, &mut source).await.unwrap();
        let delivered = report
            .comparisons
            .iter()
            .find(|c| c.message_type == "notification.NotificationDelivered.v1")
            .map_or(0, |c| c.source_count);
        if report.matches() && delivered == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lake never matched the services:\n{}",
            report.render()
        );
    }
    let counted = |message_type: &str| {
        report
            .comparisons
            .iter()
            .find(|c| c.message_type == message_type)
            .map(|c| c.lake_count)
            .unwrap()
    };
    assert_eq!(counted("booking.BookingCreated.v1"), 2);
    assert_eq!(counted("booking.BookingConfirmed.v1"), 1);
    assert_eq!(counted("booking.BookingFailed.v1"), 1);
    assert_eq!(counted("payment.PaymentCaptured.v1"), 2, "card and miles");
    assert_eq!(counted("payment.MilesRedeemed.v1"), 1);
    assert_eq!(counted("inventory.HoldPlaced.v1"), 2);

    let files = store.files(Table::Booking).await.unwrap();
    assert!(!files.is_empty());
    store.delete(&files[0]).await.unwrap();

    let after = verify(&store, &mut source).await.unwrap();
    assert!(!after.matches(), "{}", after.render());
    let booking_lines: Vec<_> = after
        .comparisons
        .iter()
        .filter(|c| !c.matches())
        .map(|c| c.table)
        .collect();
    assert!(
        booking_lines.iter().all(|table| *table == "booking_events"),
        "only the booking table lost rows: {}",
        after.render()
    );
}
