//! Drives routing slips: every input is applied under the saga's row lock,
//! and the slip, the commands it sends and whatever the owning service
//! mirrors (a booking's status) commit in the caller's one transaction.
//!
//! Tracing: a saga is one trace. [`Orchestrator::start`] keeps the trace
//! context it was started in beside the slip; replies continue the trace
//! from their messages' headers; the timer worker, an operator's retry and
//! a cancellation have no message to continue, so they continue the kept
//! context (the request that asked for a retry or a cancellation is linked).
//! Every command is sent from a `saga.step` span (saga, step, attempt,
//! phase), so it reaches its participant as a child of that step.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::BoxFuture;
use service_kit::trace_context::TraceContext;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::slip::{
    Action, AttemptResult, Reply, ReplyDisposition, RoutingSlip, SagaStatus, SlipError,
    StepDefinition, StepOutcome,
};
use crate::step::SagaStep;
use crate::store;

/// What the owning service supplies: its steps, how each becomes a command,
/// and what it mirrors when a slip changes.
pub trait StepExecutor: Send + Sync + 'static {
    /// The saga's steps; the slip's step names are read back as these.
    type Step: SagaStep;

    /// Writes the command for `step` (through the outbox, on `conn`);
    /// `action` says which attempt and in which phase.
    fn execute<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        slip: &'a RoutingSlip,
        step: Self::Step,
        action: &'a Action,
    ) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Called in the same transaction after every change of a slip.
    fn on_change<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        previous: SagaStatus,
        slip: &'a RoutingSlip,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
}

#[derive(Debug, thiserror::Error)]
pub enum SagaError {
    #[error("no saga {0}")]
    NotFound(Uuid),
    #[error(transparent)]
    Refused(#[from] SlipError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why a saga is being undone: the reason the customer is shown, and
/// variables the service sets on the slip with it (who cancelled, say), so
/// the compensations can act on typed data instead of parsing the reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cancellation {
    pub reason: String,
    pub variables: serde_json::Map<String, serde_json::Value>,
}

/// What a reply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyOutcome {
    Applied,
    /// A duplicate or late reply; nothing changed.
    Stale,
    /// No such saga (a reply for another environment, or a purged saga).
    UnknownSaga,
}

/// How the timer worker runs.
#[derive(Debug, Clone)]
pub struct TimerSettings {
    /// How often due timers are looked for.
    pub poll_interval: Duration,
    /// How long a saga whose wake-up failed waits before it is tried again.
    pub failure_backoff: Duration,
}

impl Default for TimerSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(100),
            failure_backoff: Duration::from_secs(5),
        }
    }
}

pub struct Orchestrator<E> {
    executor: Arc<E>,
}

impl<E> Clone for Orchestrator<E> {
    fn clone(&self) -> Self {
        Self {
            executor: Arc::clone(&self.executor),
        }
    }
}

impl<E> std::fmt::Debug for Orchestrator<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Orchestrator").finish_non_exhaustive()
    }
}

impl<E: StepExecutor> Orchestrator<E> {
    pub fn new(executor: E) -> Self {
        Self {
            executor: Arc::new(executor),
        }
    }

    /// Stores a new saga and sends its first command.
    pub async fn start(
        &self,
        conn: &mut PgConnection,
        mut slip: RoutingSlip,
        now: DateTime<Utc>,
    ) -> Result<RoutingSlip, SagaError> {
        let previous = slip.status;
        let actions = slip.start(now);
        store::insert(conn, &slip, &TraceContext::current()).await?;
        self.carry_out(conn, &slip, &actions).await?;
        self.executor.on_change(conn, previous, &slip).await?;
        metrics::counter!("saga_started_total", "saga_type" => slip.saga_type.clone()).increment(1);
        register_outcome_counters(&slip.saga_type);
        record_transition(previous, &slip);
        Ok(slip)
    }

