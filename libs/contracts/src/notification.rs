//! notification's messages: the command it accepts on
//! `notification.commands` (keyed by booking id), its reply on
//! `booking.saga-replies`, and its public events on `notification.events`
//! (keyed by booking id) — which say what was sent on which channel, never
//! to which address or number.
//!
//! The command carries everything the message needs: notification renders
//! from it and never asks another service for booking or flight data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;
use crate::saga::StepRef;
use crate::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// The booking is confirmed.
    Confirmation,
    /// The booking is cancelled (by the customer, or with its flight).
    Cancellation,
    /// An earlier message was wrong; it cannot be unsent, so it is corrected.
    Correction,
}

impl NotificationKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Confirmation => "confirmation",
            Self::Cancellation => "cancellation",
            Self::Correction => "correction",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

/// Where the customer wants to hear from us; at least one is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// The flight, as it was quoted when the booking was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlightSummary {
    pub flight_id: Uuid,
    pub flight_number: String,
    pub origin: String,
    pub destination: String,
    pub departure: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passenger {
    pub first_name: String,
    pub last_name: String,
}

/// What a message about a booking says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingSummary {
    pub customer_id: String,
    pub flight: FlightSummary,
    pub passengers: Vec<Passenger>,
    pub total: Money,
}

/// Send a message of `kind` about a booking on every channel the contact
/// has. Idempotent per (booking, kind, channel): redelivered or retried, a
/// customer gets each kind of message once per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendNotification {
    pub step: StepRef,
    pub booking_id: Uuid,
    pub kind: NotificationKind,
    pub contact: Contact,
    pub booking: BookingSummary,
    /// Why, for cancellations and corrections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Message for SendNotification {
    const MESSAGE_TYPE: &'static str = "notification.SendNotification.v1";
}

/// One message, recorded: notification's dispatcher delivers it through its
/// channel after the recording commits, at least once, with the
/// `notification_id` as the provider's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub notification_id: Uuid,
    pub channel: Channel,
}

/// The messages are recorded for delivery (or had been, for a repeated command).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationSent {
    pub step: StepRef,
    pub booking_id: Uuid,
    pub kind: NotificationKind,
    pub messages: Vec<SentMessage>,
}

impl Message for NotificationSent {
    const MESSAGE_TYPE: &'static str = "notification.NotificationSent.v1";
}

/// A message reached its channel's provider. (`notification.NotificationSent.v1`
/// is the saga's reply, sent when the message is *recorded*; this is the
/// public fact of its delivery.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationDelivered {
    pub notification_id: Uuid,
    pub booking_id: Uuid,
    /// Unknown for messages recorded before notification kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    pub kind: NotificationKind,
    pub channel: Channel,
    /// Deliveries tried, this one included.
    pub attempts: u32,
    pub delivered_at: DateTime<Utc>,
}

impl Message for NotificationDelivered {
    const MESSAGE_TYPE: &'static str = "notification.NotificationDelivered.v1";
}

/// A message could not be delivered, for good: it waits for an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationFailed {
    pub notification_id: Uuid,
    pub booking_id: Uuid,
    /// Unknown for messages recorded before notification kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    pub kind: NotificationKind,
    pub channel: Channel,
    pub attempts: u32,
    pub failed_at: DateTime<Utc>,
}

impl Message for NotificationFailed {
    const MESSAGE_TYPE: &'static str = "notification.NotificationFailed.v1";
}

/// Every message type notification publishes on `notification.events`.
pub const EVENT_TYPES: [&str; 2] = [
    NotificationDelivered::MESSAGE_TYPE,
    NotificationFailed::MESSAGE_TYPE,
];
