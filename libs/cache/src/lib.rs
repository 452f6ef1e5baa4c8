//! A cache-aside read cache on Redis, for data whose owner knows when it changes.
//!
//! - [`Cache`]: one per service, from [`CacheSettings`]; without a Redis URL it
//!   is disabled and every read goes straight to its loader;
//! - [`Entry`]: what is cached — a key within a [`Scope`], under a cache name
//!   (the metrics label);
//! - [`Cache::get_or_load`]: a hit, or one load per key at a time in this
//!   process (single flight), written back only if nothing was invalidated
//!   meanwhile; [`Cache::invalidate`]: after the owner's write commits.
//!
//! **Versioned entries, not deletes.** Each scope has a *token* in Redis, a
//! random number replaced on every invalidation, and the cache has a global
//! *epoch*, replaced when an invalidation could not reach Redis. A value is
//! stored tagged with the epoch and token it was loaded under, and is a hit
//! only while both are still current. A reader that loaded from the database
//! before a write and stores its value after the invalidation stores it under
//! the old token (the store is a compare-and-set on both, in one script), so
//! nobody ever reads it: stale data cannot outlive the invalidation. Random
//! tokens, not counters, so an evicted or expired token can never come back
//! to a value tagged with it.
//!
//! **Redis is optional at run time.** Every call has a timeout; an error or a
//! timeout is a miss (the loader answers), counted, and logged at most once
//! per [`WARN_EVERY`]; then Redis is left alone for [`RETRY_AFTER`]. An
//! invalidation that could not reach Redis marks the whole cache suspect: no
//! hit is served until a new epoch has been written.

mod flight;
pub mod metrics;
mod warn;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::flight::InFlight;
pub use crate::flight::LoadAborted;
use crate::warn::WarnLimiter;

/// After a Redis error, how long reads and invalidations skip Redis before
/// trying again: a Redis that is down costs one failed attempt a second, not
/// one per request.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// At most one warning this often while Redis is failing (the counters have every one).
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Scope tokens outlive the values tagged with them; they need no expiry for
/// correctness (a lost token only causes misses), only to not accumulate.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Bytes of the tag in front of every stored value: epoch and token, big-endian.
const TAG_LEN: usize = 16;

/// Stores a value only if the epoch and the scope's token are still the ones
/// it was loaded under: a value loaded before an invalidation is never stored
/// after it.
const STORE_IF_CURRENT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0
";

/// `[cache]` settings of a service.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    /// `redis://host:port/db`; none: no cache, every read from the database.
    #[serde(default)]
    pub redis_url: Option<SecretString>,
    /// How long a value lives at most (a backstop: invalidation, not the
    /// TTL, is what keeps values fresh).
    pub ttl_secs: u64,
    /// The longest one Redis call may take before it counts as a miss.
    pub timeout_ms: u64,
    /// Prefixes every key: deployments (and tests) sharing one Redis keep apart.
    pub key_prefix: String,
}

/// A set of entries invalidated together: one flight's views, all searches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(String);

impl Scope {
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One cached value: `key` within `scope`, counted under `cache`.
#[derive(Debug, Clone)]
pub struct Entry {
    cache: &'static str,
    scope: Scope,
    key: String,
}

impl Entry {
    /// `cache` names the kind of entry in metrics (`flight_detail`); keep it
    /// to a handful of values. `key` tells entries of one scope apart.
    pub fn new(cache: &'static str, scope: Scope, key: impl Into<String>) -> Self {
        Self {
            cache,
            scope,
            key: key.into(),
        }
    }

    pub fn cache(&self) -> &'static str {
        self.cache
    }
}

/// Running totals of one [`Cache`], for tests and diagnostics (the
/// Prometheus counters in [`metrics`] are process-wide).
#[derive(Debug, Clone, Default)]
pub struct CacheStats {
    inner: Arc<StatsInner>,
}

#[derive(Debug, Default)]
struct StatsInner {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    skipped: AtomicU64,
    loads: AtomicU64,
}

