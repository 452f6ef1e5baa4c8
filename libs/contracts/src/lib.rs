//! What Contrail's services agree on, and nothing else: the services' names,
//! the message envelope, and the versioned messages they exchange. There is
//! deliberately no shared domain model here; each service owns its own.
//!
//! - [`envelope`]: [`Envelope`], the metadata every message travels with, and
//!   [`MessageType`], the `<service>.<Name>.v<N>` grammar of message types;
//! - [`money`]: [`Money`], amounts as decimal strings with their currency;
//! - [`saga`]: what a saga step's command carries so its reply finds its way back;
//! - [`booking`]: booking's public events;
//! - [`inventory`]: flight-inventory's commands, replies and public events;
//! - [`payment`]: payment's commands, replies and public events (card tokens, never card numbers);
//! - [`notification`]: notification's command, reply and public events;
//! - [`http`]: the HTTP bodies one service sends another (quote, card token);
//! - [`topics`]: the topics and their single writers;
//! - [`services`]: the services of the system.

pub mod booking;
pub mod envelope;
pub mod http;
pub mod inventory;
pub mod money;
pub mod notification;
pub mod payment;
pub mod saga;
pub mod topics;

pub use envelope::{Envelope, Message, MessageType, MessageTypeError};
pub use money::{Currency, Money, MoneyError};

/// The services of the system. Each owns a Postgres role and a schema of the same name.
pub mod services {
    /// `(service name, database role and schema)` for every service.
    pub const ALL: [(&str, &str); 4] = [
        ("flight-inventory", "flight_inventory"),
        ("booking", "booking"),
        ("payment", "payment"),
        ("notification", "notification"),
    ];
}
