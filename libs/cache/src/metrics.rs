//! The cache's Prometheus metrics, through the `metrics` facade (the service
//! installs the recorder). Label `cache` is the [`crate::Entry`]'s cache name.

/// Counter, label `cache`: reads answered from Redis.
pub const HITS_TOTAL: &str = "cache_hits_total";
/// Counter, label `cache`: reads Redis could not answer (absent, stale, or Redis failing).
pub const MISSES_TOTAL: &str = "cache_misses_total";
/// Counter, labels `cache` and `kind` (`redis`, `timeout`, `skipped`): failed Redis calls,
/// and reads that skipped Redis while it was failing.
pub const ERRORS_TOTAL: &str = "cache_errors_total";
/// Counter, label `cache`: loader runs, i.e. reads that reached the database.
pub const LOADS_TOTAL: &str = "cache_loads_total";
/// Counter, label `cache`: readers that waited for another reader's load instead of loading.
pub const COALESCED_TOTAL: &str = "cache_coalesced_total";
/// Counter: scopes invalidated.
pub const INVALIDATIONS_TOTAL: &str = "cache_invalidations_total";

pub fn describe() {
    metrics::describe_counter!(HITS_TOTAL, "reads answered from the read cache");
    metrics::describe_counter!(MISSES_TOTAL, "reads the read cache could not answer");
    metrics::describe_counter!(
        ERRORS_TOTAL,
        "read cache calls that failed or timed out, and reads that skipped a failing cache"
    );
    metrics::describe_counter!(LOADS_TOTAL, "loads from the source on a cache miss");
    metrics::describe_counter!(
        COALESCED_TOTAL,
        "readers that shared another reader's load (single flight)"
    );
    metrics::describe_counter!(INVALIDATIONS_TOTAL, "cache scopes invalidated");
}

pub(crate) fn record_hit(cache: &'static str) {
    metrics::counter!(HITS_TOTAL, "cache" => cache).increment(1);
}

pub(crate) fn record_miss(cache: &'static str) {
    metrics::counter!(MISSES_TOTAL, "cache" => cache).increment(1);
}

pub(crate) fn record_error(cache: &'static str, kind: &'static str) {
    metrics::counter!(ERRORS_TOTAL, "cache" => cache, "kind" => kind).increment(1);
}

pub(crate) fn record_load(cache: &'static str) {
    metrics::counter!(LOADS_TOTAL, "cache" => cache).increment(1);
}

pub(crate) fn record_coalesced(cache: &'static str) {
    metrics::counter!(COALESCED_TOTAL, "cache" => cache).increment(1);
}

pub(crate) fn record_invalidation() {
    metrics::counter!(INVALIDATIONS_TOTAL).increment(1);
}
