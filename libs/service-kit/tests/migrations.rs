//! Composed migrators against real Postgres: what two releases running side
//! by side (rolling update, canary, rollback) need of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;

use service_kit::db::compose_migrators;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use test_support::TestDatabase;

fn migration(version: i64, sql: &'static str) -> Migration {
    Migration::new(
        version,
        Cow::Owned(format!("step {version}")),
        MigrationType::Simple,
        Cow::Borrowed(sql),
        false,
    )
}

fn release(migrations: Vec<Migration>) -> Migrator {
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

const CREATE: &str = "CREATE TABLE seats (id int PRIMARY KEY)";
const EXPAND: &str = "ALTER TABLE seats ADD COLUMN class text";

#[tokio::test]
async fn an_older_release_starts_on_a_schema_a_newer_release_has_expanded() {
    let database = TestDatabase::create().await.unwrap();
    let pool = database.pool_as("booking", 2).await.unwrap();
    let newer = release(vec![migration(1, CREATE), migration(2, EXPAND)]);
    let older = release(vec![migration(1, CREATE)]);

    compose_migrators(&[&newer]).run(&pool).await.unwrap();
    compose_migrators(&[&older])
        .run(&pool)
        .await
        .expect("the older release starts beside the newer one");
}

#[tokio::test]
async fn a_migration_changed_after_it_was_applied_is_still_refused() {
    let database = TestDatabase::create().await.unwrap();
    let pool = database.pool_as("booking", 2).await.unwrap();
    compose_migrators(&[&release(vec![migration(1, CREATE)])])
        .run(&pool)
        .await
        .unwrap();

    let edited = release(vec![migration(
        1,
        "CREATE TABLE seats (id bigint PRIMARY KEY)",
    )]);
    let refused = compose_migrators(&[&edited]).run(&pool).await;
    assert!(
        matches!(
            refused,
            Err(sqlx::migrate::MigrateError::VersionMismatch(1))
        ),
        "{refused:?}"
    );
}
