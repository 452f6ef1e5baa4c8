//! Dead letters: messages a consumer could not apply, parked where operators
//! can see them and replay them once the cause is fixed.
//!
//! Parking writes the `dead_letters` row and an outbox row for `<topic>.dlq`
//! in one transaction, so the dead letter is visible both in the owning
//! service's API and on the broker. A replay is a request (HTTP `POST
//! /dead-letters/{id}/replay` or `<service> dead-letters replay ID`) that the
//! running consumer picks up: it applies the message through the same inbox,
//! so replaying something that was already applied changes nothing.

use std::collections::HashMap;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use contracts::Envelope;
use serde::{Deserialize, Serialize};
use service_kit::auth::Admin;
use service_kit::{ApiError, Json, PageLimit, Path, Query, Routes};
use sqlx::types::Json as SqlJson;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::consumer::{record_in_inbox, HandlerError, Incoming, MessageHandler};
use crate::outbox::enqueue_raw;

/// A message on its way to being parked.
#[derive(Debug)]
pub(crate) struct ParkedMessage<'a> {
    pub consumer: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a str>,
    pub headers: &'a HashMap<String, String>,
    pub payload: &'a [u8],
}

/// Parks `message` in a transaction of its own.
pub(crate) async fn park(
    pool: &PgPool,
    message: &ParkedMessage<'_>,
    envelope: Option<&Envelope>,
    error: &anyhow::Error,
    attempts: u32,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await.context("begin parking a dead letter")?;
    park_in(&mut tx, message, envelope, error, attempts).await?;
    tx.commit().await.context("commit the dead letter")?;
    Ok(())
}

