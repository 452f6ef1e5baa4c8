//! What Contrail's services agree on, and nothing else: the services' names
//! and the versioned messages they exchange. There is deliberately no shared
//! domain model here; each service owns its own.

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
