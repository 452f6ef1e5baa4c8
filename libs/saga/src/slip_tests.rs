use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::slip::*;

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff_ms: 100,
        max_backoff_ms: 1_000,
        timeout_ms: 5_000,
    }
}

fn compensatable(name: &str, compensation: &str) -> StepDefinition {
    StepDefinition {
        name: name.to_owned(),
        kind: StepKind::Compensatable,
        policy: policy(3),
        compensation: Some(CompensationDefinition {
            name: compensation.to_owned(),
            policy: policy(3),
        }),
    }
}

fn step(name: &str, kind: StepKind) -> StepDefinition {
    StepDefinition {
        name: name.to_owned(),
        kind,
        policy: policy(3),
        compensation: None,
    }
}

/// The booking saga's shape.
fn itinerary() -> Vec<StepDefinition> {
    vec![
        compensatable("HoldSeats", "ReleaseSeats"),
        compensatable("TakePayment", "Refund"),
        step("ConfirmBooking", StepKind::Pivot),
        step("SendConfirmation", StepKind::Retriable),
    ]
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    t0() + TimeDelta::milliseconds(ms)
}

fn new_slip() -> RoutingSlip {
    RoutingSlip::new(
        Uuid::now_v7(),
        "booking",
        itinerary(),
        serde_json::Map::new(),
        at(60_000),
        t0(),
    )
    .unwrap()
}

fn action(step: &str, phase: Phase, attempt: u32) -> Action {
    Action {
        step: step.to_owned(),
        phase,
        attempt,
    }
}

fn ok(step: &str, attempt: u32) -> Reply {
    Reply {
        step: step.to_owned(),
        attempt,
        outcome: StepOutcome::Succeeded { data: json!({}) },
    }
}

fn refused(step: &str, attempt: u32) -> Reply {
    Reply {
        step: step.to_owned(),
        attempt,
        outcome: StepOutcome::Failed {
            reason: "refused".to_owned(),
            transient: false,
        },
    }
}

fn transient(step: &str, attempt: u32) -> Reply {
    Reply {
        step: step.to_owned(),
        attempt,
        outcome: StepOutcome::Failed {
            reason: "gateway timeout".to_owned(),
            transient: true,
        },
    }
}

fn applied(disposition: ReplyDisposition) -> Vec<Action> {
    match disposition {
        ReplyDisposition::Applied(actions) => actions,
        ReplyDisposition::Stale => panic!("the reply was taken for stale"),
    }
}

/// Runs the slip up to and including the pivot.
fn confirmed_slip() -> RoutingSlip {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    applied(slip.on_reply(ok("TakePayment", 1), at(20)));
    applied(slip.on_reply(ok("ConfirmBooking", 1), at(30)));
    slip
}

#[test]
fn what_a_status_says_an_operator_may_do_is_what_the_slip_accepts() {
    for status in SagaStatus::ALL {
        let mut slip = new_slip();
        slip.start(t0());
        slip.status = status;
        assert_eq!(
            slip.clone().retry(at(1)).is_ok(),
            status.may_be_retried(),
            "retry of a {status} saga"
        );
        assert_eq!(
            slip.cancel("operator", Vec::new(), at(1)).is_ok(),
            status.may_be_cancelled(),
            "cancellation of a {status} saga"
        );
    }
}

#[test]
fn a_saga_whose_steps_all_succeed_completes_in_itinerary_order() {
    let mut slip = new_slip();
    assert_eq!(
        slip.start(at(0)),
        vec![action("HoldSeats", Phase::Forward, 1)]
    );
    assert_eq!(
        applied(slip.on_reply(ok("HoldSeats", 1), at(10))),
        vec![action("TakePayment", Phase::Forward, 1)]
    );
    assert_eq!(
        applied(slip.on_reply(ok("TakePayment", 1), at(20))),
        vec![action("ConfirmBooking", Phase::Forward, 1)]
    );
    assert_eq!(
        applied(slip.on_reply(ok("ConfirmBooking", 1), at(30))),
        vec![action("SendConfirmation", Phase::Forward, 1)]
    );
    assert!(slip.pivoted);
    assert!(applied(slip.on_reply(ok("SendConfirmation", 1), at(40))).is_empty());

    assert_eq!(slip.status, SagaStatus::Completed);
    assert_eq!(slip.finished_at, Some(at(40)));
    assert_eq!(slip.next_wakeup(), None);
    assert_eq!(slip.activity_log.len(), 4);
    assert!(slip
        .activity_log
        .iter()
        .all(|entry| entry.result == AttemptResult::Succeeded));
    let registered: Vec<&str> = slip
        .compensation_log
        .iter()
        .map(|entry| entry.name.as_str())
        .collect();
    assert_eq!(registered, ["ReleaseSeats", "Refund"]);
    assert!(slip
        .compensation_log
        .iter()
        .all(|entry| entry.state == CompensationState::Pending && !entry.uncertain));
}

