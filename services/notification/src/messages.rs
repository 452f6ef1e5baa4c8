//! The record of sent messages.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::{ApiError, Json, Query};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    booking_id: Uuid,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct SentMessage {
    notification_id: Uuid,
    booking_id: Uuid,
    kind: String,
    channel: String,
    recipient: String,
    subject: String,
    body: String,
    sent_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct MessageList {
    items: Vec<SentMessage>,
}

/// `GET /notifications?booking_id=…`: every message sent about a booking, oldest first.
#[tracing::instrument(skip_all, fields(booking_id = %query.booking_id), err(Debug))]
pub async fn list(
    State(pool): State<PgPool>,
    Query(query): Query<ListQuery>,
) -> Result<Json<MessageList>, ApiError> {
    let items = sqlx::query_as::<_, SentMessage>(
        "SELECT notification_id, booking_id, kind, channel, recipient, subject, body, sent_at
         FROM notifications WHERE booking_id = $1 ORDER BY sent_at, notification_id",
    )
    .bind(query.booking_id)
    .fetch_all(&pool)
    .await?;
    Ok(Json(MessageList { items }))
}