/// Parks `message` in the caller's transaction: the dead letter commits with
/// whatever else the transaction holds (the rest of a consumer's batch).
pub(crate) async fn park_in(
    conn: &mut PgConnection,
    message: &ParkedMessage<'_>,
    envelope: Option<&Envelope>,
    error: &anyhow::Error,
    attempts: u32,
) -> anyhow::Result<()> {
    let error_text = format!("{error:#}");
    let inserted = sqlx::query(
        "INSERT INTO dead_letters (id, consumer, topic, kafka_partition, kafka_offset, partition_key,
                                   message_id, message_type, headers, payload, error, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (consumer, topic, kafka_partition, kafka_offset) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(message.consumer)
    .bind(message.topic)
    .bind(message.partition)
    .bind(message.offset)
    .bind(message.key)
    .bind(envelope.map(|envelope| envelope.message_id))
    .bind(envelope.map(|envelope| envelope.message_type.as_str()))
    .bind(SqlJson(message.headers))
    .bind(message.payload)
    .bind(&error_text)
    .bind(attempts as i32)
    .execute(&mut *conn)
    .await
    .context("insert the dead letter")?
    .rows_affected();
    // A redelivery of a message parked before is already on the dead-letter topic.
    if inserted == 1 {
        let mut headers = message.headers.clone();
        headers.insert(
            "dead_letter_consumer".to_owned(),
            message.consumer.to_owned(),
        );
        headers.insert("dead_letter_error".to_owned(), error_text);
        headers.insert(
            "dead_letter_source".to_owned(),
            format!("{}/{}/{}", message.topic, message.partition, message.offset),
        );
        let message_type = envelope.map_or("unknown", |envelope| envelope.message_type.as_str());
        enqueue_raw(
            conn,
            Uuid::now_v7(),
            &contracts::topics::dead_letter_topic(message.topic),
            message.key.unwrap_or_default(),
            message_type,
            &headers,
            message.payload,
        )
        .await?;
    }
    Ok(())
}

/// Applies the consumer's replay requests; returns how many were applied.
pub(crate) async fn replay_requested(
    pool: &PgPool,
    consumer: &str,
    handler: &dyn MessageHandler,
) -> anyhow::Result<u64> {
    let mut replayed = 0;
    loop {
        let mut tx = pool.begin().await.context("begin a replay")?;
        let row = sqlx::query(
            "SELECT id, topic, kafka_partition, kafka_offset, partition_key, payload
             FROM dead_letters
             WHERE consumer = $1 AND status = 'replay_requested'
             ORDER BY parked_at
             LIMIT 1
             FOR UPDATE SKIP LOCKED",
        )
        .bind(consumer)
        .fetch_optional(&mut *tx)
        .await
        .context("claim a replay request")?;
        let Some(row) = row else {
            return Ok(replayed);
        };
        let id: Uuid = row.try_get("id")?;
        let payload: Vec<u8> = row.try_get("payload")?;
        let outcome: Result<(), HandlerError> = async {
            let envelope: Envelope = serde_json::from_slice(&payload).map_err(|error| {
                HandlerError::Permanent(
                    anyhow::Error::new(error).context("the message is not an envelope"),
                )
            })?;
            if !handler
                .message_types()
                .contains(&envelope.message_type.as_str())
            {
                return Err(HandlerError::Permanent(anyhow::anyhow!(
                    "this consumer does not apply {} messages",
                    envelope.message_type
                )));
            }
            if record_in_inbox(&mut tx, consumer, &envelope).await? {
                let incoming = Incoming {
                    envelope,
                    topic: row.try_get("topic")?,
                    partition: row.try_get("kafka_partition")?,
                    offset: row.try_get("kafka_offset")?,
                    key: row.try_get("partition_key")?,
                };
                handler.handle(&mut tx, &incoming).await?;
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                sqlx::query("UPDATE dead_letters SET status = 'replayed', updated_at = clock_timestamp() WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .context("mark the dead letter replayed")?;
                tx.commit().await.context("commit the replay")?;
                tracing::info!(dead_letter_id = %id, consumer, "dead letter replayed");
                replayed += 1;
            }
            Err(error) => {
                tx.rollback().await.context("roll back the failed replay")?;
                tracing::warn!(dead_letter_id = %id, consumer, %error, "replay failed; parked again");
                sqlx::query(
                    "UPDATE dead_letters SET status = 'parked', error = $2, attempts = attempts + 1,
                                             updated_at = clock_timestamp()
                     WHERE id = $1",
                )
                .bind(id)
                .bind(error.to_string())
                .execute(pool)
                .await
                .context("park the dead letter again")?;
            }
        }
    }
}

/// A dead letter as operators see it (and as booking's console proxy reads
/// it back from another service).
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: Uuid,
    pub consumer: String,
    pub topic: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    pub message_id: Option<Uuid>,
    pub message_type: Option<String>,
    pub error: String,
    pub attempts: i32,
    pub status: String,
    pub parked_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterStatus {
    Parked,
    ReplayRequested,
    Replayed,
    Discarded,
}

impl DeadLetterStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Parked => "parked",
            Self::ReplayRequested => "replay_requested",
            Self::Replayed => "replayed",
            Self::Discarded => "discarded",
        }
    }
}

