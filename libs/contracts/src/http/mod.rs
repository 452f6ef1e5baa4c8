//! The bodies services exchange over HTTP, one module per answering
//! service. Both sides use these types, so a field renamed on one side is a
//! compile error on the other instead of a `null` at run time. Errors travel
//! as service-kit's problem+json and are not repeated here.
//!
//! - [`inventory`]: flight-inventory's quote, which booking asks for before a saga;
//! - [`payment`]: payment's card tokenizer, which booking sends a card to.

pub mod inventory;
pub mod payment;
