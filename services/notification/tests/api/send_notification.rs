use contracts::notification::{Channel, NotificationKind, NotificationSent, SendNotification};
use contracts::{topics, Envelope, Message};
use messaging::testing::{publish, TopicReader};
use serde_json::Value;
use uuid::Uuid;

use test_support::poll_until;

use crate::helpers::{contact, send_notification, NotificationApi, TestNotification, PATIENCE};

async fn send(app: &TestNotification, envelope: &Envelope<SendNotification>) {
    publish(
        &app.kafka(),
        topics::NOTIFICATION_COMMANDS,
        &envelope.payload.booking_id.to_string(),
        envelope,
    )
    .await
    .unwrap();
}

async fn replies(reader: &TopicReader, count: usize) -> Vec<Envelope<NotificationSent>> {
    let replies = reader
        .collect(count, PATIENCE, |e| {
            e.message_type == NotificationSent::MESSAGE_TYPE
        })
        .await
        .unwrap();
    assert_eq!(replies.len(), count, "expected {count} replies");
    replies
        .iter()
        .map(|reply| reply.decode::<NotificationSent>().unwrap())
        .collect()
}

async fn all_delivered(app: &TestNotification, booking_id: Uuid, count: usize) -> Vec<Value> {
    poll_until(
        PATIENCE,
        "every message is delivered",
        || app.notifications(booking_id),
        |items| items.len() == count && items.iter().all(|item| item["status"] == "delivered"),
    )
    .await
}

async fn sink_requests(app: &TestNotification, booking_id: Uuid) -> Vec<(String, i32)> {
    sqlx::query_as(
        "SELECT s.channel, s.requests FROM sink_deliveries s
         JOIN notifications n USING (notification_id)
         WHERE n.booking_id = $1 ORDER BY s.channel",
    )
    .bind(booking_id)
    .fetch_all(&app.pool().await)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_confirmation_is_delivered_by_email_and_sms_and_answered_to_the_saga() {
    // Arrange
    let app = TestNotification::spawn().await;
    let reader = TopicReader::new(&app.kafka(), topics::SAGA_REPLIES).unwrap();
    let booking_id = Uuid::now_v7();
    let command = send_notification(
        booking_id,
        NotificationKind::Confirmation,
        contact(Some("jane@example.com"), Some("+821012341234")),
        1,
    );
    let envelope = Envelope::new(command.clone(), booking_id);

    // Act
    send(&app, &envelope).await;

    // Assert
    let reply = replies(&reader, 1).await.remove(0);
    assert_eq!(reply.correlation_id, booking_id);
    assert_eq!(reply.causation_id, Some(envelope.message_id));
    assert_eq!(
        reply.payload.step, command.step,
        "the step is echoed unchanged"
    );
    assert_eq!(reply.payload.booking_id, booking_id);
    assert_eq!(reply.payload.kind, NotificationKind::Confirmation);
    let channels: Vec<Channel> = reply.payload.messages.iter().map(|m| m.channel).collect();
    assert_eq!(channels, [Channel::Email, Channel::Sms]);

    let items = all_delivered(&app, booking_id, 2).await;
    let email = &items[0];
    assert_eq!(email["kind"], "confirmation");
    assert_eq!(email["channel"], "email");
    assert_eq!(email["recipient"], "j***@example.com");
    assert_eq!(
        email["notification_id"],
        reply.payload.messages[0].notification_id.to_string()
    );
    assert!(email["subject"]
        .as_str()
        .unwrap()
        .starts_with("Booking confirmed: CT123"));
    let body = email["body"].as_str().unwrap();
    for expected in ["CT123", "ICN", "NRT", "Jane Doe", "240.00 USD"] {
        assert!(body.contains(expected), "{expected} missing from {body}");
    }
    assert!(email["sent_at"].is_string());
    let sms = &items[1];
    assert_eq!(sms["channel"], "sms");
    assert_eq!(sms["recipient"], "+82******1234");
    assert_eq!(
        sink_requests(&app, booking_id).await,
        [("email".to_owned(), 1), ("sms".to_owned(), 1)]
    );
}

#[tokio::test]
async fn a_redelivered_command_and_a_retried_attempt_send_one_message_per_channel() {
    // Arrange
    let app = TestNotification::spawn().await;
    let reader = TopicReader::new(&app.kafka(), topics::SAGA_REPLIES).unwrap();
    let booking_id = Uuid::now_v7();
    let both = contact(Some("jane@example.com"), Some("+821012341234"));
    let first = Envelope::new(
        send_notification(booking_id, NotificationKind::Confirmation, both.clone(), 1),
        booking_id,
    );
    send(&app, &first).await;
    let first_reply = replies(&reader, 1).await.remove(0);
    all_delivered(&app, booking_id, 2).await;

    // Act: the broker redelivers the same message, then the saga retries the
    // step as attempt 2 (a new message id, which the inbox cannot recognize).
    send(&app, &first).await;
    let retry = Envelope::new(
        send_notification(booking_id, NotificationKind::Confirmation, both, 2),
        booking_id,
    );
    send(&app, &retry).await;

    // Assert: the retry is answered, the redelivery absorbed by the inbox.
    let retry_reply = replies(&reader, 1).await.remove(0);
    assert_eq!(retry_reply.causation_id, Some(retry.message_id));
    assert_eq!(retry_reply.payload.step.attempt, 2);
    assert_eq!(
        retry_reply.payload.messages, first_reply.payload.messages,
        "the retry is answered with the messages sent the first time"
    );
    let items = all_delivered(&app, booking_id, 2).await;
    assert_eq!(items.len(), 2, "one message per channel: {items:?}");
    assert_eq!(
        sink_requests(&app, booking_id).await,
        [("email".to_owned(), 1), ("sms".to_owned(), 1)],
        "nothing is delivered a second time"
    );
    let stray = reader
        .collect(1, std::time::Duration::from_secs(2), |e| {
            e.message_type == NotificationSent::MESSAGE_TYPE
        })
        .await
        .unwrap();
    assert!(
        stray.is_empty(),
        "the redelivered message is not answered again"
    );
}

#[tokio::test]
async fn a_cancellation_after_a_confirmation_says_the_confirmation_no_longer_holds() {
    // Arrange
    let app = TestNotification::spawn().await;
    let reader = TopicReader::new(&app.kafka(), topics::SAGA_REPLIES).unwrap();
    let booking_id = Uuid::now_v7();
    let by_email = contact(Some("jane@example.com"), None);
    let confirmation = send_notification(
        booking_id,
        NotificationKind::Confirmation,
        by_email.clone(),
        1,
    );
    send(&app, &Envelope::new(confirmation, booking_id)).await;
    replies(&reader, 1).await;

    // Act
    let cancellation = send_notification(booking_id, NotificationKind::Cancellation, by_email, 1);
    send(&app, &Envelope::new(cancellation, booking_id)).await;

    // Assert
    let reply = replies(&reader, 1).await.remove(0);
    assert_eq!(reply.payload.kind, NotificationKind::Cancellation);
    assert_eq!(reply.payload.messages.len(), 1);
    let items = all_delivered(&app, booking_id, 2).await;
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["confirmation", "cancellation"]);
    let body = items[1]["body"].as_str().unwrap();
    assert!(body.contains("no longer holds"), "{body}");
    assert!(body.contains("requested by the customer"), "{body}");
    assert!(
        items[0]["sent_at"].as_str().unwrap() <= items[1]["sent_at"].as_str().unwrap(),
        "the confirmation is delivered first"
    );
}

