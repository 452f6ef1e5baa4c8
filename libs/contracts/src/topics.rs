//! Topics and their single writers. Keys: the flight id for inventory
//! commands and events (per-flight order), the booking id everywhere else.

/// Commands to flight-inventory; written by booking.
pub const INVENTORY_COMMANDS: &str = "inventory.commands";
/// Commands to payment; written by booking.
pub const PAYMENT_COMMANDS: &str = "payment.commands";
/// Commands to notification; written by booking.
pub const NOTIFICATION_COMMANDS: &str = "notification.commands";
/// Participants' replies to the booking saga; each participant writes its own replies.
pub const SAGA_REPLIES: &str = "booking.saga-replies";
/// Domain events, one writer each.
pub const INVENTORY_EVENTS: &str = "inventory.events";
pub const BOOKING_EVENTS: &str = "booking.events";
pub const PAYMENT_EVENTS: &str = "payment.events";
pub const NOTIFICATION_EVENTS: &str = "notification.events";

/// Where the messages a consumer of `topic` could not apply are parked.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}
