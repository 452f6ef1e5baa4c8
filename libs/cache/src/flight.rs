//! Single flight: concurrent misses of one entry in this process share one
//! load, so a popular entry that expires (or is invalidated) costs the
//! database one query, not one per waiting reader.
//!
//! The load runs as a task of its own: it completes (and fills the cache)
//! even if every reader that waited for it has gone, and its entry is
//! removed when it ends, so nothing is left behind.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};

use crate::metrics;

/// A load task that ended without an answer (it panicked, or the runtime
/// is shutting down): the readers that shared it get this as their error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the shared cache load ended without an answer")]
pub struct LoadAborted;

type Load<E> = Shared<BoxFuture<'static, Result<Bytes, E>>>;

#[derive(Default)]
pub(crate) struct InFlight {
    loads: Arc<Mutex<HashMap<String, Box<dyn Any + Send>>>>,
}

impl InFlight {
    /// Joins the load of `key` in flight, or starts one with `start`.
    pub(crate) async fn run<E, F, Fut>(
        &self,
        key: String,
        cache: &'static str,
        start: F,
    ) -> Result<Bytes, E>
    where
        E: From<LoadAborted> + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>> + Send + 'static,
    {
        let load = {
            let mut loads = self
                .loads
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match loads
                .get(&key)
                .and_then(|load| load.downcast_ref::<Load<E>>())
            {
                Some(load) => {
                    metrics::record_coalesced(cache);
                    load.clone()
                }
                None => {
                    let loads_ref = Arc::clone(&self.loads);
                    let task_key = key.clone();
                    let loading = start();
                    let task = tokio::spawn(async move {
                        let result = loading.await;
                        loads_ref
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .remove(&task_key);
                        result
                    });
                    let load: Load<E> =
                        async move { task.await.unwrap_or_else(|_| Err(LoadAborted.into())) }
                            .boxed()
                            .shared();
                    loads.insert(key, Box::new(load.clone()));
                    load
                }
            }
        };
        load.await
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.loads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Failed;

    impl From<LoadAborted> for Failed {
        fn from(_: LoadAborted) -> Self {
            Failed
        }
    }

    #[tokio::test]
    async fn concurrent_readers_of_one_key_share_one_load_and_the_entry_is_gone_after() {
        let flights = InFlight::default();
        let loads = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = tokio::sync::watch::channel(false);
        let readers = (0..20).map(|_| {
            let loads = Arc::clone(&loads);
            let mut release_rx = release_rx.clone();
            flights.run::<Failed, _, _>("k".to_owned(), "test", move || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                let _ = release_rx.wait_for(|released| *released).await;
                Ok(Bytes::from_static(b"v"))
            })
        });
        // Every reader has joined (or started) the flight before the load may end.
        let all = futures::future::join_all(readers);
        let release = async {
            tokio::task::yield_now().await;
            let _ = release_tx.send(true);
        };
        let (results, ()) = tokio::join!(all, release);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|r| r.as_deref() == Ok(&b"v"[..])));
        test_support::eventually(
            std::time::Duration::from_secs(5),
            "the flight is removed",
            || async { flights.len() == 0 },
        )
        .await;
    }

    #[tokio::test]
    async fn a_failed_load_is_shared_and_not_remembered() {
        let flights = InFlight::default();
        let first = flights
            .run::<Failed, _, _>("k".to_owned(), "test", || async { Err(Failed) })
            .await;
        assert_eq!(first, Err(Failed));
        test_support::eventually(
            std::time::Duration::from_secs(5),
            "the flight is removed",
            || async { flights.len() == 0 },
        )
        .await;
        let second = flights
            .run::<Failed, _, _>("k".to_owned(), "test", || async {
                Ok(Bytes::from_static(b"v"))
            })
            .await;
        assert_eq!(second.as_deref(), Ok(&b"v"[..]));
    }
}
