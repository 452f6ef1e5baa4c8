//! The Redis read cache in front of flight search, flight detail and
//! availability (cache-aside, [`cache`]), and what keeps it fresh: the
//! flight's own events, invalidating as they commit. See `docs/cache.md`.
//!
//! Scopes and who invalidates them:
//! - `flight:<id>` (detail, availability): after every commit that appended
//!   to the flight's stream — admin writes and the hold sweeper right after
//!   their transaction ([`crate::store::FlightStore::decide`]), seat commands
//!   after the consumer's batch commits ([`CommittedFlights`]) — and again
//!   when the search projection applies the events, a backstop for a writer
//!   that died between its commit and its invalidation, or one without a
//!   cache (the CLI);
//! - `search` (every search result): after the search projection commits a
//!   batch, never on the append itself — search reads the projection, and a
//!   search cached between the append and the projection's commit would
//!   keep the lag for a whole TTL.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use cache::{Cache, Entry, LoadAborted, Scope};
use serde::Serialize;
use service_kit::auth::Caller;
use service_kit::ApiError;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::error::FlightError;

/// The cache names (metrics label `cache`).
pub const FLIGHT_DETAIL: &str = "flight_detail";
pub const FLIGHT_AVAILABILITY: &str = "flight_availability";
pub const FLIGHT_SEARCH: &str = "flight_search";

/// Every view of one flight.
pub fn flight_scope(flight_id: Uuid) -> Scope {
    Scope::new(format!("flight:{flight_id}"))
}

/// Every search result.
pub fn search_scope() -> Scope {
    Scope::new("search")
}

pub fn detail_entry(flight_id: Uuid) -> Entry {
    Entry::new(FLIGHT_DETAIL, flight_scope(flight_id), "detail")
}

pub fn availability_entry(flight_id: Uuid) -> Entry {
    Entry::new(FLIGHT_AVAILABILITY, flight_scope(flight_id), "availability")
}

/// `key` names the search's filter, normalized.
pub fn search_entry(key: String) -> Entry {
    Entry::new(FLIGHT_SEARCH, search_scope(), key)
}

/// The cache a request reads through: the service's, or none when an admin
/// asks with `Cache-Control: no-cache` (how the load generator measures the
/// same reads with the cache off, on one running system). Anyone else's
/// `no-cache` is ignored: clients cannot steer load past the cache.
pub fn cache_for(cache: &Cache, caller: &Caller, headers: &HeaderMap) -> Cache {
    let no_cache = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|directive| directive.trim().eq_ignore_ascii_case("no-cache"));
    if no_cache && matches!(caller, Caller::Admin { .. }) {
        Cache::disabled()
    } else {
        cache.clone()
    }
}

/// Why a cached view could not be loaded. Cloneable: the readers that
/// shared one load all get its answer.
#[derive(Debug, Clone)]
pub enum LoadError {
    /// A business answer (no such flight): not cached, each reader gets it.
    Refused(FlightError),
    Failed(Arc<anyhow::Error>),
}

impl From<LoadAborted> for LoadError {
    fn from(aborted: LoadAborted) -> Self {
        LoadError::Failed(Arc::new(anyhow::Error::new(aborted)))
    }
}

impl From<anyhow::Error> for LoadError {
    fn from(error: anyhow::Error) -> Self {
        LoadError::Failed(Arc::new(error))
    }
}

impl From<FlightError> for LoadError {
    fn from(error: FlightError) -> Self {
        LoadError::Refused(error)
    }
}

impl From<LoadError> for ApiError {
    fn from(error: LoadError) -> Self {
        match error {
            LoadError::Refused(refusal) => refusal.into(),
            LoadError::Failed(error) => ApiError::internal(match Arc::try_unwrap(error) {
                Ok(error) => error,
                // Shared with other readers: each logs the whole chain.
                Err(shared) => anyhow::anyhow!("{shared:#}"),
            }),
        }
    }
}

/// A view serialized once, as the cache stores it.
pub fn to_json<T: Serialize>(view: &T) -> Result<Bytes, LoadError> {
    serde_json::to_vec(view)
        .map(Bytes::from)
        .context("serialize a cached view")
        .map_err(LoadError::from)
}

/// A JSON body as the cache holds it, answered without decoding it again.
#[derive(Debug)]
pub struct CachedJson(pub Bytes);