    /// Applies a participant's reply.
    pub async fn reply(
        &self,
        conn: &mut PgConnection,
        saga_id: Uuid,
        reply: Reply,
        now: DateTime<Utc>,
    ) -> Result<ReplyOutcome, SagaError> {
        let step = reply.step.clone();
        let attempt = reply.attempt;
        let span = tracing::info_span!(
            "saga.reply",
            saga_id = %saga_id,
            correlation_id = %saga_id,
            step,
            attempt,
            outcome = outcome_label(&reply.outcome),
            reason = tracing::field::Empty,
            disposition = tracing::field::Empty,
        );
        if let StepOutcome::Failed { reason, .. } = &reply.outcome {
            span.record("reason", reason.as_str());
        }
        let result = self
            .change(conn, saga_id, |slip| match slip.on_reply(reply, now) {
                ReplyDisposition::Applied(actions) => Ok(Some(actions)),
                ReplyDisposition::Stale => Ok(None),
            })
            .instrument(span.clone())
            .await;
        let disposition = match &result {
            Ok(Some(_)) => "applied",
            Ok(None) => "stale",
            Err(SagaError::NotFound(_)) => "unknown_saga",
            Err(_) => "failed",
        };
        span.record("disposition", disposition);
        match result {
            Ok(Some(_)) => Ok(ReplyOutcome::Applied),
            Ok(None) => {
                tracing::debug!(%saga_id, step, attempt, "stale reply ignored");
                metrics::counter!("saga_stale_replies_total").increment(1);
                Ok(ReplyOutcome::Stale)
            }
            Err(SagaError::NotFound(_)) => Ok(ReplyOutcome::UnknownSaga),
            Err(error) => Err(error),
        }
    }

    /// Compensates the saga, whatever it has done, then runs `then`.
    pub async fn cancel(
        &self,
        conn: &mut PgConnection,
        saga_id: Uuid,
        cancellation: Cancellation,
        then: Vec<StepDefinition>,
        now: DateTime<Utc>,
    ) -> Result<RoutingSlip, SagaError> {
        let span = continue_saga_trace(conn, Trigger::Cancel, saga_id).await?;
        self.change(conn, saga_id, |slip| {
            let actions = slip.cancel(cancellation.reason, then, now)?;
            slip.variables.extend(cancellation.variables);
            Ok(Some(actions))
        })
        .instrument(span)
        .await
        .map(|changed| changed.map(|(slip, _)| slip))?
        .ok_or(SagaError::NotFound(saga_id))
    }