#[test]
fn starting_twice_sends_nothing_the_second_time() {
    let mut slip = new_slip();
    slip.start(at(0));
    assert!(slip.start(at(1)).is_empty());
}

#[test]
fn a_refused_step_is_not_compensated_but_the_steps_before_it_are() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    let actions = applied(slip.on_reply(refused("TakePayment", 1), at(20)));

    assert_eq!(
        actions,
        vec![action("ReleaseSeats", Phase::Compensation, 1)]
    );
    assert_eq!(slip.status, SagaStatus::Compensating);
    assert!(slip
        .failure_reason
        .as_deref()
        .unwrap()
        .contains("TakePayment failed: refused"));
    assert!(applied(slip.on_reply(ok("ReleaseSeats", 1), at(30))).is_empty());
    assert_eq!(slip.status, SagaStatus::Compensated);
    assert_eq!(slip.compensation_log.len(), 1);
    assert_eq!(slip.compensation_log[0].state, CompensationState::Done);
}

#[test]
fn compensations_run_in_reverse_order_of_the_steps_they_undo() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    applied(slip.on_reply(ok("TakePayment", 1), at(20)));
    let actions = applied(slip.on_reply(refused("ConfirmBooking", 1), at(30)));

    assert_eq!(actions, vec![action("Refund", Phase::Compensation, 1)]);
    assert_eq!(
        applied(slip.on_reply(ok("Refund", 1), at(40))),
        vec![action("ReleaseSeats", Phase::Compensation, 1)]
    );
    applied(slip.on_reply(ok("ReleaseSeats", 1), at(50)));
    assert_eq!(slip.status, SagaStatus::Compensated);
    assert!(!slip.pivoted);
}

#[test]
fn a_transient_failure_is_retried_after_a_backoff_before_anything_is_compensated() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    assert!(applied(slip.on_reply(transient("TakePayment", 1), at(20))).is_empty());

    assert_eq!(slip.status, SagaStatus::Running);
    assert_eq!(slip.next_wakeup(), Some(at(120)));
    assert!(slip.on_wake(at(119)).is_empty(), "not before the backoff");
    assert_eq!(
        slip.on_wake(at(120)),
        vec![action("TakePayment", Phase::Forward, 2)]
    );
    assert!(applied(slip.on_reply(transient("TakePayment", 2), at(130))).is_empty());
    assert_eq!(slip.next_wakeup(), Some(at(330)), "the backoff doubles");
    assert_eq!(
        slip.on_wake(at(330)),
        vec![action("TakePayment", Phase::Forward, 3)]
    );
    assert_eq!(
        applied(slip.on_reply(ok("TakePayment", 3), at(340))),
        vec![action("ConfirmBooking", Phase::Forward, 1)]
    );
    assert!(slip
        .compensation_log
        .iter()
        .all(|entry| entry.state == CompensationState::Pending));
}

#[test]
fn a_transient_failure_that_outlasts_the_budget_compensates() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    applied(slip.on_reply(transient("TakePayment", 1), at(20)));
    slip.on_wake(at(1_000));
    applied(slip.on_reply(transient("TakePayment", 2), at(1_010)));
    slip.on_wake(at(2_000));
    let actions = applied(slip.on_reply(transient("TakePayment", 3), at(2_010)));

    assert_eq!(
        actions,
        vec![action("ReleaseSeats", Phase::Compensation, 1)]
    );
    assert_eq!(slip.status, SagaStatus::Compensating);
    assert!(
        slip.compensation_log
            .iter()
            .all(|entry| entry.for_step != "TakePayment"),
        "an explicit failure took no effect, so there is nothing to refund"
    );
}

