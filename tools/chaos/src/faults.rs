//! The faults, the schedule a seed draws, and how long the stack takes to
//! recover from each.
//!
//! Every fault is real:
//! - `kill-service`: SIGKILL of one service process, a random outage, then
//!   the same binary started again;
//! - `kill-broker`: SIGKILL of the private broker's JVM, an outage, a restart
//!   on the same storage;
//! - `restart-postgres`: `pg_ctl restart -m fast` of the private cluster;
//! - `cut-database`: one service's link to Postgres is cut — its open
//!   connections end mid-conversation and new ones are refused — for an
//!   outage, while the cluster and every other service carry on (a network
//!   partition between one service and its database);
//! - `rebalance`: a second process of a service joins its consumer groups,
//!   stays a while, and leaves (SIGTERM);
//! - `previous-release`: a process of every service built from the previous
//!   release (`--previous-bin-dir`) joins its consumer groups beside the
//!   current one, on the schema the current release migrated, until each has
//!   applied a message; then every current process is replaced by the
//!   previous release on its port (a rollback) and a booking must go all
//!   the way through it; then the current release comes back (roll forward)
//!   and the extra members leave. Two releases exchange messages while
//!   bookings flow;
//! - `duplicates`: messages a service's relay already published are read
//!   back from its outbox and published again with the same id, key,
//!   headers and payload — what a relay that crashes between publishing and
//!   marking does. They arrive late, after newer messages of the same key:
//!   duplicated and reordered deliveries for the consumers' inboxes.
//!
//! After each fault the harness measures recovery: when the affected
//! process answers `/health/ready`, when its consumers apply a message again
//! (`consumer_messages_total` moves), and when a fresh booking sent right
//! then settles (the whole saga works again).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use contracts::topics;
use loadgen::setup::World;
use loadgen::Targets;
use messaging::producer::{OutgoingRecord, Producer};
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Row};

use crate::rng::SeededRng;
use crate::services::{ConsumerCounts, Service};
use crate::stack::{Infrastructure, Release, RunStack};
use crate::traffic;

/// How long the harness watches for a recovery before it records "not seen".
const RECOVERY_WINDOW: Duration = Duration::from_secs(120);
const RECOVERY_POLL: Duration = Duration::from_millis(200);
/// How long the previous release may take to apply a message beside the
/// current one before the harness moves on (and records "not seen").
const PHASE_WINDOW: Duration = Duration::from_secs(30);
/// Messages re-published by one `duplicates` fault, at most.
const DUPLICATES_PER_FAULT: i64 = 30;
/// The saga's topics, which every message of a booking crosses.
const SAGA_TOPICS: [&str; 4] = [
    topics::INVENTORY_COMMANDS,
    topics::PAYMENT_COMMANDS,
    topics::NOTIFICATION_COMMANDS,
    topics::SAGA_REPLIES,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    KillService,
    KillBroker,
    RestartPostgres,
    CutDatabase,
    Rebalance,
    Duplicates,
    PreviousRelease,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::KillService,
        FaultKind::KillBroker,
        FaultKind::RestartPostgres,
        FaultKind::CutDatabase,
        FaultKind::Rebalance,
        FaultKind::Duplicates,
        FaultKind::PreviousRelease,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::KillService => "kill-service",
            Self::KillBroker => "kill-broker",
            Self::RestartPostgres => "restart-postgres",
            Self::CutDatabase => "cut-database",
            Self::Rebalance => "rebalance",
            Self::Duplicates => "duplicates",
            Self::PreviousRelease => "previous-release",
        }
    }
}

impl FromStr for FaultKind {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .with_context(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|kind| kind.name()).collect();
                format!("no fault named {name}; known: {}", known.join(", "))
            })
    }
}

/// One fault of the schedule.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedFault {
    pub kind: FaultKind,
    /// When, from the start of the run's traffic.
    pub at: Duration,
    /// The service it hits (kill, rebalance, duplicates).
    pub service: Option<Service>,
    /// How long the killed process stays dead, or the second member stays.
    pub hold: Duration,
}

