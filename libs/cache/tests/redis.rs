//! The read cache against a real Redis (`CONTRAIL_TEST_REDIS_URL`), a key
//! prefix per test; and against a Redis that refuses or never answers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache::{Cache, CacheSettings, Entry, LoadAborted, Scope};
use secrecy::SecretString;
use test_support::redis::{redis_url, refused_redis_url, unique_key_prefix, SilentRedis};

#[derive(Debug, Clone, PartialEq)]
struct LoadFailed;

impl From<LoadAborted> for LoadFailed {
    fn from(_: LoadAborted) -> Self {
        LoadFailed
    }
}

/// How long a read may take before the test calls it a hang; far beyond
/// the cache's 200 ms timeout, so a slow machine never trips it.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn cache_on(url: String) -> Cache {
    Cache::new(&CacheSettings {
        redis_url: Some(SecretString::from(url)),
        ttl_secs: 60,
        timeout_ms: 200,
        key_prefix: unique_key_prefix(),
    })
    .unwrap()
}

/// The "database": counts its loads and answers what it holds now.
#[derive(Clone, Default)]
struct Source {
    loads: Arc<AtomicUsize>,
    value: Arc<std::sync::Mutex<&'static str>>,
}

impl Source {
    fn holding(value: &'static str) -> Self {
        let source = Self::default();
        source.set(value);
        source
    }

    fn set(&self, value: &'static str) {
        *self.value.lock().unwrap() = value;
    }

    fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    async fn read(&self, cache: &Cache, entry: &Entry) -> Bytes {
        let source = self.clone();
        cache
            .get_or_load(entry, move || async move {
                source.loads.fetch_add(1, Ordering::SeqCst);
                let value = *source.value.lock().unwrap();
                Ok::<_, LoadFailed>(Bytes::from_static(value.as_bytes()))
            })
            .await
            .unwrap()
    }
}

fn flight_entry() -> Entry {
    Entry::new("test_detail", Scope::new("flight:1"), "detail")
}

#[tokio::test]
async fn a_second_read_is_a_hit_after_the_first_missed() {
    let cache = cache_on(redis_url());
    let source = Source::holding("v1");

    assert_eq!(source.read(&cache, &flight_entry()).await, "v1");
    assert_eq!(source.read(&cache, &flight_entry()).await, "v1");

    assert_eq!(source.loads(), 1);
    assert_eq!((cache.stats().misses(), cache.stats().hits()), (1, 1));
    assert_eq!(cache.stats().errors(), 0);
}

#[tokio::test]
async fn an_invalidated_scope_is_read_again_from_the_source_and_others_are_not() {
    let cache = cache_on(redis_url());
    let source = Source::holding("v1");
    let other = Entry::new("test_detail", Scope::new("flight:2"), "detail");
    source.read(&cache, &flight_entry()).await;
    source.read(&cache, &other).await;

    source.set("v2");
    cache.invalidate(&Scope::new("flight:1")).await;

    assert_eq!(source.read(&cache, &flight_entry()).await, "v2");
    assert_eq!(
        source.read(&cache, &other).await,
        "v1",
        "another scope stays cached"
    );
    assert_eq!(source.loads(), 3);
}

#[tokio::test]
async fn a_value_loaded_before_an_invalidation_is_never_served_after_it() {
    let cache = cache_on(redis_url());
    let entry = flight_entry();
    let source = Source::holding("old");
    // A slow reader: it reads the source, then (held back) stores what it read.
    let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel::<()>();
    let (store_tx, store_rx) = tokio::sync::oneshot::channel::<()>();
    let slow = {
        let cache = cache.clone();
        let entry = entry.clone();
        tokio::spawn(async move {
            cache
                .get_or_load(&entry, move || async move {
                    let value = Bytes::from_static(b"old");
                    let _ = loaded_tx.send(());
                    let _ = store_rx.await;
                    Ok::<_, LoadFailed>(value)
                })
                .await
        })
    };
    loaded_rx.await.unwrap();

    // The write commits and invalidates while the slow reader holds "old".
    source.set("new");
    cache.invalidate(&Scope::new("flight:1")).await;
    store_tx.send(()).unwrap();
    assert_eq!(
        slow.await.unwrap().unwrap(),
        "old",
        "the slow reader answers what it read"
    );

    assert_eq!(source.read(&cache, &entry).await, "new");
    assert_eq!(source.read(&cache, &entry).await, "new");
    assert_eq!(source.loads(), 1, "then the new value is cached");
}

