//! Steps as types: a saga's steps are a closed enum the owning service
//! defines, so a step's name is written once and every `match` over the
//! steps is checked by the compiler when a step is added.
//!
//! The routing slip itself stays a plain, persisted record and keeps each
//! step by the name [`SagaStep::name`] gives it; the typed layer sits at its
//! edges — where an itinerary is built, where the orchestrator hands an
//! action to the service, and where a step's result is read back
//! ([`RoutingSlip::result_of`]).

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::slip::{CompensationDefinition, RetryPolicy, RoutingSlip, StepDefinition, StepKind};

/// The steps of one kind of saga (forward steps and compensations alike).
pub trait SagaStep: Copy + Eq + Debug + Send + Sync + 'static {
    /// Every step, for reading a slip's names back.
    const ALL: &'static [Self];

    /// The name the slip stores. Persisted in live slips: never rename one,
    /// add a step instead.
    fn name(self) -> &'static str;

    /// The step a stored name stands for, if this code knows it.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|step| step.name() == name)
    }
}

impl StepDefinition {
    /// A step undone by `compensation` if the saga turns around.
    pub fn compensatable<S: SagaStep>(
        step: S,
        policy: RetryPolicy,
        compensation: S,
        compensation_policy: RetryPolicy,
    ) -> Self {
        Self {
            name: step.name().to_owned(),
            kind: StepKind::Compensatable,
            policy,
            compensation: Some(CompensationDefinition {
                name: compensation.name().to_owned(),
                policy: compensation_policy,
            }),
        }
    }

    /// The point of no return.
    pub fn pivot<S: SagaStep>(step: S, policy: RetryPolicy) -> Self {
        Self {
            name: step.name().to_owned(),
            kind: StepKind::Pivot,
            policy,
            compensation: None,
        }
    }

    /// A step after the pivot: retried until its budget ends, never undone.
    pub fn retriable<S: SagaStep>(step: S, policy: RetryPolicy) -> Self {
        Self {
            name: step.name().to_owned(),
            kind: StepKind::Retriable,
            policy,
            compensation: None,
        }
    }
}

/// A step's stored result could not be read as its type: the slip was
/// written by code that disagrees with this code about the result's shape.
#[derive(Debug, thiserror::Error)]
#[error("the result of step {step} does not read as its type")]
pub struct ResultError {
    pub step: &'static str,
    #[source]
    pub source: serde_json::Error,
}

impl RoutingSlip {
    /// What `step` replied with when it succeeded, read as `R`; `None` if it
    /// has not succeeded. An error, never a silent default, when the stored
    /// result does not read as `R`.
    pub fn result_of<S: SagaStep, R: DeserializeOwned>(
        &self,
        step: S,
    ) -> Result<Option<R>, ResultError> {
        let name = step.name();
        self.step_data(name)
            .map(|data| R::deserialize(data).map_err(|source| ResultError { step: name, source }))
            .transpose()
    }
}

impl crate::StepOutcome {
    /// Success, with `result` kept on the slip for [`RoutingSlip::result_of`].
    pub fn succeeded<R: Serialize>(result: &R) -> Result<Self, serde_json::Error> {
        Ok(Self::Succeeded {
            data: serde_json::to_value(result)?,
        })
    }
}
