//! The load generator's traffic, as a library so the chaos harness sends the
//! same bookings: [`mix`] says what each request in the sequence is, [`setup`]
//! schedules the flights and credits the customers it books for; [`reads`]
//! is the read mix (search, detail, availability, booking status).

pub mod mix;
pub mod reads;
pub mod setup;

/// Where the services listen; checked to be this machine.
#[derive(Debug, Clone)]
pub struct Targets {
    pub booking_url: String,
    pub inventory_url: String,
    pub payment_url: String,
}