impl IntoResponse for CachedJson {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

/// Flights changed by consumer transactions not yet known to have committed.
///
/// Seat commands are applied in the consumer's transactions, several
/// partitions at once, and the consumer's after-commit hook does not say
/// which transaction committed. So each change is recorded with its
/// transaction id, and after any commit the transactions that committed (by
/// `pg_xact_status`) have their flights invalidated; those still in progress
/// wait for their own commit, those rolled back are forgotten.
#[derive(Debug, Clone, Default)]
pub struct CommittedFlights {
    pending: Arc<Mutex<HashMap<i64, HashSet<Uuid>>>>,
}

impl CommittedFlights {
    /// Notes that `conn`'s transaction changed `flight_id`.
    pub async fn record(&self, conn: &mut PgConnection, flight_id: Uuid) -> anyhow::Result<()> {
        let transaction: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
            .fetch_one(conn)
            .await
            .context("read the transaction id")?;
        self.lock()
            .entry(transaction)
            .or_default()
            .insert(flight_id);
        Ok(())
    }

    /// Invalidates the flights of every recorded transaction that has committed.
    pub async fn invalidate_committed(&self, pool: &PgPool, cache: &Cache) {
        let transactions: Vec<i64> = self.lock().keys().copied().collect();
        if transactions.is_empty() {
            return;
        }
        let statuses: Vec<(i64, Option<String>)> = match sqlx::query_as(
            "SELECT id, pg_xact_status(id::text::xid8) FROM unnest($1::bigint[]) AS id",
        )
        .bind(&transactions)
        .fetch_all(pool)
        .await
        {
            Ok(statuses) => statuses,
            Err(error) => {
                // Left pending: the next commit's hook (or the projection) tries again.
                tracing::warn!(error = %error, "could not read transaction statuses for cache invalidation");
                return;
            }
        };
        let mut committed = BTreeSet::new();
        {
            let mut pending = self.lock();
            for (transaction, status) in statuses {
                match status.as_deref() {
                    Some("in progress") => {}
                    Some("aborted") => {
                        pending.remove(&transaction);
                    }
                    // Committed, or too old to tell: invalidating is harmless.
                    _ => committed.extend(pending.remove(&transaction).unwrap_or_default()),
                }
            }
        }
        for flight_id in committed {
            cache.invalidate(&flight_scope(flight_id)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, HashSet<Uuid>>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The search projection's after-commit hook: the streams it applied are
/// what search (and, as a backstop, each flight's views) now shows changed.
pub async fn invalidate_projected(cache: &Cache, streams: BTreeSet<String>) {
    let flights: Vec<Uuid> = streams
        .iter()
        .filter_map(|stream| stream.strip_prefix("flight-")?.parse().ok())
        .collect();
    if flights.is_empty() {
        return;
    }
    cache.invalidate(&search_scope()).await;
    for flight_id in flights {
        cache.invalidate(&flight_scope(flight_id)).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly
mod tests {
    use super::*;

    #[test]
    fn the_views_of_one_flight_share_a_scope_apart_from_other_flights_and_search() {
        let flight_id = Uuid::now_v7();
        assert_eq!(flight_scope(flight_id), flight_scope(flight_id));
        assert_eq!(
            flight_scope(flight_id).as_str(),
            format!("flight:{flight_id}")
        );
        assert_ne!(flight_scope(flight_id), flight_scope(Uuid::now_v7()));
        assert_ne!(flight_scope(flight_id), search_scope());
    }

    #[test]
    fn only_an_admin_reads_past_the_cache_with_no_cache() {
        let settings = cache::CacheSettings {
            redis_url: Some("redis://127.0.0.1:1".to_owned().into()),
            ttl_secs: 60,
            timeout_ms: 50,
            key_prefix: "t".to_owned(),
        };
        let cache = Cache::new(&settings).unwrap();
        let mut no_cache = HeaderMap::new();
        no_cache.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("max-age=0, No-Cache"),
        );
        let admin = Caller::Admin {
            subject: "ops".to_owned(),
        };
        let customer = Caller::Customer {
            customer_id: "c".to_owned(),
        };
        assert!(!cache_for(&cache, &admin, &no_cache).is_enabled());
        assert!(cache_for(&cache, &customer, &no_cache).is_enabled());
        assert!(cache_for(&cache, &admin, &HeaderMap::new()).is_enabled());
    }

    #[test]
    fn a_shared_load_failure_becomes_a_500_with_its_chain() {
        let error = LoadError::from(anyhow::anyhow!("database gone").context("load the flight"));
        let shared = error.clone();
        let problem = ApiError::from(shared);
        assert_eq!(problem.into_response().status(), 500);
        // The last holder gets the original error back, not a copy.
        assert!(matches!(error, LoadError::Failed(ref shared) if Arc::strong_count(shared) == 1));
    }
}
