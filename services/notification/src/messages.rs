//! `GET /notifications?booking_id=…`: the record of a booking's messages, for
//! operators and customer support. Recipients are masked: the view answers
//! "was the customer told, on which channel, and what", which needs no full
//! address, and it may end up on a support screen.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::auth::Caller;
use service_kit::{ApiError, Json, Query};
use sqlx::PgPool;
use uuid::Uuid;

use crate::commands::parse_channel;
use crate::contact::mask;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    booking_id: Uuid,
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    notification_id: Uuid,
    booking_id: Uuid,
    kind: String,
    channel: String,
    recipient: String,
    subject: String,
    body: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

/// One message as the API shows it.
#[derive(Debug, Serialize)]
pub struct SentMessage {
    notification_id: Uuid,
    booking_id: Uuid,
    kind: String,
    channel: String,
    /// Masked: `j***@example.com`, `+82******1234`.
    recipient: String,
    subject: String,
    body: String,
    /// `pending` (recorded, not yet handed to its channel), `delivered` or `failed`.
    status: String,
    attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    /// When the command was applied and the message recorded.
    recorded_at: DateTime<Utc>,
    /// When its channel accepted it; null until then.
    sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct MessageList {
    items: Vec<SentMessage>,
}

/// Every message about a booking, in the order they were recorded.
#[tracing::instrument(skip_all, fields(booking_id = %query.booking_id))]
pub async fn list(
    State(pool): State<PgPool>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<MessageList>, ApiError> {
    // A customer reads only messages about its own bookings: another
    // customer's booking reads as one without messages.
    let rows = sqlx::query_as::<_, Row>(
        "SELECT notification_id, booking_id, kind, channel, recipient, subject, body,
                status, attempts, last_error, created_at, delivered_at
         FROM notifications
         WHERE booking_id = $1 AND ($2::text IS NULL OR customer_id = $2)
         ORDER BY seq",
    )
    .bind(query.booking_id)
    .bind(caller.customer_id())
    .fetch_all(&pool)
    .await?;
    let items = rows
        .into_iter()
        .map(|row| {
            let recipient = match parse_channel(&row.channel) {
                Ok(channel) => mask(channel, &row.recipient),
                Err(_) => "***".to_owned(),
            };
            SentMessage {
                notification_id: row.notification_id,
                booking_id: row.booking_id,
                kind: row.kind,
                channel: row.channel,
                recipient,
                subject: row.subject,
                body: row.body,
                status: row.status,
                attempts: row.attempts,
                last_error: row.last_error,
                recorded_at: row.created_at,
                sent_at: row.delivered_at,
            }
        })
        .collect();
    Ok(Json(MessageList { items }))
}