/// Dead letters, newest first, optionally of one status.
pub async fn list(
    pool: &PgPool,
    status: Option<DeadLetterStatus>,
    limit: i64,
) -> anyhow::Result<Vec<DeadLetter>> {
    sqlx::query_as::<_, DeadLetter>(
        "SELECT id, consumer, topic, kafka_partition, kafka_offset, message_id, message_type,
                error, attempts, status, parked_at, updated_at
         FROM dead_letters
         WHERE $1::text IS NULL OR status = $1
         ORDER BY parked_at DESC
         LIMIT $2",
    )
    .bind(status.map(DeadLetterStatus::as_str))
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("list dead letters")
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no dead letter {0}")]
    NotFound(Uuid),
    #[error("dead letter {id} is {status}; only parked messages can be replayed or discarded")]
    NotParked { id: Uuid, status: String },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Asks the owning consumer to apply a parked message again.
pub async fn request_replay(pool: &PgPool, id: Uuid) -> Result<DeadLetter, ReplayError> {
    transition(pool, id, DeadLetterStatus::ReplayRequested).await
}

/// Gives up on a parked message, keeping its record.
pub async fn discard(pool: &PgPool, id: Uuid) -> Result<DeadLetter, ReplayError> {
    transition(pool, id, DeadLetterStatus::Discarded).await
}

async fn transition(
    pool: &PgPool,
    id: Uuid,
    to: DeadLetterStatus,
) -> Result<DeadLetter, ReplayError> {
    let updated = sqlx::query_as::<_, DeadLetter>(
        "UPDATE dead_letters SET status = $2, updated_at = clock_timestamp()
         WHERE id = $1 AND status = 'parked'
         RETURNING id, consumer, topic, kafka_partition, kafka_offset, message_id, message_type,
                   error, attempts, status, parked_at, updated_at",
    )
    .bind(id)
    .bind(to.as_str())
    .fetch_optional(pool)
    .await
    .context("update the dead letter")?;
    if let Some(dead_letter) = updated {
        return Ok(dead_letter);
    }
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM dead_letters WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .context("look up the dead letter")?;
    match status {
        None => Err(ReplayError::NotFound(id)),
        Some(status) => Err(ReplayError::NotParked { id, status }),
    }
}

impl From<ReplayError> for ApiError {
    fn from(error: ReplayError) -> Self {
        match error {
            ReplayError::NotFound(_) => ApiError::not_found(error.to_string()),
            ReplayError::NotParked { .. } => {
                ApiError::conflict(error.to_string()).with_type("dead-letter-not-parked")
            }
            ReplayError::Unexpected(error) => ApiError::internal(error),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<DeadLetterStatus>,
    /// 100 unless asked, at most 1000.
    #[serde(default)]
    limit: PageLimit<100, 1000>,
}

#[derive(Debug, Serialize)]
struct DeadLetterList {
    items: Vec<DeadLetter>,
}

/// `GET /dead-letters?status=parked&limit=100`, `POST /dead-letters/{id}/replay`,
/// `POST /dead-letters/{id}/discard`, for any service that consumes messages.
pub fn router(pool: PgPool) -> Routes {
    Routes::new()
        .get("/dead-letters", list_handler)
        .post("/dead-letters/{id}/replay", replay_handler)
        .post("/dead-letters/{id}/discard", discard_handler)
        .with_state(pool)
}

async fn list_handler(
    State(pool): State<PgPool>,
    _admin: Admin,
    Query(query): Query<ListQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    let limit = query.limit.get()?;
    let items = list(&pool, query.status, limit).await?;
    Ok(Json(DeadLetterList { items }))
}

async fn replay_handler(
    State(pool): State<PgPool>,
    _admin: Admin,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, Json<DeadLetter>), ApiError> {
    let dead_letter = request_replay(&pool, id).await?;
    Ok((StatusCode::ACCEPTED, Json(dead_letter)))
}

async fn discard_handler(
    State(pool): State<PgPool>,
    _admin: Admin,
    Path(id): Path<Uuid>,
) -> Result<Json<DeadLetter>, ApiError> {
    Ok(Json(discard(&pool, id).await?))
}

/// `<service> dead-letters …`: the same operations from the command line.
#[derive(Debug, clap::Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters, newest first.
    List {
        #[arg(long, value_enum)]
        status: Option<DeadLetterStatus>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Ask the running consumer to apply a parked message again.
    Replay { id: Uuid },
    /// Give up on a parked message (it stays on record).
    Discard { id: Uuid },
}

impl DeadLetterCommand {
    pub async fn run(self, pool: &PgPool) -> anyhow::Result<()> {
        let output = match self {
            Self::List { status, limit } => {
                serde_json::to_string_pretty(&list(pool, status, limit).await?)?
            }
            Self::Replay { id } => serde_json::to_string_pretty(
                &request_replay(pool, id).await.map_err(anyhow::Error::new)?,
            )?,
            Self::Discard { id } => {
                serde_json::to_string_pretty(&discard(pool, id).await.map_err(anyhow::Error::new)?)?
            }
        };
        // The command's output is its result, for people and scripts alike.
        #[allow(clippy::print_stdout)]
        {
            println!("{output}");
        }
        Ok(())
    }
}