    /// An operator's retry of a parked saga.
    pub async fn retry(
        &self,
        conn: &mut PgConnection,
        saga_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<RoutingSlip, SagaError> {
        let span = continue_saga_trace(conn, Trigger::Retry, saga_id).await?;
        self.change(conn, saga_id, |slip| slip.retry(now).map(Some))
            .instrument(span)
            .await
            .map(|changed| changed.map(|(slip, _)| slip))?
            .ok_or(SagaError::NotFound(saga_id))
    }

    /// Fires the timers of one due saga, in its own transaction. Returns
    /// whether there was one.
    pub async fn wake_one(&self, pool: &PgPool, settings: &TimerSettings) -> anyhow::Result<bool> {
        let now = Utc::now();
        let mut tx = pool.begin().await?;
        let Some(saga_id) = store::claim_due(&mut tx, now).await? else {
            return Ok(false);
        };
        let span = continue_saga_trace(&mut tx, Trigger::Timer, saga_id).await?;
        let woken = self
            .change(&mut tx, saga_id, |slip| Ok(Some(slip.on_wake(now))))
            .instrument(span)
            .await;
        match woken {
            Ok(_) => tx.commit().await?,
            Err(error) => {
                tracing::error!(%saga_id, error = format!("{error:#}"), "waking a saga failed; postponing it");
                drop(tx);
                let backoff =
                    TimeDelta::from_std(settings.failure_backoff).unwrap_or(TimeDelta::seconds(5));
                let mut conn = pool.acquire().await?;
                store::postpone(&mut conn, saga_id, now + backoff).await?;
            }
        }
        Ok(true)
    }

    /// The timer worker: fires due timeouts, retries and deadlines until `shutdown`.
    /// Several instances may run at once: each due saga is claimed by one.
    pub async fn run_timers(
        self,
        pool: PgPool,
        settings: TimerSettings,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut interval = tokio::time::interval(settings.poll_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_census: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = interval.tick() => {}
            }
            if last_census.is_none_or(|at| at.elapsed() >= OPEN_SAGA_CENSUS_INTERVAL) {
                if let Err(error) = record_open_sagas(&pool).await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "counting unsettled sagas failed"
                    );
                }
                last_census = Some(std::time::Instant::now());
            }
            loop {
                if shutdown.is_cancelled() {
                    return Ok(());
                }
                match self.wake_one(&pool, &settings).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(error) => {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "saga timers could not run; trying again"
                        );
                        break;
                    }
                }
            }
        }
    }

    /// Loads the slip under its lock, lets `input` change it, sends the
    /// resulting commands and saves it. `input` returning `None` means
    /// nothing changed (a stale reply): nothing is written.
    async fn change(
        &self,
        conn: &mut PgConnection,
        saga_id: Uuid,
        input: impl FnOnce(&mut RoutingSlip) -> Result<Option<Vec<Action>>, SlipError>,
    ) -> Result<Option<(RoutingSlip, Vec<Action>)>, SagaError> {
        let mut slip = store::load_for_update(conn, saga_id)
            .await?
            .ok_or(SagaError::NotFound(saga_id))?;
        let previous = slip.status;
        let before = slip.clone();
        let Some(actions) = input(&mut slip)? else {
            return Ok(None);
        };
        if slip == before {
            return Ok(Some((slip, actions)));
        }
        record_step_failures(&before, &slip);
        self.carry_out(conn, &slip, &actions).await?;
        store::save(conn, &slip).await?;
        self.executor.on_change(conn, previous, &slip).await?;
        record_transition(previous, &slip);
        Ok(Some((slip, actions)))
    }

    async fn carry_out(
        &self,
        conn: &mut PgConnection,
        slip: &RoutingSlip,
        actions: &[Action],
    ) -> anyhow::Result<()> {
        for action in actions {
            if action.attempt > 1 {
                metrics::counter!("saga_step_retries_total", "step" => action.step.clone())
                    .increment(1);
            }
            let step = E::Step::from_name(&action.step).ok_or_else(|| {
                anyhow::anyhow!(
                    "saga {} has a step {} this code does not know",
                    slip.saga_id,
                    action.step
                )
            })?;
            // The command is written inside this span, so its trace context
            // (and the participant's work) hangs under the step.
            let span = tracing::info_span!(
                "saga.step",
                saga_id = %slip.saga_id,
                correlation_id = %slip.saga_id,
                step = action.step,
                attempt = action.attempt,
                phase = ?action.phase,
            );
            async {
                tracing::debug!("executing saga step");
                self.executor.execute(conn, slip, step, action).await
            }
            .instrument(span)
            .await?;
        }
        Ok(())
    }
}

/// How often the timer worker counts unsettled sagas for the
/// `sagas_open` and `saga_oldest_open_age_seconds` gauges (what the stuck-saga
/// alert reads): often enough for a 15 s scrape, rare enough to cost nothing.
const OPEN_SAGA_CENSUS_INTERVAL: Duration = Duration::from_secs(10);

/// Every unsettled status, so a status that empties reads 0 instead of
/// keeping its last count.
const OPEN_STATUSES: [SagaStatus; 4] = [
    SagaStatus::Running,
    SagaStatus::Compensating,
    SagaStatus::FailedCompensation,
    SagaStatus::Parked,
];

async fn record_open_sagas(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let open = store::open_sagas(&mut conn).await?;
    for status in OPEN_STATUSES {
        let found = open.iter().find(|open| open.status == status.as_str());
        let (count, oldest) = found.map_or((0.0, 0.0), |open| {
            (open.count as f64, open.oldest_age_seconds)
        });
        metrics::gauge!("sagas_open", "status" => status.as_str()).set(count);
        metrics::gauge!("saga_oldest_open_age_seconds", "status" => status.as_str()).set(oldest);
    }
    Ok(())
}

