//! The checker's verdict, as a table for people and JSON for machines.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::checks::CheckResult;
use crate::SettleReport;

/// Violations listed per check in the table; JSON has them all.
const VIOLATIONS_LISTED: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checked_at: DateTime<Utc>,
    pub passed: bool,
    pub settle: SettleReport,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn new(settle: SettleReport, checks: Vec<CheckResult>) -> Self {
        Self {
            checked_at: Utc::now(),
            passed: checks.iter().all(CheckResult::passed),
            settle,
            checks,
        }
    }

    pub fn violation_count(&self) -> usize {
        self.checks.iter().map(|check| check.violations.len()).sum()
    }

    pub fn to_json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// One line per invariant, then the violations of those that failed.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let settle = &self.settle;
        if settle.settled {
            let _ = writeln!(
                out,
                "settled after {:.1} s: no saga open, no delivery pending, every outbox row published",
                settle.waited_ms as f64 / 1000.0
            );
        } else {
            let _ = writeln!(
                out,
                "NOT settled after {:.1} s: {} sagas open, {} deliveries pending, {} outbox rows unpublished; checking anyway",
                settle.waited_ms as f64 / 1000.0,
                settle.open_sagas,
                settle.pending_deliveries,
                settle.unpublished_outbox_rows
            );
            for (saga_id, status, started) in &settle.oldest_open {
                let _ = writeln!(
                    out,
                    "  still {status}: saga {saga_id}, started {}",
                    started.to_rfc3339()
                );
            }
        }
        let _ = writeln!(out);
        let name_width = self
            .checks
            .iter()
            .map(|check| check.name.len())
            .max()
            .unwrap_or(10);
        let _ = writeln!(
            out,
            "{:<6}  {:<name_width$}  {:>8}  {:>10}  note",
            "result", "invariant", "checked", "violations"
        );
        let _ = writeln!(out, "{}", "-".repeat(name_width + 42));
        for check in &self.checks {
            let _ = writeln!(
                out,
                "{:<6}  {:<name_width$}  {:>8}  {:>10}  {} {}",
                if check.passed() { "PASS" } else { "FAIL" },
                check.name,
                check.checked,
                check.violations.len(),
                check.unit,
                check
                    .note
                    .as_deref()
                    .map(|note| format!("({note})"))
                    .unwrap_or_default()
            );
        }
        for check in self.checks.iter().filter(|check| !check.passed()) {
            let _ = writeln!(out, "\nFAIL {}:", check.name);
            for violation in check.violations.iter().take(VIOLATIONS_LISTED) {
                let _ = writeln!(out, "  - {violation}");
            }
            if check.violations.len() > VIOLATIONS_LISTED {
                let _ = writeln!(
                    out,
                    "  … and {} more (--json lists them all)",
                    check.violations.len() - VIOLATIONS_LISTED
                );
            }
        }
        let _ = writeln!(
            out,
            "\n{}: {} of {} invariants hold, {} violations",
            if self.passed { "PASS" } else { "FAIL" },
            self.checks.iter().filter(|check| check.passed()).count(),
            self.checks.len(),
            self.violation_count()
        );
        out
    }
}
