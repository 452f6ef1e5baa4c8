//! Read models fed from the global log, effectively once, and rebuilt
//! beside the live copy.
//!
//! Each read-model table exists in generations, `<table>_g<n>`, and readers
//! query a view `<table>` over the live generation. The runner applies a
//! batch of events and moves the generation's checkpoint in one transaction,
//! so a crash replays nothing twice and skips nothing. A rebuild fills a new
//! generation from the start of the log while the live one keeps serving,
//! then repoints the views and the live generation in one transaction.

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use sqlx::{Connection, Executor, PgConnection};
use tokio_util::sync::CancellationToken;

use crate::postgres::{i64_to_db, position_from_db, read_all_in};
use crate::subscription::IdleBackoff;
use crate::{EventStore, PgEventStore, Position, ProjectionError, RecordedEvent};

/// A read model built from events.
pub trait Projection: Send + Sync + 'static {
    /// Stable and unique within the schema: keys the checkpoints.
    fn name(&self) -> &'static str;

    /// The tables of the read model, as readers name them (the views).
    /// Lowercase identifiers of at most 50 characters.
    fn tables(&self) -> &'static [&'static str];

    /// Creates one generation of the tables, named by [`Tables::name`].
    fn create_tables(
        &self,
        conn: &mut PgConnection,
        tables: &Tables,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Applies one event to the tables named by `tables`, on the runner's
    /// transaction; the checkpoint commits with it. Ignore events of no interest.
    fn apply(
        &self,
        conn: &mut PgConnection,
        tables: &Tables,
        event: &RecordedEvent,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The physical tables of one generation of a read model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    generation: u32,
}

impl Tables {
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The table behind the view `table` in this generation.
    pub fn name(&self, table: &str) -> String {
        format!("{table}_g{}", self.generation)
    }
}

/// How a runner reads.
#[derive(Debug, Clone)]
pub struct ProjectionSettings {
    /// Events applied per transaction.
    pub batch_size: usize,
    /// The longest the runner waits without a notification before reading again.
    pub poll_interval: Duration,
}

impl Default for ProjectionSettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Work that must follow the commit of a live batch, given the streams the
/// batch applied events of (a read cache invalidating what the model serves).
type AfterCommit = Arc<dyn Fn(BTreeSet<String>) -> BoxFuture<'static, ()> + Send + Sync>;

/// Feeds one projection. Several runners of the same projection may run at
/// once (one per replica): each batch locks the projection, so they take
/// turns and never apply an event twice.
pub struct ProjectionRunner<P> {
    store: PgEventStore,
    projection: P,
    settings: ProjectionSettings,
    after_commit: Option<AfterCommit>,
}

impl<P: fmt::Debug> fmt::Debug for ProjectionRunner<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("projection", &self.projection)
            .field("settings", &self.settings)
            .field("after_commit", &self.after_commit.is_some())
            .finish_non_exhaustive()
    }
}

impl<P: Projection> ProjectionRunner<P> {
    pub fn new(
        store: PgEventStore,
        projection: P,
        settings: ProjectionSettings,
    ) -> Result<Self, ProjectionError> {
        for table in projection.tables() {
            if !is_plain_identifier(table) {
                return Err(anyhow!(
                    "projection {} names table {table:?}, which is not a lowercase identifier of at most 50 characters",
                    projection.name()
                )
                .into());
            }
        }
        Ok(Self {
            store,
            projection,
            settings,
            after_commit: None,
        })
    }

    /// Runs `hook` after each live batch commits, with the ids of the streams
    /// whose events it applied: what readers of the model see changed now.
    #[must_use]
    pub fn after_commit<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(BTreeSet<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.after_commit = Some(Arc::new(move |streams| Box::pin(hook(streams))));
        self
    }

    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// Creates the first generation and its views if the projection is new.
    /// Safe to call from several runners at once.
    #[tracing::instrument(skip_all, fields(projection = self.projection.name()), err)]
    pub async fn initialize(&self) -> Result<(), ProjectionError> {
        let mut conn = self.connection().await?;
        let mut tx = conn.begin().await.context("begin")?;
        // A concurrent initializer waits here on the primary key, then finds
        // the row and does nothing.
        let created = sqlx::query(
            "INSERT INTO projections (projection, live_generation) VALUES ($1, 1) \
             ON CONFLICT (projection) DO NOTHING",
        )
        .bind(self.projection.name())
        .execute(&mut *tx)
        .await
        .context("register the projection")?
        .rows_affected()
            == 1;
        if created {
            let tables = Tables { generation: 1 };
            self.create_generation(&mut tx, tables).await?;
            self.point_views_at(&mut tx, tables).await?;
        }
        tx.commit().await.context("commit")?;
        Ok(())
    }

