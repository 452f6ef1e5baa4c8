//! The lake's tables: one per domain event topic, with a fixed Arrow schema
//! — the envelope's fields, the Kafka position, and every field of every
//! event type of that topic as a typed, nullable column — and the mapping
//! from each versioned contract to a row.
//!
//! Schema evolution: a new optional field of an event is a new nullable
//! column at the end of its table; files written before it simply lack the
//! column and read as NULL. A message type the lake does not know yet (a new
//! event, a `v2`) is still written — envelope columns and the raw `payload`
//! JSON — so nothing is lost while the lake catches up with its producers.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use arrow::array::{
    ArrayRef, BooleanBuilder, Decimal128Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use contracts::{booking, inventory, notification, payment, topics, Envelope, Message, Money};
use rust_decimal::Decimal;

/// The lake's tables, one per domain event topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Booking,
    Payment,
    Notification,
    Inventory,
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Int,
    Bool,
    /// Microseconds, UTC.
    Timestamp,
    /// An exact amount: DECIMAL(20, 3), enough for every currency's minor unit.
    Amount,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnType,
}

const fn column(name: &'static str, kind: ColumnType) -> Column {
    Column { name, kind }
}

use ColumnType::{Amount, Bool, Int, Text, Timestamp};

/// The columns every table starts with.
const ENVELOPE: [Column; 7] = [
    column("message_id", Text),
    column("message_type", Text),
    column("occurred_at", Timestamp),
    column("correlation_id", Text),
    column("kafka_partition", Int),
    column("kafka_offset", Int),
    // The payload as it travelled, for message types the lake does not know yet.
    column("payload", Text),
];

const BOOKING: [Column; 17] = [
    column("booking_id", Text),
    column("customer_id", Text),
    column("flight_id", Text),
    column("flight_number", Text),
    column("origin", Text),
    column("destination", Text),
    column("departure", Timestamp),
    column("seats", Int),
    column("total_amount", Amount),
    column("currency", Text),
    column("reason", Text),
    column("cancelled_by", Text),
    column("was_confirmed", Bool),
    column("created_at", Timestamp),
    column("confirmed_at", Timestamp),
    column("failed_at", Timestamp),
    column("cancelled_at", Timestamp),
];

const PAYMENT: [Column; 14] = [
    column("booking_id", Text),
    column("customer_id", Text),
    column("payment_id", Text),
    column("refund_of", Text),
    column("entry_id", Text),
    column("method", Text),
    column("amount", Amount),
    column("currency", Text),
    column("miles", Int),
    column("credit_kind", Text),
    column("captured_at", Timestamp),
    column("refunded_at", Timestamp),
    column("credited_at", Timestamp),
    column("redeemed_at", Timestamp),
];

const NOTIFICATION: [Column; 8] = [
    column("booking_id", Text),
    column("customer_id", Text),
    column("notification_id", Text),
    column("kind", Text),
    column("channel", Text),
    column("attempts", Int),
    column("delivered_at", Timestamp),
    column("failed_at", Timestamp),
];

const INVENTORY: [Column; 19] = [
    column("flight_id", Text),
    column("version", Int),
    column("flight_number", Text),
    column("origin", Text),
    column("destination", Text),
    column("departure", Timestamp),
    column("arrival", Timestamp),
    column("capacity", Int),
    column("fare_amount", Amount),
    column("from_amount", Amount),
    column("to_amount", Amount),
    column("total_amount", Amount),
    column("currency", Text),
    column("hold_id", Text),
    column("booking_id", Text),
    column("seats", Int),
    column("expires_at", Timestamp),
    column("reason", Text),
    column("cancelled_at", Timestamp),
];

const AMOUNT_PRECISION: u8 = 20;
const AMOUNT_SCALE: i8 = 3;

impl Table {
    pub const ALL: [Table; 4] = [
        Table::Booking,
        Table::Payment,
        Table::Notification,
        Table::Inventory,
    ];