#[test]
fn stale_and_duplicate_replies_change_nothing() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    applied(slip.on_reply(transient("TakePayment", 1), at(20)));
    slip.on_wake(at(1_000));
    let before = slip.clone();

    assert_eq!(
        slip.on_reply(ok("TakePayment", 1), at(1_010)),
        ReplyDisposition::Stale
    );
    assert_eq!(
        slip.on_reply(ok("HoldSeats", 1), at(1_010)),
        ReplyDisposition::Stale
    );
    assert_eq!(
        slip.on_reply(ok("Refund", 2), at(1_010)),
        ReplyDisposition::Stale
    );
    assert_eq!(slip, before);

    applied(slip.on_reply(ok("TakePayment", 2), at(1_020)));
    assert_eq!(
        slip.on_reply(ok("TakePayment", 2), at(1_030)),
        ReplyDisposition::Stale
    );
}

#[test]
fn a_reply_while_waiting_to_retry_is_stale() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(transient("HoldSeats", 1), at(10)));
    assert_eq!(
        slip.on_reply(ok("HoldSeats", 1), at(20)),
        ReplyDisposition::Stale
    );
}

#[test]
fn an_unanswered_attempt_is_retried_and_compensated_when_the_budget_runs_out() {
    let mut slip = new_slip();
    slip.start(at(0));
    assert_eq!(slip.next_wakeup(), Some(at(5_000)));
    assert!(slip.on_wake(at(5_000)).is_empty(), "first the backoff");
    assert_eq!(
        slip.on_wake(at(5_100)),
        vec![action("HoldSeats", Phase::Forward, 2)]
    );
    slip.on_wake(at(10_100));
    slip.on_wake(at(10_300));
    let actions = slip.on_wake(at(15_300));

    assert_eq!(
        actions,
        vec![action("ReleaseSeats", Phase::Compensation, 1)]
    );
    let entry = &slip.compensation_log[0];
    assert_eq!(entry.for_step, "HoldSeats");
    assert!(entry.uncertain, "an unanswered hold may have happened");
    let timed_out = slip
        .activity_log
        .iter()
        .filter(|entry| entry.result == AttemptResult::TimedOut)
        .count();
    assert_eq!(timed_out, 3);
}

#[test]
fn a_saga_past_its_deadline_before_the_pivot_is_compensated() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    assert_eq!(slip.next_wakeup(), Some(at(5_010)));
    applied(slip.on_reply(transient("TakePayment", 1), at(20)));
    slip.deadline = at(50);
    assert_eq!(slip.next_wakeup(), Some(at(50)));

    let actions = slip.on_wake(at(50));
    assert_eq!(
        actions,
        vec![action("ReleaseSeats", Phase::Compensation, 1)]
    );
    assert!(slip.failure_reason.as_deref().unwrap().contains("deadline"));
}

#[test]
fn a_step_in_flight_at_the_deadline_is_compensated_as_uncertain() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    slip.deadline = at(100);
    let actions = slip.on_wake(at(100));

    assert_eq!(actions, vec![action("Refund", Phase::Compensation, 1)]);
    assert!(slip.compensation_log[1].uncertain);
    let payment = slip
        .activity_log
        .iter()
        .find(|entry| entry.step == "TakePayment")
        .unwrap();
    assert!(matches!(payment.result, AttemptResult::Abandoned { .. }));
    assert_eq!(
        slip.on_reply(ok("TakePayment", 1), at(110)),
        ReplyDisposition::Stale,
        "the abandoned attempt's late answer changes nothing"
    );
}

#[test]
fn the_deadline_does_not_apply_after_the_pivot() {
    let mut slip = confirmed_slip();
    slip.deadline = at(31);
    assert_eq!(slip.next_wakeup(), Some(at(5_030)));
    assert!(slip.on_wake(at(100)).is_empty());
    assert_eq!(slip.status, SagaStatus::Running);
}

#[test]
fn a_step_after_the_pivot_that_exhausts_its_budget_parks_the_saga_without_compensating() {
    let mut slip = confirmed_slip();
    applied(slip.on_reply(transient("SendConfirmation", 1), at(40)));
    slip.on_wake(at(1_000));
    applied(slip.on_reply(refused("SendConfirmation", 2), at(1_010)));
    slip.on_wake(at(2_000));
    assert!(applied(slip.on_reply(transient("SendConfirmation", 3), at(2_010))).is_empty());

    assert_eq!(slip.status, SagaStatus::Parked);
    assert!(slip.status.needs_operator());
    assert!(slip.pivoted);
    assert_eq!(slip.next_wakeup(), None);
    assert!(slip
        .compensation_log
        .iter()
        .all(|entry| entry.state == CompensationState::Pending));

    assert_eq!(
        slip.retry(at(3_000)).unwrap(),
        vec![action("SendConfirmation", Phase::Forward, 4)]
    );
    assert_eq!(slip.status, SagaStatus::Running);
    applied(slip.on_reply(ok("SendConfirmation", 4), at(3_010)));
    assert_eq!(slip.status, SagaStatus::Completed);
}

