//! The rows the checks read, as fetched: plain data with no behaviour, so a
//! test can build any state of the system (including violating ones) by hand.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

/// A row of `booking.bookings`, reduced to what the invariants need.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingRow {
    pub booking_id: Uuid,
    pub flight_id: Uuid,
    /// pending | confirmed | failed | cancelled
    pub status: String,
    pub seats: i64,
    pub total_amount: Decimal,
    pub currency: String,
    /// The channels the booking's contact can be reached on.
    pub has_email: bool,
    pub has_phone: bool,
}

/// A row of `booking.sagas`, with the slip fields the checks use pulled out.
#[derive(Debug, Clone, PartialEq)]
pub struct SagaRow {
    pub saga_id: Uuid,
    /// running | completed | compensating | compensated | failed_compensation | parked
    pub status: String,
    pub pivoted: bool,
    pub deadline: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A row of `payment.payment_ledger`.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRow {
    pub payment_id: Uuid,
    pub booking_id: Uuid,
    /// capture | refund
    pub kind: String,
    /// card | miles
    pub method: String,
    pub amount: Decimal,
    pub currency: String,
}

/// A row of `notification.notifications`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRow {
    pub booking_id: Uuid,
    /// confirmation | cancellation | correction
    pub kind: String,
    /// email | sms
    pub channel: String,
}

/// A flight's seats as flight-inventory reports them (its event store is
/// the truth; the checker never folds events itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlightSeats {
    pub flight_id: Uuid,
    pub capacity: i64,
    pub available: i64,
    pub held: i64,
    pub sold: i64,
}

/// One schema's outbox and dead letters, counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessagingCounts {
    pub schema: String,
    pub outbox_rows: i64,
    pub outbox_unpublished: i64,
    pub oldest_unpublished: Option<DateTime<Utc>>,
    pub dead_letters_parked: i64,
    pub dead_letters_replay_requested: i64,
}

/// Everything the checks read, fetched once after the system settled.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub bookings: Vec<BookingRow>,
    pub sagas: Vec<SagaRow>,
    pub payments: Vec<PaymentRow>,
    pub notifications: Vec<NotificationRow>,
    pub flights: Vec<FlightSeats>,
    /// Flights with bookings whose availability could not be read, and why.
    pub unreadable_flights: Vec<(Uuid, String)>,
    pub messaging: Vec<MessagingCounts>,
}
