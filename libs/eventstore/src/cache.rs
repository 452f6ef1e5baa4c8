//! Recently decided aggregate states, so a command handler need not re-read
//! and re-fold its stream (the latest snapshot plus the events after it) for
//! every command.
//!
//! An entry is trusted only while the stream's head in the database is still
//! the event the entry was folded up to, checked by id in the caller's
//! transaction: one small index read instead of the snapshot and the events.
//! An entry remembered in a transaction that then rolled back names an event
//! that never committed, so it can never match; another writer's append
//! moves the head, so it cannot match either. Either way the load falls back
//! to the full read and remembers its result.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::Context;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::postgres::i64_to_db;
use crate::{Aggregate, Loaded, PgEventStore, Repository, StoreError};

/// A bounded map from stream to its latest known state.
#[derive(Debug)]
pub struct StateCache<A> {
    entries: Mutex<HashMap<String, Entry<A>>>,
    capacity: usize,
}

#[derive(Debug, Clone)]
struct Entry<A> {
    version: u64,
    head_event: Uuid,
    state: A,
}

impl<A: Aggregate + Clone> StateCache<A> {
    /// Keeps at most `capacity` streams; 0 turns the cache off.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// [`PgEventStore::load_in`], answered from the cache when the stream's
    /// head is still the event the cached state was folded up to.
    pub async fn load_in(
        &self,
        repository: &Repository<A, PgEventStore>,
        conn: &mut PgConnection,
        stream: &str,
    ) -> Result<Loaded<A>, StoreError> {
        if self.capacity == 0 {
            return PgEventStore::load_in(repository, conn, stream).await;
        }
        let head: Option<(i64, Uuid)> = sqlx::query_as(
            "SELECT version, event_id FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(stream)
        .fetch_optional(&mut *conn)
        .await
        .context("select the stream's head")?;
        if let Some((version, event_id)) = head {
            if let Some(entry) = self.get(stream) {
                if i64_to_db(entry.version)? == version && entry.head_event == event_id {
                    crate::metrics::record_cache(true);
                    return Ok(Loaded {
                        state: entry.state,
                        version: entry.version,
                    });
                }
            }
        }
        crate::metrics::record_cache(false);
        let loaded = PgEventStore::load_in(repository, conn, stream).await?;
        if let Some((version, event_id)) = head {
            // Another writer may have appended between the two reads: only a
            // state folded up to the head that was read is remembered.
            if i64_to_db(loaded.version)? == version {
                self.remember(stream, &loaded, event_id);
            }
        }
        Ok(loaded)
    }

    /// Remembers `loaded` as the state after the event `head_event`, e.g.
    /// right after appending it.
    pub fn remember(&self, stream: &str, loaded: &Loaded<A>, head_event: Uuid) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(stream) {
            // Any entry will do: a miss costs one full load.
            if let Some(evicted) = entries.keys().next().cloned() {
                entries.remove(&evicted);
            }
        }
        entries.insert(
            stream.to_owned(),
            Entry {
                version: loaded.version,
                head_event,
                state: loaded.state.clone(),
            },
        );
    }

    fn get(&self, stream: &str) -> Option<Entry<A>> {
        self.entries.lock().ok()?.get(stream).cloned()
    }
}