impl CacheStats {
    pub fn hits(&self) -> u64 {
        self.inner.hits.load(Ordering::Relaxed)
    }
    pub fn misses(&self) -> u64 {
        self.inner.misses.load(Ordering::Relaxed)
    }
    /// Redis calls that failed or timed out, and reads that skipped a failing Redis.
    pub fn errors(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }
    /// Reads that did not call Redis because it failed moments ago (also
    /// counted in [`CacheStats::errors`]).
    pub fn skipped(&self) -> u64 {
        self.inner.skipped.load(Ordering::Relaxed)
    }
    /// Loader runs: what reached the database.
    pub fn loads(&self) -> u64 {
        self.inner.loads.load(Ordering::Relaxed)
    }
}

/// The read cache; cheap to clone. [`Cache::disabled`] when no Redis is configured.
#[derive(Clone)]
pub struct Cache {
    inner: Option<Arc<Inner>>,
    stats: CacheStats,
}

struct Inner {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    store_if_current: redis::Script,
    in_flight: InFlight,
    /// Bumped by every local invalidation: a load that started before one is
    /// never joined by a reader that started after it, even with Redis down.
    local_epoch: AtomicU64,
    /// An invalidation did not reach Redis: no hits until a new epoch is written.
    suspect: AtomicBool,
    failing_until: Mutex<Option<Instant>>,
    warnings: WarnLimiter,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            None => f.write_str("Cache(disabled)"),
            Some(inner) => f
                .debug_struct("Cache")
                .field("prefix", &inner.prefix)
                .field("ttl", &inner.ttl)
                .field("timeout", &inner.timeout)
                .finish_non_exhaustive(),
        }
    }
}

/// The epoch and scope token a read found (or established) in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag {
    epoch: u64,
    token: u64,
}

impl Tag {
    fn encode(self, payload: &[u8]) -> Vec<u8> {
        let mut value = Vec::with_capacity(TAG_LEN + payload.len());
        value.extend_from_slice(&self.epoch.to_be_bytes());
        value.extend_from_slice(&self.token.to_be_bytes());
        value.extend_from_slice(payload);
        value
    }

    /// The payload of `value` if it was stored under this tag.
    fn payload_of(self, mut value: Vec<u8>) -> Option<Bytes> {
        if value.len() < TAG_LEN || value[..TAG_LEN] != self.encode(&[])[..] {
            return None;
        }
        Some(Bytes::from(value.split_off(TAG_LEN)))
    }
}

/// What a read found in Redis.
enum Lookup {
    Hit(Bytes),
    /// Not there, or stale: load, and store under what this says.
    Miss(Tagging),
    /// Redis failed or is being left alone: load, store nothing.
    Unavailable,
}

/// What a load stores its value under.
#[derive(Debug, Clone, Copy)]
enum Tagging {
    /// The current epoch and token, read before the load.
    Current(Tag),
    /// The epoch or the token is missing (first use, evicted): create them
    /// before the load, then store under them.
    Missing,
    /// Redis is failing: store nothing.
    Nothing,
}

impl Cache {
    /// No Redis: every read is its loader's, nothing is stored.
    pub fn disabled() -> Self {
        Self {
            inner: None,
            stats: CacheStats::default(),
        }
    }

