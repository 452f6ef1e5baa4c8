//! Database access: one pool per service, its own schema, its own role.
//!
//! A service connects as its own role with `search_path` set to its own
//! schema, applies its migrations there, and has no privilege anywhere else.
//! [`provision`] is the privileged half, run by an administrator (or by
//! `make up` and the test harness): it creates the database, the role and
//! the schema the role owns, and closes every other door.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};

use crate::runtime::ReadinessCheck;
use crate::settings::DatabaseSettings;

/// Connection options for the service's role, with its schema as `search_path`.
pub fn connect_options(
    settings: &DatabaseSettings,
    application_name: &str,
) -> anyhow::Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(settings.url.expose_secret())
        .context("parse the database url")?
        .application_name(application_name)
        .options([("search_path", settings.schema.as_str())]);
    Ok(options)
}

/// A pool for the service, retrying with backoff until the database answers or
/// `startup_timeout_ms` passes, so services may start before Postgres does.
pub async fn connect(
    settings: &DatabaseSettings,
    application_name: &str,
) -> anyhow::Result<PgPool> {
    let options = connect_options(settings, application_name)?;
    let pool_options = PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms));
    let deadline = tokio::time::Instant::now() + Duration::from_millis(settings.startup_timeout_ms);
    let mut backoff = Duration::from_millis(100);
    loop {
        match pool_options.clone().connect_with(options.clone()).await {
            Ok(pool) => return Ok(pool),
            Err(error) if tokio::time::Instant::now() + backoff < deadline => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "database not reachable yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(error) => return Err(error).context("connect to the database"),
        }
    }
}

/// One migrator from several sources, applied together in version order.
///
/// Libraries that own tables (the outbox, the event store) ship their DDL as
/// migrations of their own, numbered in a range of their own (messaging 1000+,
/// eventstore 2000+); a service composes them with its own migrations, so every
/// service gets those tables in its own schema and the DDL exists once.
pub fn compose_migrators(sources: &[&Migrator]) -> Migrator {
    let mut migrations: Vec<_> = sources
        .iter()
        .flat_map(|migrator| migrator.migrations.iter().cloned())
        .collect();
    migrations.sort_by_key(|migration| migration.version);
    let mut composed = Migrator {
        migrations: migrations.into(),
        ..Migrator::DEFAULT
    };
    // During a rolling update, a canary or a rollback, an older release runs
    // against a schema a newer one has migrated. Migrations only expand
    // until no old release runs (docs/deployment.md), so the older code works
    // on that schema and must start; a changed migration it does know is
    // still refused by its checksum.
    composed.set_ignore_missing(true);
    composed
}

/// Applies the service's migrations in its own schema.
pub async fn migrate(pool: &PgPool, migrator: &Migrator) -> anyhow::Result<()> {
    migrator.run(pool).await.context("apply migrations")
}

/// A family of advisory locks, named for what it serializes
/// (`payment.booking`). Its name is the lock's first key, so two uses that
/// happen to lock the same key (a booking id, a customer id) never wait on
/// each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockNamespace(&'static str);

impl LockNamespace {
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    pub fn name(self) -> &'static str {
        self.0
    }
}

/// Takes the advisory lock on `key` in `namespace` for the rest of the
/// caller's transaction (`pg_advisory_xact_lock`), waiting while another
/// transaction holds it. Both keys are `hashtext` of their text, which is
/// stable for a given Postgres major version: enough for a lock, which
/// outlives no transaction.
pub async fn advisory_xact_lock(
    conn: &mut PgConnection,
    namespace: LockNamespace,
    key: impl std::fmt::Display,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))")
        .bind(namespace.name())
        .bind(key.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Readiness: the pool can run a query. Also samples the pool's gauges
/// ([`crate::pool_metrics`]) each time it runs, before it takes a connection.
#[derive(Debug, Clone)]
pub struct DatabaseReadiness {
    pool: PgPool,
}

impl DatabaseReadiness {
    pub fn new(pool: PgPool) -> Self {
        crate::pool_metrics::register();
        Self { pool }
    }
}

impl ReadinessCheck for DatabaseReadiness {
    fn name(&self) -> &'static str {
        "database"
    }

    fn check(&self) -> futures::future::BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            crate::pool_metrics::sample(&self.pool);
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .context("query the database")?;
            Ok(())
        })
    }
}

/// A service's slot in a database: the role it logs in as and the schema it owns.
#[derive(Debug, Clone)]
pub struct SchemaOwner {
    pub role: String,
    pub schema: String,
    /// Set where the cluster does not trust local connections; `None` leaves the role's password alone.
    pub password: Option<SecretString>,
}

