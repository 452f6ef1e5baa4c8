//! Namespaced advisory locks against real Postgres: held for the transaction,
//! keyed by namespace and key together.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use service_kit::db::{advisory_xact_lock, LockNamespace};
use sqlx::PgConnection;
use test_support::TestDatabase;

const BOOKINGS: LockNamespace = LockNamespace::new("test.booking");
const ACCOUNTS: LockNamespace = LockNamespace::new("test.account");

/// Whether another session could take the lock now; the probe's own
/// transaction ends at once, so it never holds what it tests.
async fn is_free(conn: &mut PgConnection, namespace: &str, key: &str) -> bool {
    sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2))")
        .bind(namespace)
        .bind(key)
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_lock_is_held_until_its_transaction_ends_and_only_in_its_namespace() {
    let database = TestDatabase::create().await.unwrap();
    let pool = database.pool_as("payment", 2).await.unwrap();
    let key = uuid::Uuid::now_v7();
    let mut probe = pool.acquire().await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    advisory_xact_lock(&mut tx, BOOKINGS, key).await.unwrap();

    assert!(!is_free(&mut probe, "test.booking", &key.to_string()).await);
    assert!(is_free(&mut probe, "test.account", &key.to_string()).await);
    assert!(is_free(&mut probe, "test.booking", "another key").await);

    tx.commit().await.unwrap();
    assert!(is_free(&mut probe, "test.booking", &key.to_string()).await);

    let mut tx = pool.begin().await.unwrap();
    advisory_xact_lock(&mut tx, ACCOUNTS, "cust-1")
        .await
        .unwrap();
    assert!(!is_free(&mut probe, "test.account", "cust-1").await);
    tx.rollback().await.unwrap();
    assert!(is_free(&mut probe, "test.account", "cust-1").await);
}
