//! `SendNotification` over Kafka (`notification.commands`, keyed by booking
//! id), answered with `NotificationSent` on `booking.saga-replies`.
//!
//! Applied in the consumer's transaction: the inbox row, one `notifications`
//! row per channel (status `pending`) and the reply commit together. Delivery
//! happens after commit, in the [`crate::dispatcher`]; the reply therefore
//! means "recorded, and will be delivered at least once", which is what the
//! saga needs from a step that is retriable and cannot be compensated.
//!
//! Exactly one message per (booking, kind, channel): the saga may retry the
//! step with a new attempt (a new message id, so the inbox does not see a
//! duplicate); the unique constraint does, and the retry is answered with the
//! messages recorded the first time, without delivering again.
//!
//! A contact that cannot be used (no channel, malformed address) will never
//! work however often it is retried: it is a permanent failure, parked as a
//! dead letter for an operator.

use anyhow::{anyhow, Context};
use contracts::notification::{
    Channel, NotificationKind, NotificationSent, SendNotification, SentMessage,
};
use messaging::{Delivery, HandlerError, Handles, Participant};
use service_kit::db::{advisory_xact_lock, LockNamespace};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::contact::{self, mask, Recipient};
use crate::dispatcher::NOTIFICATIONS_RECORDED;
use crate::render::{render, Rendered};

/// The consumer's name: its consumer group and its inbox key.
pub const CONSUMER: &str = "notification.commands";

#[derive(Debug, Clone, Default)]
pub struct NotificationCommands;

impl NotificationCommands {
    /// `SendNotification`, as the consumer applies it. The dispatcher is
    /// woken once the recorded messages are committed.
    pub fn participant(self) -> Participant<Self> {
        Participant::new(self)
            .on::<SendNotification>()
            .after_commit(|| async { NOTIFICATIONS_RECORDED.wake() })
    }
}

impl Handles<SendNotification> for NotificationCommands {
    async fn handle(
        &self,
        delivery: Delivery<'_>,
        command: SendNotification,
    ) -> Result<(), HandlerError> {
        send(delivery, command).await
    }
}

#[tracing::instrument(
    skip_all,
    fields(booking_id = %command.booking_id, kind = command.kind.as_str(), attempt = command.step.attempt),
)]
async fn send(mut delivery: Delivery<'_>, command: SendNotification) -> Result<(), HandlerError> {
    let conn = &mut *delivery.conn;
    let cause = delivery.cause;
    let recipients = contact::recipients(&command.contact).map_err(|error| {
        HandlerError::Permanent(
            anyhow::Error::new(error).context(format!("booking {}", command.booking_id)),
        )
    })?;

    // One writer per booking at a time: the "confirmation sent earlier" check
    // below and the dispatcher's per-booking order (by `seq`) both rely on a
    // booking's rows committing in the order they were numbered.
    lock_booking(conn, command.booking_id).await?;
    let confirmation_sent = command.kind == NotificationKind::Cancellation
        && has_confirmation(conn, command.booking_id).await?;

    for Recipient { channel, address } in &recipients {
        let rendered = render(&command, *channel, confirmation_sent);
        let recorded = record(
            conn,
            &command,
            *channel,
            address,
            &rendered,
            cause.message_id,
        )
        .await?;
        match recorded {
            Some(notification_id) => tracing::info!(
                %notification_id,
                channel = channel.as_str(),
                recipient = mask(*channel, address),
                "message recorded for delivery"
            ),
            None => tracing::info!(
                channel = channel.as_str(),
                "message already recorded for this booking, kind and channel; not sending again"
            ),
        }
    }

    let messages = messages_of(conn, command.booking_id, command.kind).await?;
    let reply = NotificationSent {
        step: command.step.clone(),
        booking_id: command.booking_id,
        kind: command.kind,
        messages,
    };
    delivery.reply(&command.step, reply).await
}

/// One writer of a booking's notifications at a time.
const BOOKING_LOCK: LockNamespace = LockNamespace::new("notification.booking");

async fn lock_booking(conn: &mut PgConnection, booking_id: Uuid) -> Result<(), HandlerError> {
    advisory_xact_lock(conn, BOOKING_LOCK, booking_id)
        .await
        .context("lock the booking's notifications")?;
    Ok(())
}

async fn has_confirmation(conn: &mut PgConnection, booking_id: Uuid) -> anyhow::Result<bool> {
    // A pending confirmation counts: the dispatcher delivers it before the
    // cancellation (per-booking order). A failed one never arrived.
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM notifications
                        WHERE booking_id = $1 AND kind = 'confirmation' AND status <> 'failed')",
    )
    .bind(booking_id)
    .fetch_one(conn)
    .await
    .context("look for an earlier confirmation")
}

/// Records the message unless this booking already has one of this kind on
/// this channel; the unique constraint decides, so concurrent deliveries of
/// the same command cannot both record. Returns the new id, if recorded.
async fn record(
    conn: &mut PgConnection,
    command: &SendNotification,
    channel: Channel,
    recipient: &str,
    rendered: &Rendered,
    caused_by: Uuid,
) -> anyhow::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "INSERT INTO notifications
             (notification_id, booking_id, kind, channel, recipient, subject, body, caused_by,
          customer_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT ON CONSTRAINT notifications_once_per_booking_kind_channel DO NOTHING
         RETURNING notification_id",
    )
    .bind(Uuid::now_v7())
    .bind(command.booking_id)
    .bind(command.kind.as_str())
    .bind(channel.as_str())
    .bind(recipient)
    .bind(&rendered.subject)
    .bind(&rendered.body)
    .bind(caused_by)
    .bind(&command.booking.customer_id)
    .fetch_optional(conn)
    .await
    .with_context(|| format!("record the {} message", channel.as_str()))
}

/// Every message of `kind` about the booking, first or repeated command alike.
async fn messages_of(
    conn: &mut PgConnection,
    booking_id: Uuid,
    kind: NotificationKind,
) -> anyhow::Result<Vec<SentMessage>> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT notification_id, channel FROM notifications
         WHERE booking_id = $1 AND kind = $2 ORDER BY seq",
    )
    .bind(booking_id)
    .bind(kind.as_str())
    .fetch_all(conn)
    .await
    .context("read the booking's messages")?;
    rows.into_iter()
        .map(|(notification_id, channel)| {
            Ok(SentMessage {
                notification_id,
                channel: parse_channel(&channel)?,
            })
        })
        .collect()
}

pub(crate) fn parse_channel(channel: &str) -> anyhow::Result<Channel> {
    match channel {
        "email" => Ok(Channel::Email),
        "sms" => Ok(Channel::Sms),
        other => Err(anyhow!(
            "unknown channel {other:?} in the notifications table"
        )),
    }
}

pub(crate) fn parse_kind(kind: &str) -> anyhow::Result<NotificationKind> {
    match kind {
        "confirmation" => Ok(NotificationKind::Confirmation),
        "cancellation" => Ok(NotificationKind::Cancellation),
        "correction" => Ok(NotificationKind::Correction),
        other => Err(anyhow!("unknown kind {other:?} in the notifications table")),
    }
}
