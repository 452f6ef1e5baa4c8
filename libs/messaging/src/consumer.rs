//! The consumer runner: competing consumers in a group, each message applied
//! effectively once.
//!
//! The runner takes what the client has already fetched (up to
//! `consumer.max_batch` messages, never waiting for more) and applies each
//! partition's share in one database transaction, the partitions
//! concurrently; a partition is never applied by two tasks at once, so each
//! key's messages stay in order. Inside the transaction every message gets a
//! savepoint: its inbox row (a duplicate finds its row and is acknowledged
//! without being applied), then the handler with that transaction — the
//! handler's effect and any outgoing outbox rows go in it too. Only after the
//! commit are the offsets stored for the next commit to the broker, so a crash
//! anywhere redelivers rather than loses, and the inbox turns the redelivery
//! into a no-op. One commit per batch instead of per message is what lets a
//! consumer keep up under load.
//!
//! A message whose handler fails permanently is rolled back to its savepoint
//! and parked in the same transaction; the others in the batch still apply.
//! One that fails transiently ends the batch there: what came before it
//! commits, and it is retried on its own with exponential backoff up to the
//! budget, then parked in `dead_letters` (and published to `<topic>.dlq`),
//! and the consumer moves on. A failure that says the database cannot be
//! reached ([`service_kit::db::unavailable`]) is not the message's fault and
//! costs it no attempt: the consumer waits, with the same backoff, for as
//! long as the outage lasts, and its partitions wait behind it (lag grows;
//! nothing is parked). Parked messages are replayed when an operator
//! requests it (HTTP or CLI, see [`crate::dead_letters`]).
//!
//! Message types: a handler lists the types it applies. A message of another
//! type is skipped, logged and counted: topics carry several kinds of
//! message, and consumers that don't care must not stall on them. A *newer
//! version* of a type the handler knows is parked instead: it was meant for
//! this consumer, which must be upgraded before it can apply it. A message
//! that is not an envelope at all, or whose type is malformed, is parked.
//!
//! Expiry: a message past its envelope's `expires_at` is dropped unapplied,
//! logged and counted (`outcome="expired"`), without touching the database.
//! Its sender has stopped waiting for it (a saga attempt that timed out has
//! been tried again or compensated), and after an outage a backlog of such
//! attempts would otherwise take the capacity the live ones need.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::settings::{ConsumerSettings, KafkaSettings};
use anyhow::Context;
use chrono::Utc;
use contracts::{Envelope, MessageType};
use futures::future::BoxFuture;
use futures::FutureExt as _;
use rdkafka::consumer::{CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{ClientContext, Message as _, Statistics};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::dead_letters::{self, ParkedMessage};
use crate::outbox::OUTBOX_WRITTEN;
use crate::settings::client_config;
use crate::trace_context;

/// Why a handler could not apply a message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might succeed if tried again (a lock timeout, a dependency briefly down).
    #[error("transient failure: {0:#}")]
    Transient(anyhow::Error),
    /// Will never succeed as it is (a payload that breaks its contract): park it now.
    #[error("permanent failure: {0:#}")]
    Permanent(anyhow::Error),
}

impl From<anyhow::Error> for HandlerError {
    fn from(error: anyhow::Error) -> Self {
        Self::Transient(error)
    }
}

/// A payload that breaks its message type's contract will never apply: park it.
impl From<contracts::envelope::DecodeError> for HandlerError {
    fn from(error: contracts::envelope::DecodeError) -> Self {
        Self::Permanent(error.into())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        Self::Transient(error.into())
    }
}

/// A message as the handler sees it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub envelope: Envelope,
    /// The topic's name without the environment's prefix.
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
}

