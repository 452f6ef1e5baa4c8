//! Data ownership is enforced by the database, not by convention: a service's
//! role can use its own schema and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot set up should fail loudly

use sqlx::{Executor, PgConnection};
use test_support::TestDatabase;

/// The SQLSTATE Postgres answers when a role lacks a privilege.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|code| code.into_owned())
}

async fn flight_inventory_with_a_table(database: &TestDatabase) -> PgConnection {
    let mut owner = database.connect_as("flight_inventory").await.unwrap();
    owner
        .execute(
            "CREATE TABLE flight_inventory.flights (flight_id text PRIMARY KEY, seats int NOT NULL);
             INSERT INTO flight_inventory.flights VALUES ('CT101', 180);",
        )
        .await
        .unwrap();
    owner
}

#[tokio::test]
async fn a_service_reads_and_writes_its_own_schema() {
    let database = TestDatabase::create().await.unwrap();
    let mut owner = flight_inventory_with_a_table(&database).await;
    let seats: i32 =
        sqlx::query_scalar("SELECT seats FROM flight_inventory.flights WHERE flight_id = 'CT101'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(seats, 180);
}

#[tokio::test]
async fn booking_is_refused_when_it_reads_a_flight_inventory_table() {
    let database = TestDatabase::create().await.unwrap();
    flight_inventory_with_a_table(&database).await;
    let mut booking = database.connect_as("booking").await.unwrap();
    let error = sqlx::query("SELECT * FROM flight_inventory.flights")
        .fetch_all(&mut booking)
        .await
        .unwrap_err();
    assert_eq!(
        sqlstate(&error).as_deref(),
        Some(INSUFFICIENT_PRIVILEGE),
        "{error}"
    );
}

#[tokio::test]
async fn no_service_role_can_touch_another_services_schema() {
    let database = TestDatabase::create().await.unwrap();
    for (_, role) in contracts::services::ALL {
        let mut connection = database.connect_as(role).await.unwrap();
        for (_, other) in contracts::services::ALL
            .iter()
            .filter(|(_, other)| *other != role)
        {
            let can_use: bool = sqlx::query_scalar("SELECT has_schema_privilege($1, 'USAGE')")
                .bind(other)
                .fetch_one(&mut connection)
                .await
                .unwrap();
            assert!(!can_use, "{role} has USAGE on {other}");
            let error = connection
                .execute(format!("CREATE TABLE {other}.intruder (id int)").as_str())
                .await
                .unwrap_err();
            assert_eq!(
                sqlstate(&error).as_deref(),
                Some(INSUFFICIENT_PRIVILEGE),
                "{role} → {other}: {error}"
            );
        }
        // Nor can it hide tables in the shared public schema.
        let error = connection
            .execute("CREATE TABLE public.stash (id int)")
            .await
            .unwrap_err();
        assert_eq!(
            sqlstate(&error).as_deref(),
            Some(INSUFFICIENT_PRIVILEGE),
            "{role} → public: {error}"
        );
    }
}

#[tokio::test]
async fn provisioning_twice_changes_nothing() {
    let database = TestDatabase::create().await.unwrap();
    let owners: Vec<_> = contracts::services::ALL
        .iter()
        .map(|(_, role)| service_kit::db::SchemaOwner {
            role: (*role).to_owned(),
            schema: (*role).to_owned(),
            password: None,
        })
        .collect();
    let admin_url = secrecy::SecretString::from(test_support::admin_url());
    service_kit::db::provision(&admin_url, &database.name, &owners)
        .await
        .unwrap();
    let mut booking = database.connect_as("booking").await.unwrap();
    booking
        .execute("CREATE TABLE booking.still_mine (id int)")
        .await
        .unwrap();
}