impl std::fmt::Display for PlannedFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<16}", self.kind.name())?;
        if let Some(service) = self.service {
            write!(f, " {service:<16}")?;
        } else {
            write!(f, " {:<16}", "")?;
        }
        match self.kind {
            FaultKind::KillService | FaultKind::KillBroker => {
                write!(f, " down {:.1}s", self.hold.as_secs_f64())
            }
            FaultKind::CutDatabase => write!(f, " cut for {:.1}s", self.hold.as_secs_f64()),
            FaultKind::Rebalance => write!(f, " second member for {:.1}s", self.hold.as_secs_f64()),
            FaultKind::PreviousRelease => write!(
                f,
                " previous release of every service beside the current, then rolled back to and forward again"
            ),
            FaultKind::RestartPostgres | FaultKind::Duplicates => Ok(()),
        }
    }
}

/// The run's faults, drawn from its seed: every enabled kind once (in a
/// random order) before any kind repeats, at random moments between 5 % and
/// 75 % of the traffic's send window.
pub fn plan(
    rng: &mut SeededRng,
    kinds: &[FaultKind],
    count: usize,
    send_window: Duration,
) -> Vec<PlannedFault> {
    if kinds.is_empty() {
        return Vec::new();
    }
    let mut chosen = Vec::with_capacity(count);
    while chosen.len() < count {
        let mut round = kinds.to_vec();
        rng.shuffle(&mut round);
        chosen.extend(round.into_iter().take(count - chosen.len()));
    }
    let mut faults: Vec<PlannedFault> = chosen
        .into_iter()
        .map(|kind| {
            let at = rng.between(send_window.mul_f64(0.05), send_window.mul_f64(0.75));
            let service = match kind {
                FaultKind::KillService
                | FaultKind::CutDatabase
                | FaultKind::Rebalance
                | FaultKind::Duplicates => {
                    Some(Service::ALL[rng.below(Service::ALL.len() as u64) as usize])
                }
                FaultKind::KillBroker | FaultKind::RestartPostgres | FaultKind::PreviousRelease => {
                    None
                }
            };
            let hold = match kind {
                FaultKind::KillService | FaultKind::KillBroker => {
                    rng.between(Duration::from_millis(500), Duration::from_secs(5))
                }
                FaultKind::Rebalance | FaultKind::PreviousRelease => {
                    rng.between(Duration::from_secs(3), Duration::from_secs(10))
                }
                // Up to longer than a consumer's whole retry budget, so an
                // outage mistaken for a poison message would show as a
                // dead letter.
                FaultKind::CutDatabase => {
                    rng.between(Duration::from_secs(1), Duration::from_secs(30))
                }
                FaultKind::RestartPostgres | FaultKind::Duplicates => Duration::ZERO,
            };
            PlannedFault {
                kind,
                at,
                service,
                hold,
            }
        })
        .collect();
    faults.sort_by_key(|fault| fault.at);
    faults
}

/// What one fault did and how the stack came back.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    pub planned: PlannedFault,
    /// When it was actually injected (after the previous fault's recovery).
    pub started_at: Duration,
    /// The pid that was killed, for kills of a service.
    pub killed_pid: Option<u32>,
    /// From the restart to the restarted thing answering: `/health/ready`,
    /// the broker's metadata, `pg_ctl -w`; for a rebalance, from starting
    /// the second member to its `/health/ready`; for duplicates, the time
    /// the re-publish took.
    pub ready_after: Option<Duration>,
    /// From the restart to each watched process's consumers applying a
    /// message again; `None`: not within the recovery window.
    pub consuming_after: BTreeMap<String, Option<Duration>>,
    /// From the restart to a fresh booking settling, and how it settled.
    pub probe_settled_after: Option<Duration>,
    pub probe_outcome: String,
    /// For `duplicates`: messages published again, and deliveries the
    /// consumers' inboxes recognised as already applied meanwhile.
    pub duplicates_published: u64,
    pub duplicates_recognised: u64,
    /// For faults that take something down (a kill, a database restart or
    /// cut): from the injection until each watched consumer applied a
    /// message again, or the recovery window ran out. The invariant checker
    /// does not count this time against a saga's deadline.
    pub outage: Option<Duration>,
}

impl FaultRecord {
    fn blank(planned: PlannedFault, started_at: Duration) -> Self {
        Self {
            planned,
            started_at,
            killed_pid: None,
            ready_after: None,
            consuming_after: BTreeMap::new(),
            probe_settled_after: None,
            probe_outcome: String::new(),
            duplicates_published: 0,
            duplicates_recognised: 0,
            outage: None,
        }
    }
}

/// Everything a fault needs to reach.
#[derive(Debug)]
pub struct FaultContext<'a> {
    pub infrastructure: &'a mut Infrastructure,
    pub stack: &'a mut RunStack,
    pub http: &'a reqwest::Client,
    pub targets: &'a Targets,
    pub world: &'a World,
    /// Idempotency keys of the probes start with this.
    pub probe_prefix: String,
}