/// Counts the attempts this change failed, by step and why: a participant's
/// refusal, a transient failure, no answer within the step's timeout, or an
/// attempt abandoned (a cancellation, the saga's deadline).
fn record_step_failures(before: &RoutingSlip, after: &RoutingSlip) {
    for (index, entry) in after.activity_log.iter().enumerate() {
        let was_pending = before
            .activity_log
            .get(index)
            .is_none_or(|earlier| earlier.result == AttemptResult::Pending);
        if !was_pending {
            continue;
        }
        let reason = match &entry.result {
            AttemptResult::Pending | AttemptResult::Succeeded => continue,
            AttemptResult::Failed {
                transient: true, ..
            } => "transient",
            AttemptResult::Failed {
                transient: false, ..
            } => "refused",
            AttemptResult::TimedOut => "timed_out",
            AttemptResult::Abandoned { .. } => "abandoned",
        };
        metrics::counter!(
            "saga_step_failures_total",
            "saga_type" => after.saga_type.clone(),
            "step" => entry.step.clone(),
            "reason" => reason
        )
        .increment(1);
    }
}

/// What acts on a saga without a message of its own to continue a trace from.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Timer,
    Retry,
    Cancel,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Timer => "timer",
            Self::Retry => "operator_retry",
            Self::Cancel => "cancellation",
        }
    }
}

/// A span for acting on a saga outside any message of its own: a child of
/// the trace the saga was started in, linked to whatever trace asked for it
/// (an operator's or a customer's request). A saga that kept no trace
/// context gets an ordinary child of the current span.
async fn continue_saga_trace(
    conn: &mut PgConnection,
    trigger: Trigger,
    saga_id: Uuid,
) -> anyhow::Result<tracing::Span> {
    let kept = store::trace_context(conn, saga_id).await?;
    if kept.is_empty() {
        return Ok(tracing::info_span!(
            "saga.resume",
            trigger = trigger.as_str(),
            saga_id = %saga_id,
            correlation_id = %saga_id
        ));
    }
    let span = tracing::info_span!(
        parent: None,
        "saga.resume",
        trigger = trigger.as_str(),
        saga_id = %saga_id,
        correlation_id = %saga_id
    );
    kept.make_parent_of(&span);
    let asked_by = TraceContext::current();
    if asked_by.trace_id() != kept.trace_id() {
        asked_by.link_from(&span);
    }
    Ok(span)
}

fn outcome_label(outcome: &StepOutcome) -> &'static str {
    match outcome {
        StepOutcome::Succeeded { .. } => "succeeded",
        StepOutcome::Failed {
            transient: true, ..
        } => "failed_transiently",
        StepOutcome::Failed {
            transient: false, ..
        } => "refused",
    }
}

/// Makes the outcome counters of `saga_type` exist at zero before the first
/// saga reaches them: a parked counter that appears only at the first park
/// makes `rate()` blind to that park, and leaves the dashboards' panels and
/// the alerts' selectors empty until then.
fn register_outcome_counters(saga_type: &str) {
    for (counter, status) in [
        ("saga_completed_total", SagaStatus::Completed),
        ("saga_compensated_total", SagaStatus::Compensated),
        ("saga_parked_total", SagaStatus::FailedCompensation),
    ] {
        metrics::counter!(counter, "saga_type" => saga_type.to_owned(), "status" => status.as_str())
            .increment(0);
    }
    metrics::counter!("saga_stale_replies_total").increment(0);
}

fn record_transition(previous: SagaStatus, slip: &RoutingSlip) {
    if previous == slip.status {
        return;
    }
    // The names the shipped alert rules and dashboard (deploy/) query.
    let counter = match slip.status {
        SagaStatus::Completed => Some("saga_completed_total"),
        SagaStatus::Compensated => Some("saga_compensated_total"),
        SagaStatus::FailedCompensation | SagaStatus::Parked => Some("saga_parked_total"),
        SagaStatus::Running | SagaStatus::Compensating => None,
    };
    if let Some(counter) = counter {
        metrics::counter!(
            counter,
            "saga_type" => slip.saga_type.clone(),
            "status" => slip.status.as_str()
        )
        .increment(1);
    }
    if slip.status.is_terminal() || slip.status.needs_operator() {
        let elapsed = (slip.updated_at - slip.created_at)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        metrics::histogram!(
            "saga_duration_seconds",
            "saga_type" => slip.saga_type.clone(),
            "status" => slip.status.as_str()
        )
        .record(elapsed);
        tracing::info!(
            saga_id = %slip.saga_id,
            saga_type = slip.saga_type,
            status = %slip.status,
            failure_reason = slip.failure_reason.as_deref(),
            "saga reached {}", slip.status
        );
    }
}
