//! The flight search read model (CQRS): a projection of every flight's events
//! into tables shaped for the questions the event store cannot answer —
//! "flights from ICN to NRT on December 1st with seats left" — plus the
//! active holds and their expiries, which the hold sweeper scans.
//!
//! It is disposable: `flight-inventory projections rebuild` replays the whole
//! log into a new generation beside the live one and swaps atomically.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use contracts::{Currency, Money};
use eventstore::{Projection, RecordedEvent, Tables};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::domain::events::FlightEvent;

/// Feeds `flight_search` (one row per flight) and `flight_holds` (one row per hold).
#[derive(Debug, Clone, Copy, Default)]
pub struct FlightSearchProjection;

impl Projection for FlightSearchProjection {
    fn name(&self) -> &'static str {
        "flight_search"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["flight_search", "flight_holds"]
    }

    async fn create_tables(&self, conn: &mut PgConnection, tables: &Tables) -> anyhow::Result<()> {
        let search = tables.name("flight_search");
        let holds = tables.name("flight_holds");
        let statements = [
            format!(
                "CREATE TABLE {search} (
                     flight_id      uuid PRIMARY KEY,
                     flight_number  text NOT NULL,
                     origin         text NOT NULL,
                     destination    text NOT NULL,
                     departure_date date NOT NULL,
                     departure      timestamptz NOT NULL,
                     arrival        timestamptz NOT NULL,
                     capacity       integer NOT NULL,
                     held           integer NOT NULL DEFAULT 0,
                     sold           integer NOT NULL DEFAULT 0,
                     fare_amount    numeric NOT NULL,
                     fare_currency  text NOT NULL,
                     status         text NOT NULL,
                     version        bigint NOT NULL
                 )"
            ),
            format!("CREATE INDEX ON {search} (origin, destination, departure_date)"),
            format!("CREATE INDEX ON {search} (departure_date)"),
            format!(
                "CREATE TABLE {holds} (
                     hold_id    uuid PRIMARY KEY,
                     flight_id  uuid NOT NULL,
                     booking_id uuid NOT NULL,
                     seats      integer NOT NULL,
                     state      text NOT NULL,
                     expires_at timestamptz NOT NULL
                 )"
            ),
            format!("CREATE INDEX ON {holds} (expires_at) WHERE state = 'active'"),
        ];
        for statement in statements {
            sqlx::query(&statement)
                .execute(&mut *conn)
                .await
                .with_context(|| format!("create {}", tables.name("flight_search")))?;
        }
        Ok(())
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        tables: &Tables,
        event: &RecordedEvent,
    ) -> anyhow::Result<()> {
        let Some(flight_id) = event
            .stream_id
            .strip_prefix("flight-")
            .and_then(|id| id.parse::<Uuid>().ok())
        else {
            return Ok(());
        };
        let flight_event: FlightEvent = event.decode().with_context(|| {
            format!(
                "decode {} {} v{}",
                event.event_type, event.stream_id, event.version
            )
        })?;
        let search = tables.name("flight_search");
        let holds = tables.name("flight_holds");
        let version = i64::try_from(event.version).context("event version out of range")?;
        match &flight_event {
            FlightEvent::FlightScheduled {
                flight_number,
                origin,
                destination,
                departure,
                arrival,
                capacity,
                fare,
                ..
            } => {
                let sql = format!(
                    "INSERT INTO {search} (flight_id, flight_number, origin, destination, departure_date,
                                           departure, arrival, capacity, fare_amount, fare_currency, status, version)
                     VALUES ($1, $2, $3, $4, ($6 AT TIME ZONE 'UTC')::date, $6, $7, $8, $9, $10, 'scheduled', $5)
                     ON CONFLICT (flight_id) DO NOTHING"
                );
                sqlx::query(&sql)
                    .bind(flight_id)
                    .bind(flight_number.as_str())
                    .bind(origin.as_str())
                    .bind(destination.as_str())
                    .bind(version)
                    .bind(departure)
                    .bind(arrival)
                    .bind(*capacity as i32)
                    .bind(fare.amount())
                    .bind(fare.currency().code())
                    .execute(&mut *conn)
                    .await?;
            }
            FlightEvent::FareIncreased { to, .. } | FlightEvent::FareDecreased { to, .. } => {
                let sql = format!("UPDATE {search} SET fare_amount = $2, fare_currency = $3, version = $4 WHERE flight_id = $1");
                sqlx::query(&sql)
                    .bind(flight_id)
                    .bind(to.amount())
                    .bind(to.currency().code())
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
            }
            FlightEvent::SeatsHeld {
                hold_id,
                booking_id,
                seats,
                expires_at,
                ..
            } => {
                let sql = format!(
                    "INSERT INTO {holds} (hold_id, flight_id, booking_id, seats, state, expires_at)
                     VALUES ($1, $2, $3, $4, 'active', $5) ON CONFLICT (hold_id) DO NOTHING"
                );
                sqlx::query(&sql)
                    .bind(hold_id)
                    .bind(flight_id)
                    .bind(booking_id)
                    .bind(*seats as i32)
                    .bind(expires_at)
                    .execute(&mut *conn)
                    .await?;
                let sql = format!(
                    "UPDATE {search} SET held = held + $2, version = $3 WHERE flight_id = $1"
                );
                sqlx::query(&sql)
                    .bind(flight_id)
                    .bind(*seats as i32)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
            }
            FlightEvent::SeatsConfirmed { hold_id, .. } => {
                settle_hold(conn, tables, flight_id, *hold_id, "confirmed", version).await?;
            }
            FlightEvent::SeatsReleased { hold_id, .. } => {
                settle_hold(conn, tables, flight_id, *hold_id, "released", version).await?;
            }
            FlightEvent::HoldExpired { hold_id, .. } => {
                settle_hold(conn, tables, flight_id, *hold_id, "expired", version).await?;
            }
            FlightEvent::FlightStatusChanged { to, .. } => {
                let sql =
                    format!("UPDATE {search} SET status = $2, version = $3 WHERE flight_id = $1");
                sqlx::query(&sql)
                    .bind(flight_id)
                    .bind(to.as_str())
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
            }
            FlightEvent::FlightCancelled { .. } => {
                let sql = format!(
                    "UPDATE {search} SET status = 'cancelled', version = $2 WHERE flight_id = $1"
                );
                sqlx::query(&sql)
                    .bind(flight_id)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
            }
            FlightEvent::PositionReported { .. } => {
                let sql = format!("UPDATE {search} SET version = $2 WHERE flight_id = $1");
                sqlx::query(&sql)
                    .bind(flight_id)
                    .bind(version)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Moves a hold out of `active` (or a confirmed hold to released) and its
/// seats between the held and sold counts accordingly.
async fn settle_hold(
    conn: &mut PgConnection,
    tables: &Tables,
    flight_id: Uuid,
    hold_id: Uuid,
    to: &str,
    version: i64,
) -> anyhow::Result<()> {
    let search = tables.name("flight_search");
    let holds = tables.name("flight_holds");
    let previous: Option<(String, i32)> = sqlx::query_as(&format!(
        "UPDATE {holds} h SET state = $2 FROM {holds} old
         WHERE h.hold_id = $1 AND old.hold_id = h.hold_id
         RETURNING old.state, old.seats"
    ))
    .bind(hold_id)
    .bind(to)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((from, seats)) = previous else {
        return Ok(());
    };
    let (held_delta, sold_delta) = match (from.as_str(), to) {
        ("active", "confirmed") => (-seats, seats),
        ("active", _) => (-seats, 0),
        ("confirmed", "released") => (0, -seats),
        _ => (0, 0),
    };
    sqlx::query(&format!(
        "UPDATE {search} SET held = held + $2, sold = sold + $3, version = $4 WHERE flight_id = $1"
    ))
    .bind(flight_id)
    .bind(held_delta)
    .bind(sold_delta)
    .bind(version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct SearchFilter {
    pub origin: Option<String>,
    pub destination: Option<String>,
    pub date: Option<NaiveDate>,
    pub limit: i64,
}

impl SearchFilter {
    /// The filter as a read-cache key: equal for equal searches, whatever
    /// order or case the query string had them in.
    pub fn cache_key(&self) -> String {
        format!(
            "o={}&d={}&date={}&limit={}",
            self.origin.as_deref().unwrap_or("*"),
            self.destination.as_deref().unwrap_or("*"),
            self.date
                .map_or_else(|| "*".to_owned(), |date| date.to_string()),
            self.limit
        )
    }
}

#[derive(Debug, Serialize)]
pub struct SearchHit {
    flight_id: Uuid,
    flight_number: String,
    origin: String,
    destination: String,
    departure: DateTime<Utc>,
    arrival: DateTime<Utc>,
    seats_available: i32,
    fare: Money,
    status: String,
}

#[derive(Debug, Serialize)]
pub struct SearchResults {
    items: Vec<SearchHit>,
}

/// Flights matching `filter`, earliest departure first.
pub async fn search(pool: &PgPool, filter: &SearchFilter) -> anyhow::Result<SearchResults> {
    let rows = sqlx::query(
        "SELECT flight_id, flight_number, origin, destination, departure, arrival,
                capacity - held - sold AS seats_available, fare_amount, fare_currency, status
         FROM flight_search
         WHERE ($1::text IS NULL OR origin = $1)
           AND ($2::text IS NULL OR destination = $2)
           AND ($3::date IS NULL OR departure_date = $3)
         ORDER BY departure, flight_number
         LIMIT $4",
    )
    .bind(&filter.origin)
    .bind(&filter.destination)
    .bind(filter.date)
    .bind(filter.limit)
    .fetch_all(pool)
    .await
    .context("search flights")?;
    let items = rows
        .iter()
        .map(|row| {
            let currency: String = row.try_get("fare_currency")?;
            let currency: Currency = currency
                .parse()
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            let amount: Decimal = row.try_get("fare_amount")?;
            Ok(SearchHit {
                flight_id: row.try_get("flight_id")?,
                flight_number: row.try_get("flight_number")?,
                origin: row.try_get("origin")?,
                destination: row.try_get("destination")?,
                departure: row.try_get("departure")?,
                arrival: row.try_get("arrival")?,
                seats_available: row.try_get("seats_available")?,
                fare: Money::new(amount, currency).map_err(|error| anyhow::anyhow!("{error}"))?,
                status: row.try_get("status")?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .context("read search results")?;
    Ok(SearchResults { items })
}

/// Flights with an active hold past its expiry, as the read model knows them.
pub async fn flights_with_lapsed_holds(pool: &PgPool, limit: i64) -> anyhow::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT DISTINCT flight_id FROM flight_holds WHERE state = 'active' AND expires_at <= now() LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("find lapsed holds")
}

/// An order-independent digest of the read model: equal for two generations
/// that hold the same rows. Used to prove a rebuild equals the live model.
pub async fn checksum(pool: &PgPool) -> anyhow::Result<String> {
    sqlx::query_scalar(
        "SELECT md5(coalesce(string_agg(row_text, '|' ORDER BY row_text), ''))
         FROM (SELECT s::text AS row_text FROM flight_search s
               UNION ALL SELECT h::text FROM flight_holds h) rows",
    )
    .fetch_one(pool)
    .await
    .context("checksum the read model")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_searches_share_a_cache_key_and_different_ones_do_not() {
        let filter = |origin: Option<&str>, date: Option<&str>, limit| SearchFilter {
            origin: origin.map(str::to_owned),
            destination: None,
            date: date.and_then(|date| date.parse().ok()),
            limit,
        };
        let icn = filter(Some("ICN"), Some("2026-12-01"), 50);
        assert_eq!(
            icn.cache_key(),
            filter(Some("ICN"), Some("2026-12-01"), 50).cache_key()
        );
        assert_eq!(icn.cache_key(), "o=ICN&d=*&date=2026-12-01&limit=50");
        assert_ne!(
            icn.cache_key(),
            filter(Some("ICN"), Some("2026-12-02"), 50).cache_key()
        );
        assert_ne!(
            icn.cache_key(),
            filter(Some("ICN"), Some("2026-12-01"), 10).cache_key()
        );
        assert_ne!(
            icn.cache_key(),
            filter(None, Some("2026-12-01"), 50).cache_key()
        );
    }
}
