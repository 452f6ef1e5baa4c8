//! The operator console in a real browser (headless chromium over
//! WebDriver), against the whole system: an operator pastes a token, finds a
//! saga parked in `failed_compensation`, reads its timeline, retries it and
//! watches it finish; and discards another service's dead letter.

use chrono::{TimeDelta, Utc};
use contracts::notification::{
    BookingSummary, Contact, FlightSummary, NotificationKind, Passenger, SendNotification,
};
use contracts::saga::StepRef;
use contracts::{topics, Currency, Envelope, Money};
use serde_json::json;
use test_support::{poll_until, tokens};
use uuid::Uuid;

use crate::browser::Browser;
use crate::helpers::{booking_body, eventually, kinds, ledger, System, APPROVED, PATIENCE};

/// Opens the console on `system` and signs in with an admin token.
async fn console_as_admin(system: &System) -> Browser {
    let browser = Browser::open().await;
    browser.goto(&system.booking.url("/console")).await;
    browser.type_into("#token", &tokens::admin()).await;
    browser.click("#token-save").await;
    browser.wait_for_text("#token-state", "Token in use").await;
    browser
}

#[tokio::test]
async fn an_operator_retries_a_saga_parked_in_failed_compensation_from_the_console_and_sees_it_compensated(
) {
    // Refunds get two attempts of 4 s: with payment down, an operator's
    // compensation gives up on the refund within seconds and parks the saga;
    // with payment back, 4 s is ample for an answer even on a busy machine.
    let mut system = System::start_with(&[
        ("saga.refund.max_attempts", "2".to_owned()),
        ("saga.refund.initial_backoff_ms", "100".to_owned()),
        ("saga.refund.timeout_ms", "4000".to_owned()),
        (
            "console.trace_url",
            "http://127.0.0.1:16686/trace/{trace_id}".to_owned(),
        ),
    ])
    .await;
    let flight = system.schedule_flight(5, "70.00").await;
    let booking_id = system
        .book(&booking_body("cust-console", flight, 1, Some(APPROVED), 0))
        .await;
    assert_eq!(system.settled(booking_id).await["status"], "confirmed");

    system.payment.shut_down().await;
    let (status, body) = system
        .booking
        .post(&format!("/sagas/{booking_id}/compensate"), json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    eventually(
        PATIENCE,
        "the refund gives up and parks the saga",
        || async {
            system.booking(booking_id).await["routing_slip"]["status"] == "failed_compensation"
        },
    )
    .await;
    // Payment comes back and works off the refund attempts that waited for
    // it, so it is consuming again before the operator retries.
    system.payment.start().await;
    eventually(PATIENCE, "payment applies the waiting refund", || async {
        ledger(&system.payments(booking_id).await)
            .iter()
            .any(|(kind, _, _)| kind == "refund")
    })
    .await;

    // The operator finds the parked saga.
    let browser = console_as_admin(&system).await;
    browser
        .select("#filter-status", "failed_compensation")
        .await;
    browser.type_into("#filter-customer", "cust-console").await;
    browser.click("#saga-search").await;
    let row = format!("#saga-rows tr[data-saga-id='{booking_id}']");
    browser
        .wait_for_attribute(&row, "data-status", "failed_compensation")
        .await;
    browser.screenshot("console-sagas").await;

    // Its timeline says where it is stuck and why.
    browser.click(&row).await;
    browser
        .wait_for_attribute("#timeline-status", "data-status", "failed_compensation")
        .await;
    browser
        .find("#timeline-attempts tr[data-step='Refund']")
        .await;
    let facts = browser
        .wait_for_text("#timeline-facts", "cust-console")
        .await;
    assert!(facts.contains("yes (the sale stands)"), "{facts}");
    assert_eq!(
        browser
            .attribute("#action-compensate", "disabled")
            .await
            .as_deref(),
        Some("true"),
        "a saga already compensating cannot be compensated again"
    );
    browser.screenshot("console-timeline").await;

    // Retry, confirmed in the dialog.
    browser.click("#action-retry").await;
    browser
        .wait_for_text("#confirm-question", "Retry saga")
        .await;
    browser.click("#confirm-yes").await;
    let result = browser
        .wait_for_text("#action-result", "Retry accepted")
        .await;
    assert!(result.contains("compensating"), "{result}");

    // The page follows the saga until it is compensated.
    browser
        .wait_for_attribute("#timeline-status", "data-status", "compensated")
        .await;
    browser.close().await;

    let booking = system.settled(booking_id).await;
    assert_eq!(booking["status"], "cancelled", "{booking:#}");
    let refunds: Vec<_> = ledger(&system.payments(booking_id).await)
        .into_iter()
        .filter(|(kind, _, _)| kind == "refund")
        .collect();
    assert_eq!(refunds.len(), 1, "refunded once: {refunds:?}");
    assert_eq!(system.availability(flight).await["available"], 5);
    let notices = kinds(&system.notifications(booking_id).await);
    assert!(
        notices.contains(&("correction".to_owned(), "email".to_owned())),
        "{notices:?}"
    );
}

#[tokio::test]
async fn the_console_refuses_to_show_anything_without_an_admin_token() {
    let system = System::start().await;
    let browser = Browser::open().await;
    browser.goto(&system.booking.url("/console")).await;
    browser
        .type_into("#token", &tokens::customer("cust-nosy"))
        .await;
    browser.click("#token-save").await;
    browser.click("#saga-search").await;
    let refusal = browser.wait_for_text("#saga-rows", "403").await;
    assert!(refusal.contains("admin"), "{refusal}");
    browser.close().await;
}

/// A confirmation to send to a contact with neither an email address nor a
/// phone number: notification cannot apply it and parks it as a dead letter.
fn undeliverable_confirmation(booking_id: Uuid) -> SendNotification {
    SendNotification {
        step: StepRef {
            saga_id: booking_id,
            step: "SendConfirmation".to_owned(),
            attempt: 1,
        },
        booking_id,
        kind: NotificationKind::Confirmation,
        contact: Contact {
            email: None,
            phone: None,
        },
        booking: BookingSummary {
            customer_id: "cust-unreachable".to_owned(),
            flight: FlightSummary {
                flight_id: Uuid::now_v7(),
                flight_number: "CT404".to_owned(),
                origin: "ICN".to_owned(),
                destination: "KIX".to_owned(),
                departure: Utc::now() + TimeDelta::days(1),
            },
            passengers: vec![Passenger {
                first_name: "Nobody".to_owned(),
                last_name: "Home".to_owned(),
            }],
            total: Money::parse("90.00", Currency::Usd).unwrap(),
        },
        reason: None,
    }
}

#[tokio::test]
async fn an_operator_discards_another_services_dead_letter_through_the_console() {
    let system = System::start().await;
    let booking_id = Uuid::now_v7();
    let envelope = Envelope::new(undeliverable_confirmation(booking_id), booking_id);
    messaging::testing::publish(
        &system.notification.kafka(),
        topics::NOTIFICATION_COMMANDS,
        &booking_id.to_string(),
        &envelope,
    )
    .await
    .unwrap();
    let parked = poll_until(
        PATIENCE,
        "notification parks the command",
        || system.notification.get_items("/dead-letters?status=parked"),
        |parked| !parked.is_empty(),
    )
    .await;
    let dead_letter_id = parked[0]["id"].as_str().unwrap().to_owned();

    let browser = console_as_admin(&system).await;
    browser.click(".tab[data-tab='dead-letters']").await;
    browser.select("#dead-letter-service", "notification").await;
    browser.click("#dead-letter-search").await;
    let row = format!("#dead-letter-rows tr[data-dead-letter-id='{dead_letter_id}']");
    browser
        .wait_for_attribute(&row, "data-status", "parked")
        .await;
    let shown = browser
        .wait_for_text(&row, "neither an email address")
        .await;
    assert!(shown.contains("notification.SendNotification"), "{shown}");
    browser.screenshot("console-dead-letters").await;

    // Asked first; cancelling sends nothing.
    browser.click(&format!("{row} .dead-letter-discard")).await;
    browser
        .wait_for_text("#confirm-question", "Discard dead letter")
        .await;
    browser.click("#confirm-no").await;
    browser
        .wait_for_text("#dead-letter-result", "not sent")
        .await;
    assert_eq!(
        system
            .notification
            .get_items("/dead-letters?status=parked")
            .await
            .len(),
        1
    );

    browser.click(&format!("{row} .dead-letter-discard")).await;
    browser
        .wait_for_text("#confirm-question", "Discard dead letter")
        .await;
    browser.click("#confirm-yes").await;
    browser
        .wait_for_text("#dead-letter-result", "is discarded")
        .await;
    browser.close().await;

    let discarded = system
        .notification
        .get_items("/dead-letters?status=discarded")
        .await;
    assert_eq!(discarded.len(), 1, "{discarded:?}");
    assert_eq!(discarded[0]["id"], dead_letter_id);
    assert!(system
        .notification
        .get_items("/dead-letters?status=parked")
        .await
        .is_empty());
}
