//! What the harness prints and writes: per run a line (and on a violation
//! everything needed to replay it), per invocation the totals and the
//! recovery times by fault. `report.json` per run and `summary.json` per
//! invocation hold the same figures for documents.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use invariant_checker::rows::Snapshot;
use invariant_checker::Report;
use serde::Serialize;

use crate::faults::{describe, FaultKind, FaultRecord, PlannedFault};
use crate::traffic::TrafficFigures;

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub seed: u64,
    pub schedule: Vec<PlannedFault>,
    pub faults: Vec<FaultRecord>,
    pub traffic: TrafficFigures,
    /// Bookings by final status (pending | confirmed | failed | cancelled).
    pub bookings: BTreeMap<String, u64>,
    /// Sagas by final status.
    pub sagas: BTreeMap<String, u64>,
    /// Failed bookings whose saga gave up because a step got no answer in
    /// time or the saga's deadline passed (not a business refusal).
    pub failed_by_timeout: u64,
    pub checker: Report,
    pub elapsed: Duration,
}

impl RunSummary {
    pub fn new(
        seed: u64,
        schedule: Vec<PlannedFault>,
        faults: Vec<FaultRecord>,
        traffic: TrafficFigures,
        checker: Report,
        snapshot: &Snapshot,
        elapsed: Duration,
    ) -> Self {
        let mut bookings = BTreeMap::new();
        for booking in &snapshot.bookings {
            *bookings.entry(booking.status.clone()).or_insert(0) += 1;
        }
        let mut sagas = BTreeMap::new();
        let mut failed_by_timeout = 0;
        for saga in &snapshot.sagas {
            *sagas.entry(saga.status.clone()).or_insert(0) += 1;
            let timed_out = saga.failure_reason.as_deref().is_some_and(|reason| {
                reason.contains("no answer to") || reason.contains("deadline passed")
            });
            if timed_out && !saga.pivoted {
                failed_by_timeout += 1;
            }
        }
        Self {
            seed,
            schedule,
            faults,
            traffic,
            bookings,
            sagas,
            failed_by_timeout,
            checker,
            elapsed,
        }
    }

    pub fn passed(&self) -> bool {
        self.checker.passed && self.traffic.idempotency_violations.is_empty()
    }

    pub fn violations(&self) -> usize {
        self.checker.violation_count() + self.traffic.idempotency_violations.len()
    }

    pub fn one_line(&self) -> String {
        let statuses: Vec<String> = self
            .bookings
            .iter()
            .map(|(status, count)| format!("{count} {status}"))
            .collect();
        format!(
            "{} in {:.0}s: bookings {} ({} failed by a step timeout); settled after {:.1}s; {} violations",
            if self.passed() { "PASSED" } else { "FAILED" },
            self.elapsed.as_secs_f64(),
            statuses.join(", "),
            self.failed_by_timeout,
            self.checker.settle.waited_ms as f64 / 1000.0,
            self.violations()
        )
    }