#[test]
fn a_compensation_that_exhausts_its_budget_parks_the_saga_until_an_operator_retries() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    applied(slip.on_reply(refused("TakePayment", 1), at(20)));
    applied(slip.on_reply(refused("ReleaseSeats", 1), at(30)));
    slip.on_wake(at(1_000));
    applied(slip.on_reply(transient("ReleaseSeats", 2), at(1_010)));
    slip.on_wake(at(2_000));
    applied(slip.on_reply(transient("ReleaseSeats", 3), at(2_010)));

    assert_eq!(slip.status, SagaStatus::FailedCompensation);
    assert_eq!(slip.next_wakeup(), None);
    let reason = slip.failure_reason.clone().unwrap();
    assert!(reason.contains("TakePayment failed") && reason.contains("ReleaseSeats gave up"));
    assert_eq!(
        slip.on_reply(ok("ReleaseSeats", 3), at(2_020)),
        ReplyDisposition::Stale
    );

    assert_eq!(
        slip.retry(at(5_000)).unwrap(),
        vec![action("ReleaseSeats", Phase::Compensation, 4)]
    );
    applied(slip.on_reply(ok("ReleaseSeats", 4), at(5_010)));
    assert_eq!(slip.status, SagaStatus::Compensated);
}

#[test]
fn only_a_parked_saga_can_be_retried() {
    let mut slip = new_slip();
    slip.start(at(0));
    assert_eq!(
        slip.retry(at(1)),
        Err(SlipError::NotAllowed(SagaStatus::Running, "retried"))
    );
}

#[test]
fn cancelling_a_completed_saga_compensates_everything_then_runs_the_steps_after() {
    let mut slip = confirmed_slip();
    applied(slip.on_reply(ok("SendConfirmation", 1), at(40)));
    assert_eq!(slip.status, SagaStatus::Completed);

    let actions = slip
        .cancel(
            "customer asked",
            vec![step("SendCancellation", StepKind::Retriable)],
            at(100),
        )
        .unwrap();
    assert_eq!(actions, vec![action("Refund", Phase::Compensation, 1)]);
    assert_eq!(slip.status, SagaStatus::Compensating);
    assert_eq!(slip.finished_at, None);
    assert_eq!(
        applied(slip.on_reply(ok("Refund", 1), at(110))),
        vec![action("ReleaseSeats", Phase::Compensation, 1)]
    );
    assert_eq!(
        applied(slip.on_reply(ok("ReleaseSeats", 1), at(120))),
        vec![action("SendCancellation", Phase::AfterCompensation, 1)]
    );
    applied(slip.on_reply(ok("SendCancellation", 1), at(130)));
    assert_eq!(slip.status, SagaStatus::Compensated);
    assert_eq!(slip.cancellation_reason.as_deref(), Some("customer asked"));
    assert_eq!(slip.failure_reason, None);
}

#[test]
fn cancelling_while_a_step_is_in_flight_compensates_that_step_too() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    let actions = slip.cancel("flight cancelled", vec![], at(15)).unwrap();

    assert_eq!(actions, vec![action("Refund", Phase::Compensation, 1)]);
    assert!(slip.compensation_log[1].uncertain);
    assert_eq!(
        slip.on_reply(ok("TakePayment", 1), at(16)),
        ReplyDisposition::Stale
    );
}

#[test]
fn a_saga_already_undone_cannot_be_cancelled() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(refused("HoldSeats", 1), at(10)));
    assert_eq!(slip.status, SagaStatus::Compensated, "nothing to undo");
    assert_eq!(
        slip.cancel("too late", vec![], at(20)),
        Err(SlipError::NotAllowed(SagaStatus::Compensated, "cancelled"))
    );
}

