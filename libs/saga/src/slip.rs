//! The routing slip: a saga's itinerary, what it has done, what it would
//! take to undo it, and the pure state machine that moves it along.
//!
//! Nothing here does I/O. Every input (a reply, a timer, a cancellation, an
//! operator's retry) is a method that changes the slip and returns the
//! [`Action`]s the caller must carry out: "send the command for step X,
//! attempt N". The caller persists the slip and writes those commands in one
//! transaction, so a crash never leaves a slip that disagrees with the
//! messages it sent.
//!
//! The rules, in one place:
//! - forward steps run in itinerary order; a step that succeeds registers its
//!   compensation (if it has one) on top of the compensation log;
//! - a transient failure or an unanswered attempt is retried with
//!   exponential backoff while the step's budget lasts; a refusal, or a spent
//!   budget, turns the saga around: compensations run from the top of the log
//!   down, each retried until it succeeds or its budget is spent;
//! - an attempt that went unanswered *may* have taken effect, so when the saga
//!   gives up on it, its compensation is registered anyway (marked
//!   `uncertain`): compensations must accept undoing what never happened;
//! - once the pivot succeeds the saga only goes forward: later steps are
//!   retriable, never compensated, and a step that exhausts its budget parks
//!   the saga for an operator instead of undoing a sale;
//! - a saga that has not reached its pivot by its deadline is compensated;
//! - replies are matched on step name *and* attempt; anything else is stale
//!   and changes nothing.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Where a saga stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaStatus {
    /// Going forward.
    Running,
    /// Every step succeeded.
    Completed,
    /// Undoing what it did.
    Compensating,
    /// Everything it did is undone (and the steps after compensation ran).
    Compensated,
    /// A compensation exhausted its budget: parked until an operator retries it.
    FailedCompensation,
    /// A step after the pivot exhausted its budget: the outcome stands, but
    /// the saga is parked until an operator retries it.
    Parked,
}

impl SagaStatus {
    pub const ALL: [SagaStatus; 6] = [
        Self::Running,
        Self::Completed,
        Self::Compensating,
        Self::Compensated,
        Self::FailedCompensation,
        Self::Parked,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Compensating => "compensating",
            Self::Compensated => "compensated",
            Self::FailedCompensation => "failed_compensation",
            Self::Parked => "parked",
        }
    }

    /// Nothing more will happen without a new input from outside.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Compensated)
    }

    /// Stuck until an operator acts.
    pub const fn needs_operator(self) -> bool {
        matches!(self, Self::FailedCompensation | Self::Parked)
    }

    /// An operator's retry ([`RoutingSlip::retry`]) applies: the saga is parked.
    pub const fn may_be_retried(self) -> bool {
        self.needs_operator()
    }

    /// A cancellation ([`RoutingSlip::cancel`]) applies: the saga is not
    /// undoing itself already, nor undone.
    pub const fn may_be_cancelled(self) -> bool {
        matches!(self, Self::Running | Self::Parked | Self::Completed)
    }
}

impl fmt::Display for SagaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a saga status")]
pub struct UnknownStatus(pub String);

impl FromStr for SagaStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownStatus(text.to_owned()))
    }
}

/// What kind of step, and so what happens when something fails around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Undone by its compensation if the saga turns around.
    Compensatable,
    /// The point of no return: once it succeeds the saga only goes forward.
    Pivot,
    /// After the pivot: retried, never compensated.
    Retriable,
}

/// How hard to try one step: attempts, backoff between them, and how long
/// an attempt may go unanswered before it counts as a transient failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub timeout_ms: u64,
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based) of this budget:
    /// doubling from `initial_backoff_ms`, capped at `max_backoff_ms`.
    pub fn backoff_after(&self, attempt: u32) -> TimeDelta {
        let doublings = attempt.saturating_sub(1).min(32);
        let backoff = self
            .initial_backoff_ms
            .saturating_mul(1_u64 << doublings)
            .min(self.max_backoff_ms);
        TimeDelta::milliseconds(i64::try_from(backoff).unwrap_or(i64::MAX))
    }

    pub fn timeout(&self) -> TimeDelta {
        TimeDelta::milliseconds(i64::try_from(self.timeout_ms).unwrap_or(i64::MAX))
    }
}

