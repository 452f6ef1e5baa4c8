-- Measurements behind docs/partitioning.md. Run from the repository root against a
-- scratch database (it creates and drops its own schema), e.g.
--   createdb -h 127.0.0.1 -U postgres partitioning_bench
--   psql -h 127.0.0.1 -U postgres partitioning_bench -f scripts/partitioning-bench/outbox.sql

\timing on
DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench; SET search_path = bench;
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, message_id uuid NOT NULL UNIQUE, topic text NOT NULL,
    partition_key text NOT NULL, message_type text NOT NULL, headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    payload bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp(), published_at timestamptz);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_unpublished_by_key ON outbox (partition_key, id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
-- 1M published rows over the last 48 h: half older than the 24 h retention.
INSERT INTO outbox (message_id, topic, partition_key, message_type, headers, payload, created_at, published_at)
SELECT gen_random_uuid(), 'booking.saga-replies', md5(i::text), 'inventory.SeatsHeld.v1', '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}',
       convert_to(repeat('x', 300), 'UTF8'), t, t
FROM generate_series(1, 1000000) i, LATERAL (SELECT now() - (i * interval '172.8 ms') AS t) x;
VACUUM ANALYZE outbox;
SELECT pg_size_pretty(pg_total_relation_size('outbox')) AS size_before;
SELECT pg_current_wal_lsn() AS lsn_before \gset
-- one pass of the relay's prune, as it runs it
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) DELETE FROM outbox WHERE id IN (
   SELECT id FROM outbox WHERE published_at < now() - make_interval(secs => 86400) LIMIT 10000);
-- the rest of the expired half, batch after batch
DO $$ DECLARE n bigint; BEGIN LOOP
  DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE published_at < now() - make_interval(secs => 86400) LIMIT 10000);
  GET DIAGNOSTICS n = ROW_COUNT; EXIT WHEN n = 0; END LOOP; END $$;
SELECT pg_size_pretty(pg_current_wal_lsn() - :'lsn_before') AS wal_for_delete;
SELECT pg_size_pretty(pg_total_relation_size('outbox')) AS size_after_delete;

-- The same rows, partitioned by day of published_at.
CREATE TABLE outbox_p (id bigint NOT NULL, message_id uuid NOT NULL, topic text NOT NULL, partition_key text NOT NULL,
    message_type text NOT NULL, headers jsonb NOT NULL, payload bytea NOT NULL, created_at timestamptz NOT NULL,
    published_at timestamptz) PARTITION BY RANGE (created_at);
CREATE TABLE outbox_p_old PARTITION OF outbox_p FOR VALUES FROM ('-infinity') TO (now() - interval '24 hours');
CREATE TABLE outbox_p_new PARTITION OF outbox_p FOR VALUES FROM (now() - interval '24 hours') TO ('infinity');
INSERT INTO outbox_p
SELECT i, gen_random_uuid(), 'booking.saga-replies', md5(i::text), 'inventory.SeatsHeld.v1', '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}',
       convert_to(repeat('x', 300), 'UTF8'), t, t
FROM generate_series(1, 1000000) i, LATERAL (SELECT now() - (i * interval '172.8 ms') AS t) x;
CREATE INDEX ON outbox_p (published_at) WHERE published_at IS NOT NULL;
VACUUM ANALYZE outbox_p;
SELECT pg_current_wal_lsn() AS lsn_before \gset
ALTER TABLE outbox_p DETACH PARTITION outbox_p_old;
DROP TABLE outbox_p_old;
SELECT pg_size_pretty(pg_current_wal_lsn() - :'lsn_before') AS wal_for_drop;