#[test]
fn a_failing_step_after_compensation_is_retried_then_parks_the_saga() {
    let mut slip = new_slip();
    slip.start(at(0));
    slip.cancel(
        "customer asked",
        vec![step("SendCancellation", StepKind::Retriable)],
        at(1),
    )
    .unwrap();
    applied(slip.on_reply(ok("ReleaseSeats", 1), at(2)));
    applied(slip.on_reply(refused("SendCancellation", 1), at(3)));
    assert_eq!(
        slip.status,
        SagaStatus::Compensating,
        "retried despite a refusal"
    );
    slip.on_wake(at(1_000));
    applied(slip.on_reply(refused("SendCancellation", 2), at(1_001)));
    slip.on_wake(at(2_000));
    applied(slip.on_reply(refused("SendCancellation", 3), at(2_001)));
    assert_eq!(slip.status, SagaStatus::FailedCompensation);
}

#[test]
fn step_data_is_kept_under_the_step_name() {
    let mut slip = new_slip();
    slip.start(at(0));
    let reply = Reply {
        step: "HoldSeats".to_owned(),
        attempt: 1,
        outcome: StepOutcome::Succeeded {
            data: json!({"hold_id": "h1"}),
        },
    };
    applied(slip.on_reply(reply, at(1)));
    assert_eq!(slip.step_data("HoldSeats"), Some(&json!({"hold_id": "h1"})));
}

#[test]
fn a_slip_survives_serialization() {
    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    applied(slip.on_reply(transient("TakePayment", 1), at(20)));
    let text = serde_json::to_string(&slip).unwrap();
    let back: RoutingSlip = serde_json::from_str(&text).unwrap();
    assert_eq!(back, slip);
}

#[test]
fn itineraries_are_checked() {
    let make = |steps: Vec<StepDefinition>| {
        RoutingSlip::new(
            Uuid::now_v7(),
            "t",
            steps,
            serde_json::Map::new(),
            at(1),
            t0(),
        )
    };
    assert_eq!(make(vec![]).unwrap_err(), SlipError::NoSteps);
    assert_eq!(
        make(vec![step("A", StepKind::Pivot), step("B", StepKind::Pivot)]).unwrap_err(),
        SlipError::SeveralPivots
    );
    assert_eq!(
        make(vec![
            step("A", StepKind::Pivot),
            compensatable("B", "UndoB")
        ])
        .unwrap_err(),
        SlipError::CompensatableAfterPivot("B".to_owned())
    );
    assert_eq!(
        make(vec![step("A", StepKind::Retriable)]).unwrap_err(),
        SlipError::RetriableBeforePivot("A".to_owned())
    );
    assert_eq!(
        make(vec![
            compensatable("A", "UndoA"),
            compensatable("A", "UndoA")
        ])
        .unwrap_err(),
        SlipError::DuplicateStep("A".to_owned())
    );
    let mut no_budget = step("A", StepKind::Pivot);
    no_budget.policy.max_attempts = 0;
    assert_eq!(
        make(vec![no_budget]).unwrap_err(),
        SlipError::NoAttempts("A".to_owned())
    );
    let mut pivot_with_undo = compensatable("A", "UndoA");
    pivot_with_undo.kind = StepKind::Pivot;
    assert!(matches!(
        make(vec![pivot_with_undo]).unwrap_err(),
        SlipError::UnexpectedCompensation(..)
    ));
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let policy = policy(10);
    let waits: Vec<i64> = (1..=6)
        .map(|attempt| policy.backoff_after(attempt).num_milliseconds())
        .collect();
    assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
    assert_eq!(policy.backoff_after(u32::MAX).num_milliseconds(), 1_000);
}

#[test]
fn statuses_parse_from_their_names() {
    for status in SagaStatus::ALL {
        assert_eq!(status.as_str().parse::<SagaStatus>().unwrap(), status);
    }
    assert!("done".parse::<SagaStatus>().is_err());
}

// --- Property: whatever the participants do, the saga ends consistent. ---

/// What a participant does with one command.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Succeed,
    Refuse,
    FailTransiently,
    /// Never answers: the attempt times out.
    Ignore,
    /// Answers twice.
    SucceedTwice,
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        4 => Just(Behaviour::Succeed),
        1 => Just(Behaviour::Refuse),
        2 => Just(Behaviour::FailTransiently),
        1 => Just(Behaviour::Ignore),
        1 => Just(Behaviour::SucceedTwice),
    ]
}