/// How a step is undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompensationDefinition {
    pub name: String,
    pub policy: RetryPolicy,
}

/// One step of the itinerary, with its policy as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDefinition {
    pub name: String,
    pub kind: StepKind,
    pub policy: RetryPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensation: Option<CompensationDefinition>,
}

/// Which way the work goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Forward,
    Compensation,
    /// Steps run once everything is undone (a cancellation notice, say).
    AfterCompensation,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptResult {
    /// Sent, not answered yet.
    Pending,
    Succeeded,
    Failed {
        reason: String,
        transient: bool,
    },
    /// No answer within the step's timeout.
    TimedOut,
    /// The saga stopped waiting for it (cancelled, or past its deadline).
    Abandoned {
        reason: String,
    },
}

/// An entry of the activity log: one attempt of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub step: String,
    pub phase: Phase,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    pub result: AttemptResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompensationState {
    Pending,
    Done,
}

/// An entry of the compensation log: what undoes a step that succeeded (or may have).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompensationEntry {
    pub name: String,
    pub for_step: String,
    pub policy: RetryPolicy,
    /// The step it undoes may not have taken effect (it went unanswered).
    pub uncertain: bool,
    pub registered_at: DateTime<Utc>,
    pub state: CompensationState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<DateTime<Utc>>,
}

/// Where the current work item is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WorkState {
    /// The command is out; waiting for its reply until `timeout_at`.
    Executing { timeout_at: DateTime<Utc> },
    /// The last attempt failed; the next goes out at `retry_at`.
    Waiting { retry_at: DateTime<Utc> },
    /// The budget is spent; an operator must retry.
    Parked,
}

/// The step the saga is working on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Work {
    pub phase: Phase,
    pub step: StepDefinition,
    /// Attempt numbers only grow within a saga, so a late reply to an old
    /// attempt can never be taken for the current one.
    pub attempt: u32,
    /// Attempts left in the current budget, this one included.
    pub attempts_left: u32,
    /// An attempt of this step went unanswered: it may have taken effect.
    pub maybe_applied: bool,
    #[serde(flatten)]
    pub state: WorkState,
}

/// "Send the command for `step`, attempt `attempt`." The attempt travels in
/// the command and comes back in its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub step: String,
    pub phase: Phase,
    pub attempt: u32,
}

/// A participant's answer to an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub step: String,
    pub attempt: u32,
    pub outcome: StepOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// Done; `data` is kept in the slip's variables under the step's name.
    Succeeded { data: Value },
    /// Not done. `transient`: trying again may succeed; otherwise it is a
    /// refusal, final for that step.
    Failed { reason: String, transient: bool },
}

/// What became of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyDisposition {
    Applied(Vec<Action>),
    /// Not the attempt the saga waits for (a duplicate, or a late answer to
    /// an attempt it gave up on): nothing changed.
    Stale,
}

/// A request the slip refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlipError {
    #[error("a saga needs at least one step")]
    NoSteps,
    #[error("step {0} appears twice")]
    DuplicateStep(String),
    #[error("a saga has at most one pivot")]
    SeveralPivots,
    #[error("step {0} comes after the pivot, so it must be retriable")]
    CompensatableAfterPivot(String),
    #[error("step {0} is retriable, so it must come after a pivot")]
    RetriableBeforePivot(String),
    #[error("step {0} is {1:?}, which has no compensation")]
    UnexpectedCompensation(String, StepKind),
    #[error("a policy allows no attempts for step {0}")]
    NoAttempts(String),
    #[error("the saga is {0}, so it cannot be {1}")]
    NotAllowed(SagaStatus, &'static str),
}