/// Injects `faults` one after another, each at its moment or once the
/// previous one has recovered, whichever is later.
pub async fn inject_all(
    context: &mut FaultContext<'_>,
    faults: &[PlannedFault],
    traffic_started: Instant,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<FaultRecord>> {
    let mut records = Vec::with_capacity(faults.len());
    for (index, fault) in faults.iter().enumerate() {
        tokio::time::sleep_until((traffic_started + fault.at).into()).await;
        let started_at = traffic_started.elapsed();
        log(&format!(
            "  t+{:>5.1}s injecting {fault} (planned for t+{:.1}s)",
            started_at.as_secs_f64(),
            fault.at.as_secs_f64()
        ));
        let record = inject(context, fault, index, started_at)
            .await
            .with_context(|| format!("inject {fault}"))?;
        log(&format!("    {}", describe(&record)));
        records.push(record);
        context
            .stack
            .ensure_alive()
            .with_context(|| format!("after {fault}"))?;
    }
    Ok(records)
}

async fn inject(
    context: &mut FaultContext<'_>,
    fault: &PlannedFault,
    index: usize,
    started_at: Duration,
) -> anyhow::Result<FaultRecord> {
    let mut record = FaultRecord::blank(fault.clone(), started_at);
    let probe_key = format!("{}-{index}", context.probe_prefix);
    let injected = Instant::now();
    match fault.kind {
        FaultKind::KillService => {
            let service = fault.service.context("a kill needs a service")?;
            let process = context.stack.process_mut(service)?;
            record.killed_pid = process.pid();
            process.kill9()?;
            tokio::time::sleep(fault.hold).await;
            let restarted = Instant::now();
            process.spawn()?;
            process.wait_ready(context.http).await?;
            record.ready_after = Some(restarted.elapsed());
            // A fresh process: its counters start at zero.
            let baselines = BTreeMap::from([(service, ConsumerCounts::default())]);
            measure(context, &mut record, restarted, baselines, &probe_key).await;
            record.outage = Some(down_until_consuming(injected, restarted, &record));
        }
        FaultKind::KillBroker => {
            context.infrastructure.broker.kill().await?;
            tokio::time::sleep(fault.hold).await;
            let baselines = counters(context, &Service::ALL).await;
            let restarted = Instant::now();
            context.infrastructure.broker.restart().await?;
            record.ready_after = Some(restarted.elapsed());
            measure(context, &mut record, restarted, baselines, &probe_key).await;
            record.outage = Some(down_until_consuming(injected, restarted, &record));
        }
        FaultKind::RestartPostgres => {
            let baselines = counters(context, &Service::ALL).await;
            let restarted = Instant::now();
            context.infrastructure.postgres.restart_fast().await?;
            record.ready_after = Some(restarted.elapsed());
            measure(context, &mut record, restarted, baselines, &probe_key).await;
            record.outage = Some(down_until_consuming(injected, restarted, &record));
        }
        FaultKind::CutDatabase => {
            let service = fault.service.context("a cut needs a service")?;
            context.stack.database_link_mut(service)?.cut().await;
            tokio::time::sleep(fault.hold).await;
            let baselines = counters(context, &[service]).await;
            let restored = Instant::now();
            context.stack.database_link_mut(service)?.restore().await?;
            let http = context.http;
            context.stack.process_mut(service)?.wait_ready(http).await?;
            record.ready_after = Some(restored.elapsed());
            measure(context, &mut record, restored, baselines, &probe_key).await;
            record.outage = Some(down_until_consuming(injected, restored, &record));
        }
        FaultKind::Rebalance => {
            let service = fault.service.context("a rebalance needs a service")?;
            let joined = Instant::now();
            let http = context.http;
            context
                .stack
                .start_extra_member(service, Release::Current, http)
                .await?;
            record.ready_after = Some(joined.elapsed());
            // Did the newcomer get partitions and apply anything while it stayed?
            let window = fault.hold.max(Duration::from_secs(1));
            for (member, applied) in watch_extra_members(context, joined, window, false).await {
                record
                    .consuming_after
                    .insert(format!("{member} (member 2, from joining)"), applied);
            }
            context.stack.stop_extra_member(service).await?;
            let left = Instant::now();
            let baselines = counters(context, &[service]).await;
            measure(context, &mut record, left, baselines, &probe_key).await;
        }
        FaultKind::PreviousRelease => {
            // Every service at once, so that each pair of services meets in
            // every combination of releases.
            let http = context.http;
            let joined = Instant::now();
            for service in Service::ALL {
                context
                    .stack
                    .start_extra_member(service, Release::Previous, http)
                    .await?;
            }
            record.ready_after = Some(joined.elapsed());
            // Beside: both releases in every consumer group, until each
            // previous member has applied a message (bounded).
            let window = fault.hold.max(PHASE_WINDOW);
            for (service, applied) in watch_extra_members(context, joined, window, true).await {
                record
                    .consuming_after
                    .insert(format!("{service} (previous release, beside)"), applied);
            }
            // Rollback: each current process replaced by the previous
            // release on its port, booking (the saga's driver) first; a
            // booking must then go all the way through the previous release
            // on the current schema.
            for service in Service::ALL.iter().rev() {
                context
                    .stack
                    .restart_as(*service, Release::Previous, http)
                    .await?;
            }
            let rolled_back = Instant::now();
            let mut rollback = FaultRecord::blank(fault.clone(), started_at);
            let baselines = fresh_counters();
            let rollback_key = format!("{probe_key}-rolled-back");
            measure(
                context,
                &mut rollback,
                rolled_back,
                baselines,
                &rollback_key,
            )
            .await;
            for (service, applied) in rollback.consuming_after {
                record.consuming_after.insert(
                    format!("{service} (previous release, rolled back)"),
                    applied,
                );
            }
            if rollback.probe_settled_after.is_none() {
                bail!(
                    "a booking through the previous release did not settle: {}",
                    rollback.probe_outcome
                );
            }
            // Roll forward again, and the extra members leave.
            for service in Service::ALL.iter().rev() {
                context
                    .stack
                    .restart_as(*service, Release::Current, http)
                    .await?;
            }
            let restarted = Instant::now();
            for service in Service::ALL.iter().rev() {
                context.stack.stop_extra_member(*service).await?;
            }
            measure(
                context,
                &mut record,
                restarted,
                fresh_counters(),
                &probe_key,
            )
            .await;
            record.probe_outcome = format!(
                "{} (rolled back: {} after {:.1}s)",
                record.probe_outcome,
                rollback.probe_outcome,
                rollback
                    .probe_settled_after
                    .unwrap_or_default()
                    .as_secs_f64()
            );
        }
        FaultKind::Duplicates => {
            let service = fault.service.context("duplicates need a service")?;
            let baselines = counters(context, &Service::ALL).await;
            let published = Instant::now();
            record.duplicates_published = republish(context, service).await?;
            record.ready_after = Some(published.elapsed());
            let deadline = published + Duration::from_secs(30);
            loop {
                let now = counters(context, &Service::ALL).await;
                let recognised: f64 = now
                    .iter()
                    .map(|(service, counts)| {
                        counts.duplicates
                            - baselines.get(service).map_or(0.0, |base| base.duplicates)
                    })
                    .sum();
                record.duplicates_recognised = recognised.max(0.0) as u64;
                if record.duplicates_recognised >= record.duplicates_published
                    || Instant::now() > deadline
                {
                    break;
                }
                tokio::time::sleep(RECOVERY_POLL).await;
            }
        }
    }
    Ok(record)
}

/// Counters of processes that have just started: zero.
fn fresh_counters() -> BTreeMap<Service, ConsumerCounts> {
    Service::ALL
        .iter()
        .map(|service| (*service, ConsumerCounts::default()))
        .collect()
}

/// Watches the extra members for `window` (or until each has applied one,
/// with `until_all_applied`): how long after `since` each had applied a
/// message more than when the watch began; `None` if it applied none.
async fn watch_extra_members(
    context: &FaultContext<'_>,
    since: Instant,
    window: Duration,
    until_all_applied: bool,
) -> BTreeMap<Service, Option<Duration>> {
    let members = &context.stack.extra_members;
    let mut baselines = BTreeMap::new();
    for (service, member) in members {
        let handled = member
            .consumer_counts(context.http)
            .await
            .map_or(0.0, |counts| counts.handled);
        baselines.insert(*service, handled);
    }
    let mut applied: BTreeMap<Service, Option<Duration>> =
        members.keys().map(|service| (*service, None)).collect();
    let deadline = since + window;
    while Instant::now() < deadline {
        if until_all_applied && applied.values().all(Option::is_some) {
            break;
        }
        for (service, first) in applied.iter_mut().filter(|(_, first)| first.is_none()) {
            let (Some(member), Some(base)) = (members.get(service), baselines.get(service)) else {
                continue;
            };
            if member
                .consumer_counts(context.http)
                .await
                .is_ok_and(|counts| counts.handled > *base)
            {
                *first = Some(since.elapsed());
            }
        }
        tokio::time::sleep(RECOVERY_POLL).await;
    }
    applied
}

/// From `injected` until the last watched consumer applied a message again,
/// counting one that never did within the window as the whole window.
fn down_until_consuming(injected: Instant, restarted: Instant, record: &FaultRecord) -> Duration {
    let consuming = record
        .consuming_after
        .values()
        .map(|after| after.unwrap_or(RECOVERY_WINDOW))
        .max()
        .unwrap_or_default();
    restarted.saturating_duration_since(injected) + consuming
}

/// Watches the consumers of the processes in `baselines` until each has
/// handled a message more than its baseline, while a probe booking runs.
async fn measure(
    context: &FaultContext<'_>,
    record: &mut FaultRecord,
    since: Instant,
    baselines: BTreeMap<Service, ConsumerCounts>,
    probe_key: &str,
) {
    let probe = async {
        let outcome = traffic::probe(context.http, context.targets, context.world, probe_key).await;
        (since.elapsed(), outcome)
    };
    let watch = async {
        let mut seen: BTreeMap<Service, Option<Duration>> =
            baselines.keys().map(|service| (*service, None)).collect();
        while since.elapsed() < RECOVERY_WINDOW && seen.values().any(Option::is_none) {
            for (service, first) in seen.iter_mut().filter(|(_, first)| first.is_none()) {
                let Ok(process) = context.stack.process(*service) else {
                    continue;
                };
                let base = baselines.get(service).map_or(0.0, |base| base.handled);
                if process
                    .consumer_counts(context.http)
                    .await
                    .is_ok_and(|counts| counts.handled > base)
                {
                    *first = Some(since.elapsed());
                }
            }
            tokio::time::sleep(RECOVERY_POLL).await;
        }
        seen
    };
    // A service that exits on its own ends the measurement at once; the
    // caller's liveness check then stops the run and says which.
    let exited = async {
        while !context
            .stack
            .services
            .values()
            .any(|process| process.has_exited())
        {
            tokio::time::sleep(RECOVERY_POLL).await;
        }
    };
    let ((settled_after, outcome), seen) = tokio::select! {
        measured = async { tokio::join!(probe, watch) } => measured,
        () = exited => {
            record.probe_outcome = "not settled: a service exited".to_owned();
            return;
        }
    };
    for (service, first) in seen {
        record
            .consuming_after
            .insert(service.name().to_owned(), first);
    }
    match outcome {
        Ok(status) => {
            record.probe_settled_after = Some(settled_after);
            record.probe_outcome = status;
        }
        Err(problem) => record.probe_outcome = format!("not settled: {problem}"),
    }
}

/// The services' consumer counters now; a process that does not answer
/// counts as zero.
async fn counters(
    context: &FaultContext<'_>,
    services: &[Service],
) -> BTreeMap<Service, ConsumerCounts> {
    let mut counts = BTreeMap::new();
    for service in services {
        let current = match context.stack.process(*service) {
            Ok(process) => process
                .consumer_counts(context.http)
                .await
                .unwrap_or_default(),
            Err(_) => ConsumerCounts::default(),
        };
        counts.insert(*service, current);
    }
    counts
}

/// Publishes up to [`DUPLICATES_PER_FAULT`] of `service`'s already
/// published saga messages again, exactly as its relay sent them.
async fn republish(context: &FaultContext<'_>, service: Service) -> anyhow::Result<u64> {
    let addresses = &context.stack.addresses;
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/{}",
        addresses.postgres_port, addresses.database
    );
    let mut connection = PgConnectOptions::from_str(&url)
        .context("parse the run's database url")?
        .connect()
        .await
        .context("connect to the run's database")?;
    let schema = service.role();
    let query = format!(
        "SELECT topic, partition_key, headers, payload FROM \"{schema}\".outbox \
         WHERE published_at IS NOT NULL AND topic = ANY($1) ORDER BY random() LIMIT $2"
    );
    let topics: Vec<String> = SAGA_TOPICS
        .iter()
        .map(|topic| (*topic).to_owned())
        .collect();
    let rows = sqlx::query(&query)
        .bind(&topics)
        .bind(DUPLICATES_PER_FAULT)
        .fetch_all(&mut connection)
        .await
        .with_context(|| format!("read {schema}'s published outbox rows"))?;
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let topic: String = row.try_get("topic").context("read topic")?;
        let headers: sqlx::types::Json<HashMap<String, String>> =
            row.try_get("headers").context("read headers")?;
        records.push(OutgoingRecord {
            topic: format!("{}{topic}", addresses.topic_prefix),
            key: row.try_get("partition_key").context("read partition_key")?,
            headers: headers.0,
            payload: row.try_get("payload").context("read payload")?,
        });
    }
    if records.is_empty() {
        return Ok(0);
    }
    let kafka: messaging::KafkaSettings = serde_json::from_value(serde_json::json!({
        "brokers": addresses.brokers,
        "topic_prefix": addresses.topic_prefix,
    }))
    .context("build the duplicator's kafka settings")?;
    let producer = Producer::new(&kafka, "chaos-duplicator")?;
    let mut published = 0;
    for outcome in producer.send_all(&records).await {
        match outcome {
            Ok(_) => published += 1,
            Err(error) => bail!("publish a duplicate: {error:#}"),
        }
    }
    Ok(published)
}