    /// The table's name, and its directory under the lake's root.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Booking => "booking_events",
            Table::Payment => "payment_events",
            Table::Notification => "notification_events",
            Table::Inventory => "inventory_events",
        }
    }

    /// The topic it copies (without an environment's prefix).
    pub const fn topic(self) -> &'static str {
        match self {
            Table::Booking => topics::BOOKING_EVENTS,
            Table::Payment => topics::PAYMENT_EVENTS,
            Table::Notification => topics::NOTIFICATION_EVENTS,
            Table::Inventory => topics::INVENTORY_EVENTS,
        }
    }

    pub fn of_topic(topic: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|table| table.topic() == topic)
    }

    /// The message types of its topic the lake maps to columns.
    pub fn event_types(self) -> &'static [&'static str] {
        match self {
            Table::Booking => &booking::EVENT_TYPES,
            Table::Payment => &payment::EVENT_TYPES,
            Table::Notification => &notification::EVENT_TYPES,
            Table::Inventory => &inventory::EVENT_TYPES,
        }
    }

    fn payload_columns(self) -> &'static [Column] {
        match self {
            Table::Booking => &BOOKING,
            Table::Payment => &PAYMENT,
            Table::Notification => &NOTIFICATION,
            Table::Inventory => &INVENTORY,
        }
    }

    /// Every column, envelope first.
    pub fn columns(self) -> impl Iterator<Item = Column> {
        ENVELOPE
            .into_iter()
            .chain(self.payload_columns().iter().copied())
    }

    pub fn schema(self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns()
            .map(|column| {
                let data_type = match column.kind {
                    Text => DataType::Utf8,
                    Int => DataType::Int64,
                    Bool => DataType::Boolean,
                    Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    Amount => DataType::Decimal128(AMOUNT_PRECISION, AMOUNT_SCALE),
                };
                // Only the envelope's identity is always there.
                let nullable = !matches!(
                    column.name,
                    "message_id"
                        | "message_type"
                        | "occurred_at"
                        | "kafka_partition"
                        | "kafka_offset"
                );
                Field::new(column.name, data_type, nullable)
            })
            .collect();
        Arc::new(Schema::new(fields))
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Bool(bool),
    Timestamp(DateTime<Utc>),
    Amount(Decimal),
}

/// One event as a row of its table: column name to value; absent is NULL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    cells: BTreeMap<&'static str, Cell>,
}

impl Row {
    fn text(&mut self, column: &'static str, value: impl ToString) -> &mut Self {
        self.cells.insert(column, Cell::Text(value.to_string()));
        self
    }

    fn int(&mut self, column: &'static str, value: impl Into<i128>) -> anyhow::Result<&mut Self> {
        let value = value.into();
        let value = i64::try_from(value).with_context(|| format!("{column} = {value}"))?;
        self.cells.insert(column, Cell::Int(value));
        Ok(self)
    }

    fn time(&mut self, column: &'static str, value: DateTime<Utc>) -> &mut Self {
        self.cells.insert(column, Cell::Timestamp(value));
        self
    }

    fn bool(&mut self, column: &'static str, value: bool) -> &mut Self {
        self.cells.insert(column, Cell::Bool(value));
        self
    }

    /// An amount in `column`, its currency in `currency`.
    fn money(&mut self, column: &'static str, value: &Money) -> &mut Self {
        self.cells.insert(column, Cell::Amount(value.amount()));
        self.text("currency", value.currency().code())
    }

    pub fn get(&self, column: &str) -> Option<&Cell> {
        self.cells.get(column)
    }
}

/// A record of a domain event topic, decoded: its table, the day it
/// belongs to (the event's own date, UTC) and its row.
#[derive(Debug, Clone)]
pub struct LakeRow {
    pub table: Table,
    pub date: NaiveDate,
    pub message_id: String,
    pub row: Row,
}

/// Where a record sat in Kafka.
#[derive(Debug, Clone, Copy)]
pub struct KafkaPosition {
    pub partition: i32,
    pub offset: i64,
}

