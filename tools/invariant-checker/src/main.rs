//! `invariant-checker`: waits for the running system to settle, checks its
//! cross-service invariants and exits non-zero if any is broken.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::TimeDelta;
use clap::Parser;
use invariant_checker::{
    Checker, CheckerSettings, DeadlineAllowance, DEFAULT_DATABASE_URL, DEFAULT_INVENTORY_URL,
};

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// An administrator's url for the contrail database: the checker reads
    /// every service's schema, read-only, as an auditor.
    #[arg(long, env = "CONTRAIL_AUDIT_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    #[arg(long, default_value = DEFAULT_INVENTORY_URL)]
    inventory_url: String,
    /// The longest to wait for open sagas to finish before checking.
    #[arg(long, default_value_t = 120)]
    settle_timeout_secs: u64,
    /// How late an unpivoted saga may finish after its deadline.
    #[arg(long, default_value_t = 10)]
    deadline_grace_secs: i64,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let settings = CheckerSettings {
        database_url: args.database_url,
        inventory_url: args.inventory_url,
        settle_timeout: Duration::from_secs(args.settle_timeout_secs),
        deadline: DeadlineAllowance::grace(TimeDelta::seconds(args.deadline_grace_secs.max(0))),
        token: None,
    };
    let checker = Checker::connect(settings).await?;
    let report = checker.run().await.context("check the invariants")?;
    if args.json {
        println!("{}", report.to_json()?);
    } else {
        print!("{}", report.render_table());
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
