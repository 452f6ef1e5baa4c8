//! What a saga step's command carries so its reply can find its way back.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The step of a saga a command belongs to. Participants echo it in their
/// reply; the orchestrator ignores replies whose step or attempt is not the
/// one it is waiting for (stale or duplicate replies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRef {
    pub saga_id: Uuid,
    /// The step's name in the routing slip, e.g. `HoldSeats` or `ReleaseSeats`.
    pub step: String,
    /// 1 for the first try, incremented by each retry of the step.
    pub attempt: u32,
}