/// The row for `envelope`, read from `table`'s topic at `position`.
pub fn to_row(
    table: Table,
    envelope: &Envelope,
    position: KafkaPosition,
) -> anyhow::Result<LakeRow> {
    let mut row = Row::default();
    row.text("message_id", envelope.message_id)
        .text("message_type", &envelope.message_type)
        .time("occurred_at", envelope.occurred_at)
        .text("correlation_id", envelope.correlation_id)
        .text("payload", &envelope.payload);
    row.int("kafka_partition", position.partition)?
        .int("kafka_offset", position.offset)?;
    match table {
        Table::Booking => booking_row(&mut row, envelope)?,
        Table::Payment => payment_row(&mut row, envelope)?,
        Table::Notification => notification_row(&mut row, envelope)?,
        Table::Inventory => inventory_row(&mut row, envelope)?,
    }
    Ok(LakeRow {
        table,
        date: envelope.occurred_at.date_naive(),
        message_id: envelope.message_id.to_string(),
        row,
    })
}

/// Whether the lake maps `envelope`'s type to columns; others keep only the envelope.
pub fn is_known(table: Table, envelope: &Envelope) -> bool {
    table
        .event_types()
        .contains(&envelope.message_type.as_str())
}

fn decode<M: Message>(envelope: &Envelope) -> anyhow::Result<M> {
    Ok(envelope.decode::<M>()?.payload)
}

fn booking_trip(row: &mut Row, trip: &booking::BookedTrip) -> anyhow::Result<()> {
    row.text("flight_id", trip.flight_id)
        .text("flight_number", &trip.flight_number)
        .text("origin", &trip.origin)
        .text("destination", &trip.destination)
        .time("departure", trip.departure)
        .int("seats", trip.seats)?;
    Ok(())
}

fn booking_row(row: &mut Row, envelope: &Envelope) -> anyhow::Result<()> {
    use booking::{BookingCancelled, BookingConfirmed, BookingCreated, BookingFailed};
    match envelope.message_type.as_str() {
        BookingCreated::MESSAGE_TYPE => {
            let event: BookingCreated = decode(envelope)?;
            booking_trip(row, &event.trip)?;
            row.text("booking_id", event.booking_id)
                .text("customer_id", event.customer_id)
                .money("total_amount", &event.total)
                .time("created_at", event.created_at);
        }
        BookingConfirmed::MESSAGE_TYPE => {
            let event: BookingConfirmed = decode(envelope)?;
            booking_trip(row, &event.trip)?;
            row.text("booking_id", event.booking_id)
                .text("customer_id", event.customer_id)
                .money("total_amount", &event.total)
                .time("created_at", event.created_at)
                .time("confirmed_at", event.confirmed_at);
        }
        BookingFailed::MESSAGE_TYPE => {
            let event: BookingFailed = decode(envelope)?;
            booking_trip(row, &event.trip)?;
            row.text("booking_id", event.booking_id)
                .text("customer_id", event.customer_id)
                .money("total_amount", &event.total)
                .text("reason", event.reason)
                .time("created_at", event.created_at)
                .time("failed_at", event.failed_at);
        }
        BookingCancelled::MESSAGE_TYPE => {
            let event: BookingCancelled = decode(envelope)?;
            booking_trip(row, &event.trip)?;
            row.text("booking_id", event.booking_id)
                .text("customer_id", event.customer_id)
                .money("total_amount", &event.total)
                .text("cancelled_by", event.cancelled_by.as_str())
                .text("reason", event.reason)
                .bool("was_confirmed", event.was_confirmed)
                .time("created_at", event.created_at)
                .time("cancelled_at", event.cancelled_at);
        }
        _ => {}
    }
    Ok(())
}

fn method(method: payment::PaymentMethod) -> &'static str {
    match method {
        payment::PaymentMethod::Card => "card",
        payment::PaymentMethod::Miles => "miles",
    }
}