#[tokio::test]
async fn concurrent_misses_of_one_entry_load_the_source_once() {
    let cache = cache_on(redis_url());
    let entry = flight_entry();
    let loads = Arc::new(AtomicUsize::new(0));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            let entry = entry.clone();
            let loads = Arc::clone(&loads);
            let mut release_rx = release_rx.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load(&entry, move || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        let _ = release_rx.wait_for(|released| *released).await;
                        Ok::<_, LoadFailed>(Bytes::from_static(b"v"))
                    })
                    .await
            })
        })
        .collect();
    // Every reader has missed before the load may finish.
    test_support::eventually(Duration::from_secs(10), "every reader missed", || async {
        cache.stats().misses() == 50
    })
    .await;
    release_tx.send(true).unwrap();
    for reader in readers {
        assert_eq!(reader.await.unwrap().unwrap(), "v");
    }

    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().loads(), 1);
}

#[tokio::test]
async fn a_load_error_reaches_the_reader_and_is_not_cached() {
    let cache = cache_on(redis_url());
    let entry = flight_entry();
    let failed = cache
        .get_or_load(&entry, || async { Err::<Bytes, _>(LoadFailed) })
        .await;
    assert_eq!(failed, Err(LoadFailed));

    let source = Source::holding("v1");
    assert_eq!(source.read(&cache, &entry).await, "v1");
    assert_eq!(source.loads(), 1);
}

#[tokio::test]
async fn with_redis_refusing_connections_every_read_is_answered_by_the_source() {
    let cache = cache_on(refused_redis_url().await);
    let source = Source::holding("v1");

    for _ in 0..3 {
        assert_eq!(source.read(&cache, &flight_entry()).await, "v1");
    }
    cache.invalidate(&Scope::new("flight:1")).await;
    source.set("v2");
    assert_eq!(source.read(&cache, &flight_entry()).await, "v2");

    assert_eq!(source.loads(), 4);
    assert!(
        cache.stats().errors() >= 4,
        "errors: {}",
        cache.stats().errors()
    );
    assert_eq!(cache.stats().hits(), 0);
}

#[tokio::test]
async fn with_a_redis_that_never_answers_a_read_ends_at_the_timeout_and_the_next_ones_skip_redis() {
    let silent = SilentRedis::start().await;
    let cache = cache_on(silent.url());
    let source = Source::holding("v1");

    // Without the cache's own timeout this read would never end: the silent
    // Redis answers nothing. The guard only turns such a hang into a failure.
    let first = tokio::time::timeout(HANG_GUARD, source.read(&cache, &flight_entry()))
        .await
        .unwrap_or_else(|_| panic!("a read waited on a silent Redis for {HANG_GUARD:?}"));
    assert_eq!(first, "v1");
    assert!(
        cache.stats().errors() >= 1,
        "errors: {}",
        cache.stats().errors()
    );
    assert_eq!(cache.stats().skipped(), 0);

    // While Redis is failing it is skipped rather than waited on again. The
    // skip lasts `RETRY_AFTER` (1 s), so a read a starved machine delays past
    // it calls Redis once more; at least the first read after the failure
    // skips it, and every read is still answered.
    for _ in 0..10 {
        assert_eq!(source.read(&cache, &flight_entry()).await, "v1");
    }
    assert!(
        cache.stats().skipped() >= 1,
        "skipped: {}",
        cache.stats().skipped()
    );
    assert_eq!(source.loads(), 11);
    assert!(
        cache.stats().errors() >= 11,
        "errors: {}",
        cache.stats().errors()
    );
    assert_eq!(cache.stats().hits(), 0);
}

#[tokio::test]
async fn a_disabled_cache_reads_the_source_every_time() {
    let cache = Cache::disabled();
    let source = Source::holding("v1");
    source.read(&cache, &flight_entry()).await;
    source.read(&cache, &flight_entry()).await;
    assert_eq!(source.loads(), 2);
    assert_eq!(cache.stats().errors(), 0);
}
