//! Database pool gauges, sampled by the database readiness check, which runs
//! on every `/metrics` scrape and readiness probe ([`crate::db::DatabaseReadiness`]).
//!
//! sqlx keeps no count of the tasks waiting for a connection, so waiting is
//! seen from its two edges: a pool whose connections are all in use
//! (`db_pool_connections{state="in_use"} == db_pool_max_connections`) makes
//! new work wait, and a wait that outlasts the acquire timeout is counted in
//! `db_pool_acquire_timeouts_total` (and answered with 503, see
//! [`crate::problem`]).
//!
//! Nothing here holds a pool: a process-wide list of pools would keep every
//! pool a stopped service leaves behind, with its connections, alive.

use sqlx::PgPool;

/// Makes the pool metrics exist before the first sample: a counter that
/// appears only at its first increment hides that increment from `rate()`,
/// and leaves the panels and alert selectors that read it empty until then.
pub fn register() {
    // Pools are made before the HTTP stack installs the recorder: install it
    // now, or this counter goes nowhere.
    crate::metrics::handle();
    metrics::counter!("db_pool_acquire_timeouts_total").increment(0);
}

/// Sets the gauges of `pool`, labelled with its application name (the service's).
pub fn sample(pool: &PgPool) {
    let options = pool.connect_options();
    let name = options
        .get_application_name()
        .unwrap_or("default")
        .to_owned();
    let open = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(open);
    let in_use = open.saturating_sub(idle);
    metrics::gauge!("db_pool_connections", "pool" => name.clone(), "state" => "in_use")
        .set(f64::from(in_use));
    metrics::gauge!("db_pool_connections", "pool" => name.clone(), "state" => "idle")
        .set(f64::from(idle));
    metrics::gauge!("db_pool_max_connections", "pool" => name)
        .set(f64::from(pool.options().get_max_connections()));
}
