-- Measurements behind docs/partitioning.md. Run from the repository root against a
-- scratch database (it creates and drops its own schema), e.g.
--   createdb -h 127.0.0.1 -U postgres partitioning_bench
--   psql -h 127.0.0.1 -U postgres partitioning_bench -f scripts/partitioning-bench/bookings.sql

\timing on
DROP SCHEMA IF EXISTS pb CASCADE; CREATE SCHEMA pb; SET search_path = pb;
\i migrations/booking/0001_bookings.sql
\i migrations/booking/0002_keyed_request_fingerprints.sql
-- 1M bookings over the last 12 months, 100k customers.
INSERT INTO bookings (booking_id, customer_id, flight_id, status, seats, total_amount, currency, hold_id, passengers, contact, payment, flight, idempotency_key, request_fingerprint, created_at)
SELECT (lpad(to_hex(floor(extract(epoch FROM t)*1000)::bigint),12,'0') || '7' || substr(h,1,3) || '8' || substr(h,4,15))::uuid,
  'cust-' || (i % 100000), gen_random_uuid(), 'confirmed', 1, 199, 'USD', gen_random_uuid(),
  '[{"first_name":"Ada","last_name":"Lovelace"}]', '{"email":"ada@example.com","phone":"+821012345678"}',
  '{"card":{"card_token":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","brand":"visa","last4":"4242"},"miles":0}',
  '{"flight_id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","flight_number":"CT123","origin":"ICN","destination":"NRT","departure":"2026-12-01T09:00:00Z"}',
  'key-' || i, md5(i::text), t
FROM generate_series(1, 1000000) i,
     LATERAL (SELECT now() - ((1000000 - i) * interval '31.536 s') AS t, md5(i::text || 'x') AS h) x;
VACUUM ANALYZE bookings;
SELECT booking_id AS some_id, customer_id AS some_customer, idempotency_key AS some_key FROM bookings ORDER BY booking_id OFFSET 400000 LIMIT 1 \gset
\echo === unpartitioned
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM bookings WHERE booking_id = :'some_id';
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT booking_id FROM bookings WHERE idempotency_key = :'some_key';
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM bookings WHERE customer_id = :'some_customer' ORDER BY created_at DESC, booking_id DESC LIMIT 20;
\echo === migration 0003 on 1M rows
BEGIN;
\i migrations/booking/0003_partitioned_bookings.sql
COMMIT;
\echo === partitioned
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM bookings WHERE booking_id = :'some_id';
PREPARE by_id(uuid) AS SELECT * FROM bookings WHERE booking_id = $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE by_id(:'some_id');
RESET plan_cache_mode;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT booking_id, request_fingerprint FROM booking_idempotency_keys WHERE idempotency_key = :'some_key';
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM bookings WHERE customer_id = :'some_customer' AND booking_id < 'ffffffff-ffff-ffff-ffff-ffffffffffff' ORDER BY booking_id DESC LIMIT 20;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT * FROM bookings WHERE customer_id = :'some_customer' AND booking_id < :'some_id' ORDER BY booking_id DESC LIMIT 2;
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'bookings'::regclass;
SELECT pg_size_pretty(pg_total_relation_size('booking_idempotency_keys')) AS keys_size, pg_size_pretty(sum(pg_total_relation_size(inhrelid))) AS bookings_size FROM pg_inherits WHERE inhparent = 'bookings'::regclass;