    /// The live generation and how far it has read.
    #[tracing::instrument(skip_all, fields(projection = self.projection.name()), err)]
    pub async fn live(&self) -> Result<(Tables, Position), ProjectionError> {
        let mut conn = self.connection().await?;
        let row: (i32, i64, i64) = sqlx::query_as(
            "SELECT c.generation, c.transaction_id::text::bigint, c.sequence \
             FROM projections p JOIN projection_checkpoints c \
               ON c.projection = p.projection AND c.generation = p.live_generation \
             WHERE p.projection = $1",
        )
        .bind(self.projection.name())
        .fetch_one(&mut *conn)
        .await
        .context("select the live checkpoint")?;
        Ok((tables_of(row.0)?, position_from_db(row.1, row.2)?))
    }

    /// Applies every event that can be read now to the live generation;
    /// returns how many.
    #[tracing::instrument(skip_all, fields(projection = self.projection.name()), err)]
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        let mut conn = self.connection().await?;
        let mut applied = 0;
        loop {
            let mut tx = conn.begin().await.context("begin")?;
            // Locks the projection, so a rebuild's swap and other runners wait
            // for this batch, and this batch sees the generation they leave.
            let live: i32 = sqlx::query_scalar(
                "SELECT live_generation FROM projections WHERE projection = $1 FOR NO KEY UPDATE",
            )
            .bind(self.projection.name())
            .fetch_one(&mut *tx)
            .await
            .context("lock the projection")?;
            let mut streams = BTreeSet::new();
            let batch = self
                .apply_batch(&mut tx, tables_of(live)?, Some(&mut streams))
                .await?;
            tx.commit().await.context("commit a batch")?;
            if batch == 0 {
                return Ok(applied);
            }
            if let Some(hook) = &self.after_commit {
                hook(streams).await;
            }
            applied += batch;
        }
    }

    /// Follows the log until `cancel`: catches up, then waits for a
    /// notification or the poll interval, and again.
    #[tracing::instrument(skip_all, fields(projection = self.projection.name()), err)]
    pub async fn run(&self, cancel: CancellationToken) -> Result<(), ProjectionError> {
        self.initialize().await?;
        let mut notifications = self.store.append_notifications().await?;
        let mut idle = IdleBackoff::new(self.settings.poll_interval);
        let mut failures: u32 = 0;
        while !cancel.is_cancelled() {
            // A lost database (a restart, a failover) or an event the
            // projection refuses stalls the read model, not the service:
            // it is logged and tried again with backoff; the checkpoint has
            // not moved, so nothing is skipped.
            match self.catch_up().await {
                Ok(applied) => {
                    failures = 0;
                    if applied > 0 {
                        idle.reset();
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(100)
                        .saturating_mul(1 << failures.min(9))
                        .min(Duration::from_secs(30));
                    metrics::counter!("projection_failures_total", "projection" => self.projection.name().to_owned())
                        .increment(1);
                    tracing::warn!(
                        projection = self.projection.name(),
                        error = format!("{error:#}"),
                        retry_in_ms = backoff.as_millis() as u64,
                        "projection could not catch up; trying again"
                    );
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = tokio::time::sleep(backoff) => {}
                    }
                    continue;
                }
            }
            tokio::select! {
                () = cancel.cancelled() => {}
                () = idle.sleep() => {}
                notification = notifications.next() => {
                    idle.reset();
                    if notification.is_none() {
                        notifications = futures::stream::pending().boxed();
                    }
                }
            }
            while let Some(Some(())) = notifications.next().now_or_never() {}
        }
        Ok(())
    }

    /// Rebuilds the read model from the first event into a new generation,
    /// then makes it live atomically and drops the others; returns the new
    /// generation. Readers see the old model until the swap commits and the
    /// new one after it, never a partial one. One rebuild at a time.
    #[tracing::instrument(skip_all, fields(projection = self.projection.name()), err)]
    pub async fn rebuild(&self) -> Result<Tables, ProjectionError> {
        self.initialize().await?;
        let mut conn = self.connection().await?;

        let mut tx = conn.begin().await.context("begin")?;
        let next: i32 = sqlx::query_scalar(
            "SELECT max(generation) + 1 FROM projection_checkpoints WHERE projection = $1",
        )
        .bind(self.projection.name())
        .fetch_one(&mut *tx)
        .await
        .context("select the next generation")?;
        let tables = tables_of(next)?;
        self.create_generation(&mut tx, tables).await?;
        tx.commit().await.context("commit the new generation")?;

        // The bulk of the work, without holding up the live runner.
        loop {
            let mut tx = conn.begin().await.context("begin")?;
            let batch = self.apply_batch(&mut tx, tables, None).await?;
            tx.commit().await.context("commit a rebuild batch")?;
            if batch == 0 {
                break;
            }
        }

        // The swap: wait for the live runner's batch, take the last events,
        // repoint the views. The old generation's readers finish on it.
        let mut tx = conn.begin().await.context("begin the swap")?;
        sqlx::query("SELECT 1 FROM projections WHERE projection = $1 FOR NO KEY UPDATE")
            .bind(self.projection.name())
            .execute(&mut *tx)
            .await
            .context("lock the projection")?;
        while self.apply_batch(&mut tx, tables, None).await? > 0 {}
        self.point_views_at(&mut tx, tables).await?;
        sqlx::query(
            "UPDATE projections SET live_generation = $2, swapped_at = now() WHERE projection = $1",
        )
        .bind(self.projection.name())
        .bind(next)
        .execute(&mut *tx)
        .await
        .context("make the new generation live")?;
        let retired: Vec<i32> = sqlx::query_scalar(
            "DELETE FROM projection_checkpoints WHERE projection = $1 AND generation <> $2 \
             RETURNING generation",
        )
        .bind(self.projection.name())
        .bind(next)
        .fetch_all(&mut *tx)
        .await
        .context("retire the other generations")?;
        tx.commit().await.context("commit the swap")?;

        // Separately, so the swap does not wait for readers of the old tables.
        for generation in retired {
            let retired = tables_of(generation)?;
            for table in self.projection.tables() {
                let statement = format!("DROP TABLE IF EXISTS {}", retired.name(table));
                conn.execute(statement.as_str())
                    .await
                    .with_context(|| format!("drop {}", retired.name(table)))?;
            }
        }
        tracing::info!(generation = next, "read model rebuilt and swapped in");
        Ok(tables)
    }

    async fn connection(&self) -> anyhow::Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.store
            .pool()
            .acquire()
            .await
            .context("acquire a connection")
    }

    async fn create_generation(
        &self,
        conn: &mut PgConnection,
        tables: Tables,
    ) -> Result<(), ProjectionError> {
        self.projection
            .create_tables(conn, &tables)
            .await
            .with_context(|| format!("create generation {} of the tables", tables.generation))?;
        sqlx::query(
            "INSERT INTO projection_checkpoints (projection, generation, transaction_id, sequence) \
             VALUES ($1, $2, '0', 0)",
        )
        .bind(self.projection.name())
        .bind(i32::try_from(tables.generation).context("generation out of range")?)
        .execute(&mut *conn)
        .await
        .context("insert the generation's checkpoint")?;
        Ok(())
    }

    /// Drop and create rather than `CREATE OR REPLACE`: a rebuild may change columns.
    async fn point_views_at(
        &self,
        conn: &mut PgConnection,
        tables: Tables,
    ) -> Result<(), ProjectionError> {
        for table in self.projection.tables() {
            let statement = format!(
                "DROP VIEW IF EXISTS {table}; CREATE VIEW {table} AS SELECT * FROM {}",
                tables.name(table)
            );
            conn.execute(statement.as_str()).await.with_context(|| {
                format!("point view {table} at generation {}", tables.generation)
            })?;
        }
        Ok(())
    }

    /// Reads one batch after the generation's checkpoint, applies it and moves
    /// the checkpoint, all on the caller's transaction; returns the batch
    /// size, and adds the streams it touched to `streams` if given.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        tables: Tables,
        mut streams: Option<&mut BTreeSet<String>>,
    ) -> Result<u64, ProjectionError> {
        let generation = i32::try_from(tables.generation).context("generation out of range")?;
        let (transaction_id, sequence): (i64, i64) = sqlx::query_as(
            "SELECT transaction_id::text::bigint, sequence FROM projection_checkpoints \
             WHERE projection = $1 AND generation = $2 FOR UPDATE",
        )
        .bind(self.projection.name())
        .bind(generation)
        .fetch_one(&mut *tx)
        .await
        .context("select the checkpoint")?;
        let after = position_from_db(transaction_id, sequence)?;
        let events = read_all_in(tx, after, self.settings.batch_size).await?;
        let Some(last) = events.last().map(|event| event.position) else {
            return Ok(0);
        };
        for event in &events {
            if let Some(streams) = streams.as_deref_mut() {
                streams.insert(event.stream_id.clone());
            }
            self.projection
                .apply(tx, &tables, event)
                .await
                .map_err(|source| ProjectionError::Apply {
                    projection: self.projection.name().to_owned(),
                    event_id: event.event_id,
                    event_type: event.event_type.clone(),
                    source,
                })?;
        }
        sqlx::query(
            "UPDATE projection_checkpoints \
             SET transaction_id = $3::text::xid8, sequence = $4, updated_at = now() \
             WHERE projection = $1 AND generation = $2",
        )
        .bind(self.projection.name())
        .bind(generation)
        .bind(last.transaction_id.to_string())
        .bind(i64_to_db(last.sequence)?)
        .execute(&mut *tx)
        .await
        .context("move the checkpoint")?;
        metrics::counter!(crate::metrics::PROJECTION_EVENTS_TOTAL, "projection" => self.projection.name())
            .increment(events.len() as u64);
        Ok(events.len() as u64)
    }
}

fn tables_of(generation: i32) -> anyhow::Result<Tables> {
    Ok(Tables {
        generation: u32::try_from(generation).context("negative generation")?,
    })
}

/// Table names are spliced into DDL, so only plain identifiers are allowed.
fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 50
}