/// One line on what a fault did.
pub fn describe(record: &FaultRecord) -> String {
    let seconds = |value: Option<Duration>| {
        value.map_or_else(
            || "not seen".to_owned(),
            |value| format!("{:.1}s", value.as_secs_f64()),
        )
    };
    if record.planned.kind == FaultKind::Duplicates {
        return format!(
            "published {} duplicates; inboxes recognised {} as already applied",
            record.duplicates_published, record.duplicates_recognised
        );
    }
    let consuming: Vec<String> = record
        .consuming_after
        .iter()
        .map(|(name, after)| format!("{name} {}", seconds(*after)))
        .collect();
    let mut line = format!(
        "ready after {}; consuming again: {}; probe booking {} after {}",
        seconds(record.ready_after),
        consuming.join(", "),
        record.probe_outcome,
        seconds(record.probe_settled_after)
    );
    if let Some(outage) = record.outage {
        line.push_str(&format!(
            "; down {:.1}s from injection to consuming",
            outage.as_secs_f64()
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_draws_the_same_schedule_again() {
        let window = Duration::from_secs(40);
        let first = plan(&mut SeededRng::new(9), &FaultKind::ALL, 5, window);
        let again = plan(&mut SeededRng::new(9), &FaultKind::ALL, 5, window);
        let describe = |faults: &[PlannedFault]| -> Vec<String> {
            faults.iter().map(ToString::to_string).collect()
        };
        assert_eq!(describe(&first), describe(&again));
    }

    #[test]
    fn every_enabled_kind_comes_once_before_any_repeats() {
        let faults = plan(
            &mut SeededRng::new(3),
            &[FaultKind::KillService, FaultKind::KillBroker],
            2,
            Duration::from_secs(25),
        );
        let mut kinds: Vec<FaultKind> = faults.iter().map(|fault| fault.kind).collect();
        kinds.sort();
        assert_eq!(kinds, vec![FaultKind::KillService, FaultKind::KillBroker]);
        for fault in &faults {
            assert!(fault.at >= Duration::from_millis(1250) && fault.at <= Duration::from_secs(19));
        }
    }

    #[test]
    fn the_previous_release_replaces_every_service_and_kills_target_one() {
        let faults = plan(
            &mut SeededRng::new(11),
            &FaultKind::ALL,
            FaultKind::ALL.len(),
            Duration::from_secs(40),
        );
        for fault in faults {
            match fault.kind {
                FaultKind::PreviousRelease | FaultKind::KillBroker | FaultKind::RestartPostgres => {
                    assert_eq!(fault.service, None, "{fault}")
                }
                FaultKind::KillService
                | FaultKind::CutDatabase
                | FaultKind::Rebalance
                | FaultKind::Duplicates => assert!(fault.service.is_some(), "{fault}"),
            }
            if fault.kind == FaultKind::PreviousRelease {
                assert!(fault.hold >= Duration::from_secs(3), "{fault}");
            }
        }
    }

    #[test]
    fn fault_names_read_back() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.name().parse::<FaultKind>().ok(), Some(kind));
        }
        assert!("kill-everything".parse::<FaultKind>().is_err());
    }
}