fn payment_row(row: &mut Row, envelope: &Envelope) -> anyhow::Result<()> {
    use payment::{MilesCredited, MilesRedeemed, PaymentCaptured, RefundIssued};
    match envelope.message_type.as_str() {
        PaymentCaptured::MESSAGE_TYPE => {
            let event: PaymentCaptured = decode(envelope)?;
            row.text("booking_id", event.booking_id)
                .text("customer_id", event.customer_id)
                .text("payment_id", event.payment_id)
                .text("method", method(event.method))
                .money("amount", &event.amount)
                .time("captured_at", event.captured_at);
            if let Some(miles) = event.miles {
                row.int("miles", miles)?;
            }
        }
        RefundIssued::MESSAGE_TYPE => {
            let event: RefundIssued = decode(envelope)?;
            row.text("booking_id", event.booking_id)
                .text("customer_id", event.customer_id)
                .text("payment_id", event.payment_id)
                .text("refund_of", event.refund_of)
                .text("method", method(event.method))
                .money("amount", &event.amount)
                .time("refunded_at", event.refunded_at);
            if let Some(miles) = event.miles {
                row.int("miles", miles)?;
            }
        }
        MilesCredited::MESSAGE_TYPE => {
            let event: MilesCredited = decode(envelope)?;
            row.text("customer_id", event.customer_id)
                .text("entry_id", event.entry_id)
                .text("credit_kind", event.kind.as_str())
                .time("credited_at", event.credited_at)
                .int("miles", event.miles)?;
            if let Some(booking_id) = event.booking_id {
                row.text("booking_id", booking_id);
            }
        }
        MilesRedeemed::MESSAGE_TYPE => {
            let event: MilesRedeemed = decode(envelope)?;
            row.text("booking_id", event.booking_id)
                .text("customer_id", event.customer_id)
                .text("entry_id", event.entry_id)
                .time("redeemed_at", event.redeemed_at)
                .int("miles", event.miles)?;
        }
        _ => {}
    }
    Ok(())
}

fn notification_row(row: &mut Row, envelope: &Envelope) -> anyhow::Result<()> {
    use notification::{NotificationDelivered, NotificationFailed};
    match envelope.message_type.as_str() {
        NotificationDelivered::MESSAGE_TYPE => {
            let event: NotificationDelivered = decode(envelope)?;
            row.text("booking_id", event.booking_id)
                .text("notification_id", event.notification_id)
                .text("kind", event.kind.as_str())
                .text("channel", event.channel.as_str())
                .time("delivered_at", event.delivered_at)
                .int("attempts", event.attempts)?;
            if let Some(customer_id) = event.customer_id {
                row.text("customer_id", customer_id);
            }
        }
        NotificationFailed::MESSAGE_TYPE => {
            let event: NotificationFailed = decode(envelope)?;
            row.text("booking_id", event.booking_id)
                .text("notification_id", event.notification_id)
                .text("kind", event.kind.as_str())
                .text("channel", event.channel.as_str())
                .time("failed_at", event.failed_at)
                .int("attempts", event.attempts)?;
            if let Some(customer_id) = event.customer_id {
                row.text("customer_id", customer_id);
            }
        }
        _ => {}
    }
    Ok(())
}

fn release_reason(reason: inventory::ReleaseReason) -> &'static str {
    match reason {
        inventory::ReleaseReason::BookingFailed => "booking_failed",
        inventory::ReleaseReason::BookingCancelled => "booking_cancelled",
        inventory::ReleaseReason::FlightCancelled => "flight_cancelled",
    }
}