    /// Everything needed to understand and replay a failed run.
    pub fn print_failure(&self, replay: &str) {
        println!(
            "\nchaos: INVARIANT VIOLATION in the run with seed {}",
            self.seed
        );
        println!("replay: {replay}");
        println!("fault schedule, as injected:");
        for record in &self.faults {
            println!(
                "  t+{:>5.1}s {} (planned for t+{:.1}s)\n    {}",
                record.started_at.as_secs_f64(),
                record.planned,
                record.planned.at.as_secs_f64(),
                describe(record)
            );
        }
        for violation in &self.traffic.idempotency_violations {
            println!("idempotency: {violation}");
        }
        println!("\ninvariant checker:\n{}", self.checker.render_table());
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join("report.json");
        let json = serde_json::to_string_pretty(self).context("serialise the run's report")?;
        std::fs::write(&path, json).with_context(|| format!("write {}", path.display()))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub fault_kinds: Vec<FaultKind>,
    pub bookings_per_run: u64,
    pub rate: u64,
    pub runs: Vec<RunSummary>,
    pub elapsed: Duration,
}

/// Recovery figures of one fault kind and target.
#[derive(Debug, Default)]
struct RecoveryFigures {
    faults: usize,
    ready: Vec<Duration>,
    consuming: Vec<Duration>,
    consuming_not_seen: usize,
    probe: Vec<Duration>,
    probe_not_settled: usize,
}

impl Summary {
    pub fn new(seed: u64, fault_kinds: &[FaultKind], bookings_per_run: u64, rate: u64) -> Self {
        Self {
            seed,
            fault_kinds: fault_kinds.to_vec(),
            bookings_per_run,
            rate,
            runs: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    pub fn add(&mut self, run: RunSummary) {
        self.runs.push(run);
    }

    pub fn print(&self) {
        let mut faults_by_kind: BTreeMap<&str, usize> = BTreeMap::new();
        let mut recovery: BTreeMap<String, RecoveryFigures> = BTreeMap::new();
        let mut duplicates = (0, 0);
        let mut bookings: BTreeMap<&str, u64> = BTreeMap::new();
        let (mut sent, mut accepted, mut gave_up, mut failed_by_timeout, mut violations) =
            (0, 0, 0, 0, 0);
        for run in &self.runs {
            sent += run.traffic.sent;
            accepted += run.traffic.accepted;
            gave_up += run.traffic.gave_up;
            failed_by_timeout += run.failed_by_timeout;
            violations += run.violations();
            for (status, count) in &run.bookings {
                *bookings.entry(status.as_str()).or_insert(0) += count;
            }
            for record in &run.faults {
                *faults_by_kind
                    .entry(record.planned.kind.name())
                    .or_insert(0) += 1;
                if record.planned.kind == FaultKind::Duplicates {
                    duplicates.0 += record.duplicates_published;
                    duplicates.1 += record.duplicates_recognised;
                    continue;
                }
                let target = match record.planned.service {
                    Some(service) => format!("{} {service}", record.planned.kind.name()),
                    None => record.planned.kind.name().to_owned(),
                };
                let figures = recovery.entry(target).or_default();
                figures.faults += 1;
                figures.ready.extend(record.ready_after);
                // The slowest watched consumer: the whole stack consumes again.
                let mut slowest = Some(Duration::ZERO);
                for after in record.consuming_after.values() {
                    slowest = match (slowest, after) {
                        (Some(so_far), Some(after)) => Some(so_far.max(*after)),
                        _ => None,
                    };
                }
                match slowest {
                    Some(slowest) => figures.consuming.push(slowest),
                    None => figures.consuming_not_seen += 1,
                }
                match record.probe_settled_after {
                    Some(after) => figures.probe.push(after),
                    None => figures.probe_not_settled += 1,
                }
            }
        }
        let statuses: Vec<String> = bookings
            .iter()
            .map(|(status, count)| format!("{count} {status}"))
            .collect();
        println!("\n== chaos summary (seed {}) ==", self.seed);
        println!(
            "runs: {}; bookings sent {sent}, accepted {accepted}, given up by the client {gave_up}; final: {} ({failed_by_timeout} failed by a step timeout)",
            self.runs.len(),
            statuses.join(", ")
        );
        let kinds: Vec<String> = faults_by_kind
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        println!("faults injected: {}", kinds.join(", "));
        if duplicates.0 > 0 {
            println!(
                "duplicates: {} published again, {} recognised by an inbox as already applied",
                duplicates.0, duplicates.1
            );
        }
        println!("invariant violations: {violations}");
        println!(
            "\nrecovery, seconds from the restart (median / max):\n{:<34} {:>6} {:>13} {:>20} {:>20}",
            "fault", "count", "ready", "consuming again", "probe booking settled"
        );
        for (target, figures) in &recovery {
            println!(
                "{target:<34} {:>6} {:>13} {:>20} {:>20}",
                figures.faults,
                spread(&figures.ready, 0),
                spread(&figures.consuming, figures.consuming_not_seen),
                spread(&figures.probe, figures.probe_not_settled),
            );
        }
        if !self.elapsed.is_zero() {
            println!("\ntook {:.0}s", self.elapsed.as_secs_f64());
        }
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join("summary.json");
        let json = serde_json::to_string_pretty(self).context("serialise the summary")?;
        std::fs::write(&path, json).with_context(|| format!("write {}", path.display()))
    }
}

/// "median / max", with how many were not seen at all.
fn spread(values: &[Duration], not_seen: usize) -> String {
    let mut sorted = values.to_vec();
    sorted.sort();
    let text = match (sorted.get(sorted.len() / 2), sorted.last()) {
        (Some(median), Some(max)) => {
            format!("{:.1} / {:.1}", median.as_secs_f64(), max.as_secs_f64())
        }
        _ => "-".to_owned(),
    };
    if not_seen > 0 {
        format!("{text} ({not_seen} never)")
    } else {
        text
    }
}