/// Applies messages of the types it lists, inside the transaction it is given.
pub trait MessageHandler: Send + Sync + 'static {
    /// The message types this handler applies, e.g. `inventory.HoldSeats.v1`.
    fn message_types(&self) -> &[&'static str];

    /// Applies `message`. Everything written through `conn` commits together
    /// with the inbox row; write outgoing messages with [`crate::outbox::enqueue`] on it.
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        message: &'a Incoming,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;

    /// Runs after a commit that applied at least one of this handler's
    /// messages: work that must see them committed (waking a reader).
    fn after_commit(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Running totals, for tests and diagnostics.
#[derive(Debug, Clone, Default)]
pub struct ConsumerStats {
    inner: Arc<StatsInner>,
}

#[derive(Debug, Default)]
struct StatsInner {
    applied: AtomicU64,
    duplicates: AtomicU64,
    skipped: AtomicU64,
    expired: AtomicU64,
    dead_lettered: AtomicU64,
    replayed: AtomicU64,
    batches: AtomicU64,
}

impl ConsumerStats {
    pub fn applied(&self) -> u64 {
        self.inner.applied.load(Ordering::Relaxed)
    }
    pub fn duplicates(&self) -> u64 {
        self.inner.duplicates.load(Ordering::Relaxed)
    }
    pub fn skipped(&self) -> u64 {
        self.inner.skipped.load(Ordering::Relaxed)
    }
    /// Dropped unapplied because their sender had stopped waiting.
    pub fn expired(&self) -> u64 {
        self.inner.expired.load(Ordering::Relaxed)
    }
    pub fn dead_lettered(&self) -> u64 {
        self.inner.dead_lettered.load(Ordering::Relaxed)
    }
    pub fn replayed(&self) -> u64 {
        self.inner.replayed.load(Ordering::Relaxed)
    }
    /// Transactions that committed a batch of messages.
    pub fn batches(&self) -> u64 {
        self.inner.batches.load(Ordering::Relaxed)
    }
}

/// One consumer in a consumer group. Clones are further members of the
/// same group, sharing the handler, the pool and the running totals.
#[derive(Clone)]
pub struct Consumer {
    name: String,
    topics: Vec<String>,
    handler: Arc<dyn MessageHandler>,
    pool: PgPool,
    kafka: KafkaSettings,
    settings: ConsumerSettings,
    stats: ConsumerStats,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

enum Outcome {
    Applied,
    Duplicate,
    Skipped,
    Expired,
    DeadLettered,
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Skipped => "skipped",
            Self::Expired => "expired",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

impl Consumer {
    /// `name` identifies the consumer group (with the environment's prefix) and the inbox.
    pub fn new(
        name: &str,
        topics: &[&str],
        handler: Arc<dyn MessageHandler>,
        pool: PgPool,
        kafka: &KafkaSettings,
    ) -> Self {
        Self {
            name: name.to_owned(),
            topics: topics.iter().map(|topic| (*topic).to_owned()).collect(),
            handler,
            pool,
            kafka: kafka.clone(),
            settings: kafka.consumer.clone(),
            stats: ConsumerStats::default(),
        }
    }

    pub fn stats(&self) -> ConsumerStats {
        self.stats.clone()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Consumes until `shutdown`, then commits what it applied and leaves the group.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let group = self.kafka.name(&self.name);
        let context = GroupContext {
            consumer: self.name.clone(),
        };
        let consumer: StreamConsumer<GroupContext> = client_config(&self.kafka, &group)
            .set("group.id", &group)
            .set("enable.auto.commit", "true")
            // Offsets are stored by hand, after the database commit; auto-commit only ships them.
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.commit.interval.ms",
                self.settings.auto_commit_interval_ms.to_string(),
            )
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                self.settings.session_timeout_ms.to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                self.settings.heartbeat_interval_ms.to_string(),
            )
            .set("statistics.interval.ms", "5000")
            // Answer a fetch as soon as one byte is there; the wait bounds only the idle case.
            .set("fetch.min.bytes", "1")
            .set(
                "fetch.wait.max.ms",
                self.settings.fetch_wait_max_ms.to_string(),
            )
            .create_with_context(context)
            .context("create the kafka consumer")?;
        let topics: Vec<String> = self
            .topics
            .iter()
            .map(|topic| self.kafka.name(topic))
            .collect();
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topic_refs).context("subscribe")?;
        tracing::info!(consumer = self.name, group, topics = ?topics, "consumer started");
        // At zero from the start, so the first dead letter is an increase
        // `rate()` sees, and the dashboards and alerts have a series to read.
        metrics::counter!("dead_letters_total", "consumer" => self.name.clone()).increment(0);

        let maintenance_interval = Duration::from_millis(self.settings.maintenance_interval_ms);
        let mut maintenance = tokio::time::interval(maintenance_interval);
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                received = consumer.recv() => match received {
                    Ok(first) => {
                        let mut fetched = vec![self.copy_out(&first)];
                        drop(first);
                        // Whatever else the client already holds joins the batch; nothing waits for more.
                        while fetched.len() < self.settings.max_batch.max(1) {
                            match consumer.recv().now_or_never() {
                                Some(Ok(message)) => fetched.push(self.copy_out(&message)),
                                Some(Err(error)) => {
                                    tracing::warn!(consumer = self.name, %error, "kafka consumer error");
                                    break;
                                }
                                None => break,
                            }
                        }
                        for (topic, partition, offset) in self.apply_fetched(fetched, &shutdown).await {
                            // A partition revoked by a rebalance while its batch was applied
                            // cannot take the offset; its new owner is handed the batch again
                            // and its inbox acknowledges it as duplicates.
                            if let Err(error) = consumer.store_offset(&topic, partition, offset) {
                                tracing::info!(consumer = self.name, topic, partition, offset, %error, "offset not stored; the partition moved to another member");
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(consumer = self.name, %error, "kafka consumer error");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                _ = maintenance.tick() => {
                    if let Err(error) = self.maintain().await {
                        tracing::warn!(consumer = self.name, error = format!("{error:#}"), "consumer maintenance failed");
                    }
                }
            }
        }
        if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing stored since the last commit is the common case; anything else is redelivered.
            tracing::debug!(consumer = self.name, %error, "final offset commit");
        }
        consumer.unsubscribe();
        tracing::info!(consumer = self.name, "consumer stopped");
        Ok(())
    }

    /// Copies a message out of the client's buffer, so a batch can outlive the poll.
    fn copy_out(&self, message: &BorrowedMessage<'_>) -> Fetched {
        Fetched {
            full_topic: message.topic().to_owned(),
            topic: message
                .topic()
                .strip_prefix(&self.kafka.topic_prefix)
                .unwrap_or(message.topic())
                .to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            headers: read_headers(message),
            payload: message.payload().unwrap_or_default().to_vec(),
        }
    }

    /// Applies a fetch, each partition's messages in one transaction, the
    /// partitions concurrently. Returns, per partition, the offset of the last
    /// message settled (applied, acknowledged as a duplicate, skipped or
    /// parked): everything up to it may be committed to the broker.
    async fn apply_fetched(
        &self,
        fetched: Vec<Fetched>,
        shutdown: &CancellationToken,
    ) -> Vec<(String, i32, i64)> {
        metrics::histogram!("consumer_batch_messages", "consumer" => self.name.clone())
            .record(fetched.len() as f64);
        let mut partitions: Vec<Vec<Fetched>> = Vec::new();
        for message in fetched {
            let same_partition = partitions.iter_mut().find(|messages| {
                messages[0].partition == message.partition
                    && messages[0].full_topic == message.full_topic
            });
            match same_partition {
                Some(messages) => messages.push(message),
                None => partitions.push(vec![message]),
            }
        }
        let settled = futures::future::join_all(
            partitions
                .iter()
                .map(|messages| self.apply_partition(messages, shutdown)),
        )
        .await;
        partitions
            .iter()
            .zip(settled)
            .filter_map(|(messages, settled)| {
                settled.map(|offset| {
                    (
                        messages[0].full_topic.clone(),
                        messages[0].partition,
                        offset,
                    )
                })
            })
            .collect()
    }

    /// Applies one partition's messages in order; returns the offset of the
    /// last one settled, `None` if shutdown came before the first.
    async fn apply_partition(
        &self,
        messages: &[Fetched],
        shutdown: &CancellationToken,
    ) -> Option<i64> {
        let mut settled = None;
        let mut rest = messages;
        while !rest.is_empty() {
            let committed = match self.apply_batch(rest).await {
                Ok(committed) => committed,
                Err(error) => {
                    tracing::warn!(
                        consumer = self.name,
                        error = format!("{error:#}"),
                        messages = rest.len(),
                        "batch transaction failed; applying its first message on its own"
                    );
                    0
                }
            };
            if committed > 0 {
                settled = Some(rest[committed - 1].offset);
                rest = &rest[committed..];
            }
            // The batch stopped at a message that failed transiently (or could
            // not commit): retry it alone, with backoff, before the rest.
            if let Some(failed) = rest.first() {
                self.process_alone(failed, shutdown).await?;
                settled = Some(failed.offset);
                rest = &rest[1..];
            }
        }
        settled
    }

    /// One transaction over `messages`, a savepoint each. Returns how many
    /// (from the front) it committed: all of them, or those before the first
    /// that failed transiently.
    async fn apply_batch(&self, messages: &[Fetched]) -> anyhow::Result<usize> {
        match self.apply_batch_unguarded(messages).await? {
            Some(committed) => Ok(committed),
            None => self.apply_batch_guarded(messages).await,
        }
    }

    /// The common case, in as few statements as possible: one insert for
    /// every inbox row, then the handlers, no savepoints. If any handler
    /// fails the whole transaction rolls back and `None` says to apply the
    /// batch again with a savepoint per message.
    async fn apply_batch_unguarded(&self, messages: &[Fetched]) -> anyhow::Result<Option<usize>> {
        let mut prepared = Vec::with_capacity(messages.len());
        for message in messages {
            let (span, decision) = self.prepare(message);
            match decision {
                Prepared::Park(..) => return Ok(None),
                decision => prepared.push((span, decision)),
            }
        }
        let envelopes: Vec<&Envelope> = prepared
            .iter()
            .filter_map(|(_, decision)| match decision {
                Prepared::Apply(incoming) => Some(&incoming.envelope),
                _ => None,
            })
            .collect();
        let mut tx = self.pool.begin().await.context("begin a batch")?;
        let mut fresh = record_all_in_inbox(&mut tx, &self.name, &envelopes)
            .await
            .context("record the batch in the inbox")?;
        let mut outcomes = Vec::with_capacity(prepared.len());
        for (span, decision) in prepared {
            let started = Instant::now();
            let outcome = match decision {
                Prepared::Skip => Outcome::Skipped,
                Prepared::Expired => Outcome::Expired,
                Prepared::Park(..) => return Ok(None),
                // The second delivery of a message within one batch is a duplicate too.
                Prepared::Apply(incoming) if !fresh.remove(&incoming.envelope.message_id) => {
                    span.in_scope(|| {
                        tracing::debug!(
                            "duplicate delivery acknowledged without applying it again"
                        );
                    });
                    Outcome::Duplicate
                }
                Prepared::Apply(incoming) => {
                    let handled = self
                        .handler
                        .handle(&mut tx, &incoming)
                        .instrument(span.clone())
                        .await;
                    if let Err(error) = handled {
                        tracing::debug!(%error, "a handler failed in a batch; applying it again message by message");
                        tx.rollback().await.context("roll back a batch")?;
                        return Ok(None);
                    }
                    Outcome::Applied
                }
            };
            outcomes.push((outcome, started.elapsed(), span));
        }
        self.commit_batch(tx, outcomes).await.map(Some)
    }

    /// One transaction, a savepoint per message, so a failing message is
    /// parked or left for a retry without undoing the others.
    async fn apply_batch_guarded(&self, messages: &[Fetched]) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await.context("begin a batch")?;
        let mut outcomes = Vec::with_capacity(messages.len());
        for message in messages {
            let (span, prepared) = self.prepare(message);
            let started = Instant::now();
            let outcome = async {
                match prepared {
                    Prepared::Skip => Ok(Some(Outcome::Skipped)),
                    Prepared::Expired => Ok(Some(Outcome::Expired)),
                    Prepared::Park(envelope, error) => {
                        self.park_in_batch(&mut tx, message, envelope.as_ref(), &error, 1)
                            .await
                    }
                    Prepared::Apply(incoming) => {
                        sqlx::query("SAVEPOINT message")
                            .execute(&mut *tx)
                            .await
                            .context("set a savepoint")?;
                        match self.apply_in(&mut tx, &incoming).await {
                            Ok(outcome) => {
                                sqlx::query("RELEASE SAVEPOINT message")
                                    .execute(&mut *tx)
                                    .await
                                    .context("release the savepoint")?;
                                Ok(Some(outcome))
                            }
                            Err(HandlerError::Permanent(error)) => {
                                sqlx::query("ROLLBACK TO SAVEPOINT message")
                                    .execute(&mut *tx)
                                    .await
                                    .context("roll back to the savepoint")?;
                                self.park_in_batch(&mut tx, message, Some(&incoming.envelope), &error, 1)
                                    .await
                            }
                            Err(HandlerError::Transient(error)) => {
                                sqlx::query("ROLLBACK TO SAVEPOINT message")
                                    .execute(&mut *tx)
                                    .await
                                    .context("roll back to the savepoint")?;
                                tracing::warn!(
                                    error = format!("{error:#}"),
                                    "handler failed in a batch; committing what came before and retrying it alone"
                                );
                                Ok(None)
                            }
                        }
                    }
                }
            }
            .instrument(span.clone())
            .await?;
            let Some(outcome) = outcome else { break };
            outcomes.push((outcome, started.elapsed(), span));
        }
        self.commit_batch(tx, outcomes).await
    }

    /// Commits a batch and counts what it applied; returns how many messages it settled.
    async fn commit_batch(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Postgres>,
        outcomes: Vec<(Outcome, Duration, tracing::Span)>,
    ) -> anyhow::Result<usize> {
        tx.commit().await.context("commit a batch")?;
        // What the handlers wrote to the outbox is committed now: publish it at once.
        OUTBOX_WRITTEN.wake();
        if outcomes
            .iter()
            .any(|(outcome, _, _)| matches!(outcome, Outcome::Applied))
        {
            self.handler.after_commit().await;
        }
        self.stats.inner.batches.fetch_add(1, Ordering::Relaxed);
        let committed = outcomes.len();
        for (outcome, elapsed, span) in outcomes {
            self.count(&outcome, elapsed, &span);
        }
        Ok(committed)
    }

    /// Parks a message inside the batch's transaction, behind a savepoint of
    /// its own so a failure to park ends the batch there instead of undoing it.
    async fn park_in_batch(
        &self,
        tx: &mut PgConnection,
        message: &Fetched,
        envelope: Option<&Envelope>,
        error: &anyhow::Error,
        attempts: u32,
    ) -> anyhow::Result<Option<Outcome>> {
        sqlx::query("SAVEPOINT park")
            .execute(&mut *tx)
            .await
            .context("set a savepoint")?;
        match dead_letters::park_in(tx, &message.parked(&self.name), envelope, error, attempts)
            .await
        {
            Ok(()) => {
                sqlx::query("RELEASE SAVEPOINT park")
                    .execute(&mut *tx)
                    .await
                    .context("release the savepoint")?;
                self.log_parked(error, attempts);
                Ok(Some(Outcome::DeadLettered))
            }
            Err(park_error) => {
                sqlx::query("ROLLBACK TO SAVEPOINT park")
                    .execute(&mut *tx)
                    .await
                    .context("roll back to the savepoint")?;
                tracing::warn!(
                    error = format!("{park_error:#}"),
                    "could not park in a batch; retrying alone"
                );
                Ok(None)
            }
        }
    }

    /// Applies, skips or parks one message in transactions of its own, with
    /// retries. `None` only when shutdown interrupted it, so it is redelivered.
    async fn process_alone(&self, message: &Fetched, shutdown: &CancellationToken) -> Option<()> {
        let (span, prepared) = self.prepare(message);
        let started = Instant::now();
        let outcome = async {
            match prepared {
                Prepared::Skip => Some(Outcome::Skipped),
                Prepared::Expired => Some(Outcome::Expired),
                Prepared::Park(envelope, error) => {
                    self.park(message, envelope.as_ref(), &error, 1, shutdown)
                        .await
                }
                Prepared::Apply(incoming) => {
                    self.apply_with_retries(&incoming, message, shutdown).await
                }
            }
        }
        .instrument(span.clone())
        .await?;
        self.count(&outcome, started.elapsed(), &span);
        Some(())
    }

    /// Decodes what the runner needs to decide a message's fate, in its own span.
    fn prepare(&self, message: &Fetched) -> (tracing::Span, Prepared) {
        let span = tracing::info_span!(
            "consume",
            consumer = self.name,
            topic = message.topic,
            partition = message.partition,
            offset = message.offset,
            message_type = tracing::field::Empty,
            message_id = tracing::field::Empty,
            correlation_id = tracing::field::Empty,
        );
        trace_context::continue_trace(&span, &message.headers);
        let envelope: Envelope = match serde_json::from_slice(&message.payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                let error = anyhow::Error::new(error).context("the message is not an envelope");
                return (span, Prepared::Park(None, error));
            }
        };
        span.record("message_type", envelope.message_type.as_str());
        span.record("message_id", tracing::field::display(envelope.message_id));
        span.record(
            "correlation_id",
            tracing::field::display(envelope.correlation_id),
        );
        let prepared = match self.unsupported(&envelope.message_type) {
            None if envelope.expired(Utc::now()) => {
                span.in_scope(|| {
                    tracing::info!(
                        expires_at = ?envelope.expires_at,
                        "message expired before it was applied; its sender has stopped waiting for it"
                    );
                });
                Prepared::Expired
            }
            None => Prepared::Apply(Incoming {
                envelope,
                topic: message.topic.clone(),
                partition: message.partition,
                offset: message.offset,
                key: message.key.clone(),
            }),
            Some(Unsupported::Skip) => {
                span.in_scope(|| {
                    tracing::debug!("skipping a message type this consumer does not apply");
                });
                Prepared::Skip
            }
            Some(Unsupported::Park(why)) => Prepared::Park(Some(envelope), anyhow::anyhow!(why)),
        };
        (span, prepared)
    }

    /// Counts a settled message and logs an applied one in its span: one
    /// INFO line per message a handler applied, the messaging counterpart of
    /// a request's access-log line, so a booking can be followed through
    /// every service's logs by its correlation id.
    fn count(&self, outcome: &Outcome, elapsed: Duration, span: &tracing::Span) {
        if matches!(outcome, Outcome::Applied) {
            span.in_scope(|| {
                tracing::info!(
                    elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                    "message applied"
                );
            });
        }
        metrics::histogram!("consumer_handler_duration_seconds", "consumer" => self.name.clone())
            .record(elapsed.as_secs_f64());
        metrics::counter!("consumer_messages_total", "consumer" => self.name.clone(), "outcome" => outcome.label())
            .increment(1);
        let counter = match outcome {
            Outcome::Applied => &self.stats.inner.applied,
            Outcome::Duplicate => &self.stats.inner.duplicates,
            Outcome::Skipped => &self.stats.inner.skipped,
            Outcome::Expired => &self.stats.inner.expired,
            Outcome::DeadLettered => &self.stats.inner.dead_lettered,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn log_parked(&self, error: &anyhow::Error, attempts: u32) {
        tracing::error!(
            attempts,
            error = format!("{error:#}"),
            "message parked as a dead letter"
        );
        metrics::counter!("dead_letters_total", "consumer" => self.name.clone()).increment(1);
    }

    fn unsupported(&self, message_type: &str) -> Option<Unsupported> {
        let known = self.handler.message_types();
        if known.contains(&message_type) {
            return None;
        }
        let Ok(parsed) = message_type.parse::<MessageType>() else {
            return Some(Unsupported::Park(format!(
                "malformed message type `{message_type}`"
            )));
        };
        let newer_than_known = known
            .iter()
            .filter_map(|known| known.parse::<MessageType>().ok())
            .any(|known| known.same_message_as(&parsed) && parsed.version > known.version);
        if newer_than_known {
            Some(Unsupported::Park(format!(
                "{message_type} is newer than this consumer understands; upgrade it, then replay"
            )))
        } else {
            Some(Unsupported::Skip)
        }
    }

    async fn apply_with_retries(
        &self,
        incoming: &Incoming,
        message: &Fetched,
        shutdown: &CancellationToken,
    ) -> Option<Outcome> {
        let mut backoff = Duration::from_millis(self.settings.initial_backoff_ms);
        let max_backoff = Duration::from_millis(self.settings.max_backoff_ms);
        let mut attempt = 1;
        loop {
            match self.apply_once(incoming).await {
                Ok(outcome) => return Some(outcome),
                Err(HandlerError::Permanent(error)) => {
                    return self
                        .park(message, Some(&incoming.envelope), &error, attempt, shutdown)
                        .await;
                }
                // The database, not the message, failed: waiting for it costs
                // the message none of its attempts, or a Postgres restart
                // longer than the budget would park healthy messages.
                Err(HandlerError::Transient(error)) if service_kit::db::unavailable(&error) => {
                    tracing::warn!(
                        attempt,
                        error = format!("{error:#}"),
                        retry_in_ms = backoff.as_millis() as u64,
                        "database unavailable; waiting for it (not counted as an attempt)"
                    );
                    metrics::counter!("consumer_database_waits_total", "consumer" => self.name.clone())
                        .increment(1);
                    tokio::select! {
                        () = shutdown.cancelled() => return None,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(max_backoff);
                }
                Err(HandlerError::Transient(error)) if attempt >= self.settings.max_attempts => {
                    return self
                        .park(message, Some(&incoming.envelope), &error, attempt, shutdown)
                        .await;
                }
                Err(HandlerError::Transient(error)) => {
                    tracing::warn!(
                        attempt,
                        error = format!("{error:#}"),
                        retry_in_ms = backoff.as_millis() as u64,
                        "handler failed; retrying"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return None,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(max_backoff);
                    attempt += 1;
                }
            }
        }
    }

    /// One attempt in a transaction of its own.
    async fn apply_once(&self, incoming: &Incoming) -> Result<Outcome, HandlerError> {
        let mut tx = self.pool.begin().await?;
        let outcome = self.apply_in(&mut tx, incoming).await?;
        tx.commit().await?;
        OUTBOX_WRITTEN.wake();
        if matches!(outcome, Outcome::Applied) {
            self.handler.after_commit().await;
        }
        Ok(outcome)
    }

    /// The inbox row, then the handler's effect and outgoing messages, in `conn`'s transaction.
    async fn apply_in(
        &self,
        conn: &mut PgConnection,
        incoming: &Incoming,
    ) -> Result<Outcome, HandlerError> {
        if !record_in_inbox(conn, &self.name, &incoming.envelope).await? {
            tracing::debug!("duplicate delivery acknowledged without applying it again");
            return Ok(Outcome::Duplicate);
        }
        self.handler.handle(conn, incoming).await?;
        Ok(Outcome::Applied)
    }

    /// Parks the message; retries the parking itself until it succeeds, since
    /// moving on without either applying or parking would lose the message.
    async fn park(
        &self,
        message: &Fetched,
        envelope: Option<&Envelope>,
        error: &anyhow::Error,
        attempts: u32,
        shutdown: &CancellationToken,
    ) -> Option<Outcome> {
        let mut backoff = Duration::from_millis(self.settings.initial_backoff_ms);
        loop {
            let parked = message.parked(&self.name);
            match dead_letters::park(&self.pool, &parked, envelope, error, attempts).await {
                Ok(()) => {
                    self.log_parked(error, attempts);
                    return Some(Outcome::DeadLettered);
                }
                Err(park_error) => {
                    tracing::error!(
                        error = format!("{park_error:#}"),
                        "could not park a dead letter; retrying"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return None,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff =
                        (backoff * 2).min(Duration::from_millis(self.settings.max_backoff_ms));
                }
            }
        }
    }

    async fn maintain(&self) -> anyhow::Result<()> {
        let replayed =
            dead_letters::replay_requested(&self.pool, &self.name, self.handler.as_ref()).await?;
        if replayed > 0 {
            self.stats
                .inner
                .replayed
                .fetch_add(replayed, Ordering::Relaxed);
        }
        sqlx::query(
            "DELETE FROM inbox WHERE consumer = $1 AND message_id IN (
                 SELECT message_id FROM inbox
                 WHERE consumer = $1 AND processed_at < now() - make_interval(secs => $2)
                 LIMIT 10000
             )",
        )
        .bind(&self.name)
        .bind(self.settings.inbox_retention_secs as f64)
        .execute(&self.pool)
        .await
        .context("prune the inbox")?;
        // The dead-letter queue's depth: what still waits for an operator.
        let parked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM dead_letters WHERE consumer = $1 AND status = 'parked'",
        )
        .bind(&self.name)
        .fetch_one(&self.pool)
        .await
        .context("count parked dead letters")?;
        metrics::gauge!("dead_letters_parked", "consumer" => self.name.clone()).set(parked as f64);
        Ok(())
    }
}

enum Unsupported {
    Skip,
    Park(String),
}

/// A message copied out of the client's buffer.
struct Fetched {
    /// The topic's name on the broker, with the environment's prefix.
    full_topic: String,
    /// Without the prefix, as handlers and dead letters name it.
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<String>,
    headers: HashMap<String, String>,
    payload: Vec<u8>,
}

impl Fetched {
    fn parked<'a>(&'a self, consumer: &'a str) -> ParkedMessage<'a> {
        ParkedMessage {
            consumer,
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
            key: self.key.as_deref(),
            headers: &self.headers,
            payload: &self.payload,
        }
    }
}

/// What the runner decided about a message before any handler runs.
enum Prepared {
    Apply(Incoming),
    Skip,
    /// Past its `expires_at`: dropped unapplied.
    Expired,
    Park(Option<Envelope>, anyhow::Error),
}

/// Inserts the inbox row; false if this consumer already applied the message.
pub(crate) async fn record_in_inbox(
    conn: &mut PgConnection,
    consumer: &str,
    envelope: &Envelope,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (consumer, message_id, message_type) VALUES ($1, $2, $3)
         ON CONFLICT (consumer, message_id) DO NOTHING",
    )
    .bind(consumer)
    .bind(envelope.message_id)
    .bind(&envelope.message_type)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Inserts the inbox rows of a batch in one statement; returns the ids of
/// the messages this consumer had not applied before.
async fn record_all_in_inbox(
    conn: &mut PgConnection,
    consumer: &str,
    envelopes: &[&Envelope],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    if envelopes.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<Uuid> = envelopes
        .iter()
        .map(|envelope| envelope.message_id)
        .collect();
    let types: Vec<&str> = envelopes
        .iter()
        .map(|envelope| envelope.message_type.as_str())
        .collect();
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO inbox (consumer, message_id, message_type)
         SELECT $1, message_id, message_type FROM unnest($2::uuid[], $3::text[]) AS m(message_id, message_type)
         ON CONFLICT (consumer, message_id) DO NOTHING
         RETURNING message_id",
    )
    .bind(consumer)
    .bind(&ids)
    .bind(&types)
    .fetch_all(conn)
    .await?;
    Ok(inserted.into_iter().collect())
}

fn read_headers(message: &BorrowedMessage<'_>) -> HashMap<String, String> {
    let mut headers = HashMap::new();
    if let Some(borrowed) = message.headers() {
        for header in borrowed.iter() {
            if let Some(value) = header.value {
                headers.insert(
                    header.key.to_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                );
            }
        }
    }
    headers
}

/// Logs rebalances and exports consumer lag from librdkafka's statistics.
struct GroupContext {
    consumer: String,
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, topic_stats) in statistics.topics {
            for (partition, partition_stats) in topic_stats.partitions {
                if partition < 0 || partition_stats.consumer_lag < 0 {
                    continue;
                }
                metrics::gauge!(
                    "consumer_lag",
                    "consumer" => self.consumer.clone(),
                    "topic" => topic.clone(),
                    "partition" => partition.to_string()
                )
                .set(partition_stats.consumer_lag as f64);
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        tracing::info!(consumer = self.consumer, rebalance = ?rebalance, "rebalance starting");
        // A revoked partition's lag is another member's to report now; the
        // last value this member saw would otherwise stay exported for good,
        // and a sum over members would count it twice.
        if let Rebalance::Revoke(partitions) = rebalance {
            for element in partitions.elements() {
                metrics::gauge!(
                    "consumer_lag",
                    "consumer" => self.consumer.clone(),
                    "topic" => element.topic().to_owned(),
                    "partition" => element.partition().to_string()
                )
                .set(0.0);
            }
        }
    }

    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        tracing::info!(consumer = self.consumer, rebalance = ?rebalance, "rebalance done");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct HoldSeats {
        seats: u32,
    }

    impl contracts::Message for HoldSeats {
        const MESSAGE_TYPE: &'static str = "inventory.HoldSeats.v1";
    }

    #[test]
    fn a_payload_that_breaks_its_contract_is_a_permanent_failure() {
        let mut envelope = Envelope::new(HoldSeats { seats: 2 }, Uuid::now_v7())
            .to_json()
            .unwrap();
        envelope.payload = serde_json::json!({"seats": "two"});
        let decoded: Result<Envelope<HoldSeats>, HandlerError> =
            envelope.decode::<HoldSeats>().map_err(HandlerError::from);
        assert!(matches!(decoded, Err(HandlerError::Permanent(_))));
    }
}