fn inventory_row(row: &mut Row, envelope: &Envelope) -> anyhow::Result<()> {
    use inventory::{
        FareChanged, FlightCancelled, FlightScheduled, HoldExpired, HoldPlaced, HoldReleased,
        SeatsSold,
    };
    match envelope.message_type.as_str() {
        FlightScheduled::MESSAGE_TYPE => {
            let event: FlightScheduled = decode(envelope)?;
            row.text("flight_id", event.flight_id)
                .text("flight_number", event.flight_number)
                .text("origin", event.origin)
                .text("destination", event.destination)
                .time("departure", event.departure)
                .time("arrival", event.arrival)
                .money("fare_amount", &event.fare)
                .int("capacity", event.capacity)?
                .int("version", event.version)?;
        }
        FareChanged::MESSAGE_TYPE => {
            let event: FareChanged = decode(envelope)?;
            row.text("flight_id", event.flight_id)
                .money("from_amount", &event.from)
                .money("to_amount", &event.to)
                .int("version", event.version)?;
        }
        HoldPlaced::MESSAGE_TYPE => {
            let event: HoldPlaced = decode(envelope)?;
            row.text("flight_id", event.flight_id)
                .text("hold_id", event.hold_id)
                .text("booking_id", event.booking_id)
                .money("fare_amount", &event.fare)
                .money("total_amount", &event.total)
                .time("expires_at", event.expires_at)
                .int("seats", event.seats)?
                .int("version", event.version)?;
        }
        HoldReleased::MESSAGE_TYPE => {
            let event: HoldReleased = decode(envelope)?;
            row.text("flight_id", event.flight_id)
                .text("hold_id", event.hold_id)
                .text("reason", release_reason(event.reason))
                .int("seats", event.seats)?
                .int("version", event.version)?;
        }
        HoldExpired::MESSAGE_TYPE => {
            let event: HoldExpired = decode(envelope)?;
            row.text("flight_id", event.flight_id)
                .text("hold_id", event.hold_id)
                .int("seats", event.seats)?
                .int("version", event.version)?;
        }
        SeatsSold::MESSAGE_TYPE => {
            let event: SeatsSold = decode(envelope)?;
            row.text("flight_id", event.flight_id)
                .text("hold_id", event.hold_id)
                .int("seats", event.seats)?
                .int("version", event.version)?;
        }
        FlightCancelled::MESSAGE_TYPE => {
            let event: FlightCancelled = decode(envelope)?;
            row.text("flight_id", event.flight_id)
                .text("reason", event.reason)
                .time("cancelled_at", event.cancelled_at)
                .int("version", event.version)?;
        }
        _ => {}
    }
    Ok(())
}

/// `rows` (all of `table`) as one Arrow batch in the table's schema. A cell
/// for a column the table does not have is an error, not a silent drop.
pub fn to_record_batch(table: Table, rows: &[&Row]) -> anyhow::Result<RecordBatch> {
    let columns: Vec<Column> = table.columns().collect();
    for row in rows {
        if let Some(unknown) = row
            .cells
            .keys()
            .find(|name| !columns.iter().any(|column| column.name == **name))
        {
            anyhow::bail!("{} has no column {unknown}", table.name());
        }
    }
    let arrays = columns
        .iter()
        .map(|column| build_array(*column, rows))
        .collect::<anyhow::Result<Vec<ArrayRef>>>()?;
    RecordBatch::try_new(table.schema(), arrays)
        .with_context(|| format!("assemble a {} batch", table.name()))
}

