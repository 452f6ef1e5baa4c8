//! A lake on a temporary directory, fed from topics of a prefix of its own.

use std::collections::BTreeSet;
use std::time::Duration;

use arrow::array::{Array, Int64Array, StringArray};
use chrono::Utc;
use contracts::booking::{BookedTrip, BookingCreated};
use contracts::inventory::HoldPlaced;
use contracts::notification::{Channel, NotificationDelivered, NotificationKind};
use contracts::payment::{PaymentCaptured, PaymentMethod};
use contracts::{topics, Currency, Envelope, Message, Money};
use contrail_lake::tables::Table;
use contrail_lake::writer::topics as lake_topics;
use contrail_lake::{query, LakeStore, LakeWriter, WriterSettings};
use messaging::testing::publish;
use messaging::KafkaSettings;
use tempfile::TempDir;
use uuid::Uuid;

pub const PATIENCE: Duration = Duration::from_secs(60);

pub struct TestLake {
    pub kafka: KafkaSettings,
    pub store: LakeStore,
    pub settings: WriterSettings,
    _directory: TempDir,
}

impl TestLake {
    /// A fresh lake and fresh topics; small batches so a test sees several.
    pub async fn new() -> Self {
        let kafka: KafkaSettings = test_support::kafka_settings(
            &test_support::brokers(),
            &test_support::unique_topic_prefix(),
        )
        .unwrap();
        messaging::topics::ensure_topics(&kafka, &lake_topics())
            .await
            .unwrap();
        let directory = tempfile::tempdir().unwrap();
        let store = LakeStore::local(&directory.path().join("lake")).unwrap();
        let settings = WriterSettings {
            group: "contrail-lake".to_owned(),
            max_batch: 25,
            batch_wait: Duration::from_millis(200),
        };
        Self {
            kafka,
            store,
            settings,
            _directory: directory,
        }
    }

    /// The same lake opened again from its directory (a rebuild swaps it).
    pub fn reopened(self) -> Self {
        let store = LakeStore::local(self.store.root_dir()).unwrap();
        Self { store, ..self }
    }

    pub fn writer(&self) -> LakeWriter {
        LakeWriter::subscribe(&self.kafka, self.store.clone(), self.settings.clone()).unwrap()
    }

    pub async fn publish<M: Message>(&self, topic: &str, key: Uuid, event: M) -> Uuid {
        let envelope = Envelope::new(event, key);
        publish(&self.kafka, topic, &key.to_string(), &envelope)
            .await
            .unwrap();
        envelope.message_id
    }

    /// One event of each service's topic; the message ids, by table.
    pub async fn publish_one_of_each(&self) -> Vec<(Table, Uuid)> {
        let booking_id = Uuid::now_v7();
        let flight_id = Uuid::now_v7();
        let usd = |amount: &str| Money::parse(amount, Currency::Usd).unwrap();
        let booking = self
            .publish(
                topics::BOOKING_EVENTS,
                booking_id,
                BookingCreated {
                    booking_id,
                    customer_id: "cust-lake".to_owned(),
                    trip: BookedTrip {
                        flight_id,
                        flight_number: "CT7".to_owned(),
                        origin: "ICN".to_owned(),
                        destination: "NRT".to_owned(),
                        departure: Utc::now(),
                        seats: 2,
                    },
                    total: usd("398.00"),
                    created_at: Utc::now(),
                },
            )
            .await;
        let payment = self
            .publish(
                topics::PAYMENT_EVENTS,
                booking_id,
                PaymentCaptured {
                    payment_id: Uuid::now_v7(),
                    booking_id,
                    customer_id: "cust-lake".to_owned(),
                    method: PaymentMethod::Card,
                    amount: usd("398.00"),
                    miles: None,
                    captured_at: Utc::now(),
                },
            )
            .await;
        let notification = self
            .publish(
                topics::NOTIFICATION_EVENTS,
                booking_id,
                NotificationDelivered {
                    notification_id: Uuid::now_v7(),
                    booking_id,
                    customer_id: Some("cust-lake".to_owned()),
                    kind: NotificationKind::Confirmation,
                    channel: Channel::Email,
                    attempts: 1,
                    delivered_at: Utc::now(),
                },
            )
            .await;
        let inventory = self
            .publish(
                topics::INVENTORY_EVENTS,
                flight_id,
                HoldPlaced {
                    flight_id,
                    version: 2,
                    hold_id: Uuid::now_v7(),
                    booking_id,
                    seats: 2,
                    fare: usd("199.00"),
                    total: usd("398.00"),
                    expires_at: Utc::now(),
                },
            )
            .await;
        vec![
            (Table::Booking, booking),
            (Table::Payment, payment),
            (Table::Notification, notification),
            (Table::Inventory, inventory),
        ]
    }

    /// The message ids in `source` (a table, or its `_files`), as read by SQL.
    pub async fn message_ids(&self, source: &str) -> Vec<String> {
        let batches = query::query(&self.store, &format!("SELECT message_id FROM {source}"))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for batch in batches {
            let column = batch.column(0);
            let strings = column.as_any().downcast_ref::<StringArray>().unwrap();
            ids.extend((0..strings.len()).map(|i| strings.value(i).to_owned()));
        }
        ids
    }

    /// Every message id in the lake's tables, deduplicated.
    pub async fn all_ids(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for table in Table::ALL {
            all.extend(self.message_ids(table.name()).await);
        }
        all
    }

    /// A single integer answer.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let batches = query::query(&self.store, sql).await.unwrap();
        let column = batches[0].column(0);
        column
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    }
}