#[derive(Debug, Clone)]
struct Scenario {
    behaviours: Vec<Behaviour>,
    /// Cancel before handling this many commands, if set.
    cancel_after: Option<usize>,
    /// Replay an old reply before each of these commands is answered.
    replay_stale_at: Vec<usize>,
    deadline_ms: i64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        proptest::collection::vec(behaviour(), 0..40),
        proptest::option::of(0_usize..12),
        proptest::collection::vec(0_usize..30, 0..6),
        1_000_i64..120_000,
    )
        .prop_map(
            |(behaviours, cancel_after, replay_stale_at, deadline_ms)| Scenario {
                behaviours,
                cancel_after,
                replay_stale_at,
                deadline_ms,
            },
        )
}

fn reply_for(action: &Action, outcome: StepOutcome) -> Reply {
    Reply {
        step: action.step.clone(),
        attempt: action.attempt,
        outcome,
    }
}

/// Plays `scenario` to the end: participants follow the behaviours (then
/// always succeed), timers fire when due, an operator retries parked sagas.
fn play(scenario: &Scenario) -> (RoutingSlip, Vec<Action>) {
    let mut slip = RoutingSlip::new(
        Uuid::now_v7(),
        "booking",
        itinerary(),
        serde_json::Map::new(),
        at(scenario.deadline_ms),
        t0(),
    )
    .unwrap();
    let mut now = t0();
    let mut queue = slip.start(now);
    let mut sent: Vec<Action> = Vec::new();
    let mut behaviours = scenario.behaviours.iter().copied();
    for round in 0.. {
        assert!(round < 10_000, "the saga did not settle: {slip:#?}");
        now += TimeDelta::milliseconds(1);
        if scenario.cancel_after == Some(sent.len()) && !slip.status.is_terminal() {
            if let Ok(actions) = slip.cancel(
                "customer asked",
                vec![step("SendCancellation", StepKind::Retriable)],
                now,
            ) {
                queue = actions;
            }
        }
        if let Some(action) = queue.pop() {
            if scenario.replay_stale_at.contains(&sent.len()) {
                if let Some(old) = sent.last() {
                    let before = slip.clone();
                    let stale = reply_for(old, StepOutcome::Succeeded { data: json!({}) });
                    assert_eq!(slip.on_reply(stale, now), ReplyDisposition::Stale);
                    assert_eq!(slip, before);
                }
            }
            sent.push(action.clone());
            let succeed = StepOutcome::Succeeded { data: json!({}) };
            let outcome = match behaviours.next().unwrap_or(Behaviour::Succeed) {
                Behaviour::Succeed | Behaviour::SucceedTwice => Some(succeed),
                Behaviour::Refuse => Some(StepOutcome::Failed {
                    reason: "refused".to_owned(),
                    transient: false,
                }),
                Behaviour::FailTransiently => Some(StepOutcome::Failed {
                    reason: "flaky".to_owned(),
                    transient: true,
                }),
                Behaviour::Ignore => None,
            };
            if let Some(outcome) = outcome {
                let twice = matches!(outcome, StepOutcome::Succeeded { .. });
                match slip.on_reply(reply_for(&action, outcome), now) {
                    ReplyDisposition::Applied(actions) => queue.extend(actions),
                    ReplyDisposition::Stale => panic!("the current attempt's reply was stale"),
                }
                if twice {
                    let again = reply_for(&action, StepOutcome::Succeeded { data: json!({}) });
                    assert_eq!(slip.on_reply(again, now), ReplyDisposition::Stale);
                }
            }
        } else if let Some(wakeup) = slip.next_wakeup() {
            now = now.max(wakeup);
            queue = slip.on_wake(now);
        } else if slip.status.needs_operator() {
            queue = slip.retry(now).unwrap();
        } else {
            break;
        }
    }
    (slip, sent)
}