/// Creates `database` (if missing) and, for each owner, its login role and the
/// schema it owns; revokes everything from `PUBLIC` so no role can reach another
/// service's schema. Idempotent and safe to run concurrently.
pub async fn provision(
    admin_url: &SecretString,
    database: &str,
    owners: &[SchemaOwner],
) -> anyhow::Result<()> {
    let admin_options = PgConnectOptions::from_str(admin_url.expose_secret())
        .context("parse the admin database url")?;
    let mut admin = PgConnection::connect_with(&admin_options)
        .await
        .context("connect as administrator")?;
    create_database_if_missing(&mut admin, database).await?;
    for owner in owners {
        create_role_if_missing(&mut admin, owner).await?;
    }
    admin.close().await.ok();

    let mut target = PgConnection::connect_with(&admin_options.clone().database(database))
        .await
        .with_context(|| format!("connect to database {database} as administrator"))?;
    let statement = format!(
        "REVOKE ALL ON DATABASE {} FROM PUBLIC",
        quote_ident(database)
    );
    target
        .execute(statement.as_str())
        .await
        .context("revoke database access from public")?;
    target
        .execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        .await
        .context("revoke the public schema from public")?;
    for owner in owners {
        let role = quote_ident(&owner.role);
        let schema = quote_ident(&owner.schema);
        let statements = [
            format!(
                "GRANT CONNECT, TEMPORARY ON DATABASE {} TO {role}",
                quote_ident(database)
            ),
            format!("CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}"),
            format!("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"),
        ];
        for statement in statements {
            target.execute(statement.as_str()).await.with_context(|| {
                format!("provision schema {} for role {}", owner.schema, owner.role)
            })?;
        }
    }
    target.close().await.ok();
    Ok(())
}

async fn create_database_if_missing(
    admin: &mut PgConnection,
    database: &str,
) -> anyhow::Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut *admin)
            .await
            .context("look up database")?;
    if exists {
        return Ok(());
    }
    let statement = format!("CREATE DATABASE {}", quote_ident(database));
    match admin.execute(statement.as_str()).await {
        Ok(_) => Ok(()),
        // Someone else created it between our look-up and our CREATE.
        Err(sqlx::Error::Database(error))
            if matches!(error.code().as_deref(), Some("42P04" | "23505")) =>
        {
            Ok(())
        }
        Err(error) => Err(error).with_context(|| format!("create database {database}")),
    }
}

async fn create_role_if_missing(
    admin: &mut PgConnection,
    owner: &SchemaOwner,
) -> anyhow::Result<()> {
    let role = quote_ident(&owner.role);
    // CREATE ROLE has no IF NOT EXISTS; concurrent provisioners race on the catalog,
    // so both "already exists" and the catalog's unique violation mean "done".
    let statement = format!(
        "DO $$ BEGIN CREATE ROLE {role} LOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    );
    admin
        .execute(statement.as_str())
        .await
        .with_context(|| format!("create role {}", owner.role))?;
    if let Some(password) = &owner.password {
        let statement: String =
            sqlx::query_scalar("SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)")
                .bind(&owner.role)
                .bind(password.expose_secret())
                .fetch_one(&mut *admin)
                .await
                .context("format the password statement")?;
        admin
            .execute(statement.as_str())
            .await
            .with_context(|| format!("set the password of role {}", owner.role))?;
    }
    Ok(())
}

/// Whether `error` says the database could not be reached — no connection
/// within the pool's timeout, a connection refused or cut, the server
/// shutting down or starting up — rather than anything about the statement
/// or the data. Whatever wraps it: the whole chain is looked at.
///
/// Work that failed this way did nothing wrong and should wait for the
/// database, not count the failure against itself: a consumer must not park
/// a message as a dead letter because Postgres restarted, and an API answers
/// 503 with `Retry-After`, not 500.
pub fn unavailable(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<sqlx::Error>())
        .any(sqlx_error_means_unavailable)
}

fn sqlx_error_means_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database_error) => database_error
            .code()
            .is_some_and(|code| sqlstate_means_unavailable(&code)),
        _ => false,
    }
}

/// Class 08 (connection exception), and the operator-intervention codes a
/// restart sends: admin shutdown, crash shutdown, cannot connect now.
fn sqlstate_means_unavailable(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// Drops `database` and every connection still open to it (`WITH (FORCE)`):
/// for throwaway databases only, the ones tests, benchmarks and the chaos
/// harness provision for themselves.
pub async fn drop_database(admin: &mut PgConnection, database: &str) -> anyhow::Result<()> {
    let statement = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(database)
    );
    admin
        .execute(statement.as_str())
        .await
        .with_context(|| format!("drop database {database}"))?;
    Ok(())
}

/// Quotes an SQL identifier (doubling embedded quotes), for DDL that cannot take bind parameters.
pub fn quote_ident(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::{quote_ident, sqlstate_means_unavailable, unavailable};
    use anyhow::Context as _;

    #[test]
    fn a_lost_or_refused_connection_is_unavailability_whatever_wraps_it() {
        let timed_out = Err::<(), _>(sqlx::Error::PoolTimedOut)
            .context("begin a batch")
            .context("apply inventory.HoldSeats.v1");
        assert!(unavailable(&timed_out.unwrap_err()));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(unavailable(&anyhow::Error::new(sqlx::Error::Io(refused))));
        assert!(unavailable(&anyhow::Error::new(sqlx::Error::PoolClosed)));
    }

    #[test]
    fn a_statement_or_data_failure_is_not_unavailability() {
        assert!(!unavailable(&anyhow::Error::new(sqlx::Error::RowNotFound)));
        assert!(!unavailable(&anyhow::anyhow!("seat 12C is not held")));
    }

    #[test]
    fn restart_and_connection_sqlstates_are_unavailability_and_others_are_not() {
        for code in ["08000", "08006", "08001", "57P01", "57P02", "57P03"] {
            assert!(sqlstate_means_unavailable(code), "{code}");
        }
        for code in ["23505", "40001", "40P01", "42P01", "57014", "55P03"] {
            assert!(!sqlstate_means_unavailable(code), "{code}");
        }
    }

    #[test]
    fn identifiers_are_quoted_and_escaped() {
        assert_eq!(quote_ident("booking"), "\"booking\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