    /// The cache `settings` describe; no I/O (Redis is connected on first
    /// use, so a service starts whether Redis is up or not).
    pub fn new(settings: &CacheSettings) -> anyhow::Result<Self> {
        let Some(url) = &settings.redis_url else {
            return Ok(Self::disabled());
        };
        let client = redis::Client::open(url.expose_secret())
            .map_err(|error| anyhow!("invalid cache.redis_url: {:?}", error.kind()))?;
        metrics::describe();
        Ok(Self {
            inner: Some(Arc::new(Inner {
                client,
                connection: OnceCell::new(),
                prefix: settings.key_prefix.clone(),
                ttl: Duration::from_secs(settings.ttl_secs.max(1)),
                timeout: Duration::from_millis(settings.timeout_ms.max(1)),
                store_if_current: redis::Script::new(STORE_IF_CURRENT),
                in_flight: InFlight::default(),
                local_epoch: AtomicU64::new(0),
                suspect: AtomicBool::new(false),
                failing_until: Mutex::new(None),
                warnings: WarnLimiter::new(WARN_EVERY),
            })),
            stats: CacheStats::default(),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    /// The cached value of `entry`, or `load`'s. On a miss, concurrent
    /// readers of the same entry in this process share one `load`; its
    /// value is stored only if `entry`'s scope was not invalidated since
    /// the read began. An error of `load` is returned (to every reader that
    /// shared it) and not cached. Never fails because of Redis; `E` is
    /// what readers get if the shared load dies without an answer.
    pub async fn get_or_load<E, F, Fut>(&self, entry: &Entry, load: F) -> Result<Bytes, E>
    where
        E: From<LoadAborted> + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Bytes, E>> + Send + 'static,
    {
        let Some(inner) = &self.inner else {
            self.stats.inner.loads.fetch_add(1, Ordering::Relaxed);
            metrics::record_load(entry.cache);
            return load().await;
        };
        // Read before Redis: a load this reader joins below began after every
        // local invalidation this reader knows of.
        let local_epoch = inner.local_epoch.load(Ordering::Acquire);
        let tagging = match inner.lookup(entry, &self.stats).await {
            Lookup::Hit(payload) => {
                self.stats.inner.hits.fetch_add(1, Ordering::Relaxed);
                metrics::record_hit(entry.cache);
                return Ok(payload);
            }
            Lookup::Miss(tagging) => tagging,
            Lookup::Unavailable => Tagging::Nothing,
        };
        self.stats.inner.misses.fetch_add(1, Ordering::Relaxed);
        metrics::record_miss(entry.cache);
        // Readers share a load only if it began under the same tag and after
        // the same local invalidations.
        let under = match tagging {
            Tagging::Current(tag) => format!("{:x}.{:x}", tag.epoch, tag.token),
            Tagging::Missing => "new".to_owned(),
            Tagging::Nothing => "down".to_owned(),
        };
        let flight_key = format!("{}|{under}|{local_epoch}", inner.value_key(entry));
        let cache = self.clone();
        let owned = entry.clone();
        inner
            .in_flight
            .run(flight_key, entry.cache, move || async move {
                cache.load_and_store(&owned, tagging, load).await
            })
            .await
    }

    /// The single flight's body: make sure a tag exists before reading the
    /// database (so the value is tagged with something an invalidation
    /// after this read replaces), load, store if still current.
    async fn load_and_store<E, F, Fut>(
        &self,
        entry: &Entry,
        tagging: Tagging,
        load: F,
    ) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let Some(inner) = &self.inner else {
            return load().await;
        };
        let tag = match tagging {
            Tagging::Current(tag) => Some(tag),
            Tagging::Missing => inner.establish_tag(entry, &self.stats).await,
            Tagging::Nothing => None,
        };
        self.stats.inner.loads.fetch_add(1, Ordering::Relaxed);
        metrics::record_load(entry.cache);
        let payload = load().await?;
        if let Some(tag) = tag {
            inner.store(entry, tag, &payload, &self.stats).await;
        }
        Ok(payload)
    }

    /// Makes every entry of `scope` stale, in this process at once and in
    /// Redis for everyone. Call after the write that changed it commits. If
    /// Redis cannot be reached the whole cache is treated as stale until a
    /// new epoch can be written.
    pub async fn invalidate(&self, scope: &Scope) {
        let Some(inner) = &self.inner else {
            return;
        };
        inner.local_epoch.fetch_add(1, Ordering::AcqRel);
        metrics::record_invalidation();
        let token = random_token().to_string();
        let key = inner.token_key(scope);
        let result = inner
            .call("invalidate", |mut connection| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&token)
                    .arg("PX")
                    .arg(millis(TOKEN_TTL))
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await;
        if let Err(error) = result {
            inner.suspect.store(true, Ordering::Release);
            inner.failed("invalidation", &error, &self.stats);
        }
    }
}

impl Inner {
    fn epoch_key(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    fn token_key(&self, scope: &Scope) -> String {
        format!("{}:{}:token", self.prefix, scope.as_str())
    }

    fn value_key(&self, entry: &Entry) -> String {
        format!("{}:{}:{}", self.prefix, entry.scope.as_str(), entry.key)
    }

    async fn lookup(&self, entry: &Entry, stats: &CacheStats) -> Lookup {
        if self.is_failing() {
            stats.inner.errors.fetch_add(1, Ordering::Relaxed);
            stats.inner.skipped.fetch_add(1, Ordering::Relaxed);
            metrics::record_error(entry.cache, "skipped");
            return Lookup::Unavailable;
        }
        if self.suspect.load(Ordering::Acquire) && !self.write_new_epoch(stats).await {
            return Lookup::Unavailable;
        }
        let keys = [
            self.epoch_key(),
            self.token_key(&entry.scope),
            self.value_key(entry),
        ];
        let found = self
            .call("read", |mut connection| async move {
                redis::cmd("MGET")
                    .arg(&keys)
                    .query_async::<(Option<u64>, Option<u64>, Option<Vec<u8>>)>(&mut connection)
                    .await
            })
            .await;
        match found {
            Ok((Some(epoch), Some(token), value)) => {
                let tag = Tag { epoch, token };
                match value.and_then(|value| tag.payload_of(value)) {
                    Some(payload) => Lookup::Hit(payload),
                    None => Lookup::Miss(Tagging::Current(tag)),
                }
            }
            Ok(_) => Lookup::Miss(Tagging::Missing),
            Err(error) => {
                self.failed(entry.cache, &error, stats);
                Lookup::Unavailable
            }
        }
    }

    /// Creates the epoch and the scope's token where missing (first use, or
    /// evicted) and returns them.
    async fn establish_tag(&self, entry: &Entry, stats: &CacheStats) -> Option<Tag> {
        let epoch_key = self.epoch_key();
        let token_key = self.token_key(&entry.scope);
        let result = self
            .call("establish", |mut connection| async move {
                redis::pipe()
                    .cmd("SET")
                    .arg(&epoch_key)
                    .arg(random_token().to_string())
                    .arg("NX")
                    .ignore()
                    .cmd("SET")
                    .arg(&token_key)
                    .arg(random_token().to_string())
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(TOKEN_TTL))
                    .ignore()
                    .cmd("MGET")
                    .arg(&epoch_key)
                    .arg(&token_key)
                    .query_async::<((u64, u64),)>(&mut connection)
                    .await
            })
            .await;
        match result {
            Ok(((epoch, token),)) => Some(Tag { epoch, token }),
            Err(error) => {
                self.failed(entry.cache, &error, stats);
                None
            }
        }
    }

    async fn store(&self, entry: &Entry, tag: Tag, payload: &[u8], stats: &CacheStats) {
        let keys = [
            self.epoch_key(),
            self.token_key(&entry.scope),
            self.value_key(entry),
        ];
        let value = tag.encode(payload);
        let ttl = millis(self.ttl);
        let mut invocation = self.store_if_current.prepare_invoke();
        invocation
            .key(&keys[0])
            .key(&keys[1])
            .key(&keys[2])
            .arg(tag.epoch.to_string())
            .arg(tag.token.to_string())
            .arg(value)
            .arg(ttl);
        let result = self
            .call("store", |mut connection| async move {
                invocation.invoke_async::<i64>(&mut connection).await
            })
            .await;
        if let Err(error) = result {
            self.failed(entry.cache, &error, stats);
        }
    }

    /// A new epoch makes every value stored before it stale: what follows an
    /// invalidation that may have been lost.
    async fn write_new_epoch(&self, stats: &CacheStats) -> bool {
        let key = self.epoch_key();
        let result = self
            .call("new epoch", |mut connection| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(random_token().to_string())
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await;
        match result {
            Ok(()) => {
                self.suspect.store(false, Ordering::Release);
                tracing::info!("read cache reachable again; every earlier entry made stale");
                true
            }
            Err(error) => {
                self.failed("epoch", &error, stats);
                false
            }
        }
    }

    /// One Redis call on the shared connection, bounded by the timeout
    /// (connecting on first use counts against it too).
    async fn call<T, F, Fut>(&self, what: &'static str, call: F) -> Result<T, CallError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let connection = self
                .connection
                .get_or_try_init(|| {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(self.timeout)
                        .set_response_timeout(self.timeout)
                        .set_number_of_retries(1);
                    ConnectionManager::new_with_config(self.client.clone(), config)
                })
                .await
                .context("connect to redis")?
                .clone();
            call(connection)
                .await
                .with_context(|| format!("redis {what}"))
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result.map_err(CallError::Failed),
            Err(_) => Err(CallError::TimedOut {
                what,
                timeout: self.timeout,
            }),
        }
    }

    fn is_failing(&self) -> bool {
        let mut failing_until = self
            .failing_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match *failing_until {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *failing_until = None;
                false
            }
            None => false,
        }
    }

    /// Counts, warns (rate-limited) and leaves Redis alone for a while.
    fn failed(&self, cache: &'static str, error: &CallError, stats: &CacheStats) {
        let kind = match error {
            CallError::TimedOut { .. } => "timeout",
            CallError::Failed(_) => "redis",
        };
        stats.inner.errors.fetch_add(1, Ordering::Relaxed);
        metrics::record_error(cache, kind);
        *self
            .failing_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now() + RETRY_AFTER);
        if let Some(suppressed) = self.warnings.should_warn() {
            tracing::warn!(
                cache,
                error = format!("{error:#}"),
                suppressed,
                retry_in_ms = RETRY_AFTER.as_millis() as u64,
                "read cache unavailable; answering from the database"
            );
        }
    }
}