fn check_consistent(slip: &RoutingSlip, sent: &[Action]) {
    assert!(slip.status.is_terminal(), "ended {}", slip.status);
    assert!(slip.current.is_none());
    assert_eq!(slip.next_wakeup(), None);
    assert!(slip.finished_at.is_some());
    assert!(
        slip.activity_log
            .iter()
            .all(|entry| entry.result != AttemptResult::Pending && entry.finished_at.is_some()),
        "every attempt has an outcome"
    );
    // Attempts of a step only grow.
    for (index, action) in sent.iter().enumerate() {
        assert!(sent[..index]
            .iter()
            .filter(|earlier| earlier.step == action.step)
            .all(|earlier| earlier.attempt < action.attempt));
    }
    // Compensations ran in reverse order of registration.
    let compensations_run: Vec<&str> = slip
        .activity_log
        .iter()
        .filter(|entry| {
            entry.phase == Phase::Compensation && entry.result == AttemptResult::Succeeded
        })
        .map(|entry| entry.step.as_str())
        .collect();
    let done_in_reverse: Vec<&str> = slip
        .compensation_log
        .iter()
        .rev()
        .filter(|entry| entry.state == CompensationState::Done)
        .map(|entry| entry.name.as_str())
        .collect();
    assert_eq!(compensations_run, done_in_reverse);
    // A compensation undoes a step that was tried.
    for entry in &slip.compensation_log {
        assert!(slip
            .activity_log
            .iter()
            .any(|attempt| attempt.phase == Phase::Forward && attempt.step == entry.for_step));
    }
    match slip.status {
        SagaStatus::Completed => {
            assert!(slip.pivoted && slip.itinerary.is_empty());
            assert!(slip.cancellation_reason.is_none() && slip.failure_reason.is_none());
            assert!(compensations_run.is_empty());
        }
        SagaStatus::Compensated => {
            assert!(
                slip.compensation_log
                    .iter()
                    .all(|entry| entry.state == CompensationState::Done),
                "everything registered is undone"
            );
            for step in ["HoldSeats", "TakePayment"] {
                let succeeded = slip.activity_log.iter().any(|entry| {
                    entry.phase == Phase::Forward
                        && entry.step == step
                        && entry.result == AttemptResult::Succeeded
                });
                if succeeded {
                    assert!(
                        slip.compensation_log
                            .iter()
                            .any(|entry| entry.for_step == step),
                        "{step} succeeded but is not compensated"
                    );
                }
            }
            if slip.pivoted {
                assert!(
                    slip.cancellation_reason.is_some(),
                    "only a cancellation undoes a saga past its pivot"
                );
            }
            assert!(slip.after_compensation.is_empty());
        }
        other => panic!("not terminal: {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_interleaving_of_replies_failures_and_timeouts_ends_terminal_and_consistent(
        scenario in scenario()
    ) {
        let (slip, sent) = play(&scenario);
        check_consistent(&slip, &sent);
    }
}

#[test]
fn an_attempt_before_the_pivot_expires_when_it_times_out() {
    let mut slip = new_slip();
    let hold = slip.start(at(0));
    assert_eq!(hold, vec![action("HoldSeats", Phase::Forward, 1)]);
    assert_eq!(slip.expiry_of(&hold[0]), Some(at(5_000)));
    // An answer to another attempt than the one in flight has no expiry here.
    assert_eq!(
        slip.expiry_of(&action("HoldSeats", Phase::Forward, 2)),
        None
    );

    // Timed out, then tried again: the new attempt expires on its own timeout.
    assert!(slip.on_wake(at(5_000)).is_empty());
    assert_eq!(slip.expiry_of(&hold[0]), None, "waiting for the retry");
    let retry = slip.on_wake(at(5_100));
    assert_eq!(retry, vec![action("HoldSeats", Phase::Forward, 2)]);
    assert_eq!(slip.expiry_of(&retry[0]), Some(at(10_100)));

    let payment = applied(slip.on_reply(ok("HoldSeats", 2), at(6_000)));
    assert_eq!(slip.expiry_of(&payment[0]), Some(at(11_000)));
    let pivot = applied(slip.on_reply(ok("TakePayment", 1), at(7_000)));
    assert_eq!(pivot, vec![action("ConfirmBooking", Phase::Forward, 1)]);
    assert_eq!(slip.expiry_of(&pivot[0]), Some(at(12_000)));
}

#[test]
fn compensations_and_steps_after_the_pivot_never_expire() {
    let slip = confirmed_slip();
    let confirmation = slip.current.as_ref().map(|work| work.step.name.clone());
    assert_eq!(confirmation.as_deref(), Some("SendConfirmation"));
    assert_eq!(
        slip.expiry_of(&action("SendConfirmation", Phase::Forward, 1)),
        None
    );

    let mut slip = new_slip();
    slip.start(at(0));
    applied(slip.on_reply(ok("HoldSeats", 1), at(10)));
    let undo = applied(slip.on_reply(refused("TakePayment", 1), at(20)));
    assert_eq!(undo, vec![action("ReleaseSeats", Phase::Compensation, 1)]);
    assert_eq!(slip.expiry_of(&undo[0]), None);
}