#[tokio::test]
async fn a_cancellation_without_an_earlier_confirmation_does_not_mention_one() {
    let app = TestNotification::spawn().await;
    let reader = TopicReader::new(&app.kafka(), topics::SAGA_REPLIES).unwrap();
    let booking_id = Uuid::now_v7();
    let cancellation = send_notification(
        booking_id,
        NotificationKind::Cancellation,
        contact(None, Some("+12025550123")),
        1,
    );

    send(&app, &Envelope::new(cancellation, booking_id)).await;

    let reply = replies(&reader, 1).await.remove(0);
    assert_eq!(reply.payload.messages.len(), 1);
    assert_eq!(reply.payload.messages[0].channel, Channel::Sms);
    let items = all_delivered(&app, booking_id, 1).await;
    let body = items[0]["body"].as_str().unwrap();
    assert!(!body.contains("no longer holds"), "{body}");
}

#[tokio::test]
async fn a_contact_without_email_or_phone_is_parked_as_a_dead_letter() {
    // Arrange
    let app = TestNotification::spawn().await;
    let booking_id = Uuid::now_v7();
    let command = send_notification(
        booking_id,
        NotificationKind::Confirmation,
        contact(None, None),
        1,
    );
    let envelope = Envelope::new(command, booking_id);

    // Act
    send(&app, &envelope).await;

    // Assert
    let parked = poll_until(
        PATIENCE,
        "the command is parked",
        || app.parked_dead_letters(),
        |parked| !parked.is_empty(),
    )
    .await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0]["message_id"], envelope.message_id.to_string());
    assert_eq!(parked[0]["consumer"], "notification.commands");
    assert_eq!(
        parked[0]["attempts"], 1,
        "a permanent failure is not retried"
    );
    let error = parked[0]["error"].as_str().unwrap();
    assert!(
        error.contains("neither an email address nor a phone number"),
        "{error}"
    );
    assert!(app.notifications(booking_id).await.is_empty());
}

#[tokio::test]
async fn a_malformed_phone_number_is_parked_and_nothing_is_sent() {
    let app = TestNotification::spawn().await;
    let booking_id = Uuid::now_v7();
    let command = send_notification(
        booking_id,
        NotificationKind::Confirmation,
        contact(Some("jane@example.com"), Some("010-1234-1234")),
        1,
    );
    let envelope = Envelope::new(command, booking_id);

    send(&app, &envelope).await;

    let parked = poll_until(
        PATIENCE,
        "the command is parked",
        || app.parked_dead_letters(),
        |parked| !parked.is_empty(),
    )
    .await;
    let error = parked[0]["error"].as_str().unwrap();
    assert!(error.contains("E.164"), "{error}");
    assert!(
        app.notifications(booking_id).await.is_empty(),
        "not even the valid email is sent"
    );
}