/// A saga's whole state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingSlip {
    pub saga_id: Uuid,
    pub saga_type: String,
    pub status: SagaStatus,
    /// Forward steps not started yet.
    pub itinerary: VecDeque<StepDefinition>,
    /// Every attempt of every step, in order.
    pub activity_log: Vec<ActivityEntry>,
    /// What undoes the steps done so far; run from the last entry back.
    pub compensation_log: Vec<CompensationEntry>,
    /// Steps to run once everything is compensated.
    pub after_compensation: VecDeque<StepDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Work>,
    /// The pivot succeeded: the saga's outcome is decided.
    pub pivoted: bool,
    /// Data the caller starts the saga with, and each succeeded step's reply data under its name.
    pub variables: serde_json::Map<String, Value>,
    /// Why the saga turned around, if it did because something failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Why the saga was cancelled, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    /// The pivot must be reached by then, or the saga is compensated.
    pub deadline: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl RoutingSlip {
    /// A saga that has not started. Checks the itinerary: at most one pivot,
    /// compensatable steps before it, retriable ones after it, a non-empty
    /// budget for everything.
    pub fn new(
        saga_id: Uuid,
        saga_type: impl Into<String>,
        steps: Vec<StepDefinition>,
        variables: serde_json::Map<String, Value>,
        deadline: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Self, SlipError> {
        validate_itinerary(&steps)?;
        Ok(Self {
            saga_id,
            saga_type: saga_type.into(),
            status: SagaStatus::Running,
            itinerary: steps.into(),
            activity_log: Vec::new(),
            compensation_log: Vec::new(),
            after_compensation: VecDeque::new(),
            current: None,
            pivoted: false,
            variables,
            failure_reason: None,
            cancellation_reason: None,
            deadline,
            created_at: now,
            updated_at: now,
            finished_at: None,
        })
    }

    /// Sends the first step.
    pub fn start(&mut self, now: DateTime<Utc>) -> Vec<Action> {
        if self.current.is_some() || !self.activity_log.is_empty() {
            return Vec::new();
        }
        self.advance(now)
    }

    /// Applies a participant's reply, if it answers the attempt the saga waits for.
    pub fn on_reply(&mut self, reply: Reply, now: DateTime<Utc>) -> ReplyDisposition {
        let Some(work) = self.current.take() else {
            return ReplyDisposition::Stale;
        };
        let answers_current = matches!(work.state, WorkState::Executing { .. })
            && work.step.name == reply.step
            && work.attempt == reply.attempt;
        if !answers_current {
            self.current = Some(work);
            return ReplyDisposition::Stale;
        }
        self.updated_at = now;
        let actions = match reply.outcome {
            StepOutcome::Succeeded { data } => {
                self.finish_attempt(&work, AttemptResult::Succeeded, now);
                self.succeeded(work, data, now)
            }
            StepOutcome::Failed { reason, transient } => {
                let result = AttemptResult::Failed {
                    reason: reason.clone(),
                    transient,
                };
                self.finish_attempt(&work, result, now);
                self.failed(work, reason, transient, now)
            }
        };
        ReplyDisposition::Applied(actions)
    }

    /// When `action`'s command stops being worth anything: the moment its
    /// attempt times out, for an attempt of a step before the pivot. By then
    /// the saga has tried again or turned around, either way without it, so
    /// its participant may drop it unapplied (`Envelope::expires_at`) rather
    /// than spend a backlog's capacity on it. Compensations and steps after
    /// the pivot must take effect however late they come: `None`.
    pub fn expiry_of(&self, action: &Action) -> Option<DateTime<Utc>> {
        let work = self.current.as_ref()?;
        let before_the_pivot =
            work.phase == Phase::Forward && work.step.kind != StepKind::Retriable;
        if !before_the_pivot || work.step.name != action.step || work.attempt != action.attempt {
            return None;
        }
        match work.state {
            WorkState::Executing { timeout_at } => Some(timeout_at),
            WorkState::Waiting { .. } | WorkState::Parked => None,
        }
    }

    /// Fires whatever timer is due: an attempt's timeout, a retry's backoff,
    /// the saga's deadline. Harmless to call early or often.
    pub fn on_wake(&mut self, now: DateTime<Utc>) -> Vec<Action> {
        if self.status == SagaStatus::Running && !self.pivoted && now >= self.deadline {
            self.updated_at = now;
            let reason = "the saga's deadline passed before the booking was confirmed";
            self.abandon_current(reason, now);
            return self.turn_around(reason.to_owned(), now);
        }
        let Some(mut work) = self.current.take() else {
            return Vec::new();
        };
        match work.state {
            WorkState::Executing { timeout_at } if now >= timeout_at => {
                self.updated_at = now;
                self.finish_attempt(&work, AttemptResult::TimedOut, now);
                work.maybe_applied = true;
                let reason = format!(
                    "no answer to {} attempt {} within {} ms",
                    work.step.name, work.attempt, work.step.policy.timeout_ms
                );
                self.failed(work, reason, true, now)
            }
            WorkState::Waiting { retry_at } if now >= retry_at => {
                self.updated_at = now;
                work.attempt += 1;
                work.attempts_left = work.attempts_left.saturating_sub(1);
                vec![self.execute(work, now)]
            }
            _ => {
                self.current = Some(work);
                Vec::new()
            }
        }
    }

    /// Undoes the saga, whatever it has done so far, then runs `then` (a
    /// cancellation notice, say). A step in flight is abandoned and, if it
    /// may have taken effect, compensated too.
    pub fn cancel(
        &mut self,
        reason: impl Into<String>,
        then: Vec<StepDefinition>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Action>, SlipError> {
        if !self.status.may_be_cancelled() {
            return Err(SlipError::NotAllowed(self.status, "cancelled"));
        }
        let reason = reason.into();
        self.updated_at = now;
        self.abandon_current(&format!("cancelled: {reason}"), now);
        self.cancellation_reason = Some(reason);
        self.after_compensation = then.into();
        self.status = SagaStatus::Compensating;
        self.finished_at = None;
        Ok(self.advance(now))
    }

    /// An operator's retry of a parked saga: the parked step gets a fresh budget.
    pub fn retry(&mut self, now: DateTime<Utc>) -> Result<Vec<Action>, SlipError> {
        let resumed_status = match self.status {
            SagaStatus::FailedCompensation => SagaStatus::Compensating,
            SagaStatus::Parked => {
                // Parking did not change the saga's outcome; why it parked stays in the activity log.
                self.failure_reason = None;
                SagaStatus::Running
            }
            status => return Err(SlipError::NotAllowed(status, "retried")),
        };
        self.status = resumed_status;
        self.updated_at = now;
        match self.current.take() {
            Some(mut work) => {
                work.attempt += 1;
                work.attempts_left = work.step.policy.max_attempts;
                Ok(vec![self.execute(work, now)])
            }
            None => Ok(self.advance(now)),
        }
    }

    /// When [`on_wake`](Self::on_wake) next has something to do.
    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        let timer = match self.current.as_ref().map(|work| &work.state) {
            Some(WorkState::Executing { timeout_at }) => Some(*timeout_at),
            Some(WorkState::Waiting { retry_at }) => Some(*retry_at),
            Some(WorkState::Parked) | None => None,
        };
        let deadline =
            (self.status == SagaStatus::Running && !self.pivoted).then_some(self.deadline);
        match (timer, deadline) {
            (Some(timer), Some(deadline)) => Some(timer.min(deadline)),
            (timer, deadline) => timer.or(deadline),
        }
    }

    /// The data a succeeded step replied with.
    pub fn step_data(&self, step: &str) -> Option<&Value> {
        self.variables.get(step)
    }

    fn succeeded(&mut self, work: Work, data: Value, now: DateTime<Utc>) -> Vec<Action> {
        match work.phase {
            Phase::Forward => {
                self.variables.insert(work.step.name.clone(), data);
                if work.step.kind == StepKind::Pivot {
                    self.pivoted = true;
                }
                if let Some(compensation) = &work.step.compensation {
                    self.register_compensation(&work.step.name, compensation, false, now);
                }
            }
            Phase::Compensation => {
                if let Some(entry) = self.next_compensation_mut() {
                    entry.state = CompensationState::Done;
                    entry.done_at = Some(now);
                }
            }
            Phase::AfterCompensation => {
                self.variables.insert(work.step.name.clone(), data);
            }
        }
        self.advance(now)
    }

    fn failed(
        &mut self,
        mut work: Work,
        reason: String,
        transient: bool,
        now: DateTime<Utc>,
    ) -> Vec<Action> {
        // Compensations and steps after the pivot must happen eventually, so
        // they retry on any failure; a refusal of a step before the pivot is final.
        let retriable =
            transient || work.phase != Phase::Forward || work.step.kind == StepKind::Retriable;
        if retriable && work.attempts_left > 1 {
            let retry_at = now + work.step.policy.backoff_after(work.attempt);
            work.state = WorkState::Waiting { retry_at };
            self.current = Some(work);
            return Vec::new();
        }
        match (work.phase, work.step.kind) {
            (Phase::Forward, StepKind::Retriable) => {
                self.park(work, SagaStatus::Parked, reason, now);
                Vec::new()
            }
            (Phase::Forward, _) => {
                if work.maybe_applied {
                    if let Some(compensation) = &work.step.compensation {
                        self.register_compensation(&work.step.name, compensation, true, now);
                    }
                }
                let reason = format!("{} failed: {reason}", work.step.name);
                self.turn_around(reason, now)
            }
            (Phase::Compensation | Phase::AfterCompensation, _) => {
                self.park(work, SagaStatus::FailedCompensation, reason, now);
                Vec::new()
            }
        }
    }

    fn park(&mut self, mut work: Work, status: SagaStatus, reason: String, now: DateTime<Utc>) {
        work.state = WorkState::Parked;
        let reason = format!(
            "{} gave up after attempt {}: {reason}",
            work.step.name, work.attempt
        );
        self.failure_reason = Some(match self.failure_reason.take() {
            Some(earlier) if status == SagaStatus::FailedCompensation => {
                format!("{earlier}; then {reason}")
            }
            _ => reason,
        });
        self.current = Some(work);
        self.status = status;
        self.updated_at = now;
    }

    /// Stops waiting for the work in hand; if it was a forward step that may
    /// have taken effect, registers its compensation.
    fn abandon_current(&mut self, reason: &str, now: DateTime<Utc>) {
        let Some(work) = self.current.take() else {
            return;
        };
        let executing = matches!(work.state, WorkState::Executing { .. });
        if executing {
            let result = AttemptResult::Abandoned {
                reason: reason.to_owned(),
            };
            self.finish_attempt(&work, result, now);
        }
        if work.phase == Phase::Forward && (executing || work.maybe_applied) {
            if let Some(compensation) = &work.step.compensation {
                self.register_compensation(&work.step.name, compensation, true, now);
            }
        }
    }

    fn turn_around(&mut self, reason: String, now: DateTime<Utc>) -> Vec<Action> {
        self.failure_reason.get_or_insert(reason);
        self.status = SagaStatus::Compensating;
        self.advance(now)
    }

    /// Starts the next piece of work, or finishes the saga.
    fn advance(&mut self, now: DateTime<Utc>) -> Vec<Action> {
        self.current = None;
        let next = match self.status {
            SagaStatus::Running => self
                .itinerary
                .pop_front()
                .map(|step| (Phase::Forward, step)),
            SagaStatus::Compensating => self
                .compensation_log
                .iter()
                .rev()
                .find(|entry| entry.state == CompensationState::Pending)
                .map(|entry| {
                    let step = StepDefinition {
                        name: entry.name.clone(),
                        kind: StepKind::Compensatable,
                        policy: entry.policy.clone(),
                        compensation: None,
                    };
                    (Phase::Compensation, step)
                })
                .or_else(|| {
                    self.after_compensation
                        .pop_front()
                        .map(|step| (Phase::AfterCompensation, step))
                }),
            _ => return Vec::new(),
        };
        match next {
            Some((phase, step)) => {
                let attempt = self.last_attempt_of(&step.name) + 1;
                let work = Work {
                    phase,
                    attempts_left: step.policy.max_attempts,
                    step,
                    attempt,
                    maybe_applied: false,
                    state: WorkState::Parked,
                };
                vec![self.execute(work, now)]
            }
            None => {
                self.status = match self.status {
                    SagaStatus::Running => SagaStatus::Completed,
                    _ => SagaStatus::Compensated,
                };
                self.finished_at = Some(now);
                Vec::new()
            }
        }
    }

    fn execute(&mut self, mut work: Work, now: DateTime<Utc>) -> Action {
        work.state = WorkState::Executing {
            timeout_at: now + work.step.policy.timeout(),
        };
        self.activity_log.push(ActivityEntry {
            step: work.step.name.clone(),
            phase: work.phase,
            attempt: work.attempt,
            started_at: now,
            finished_at: None,
            result: AttemptResult::Pending,
        });
        let action = Action {
            step: work.step.name.clone(),
            phase: work.phase,
            attempt: work.attempt,
        };
        self.current = Some(work);
        action
    }

    fn finish_attempt(&mut self, work: &Work, result: AttemptResult, now: DateTime<Utc>) {
        if let Some(entry) = self
            .activity_log
            .iter_mut()
            .rev()
            .find(|entry| entry.step == work.step.name && entry.attempt == work.attempt)
        {
            entry.finished_at = Some(now);
            entry.result = result;
        }
    }

    fn register_compensation(
        &mut self,
        for_step: &str,
        compensation: &CompensationDefinition,
        uncertain: bool,
        now: DateTime<Utc>,
    ) {
        let already = self
            .compensation_log
            .iter()
            .any(|entry| entry.for_step == for_step);
        if already {
            return;
        }
        self.compensation_log.push(CompensationEntry {
            name: compensation.name.clone(),
            for_step: for_step.to_owned(),
            policy: compensation.policy.clone(),
            uncertain,
            registered_at: now,
            state: CompensationState::Pending,
            done_at: None,
        });
    }

    fn next_compensation_mut(&mut self) -> Option<&mut CompensationEntry> {
        self.compensation_log
            .iter_mut()
            .rev()
            .find(|entry| entry.state == CompensationState::Pending)
    }

    fn last_attempt_of(&self, step: &str) -> u32 {
        self.activity_log
            .iter()
            .filter(|entry| entry.step == step)
            .map(|entry| entry.attempt)
            .max()
            .unwrap_or(0)
    }
}

fn validate_itinerary(steps: &[StepDefinition]) -> Result<(), SlipError> {
    if steps.is_empty() {
        return Err(SlipError::NoSteps);
    }
    let mut seen_pivot = false;
    for (index, step) in steps.iter().enumerate() {
        if steps[..index]
            .iter()
            .any(|earlier| earlier.name == step.name)
        {
            return Err(SlipError::DuplicateStep(step.name.clone()));
        }
        if step.policy.max_attempts == 0 {
            return Err(SlipError::NoAttempts(step.name.clone()));
        }
        if let Some(compensation) = &step.compensation {
            if step.kind != StepKind::Compensatable {
                return Err(SlipError::UnexpectedCompensation(
                    step.name.clone(),
                    step.kind,
                ));
            }
            if compensation.policy.max_attempts == 0 {
                return Err(SlipError::NoAttempts(compensation.name.clone()));
            }
        }
        match (step.kind, seen_pivot) {
            (StepKind::Pivot, true) => return Err(SlipError::SeveralPivots),
            (StepKind::Pivot, false) => seen_pivot = true,
            (StepKind::Compensatable, true) => {
                return Err(SlipError::CompensatableAfterPivot(step.name.clone()))
            }
            (StepKind::Retriable, false) => {
                return Err(SlipError::RetriableBeforePivot(step.name.clone()))
            }
            _ => {}
        }
    }
    Ok(())
}
