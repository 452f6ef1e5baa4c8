//! The metrics the store records through the `metrics` facade; the service
//! installs the recorder (service-kit's Prometheus exporter).

use std::time::Duration;

/// Histogram, label `outcome` (`appended`, `conflict`, `error`).
pub const APPEND_DURATION_SECONDS: &str = "eventstore_append_duration_seconds";
/// Counter: appends refused for a version conflict or a stale transaction.
pub const APPEND_CONFLICTS_TOTAL: &str = "eventstore_append_conflicts_total";
/// Counter: events committed to the store by this process.
pub const EVENTS_APPENDED_TOTAL: &str = "eventstore_events_appended_total";
/// Counter, label `outcome` (`saved`, `failed`, `schema_mismatch`, `undecodable`).
pub const SNAPSHOTS_TOTAL: &str = "eventstore_snapshots_total";
/// Counter, label `outcome` (`hit`, `miss`): loads answered by a [`crate::StateCache`].
pub const STATE_CACHE_LOADS_TOTAL: &str = "eventstore_state_cache_loads_total";
/// Counter, label `projection`: events applied to a read model (live or rebuild).
pub const PROJECTION_EVENTS_TOTAL: &str = "eventstore_projection_events_total";

/// Registers descriptions so exporters can render `# HELP` lines.
pub fn describe() {
    metrics::describe_histogram!(
        APPEND_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "time to append a batch of events to a stream"
    );
    metrics::describe_counter!(
        APPEND_CONFLICTS_TOTAL,
        "appends refused because the stream moved on"
    );
    metrics::describe_counter!(EVENTS_APPENDED_TOTAL, "events appended");
    metrics::describe_counter!(SNAPSHOTS_TOTAL, "snapshot writes and rejections");
    metrics::describe_counter!(PROJECTION_EVENTS_TOTAL, "events applied by projections");
    metrics::describe_counter!(
        STATE_CACHE_LOADS_TOTAL,
        "aggregate loads answered from the state cache (hit) or the store (miss)"
    );
}

pub(crate) fn record_cache(hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    metrics::counter!(STATE_CACHE_LOADS_TOTAL, "outcome" => outcome).increment(1);
}

/// How an append ended, for [`record_append`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum AppendOutcome {
    Appended { events: usize },
    Conflict,
    Error,
}

pub(crate) fn record_append(outcome: AppendOutcome, elapsed: Duration) {
    let label = match outcome {
        AppendOutcome::Appended { events } => {
            metrics::counter!(EVENTS_APPENDED_TOTAL).increment(events as u64);
            "appended"
        }
        AppendOutcome::Conflict => {
            metrics::counter!(APPEND_CONFLICTS_TOTAL).increment(1);
            "conflict"
        }
        AppendOutcome::Error => "error",
    };
    metrics::histogram!(APPEND_DURATION_SECONDS, "outcome" => label).record(elapsed.as_secs_f64());
}

pub(crate) fn record_snapshot(outcome: &'static str) {
    metrics::counter!(SNAPSHOTS_TOTAL, "outcome" => outcome).increment(1);
}
