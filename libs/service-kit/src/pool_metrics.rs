//! Database pool gauges, sampled whenever `/metrics` is rendered.
//!
//! sqlx keeps no count of the tasks waiting for a connection, so waiting is
//! seen from its two edges: a pool whose connections are all in use
//! (`db_pool_connections{state="in_use"} == db_pool_max_connections`) makes
//! new work wait, and a wait that outlasts the acquire timeout is counted in
//! `db_pool_acquire_timeouts_total` (and answered with 503, see
//! [`crate::problem`]).

use std::sync::Mutex;

use sqlx::PgPool;

static POOLS: Mutex<Vec<(String, PgPool)>> = Mutex::new(Vec::new());

/// Samples `pool` under the label `pool="{name}"` from now on, until it is closed.
pub fn register(name: &str, pool: &PgPool) {
    let mut pools = POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    pools.push((name.to_owned(), pool.clone()));
    // The pool is made before the HTTP stack installs the recorder: install
    // it now, or this counter goes nowhere.
    crate::metrics::handle();
    // A counter that appears only at its first increment hides that
    // increment from `rate()`, and leaves the panels and alert selectors
    // that read it empty until then: it exists at zero from the start.
    metrics::counter!("db_pool_acquire_timeouts_total").increment(0);
}

/// Sets the gauges of every registered pool; forgets closed ones.
pub fn sample() {
    let mut pools = POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    pools.retain(|(_, pool)| !pool.is_closed());
    for (name, pool) in pools.iter() {
        let open = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(open);
        let in_use = open.saturating_sub(idle);
        metrics::gauge!("db_pool_connections", "pool" => name.clone(), "state" => "in_use")
            .set(f64::from(in_use));
        metrics::gauge!("db_pool_connections", "pool" => name.clone(), "state" => "idle")
            .set(f64::from(idle));
        metrics::gauge!("db_pool_max_connections", "pool" => name.clone())
            .set(f64::from(pool.options().get_max_connections()));
    }
}
