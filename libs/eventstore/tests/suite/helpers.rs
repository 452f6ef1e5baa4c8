use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use eventstore::{NewEvent, PgEventStore};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use test_support::TestDatabase;

/// The schema (and role) the tests use; any service's would do.
const SCHEMA: &str = "flight_inventory";

/// A migrated event store in a fresh database.
pub async fn pg_store() -> anyhow::Result<PgEventStore> {
    pg_store_with_connections(4).await
}

pub async fn pg_store_with_connections(connections: u32) -> anyhow::Result<PgEventStore> {
    let database = TestDatabase::create().await?;
    let options = PgConnectOptions::from_str(&database.url_for(SCHEMA))
        .context("parse the database url")?
        .options([("search_path", SCHEMA)]);
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .context("connect to the test database")?;
    eventstore::MIGRATOR
        .run(&pool)
        .await
        .context("apply the event store migrations")?;
    Ok(PgEventStore::new(pool))
}

/// An event whose payload says which one it is.
pub fn numbered(n: u64) -> NewEvent {
    NewEvent::new("Numbered", serde_json::json!({ "n": n }))
}

/// How long a test waits for something asynchronous before failing.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The pause between two looks when a test polls for something.
pub const POLL: Duration = Duration::from_millis(5);

/// Waits until every committed event is readable through `read_all`, i.e.
/// no transaction that could precede one of them is still open.
pub async fn until_all_events_are_readable(store: &PgEventStore) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let withheld: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events \
             WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot()))",
        )
        .fetch_one(store.pool())
        .await
        .context("look for withheld events")?;
        if !withheld {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "events stayed withheld: a transaction is held open somewhere"
        );
        tokio::time::sleep(POLL).await;
    }
}