/// Why a Redis call gave no answer.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("redis {what} took longer than {} ms", timeout.as_millis())]
    TimedOut {
        what: &'static str,
        timeout: Duration,
    },
    #[error(transparent)]
    Failed(anyhow::Error),
}

fn random_token() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_a_hit_only_under_the_tag_it_was_stored_with() {
        let tag = Tag {
            epoch: 7,
            token: 42,
        };
        let stored = tag.encode(b"{\"fare\":1}");
        assert_eq!(
            tag.payload_of(stored.clone()).as_deref(),
            Some(&b"{\"fare\":1}"[..])
        );
        let invalidated = Tag { token: 43, ..tag };
        assert_eq!(invalidated.payload_of(stored.clone()), None);
        let new_epoch = Tag { epoch: 8, ..tag };
        assert_eq!(new_epoch.payload_of(stored), None);
    }

    #[test]
    fn a_value_shorter_than_a_tag_is_never_a_hit() {
        let tag = Tag { epoch: 0, token: 0 };
        assert_eq!(tag.payload_of(vec![0; TAG_LEN - 1]), None);
        assert_eq!(tag.payload_of(vec![0; TAG_LEN]).as_deref(), Some(&[][..]));
    }

    #[test]
    fn without_a_redis_url_the_cache_is_disabled() {
        let settings = CacheSettings {
            redis_url: None,
            ttl_secs: 60,
            timeout_ms: 50,
            key_prefix: "t".to_owned(),
        };
        let cache = Cache::new(&settings).map(|cache| cache.is_enabled());
        assert!(matches!(cache, Ok(false)));
    }

    #[test]
    fn an_invalid_redis_url_is_refused_without_echoing_it() {
        let settings = CacheSettings {
            redis_url: Some(SecretString::from("http://user:hunter2@host")),
            ttl_secs: 60,
            timeout_ms: 50,
            key_prefix: "t".to_owned(),
        };
        let error = Cache::new(&settings)
            .map(|_| ())
            .err()
            .map(|e| e.to_string());
        let error = error.unwrap_or_default();
        assert!(error.contains("invalid cache.redis_url"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