fn build_array(column: Column, rows: &[&Row]) -> anyhow::Result<ArrayRef> {
    let mismatch =
        |cell: &Cell| anyhow::anyhow!("column {} is {:?}, not {cell:?}", column.name, column.kind);
    let cells = rows.iter().map(|row| row.get(column.name));
    Ok(match column.kind {
        Text => {
            let mut builder = StringBuilder::new();
            for cell in cells {
                match cell {
                    None => builder.append_null(),
                    Some(Cell::Text(text)) => builder.append_value(text),
                    Some(other) => return Err(mismatch(other)),
                }
            }
            Arc::new(builder.finish())
        }
        Int => {
            let mut builder = Int64Builder::new();
            for cell in cells {
                match cell {
                    None => builder.append_null(),
                    Some(Cell::Int(value)) => builder.append_value(*value),
                    Some(other) => return Err(mismatch(other)),
                }
            }
            Arc::new(builder.finish())
        }
        Bool => {
            let mut builder = BooleanBuilder::new();
            for cell in cells {
                match cell {
                    None => builder.append_null(),
                    Some(Cell::Bool(value)) => builder.append_value(*value),
                    Some(other) => return Err(mismatch(other)),
                }
            }
            Arc::new(builder.finish())
        }
        Timestamp => {
            let mut builder = TimestampMicrosecondBuilder::new().with_timezone("UTC");
            for cell in cells {
                match cell {
                    None => builder.append_null(),
                    Some(Cell::Timestamp(at)) => builder.append_value(at.timestamp_micros()),
                    Some(other) => return Err(mismatch(other)),
                }
            }
            Arc::new(builder.finish())
        }
        Amount => {
            let mut builder = Decimal128Builder::new()
                .with_precision_and_scale(AMOUNT_PRECISION, AMOUNT_SCALE)
                .context("decimal type")?;
            for cell in cells {
                match cell {
                    None => builder.append_null(),
                    Some(Cell::Amount(amount)) => {
                        let mut scaled = *amount;
                        scaled.rescale(AMOUNT_SCALE.unsigned_abs().into());
                        builder.append_value(scaled.mantissa());
                    }
                    Some(other) => return Err(mismatch(other)),
                }
            }
            Arc::new(builder.finish())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Decimal128Array, StringArray};
    use contracts::booking::{BookedTrip, BookingCreated};
    use contracts::Currency;
    use uuid::Uuid;

    fn position() -> KafkaPosition {
        KafkaPosition {
            partition: 1,
            offset: 42,
        }
    }

    #[test]
    fn every_topic_is_a_table_and_every_table_starts_with_the_envelope() {
        for table in Table::ALL {
            assert_eq!(Table::of_topic(table.topic()), Some(table));
            let schema = table.schema();
            assert_eq!(schema.field(0).name(), "message_id");
            let mut names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), schema.fields().len(), "duplicate columns");
        }
    }

    #[test]
    fn a_booking_event_becomes_a_row_with_typed_columns() {
        let booking_id = Uuid::now_v7();
        let created = BookingCreated {
            booking_id,
            customer_id: "cust-1".to_owned(),
            trip: BookedTrip {
                flight_id: Uuid::now_v7(),
                flight_number: "CT1".to_owned(),
                origin: "ICN".to_owned(),
                destination: "NRT".to_owned(),
                departure: Utc::now(),
                seats: 2,
            },
            total: Money::parse("398.5", Currency::Usd).unwrap(),
            created_at: Utc::now(),
        };
        let envelope = Envelope::new(created, booking_id).to_json().unwrap();
        let lake_row = to_row(Table::Booking, &envelope, position()).unwrap();
        assert!(is_known(Table::Booking, &envelope));
        assert_eq!(lake_row.date, envelope.occurred_at.date_naive());

        let batch = to_record_batch(Table::Booking, &[&lake_row.row]).unwrap();
        let column = |name: &str| batch.column(batch.schema().index_of(name).unwrap()).clone();
        let origin = column("origin");
        let origin = origin.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(origin.value(0), "ICN");
        let total = column("total_amount");
        let total = total.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(total.value_as_string(0), "398.500");
        assert!(column("confirmed_at").is_null(0));
    }

    #[test]
    fn a_message_type_the_lake_does_not_know_keeps_its_envelope_and_payload() {
        let envelope = Envelope {
            message_id: Uuid::now_v7(),
            message_type: "booking.BookingRebooked.v1".to_owned(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            occurred_at: Utc::now(),
            expires_at: None,
            payload: serde_json::Value::Null,
        };
        assert!(!is_known(Table::Booking, &envelope));
        let lake_row = to_row(Table::Booking, &envelope, position()).unwrap();
        assert!(lake_row.row.get("booking_id").is_none());
        assert!(lake_row.row.get("payload").is_some());
        to_record_batch(Table::Booking, &[&lake_row.row]).unwrap();
    }

    #[test]
    fn a_cell_for_a_column_the_table_lacks_is_refused() {
        let mut row = Row::default();
        row.text("message_id", "m").text("capacity", "180");
        assert!(to_record_batch(Table::Booking, &[&row]).is_err());
    }
}
