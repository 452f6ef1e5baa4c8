-- `bookings` becomes a table partitioned by month of creation, moved with
-- its rows in this one transaction (docs/partitioning.md).
--
-- The partition key is `booking_id`, a UUIDv7: its first 48 bits are its
-- creation time in milliseconds, and Postgres compares UUIDs byte by byte,
-- so a range of ids is a range of creation times. Keyed so, the primary key
-- stays `booking_id` alone (a partitioned table's unique constraints must
-- contain the partition key) and a look-up by id reads one partition.
--
-- What the key cannot keep: uniqueness of anything else across partitions.
-- Idempotency keys move to a table of their own, `booking_idempotency_keys`
-- (small: a key, an id, a fingerprint); `hold_id` is no longer unique in the
-- database, which nothing relied on (booking makes it as a fresh UUIDv7 and
-- flight-inventory keys holds by it).
--
-- The partition of month M is named `bookings_pYYYY_MM` and holds the ids
-- from the smallest UUIDv7 of M's first millisecond to the next month's;
-- service_kit::partitions computes the same names and bounds, and booking
-- keeps the next months created from then on.

-- Writers wait for the move instead of failing halfway through it.
LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM bookings WHERE substr(booking_id::text, 15, 1) <> '7') THEN
        RAISE EXCEPTION 'bookings holds ids that are not UUIDv7: they have no month to be partitioned by'
            USING HINT = 'see docs/partitioning.md, "Moving an existing table"';
    END IF;
END $$;

ALTER TABLE bookings RENAME TO bookings_unpartitioned;

CREATE TABLE bookings (
    -- A UUIDv7: its time prefix chooses the partition.
    booking_id       uuid NOT NULL CONSTRAINT bookings_booking_id_is_uuidv7
                     CHECK (substr(booking_id::text, 15, 1) = '7'),
    customer_id      text NOT NULL,
    flight_id        uuid NOT NULL,
    status           text NOT NULL CONSTRAINT bookings_status_check CHECK (status IN ('pending', 'confirmed', 'failed', 'cancelled')),
    seats            integer NOT NULL CONSTRAINT bookings_seats_check CHECK (seats BETWEEN 1 AND 9),
    -- The price: the quote's at first, the held fare's once seats are held.
    total_amount     numeric NOT NULL CONSTRAINT bookings_total_amount_check CHECK (total_amount >= 0),
    currency         text NOT NULL,
    hold_id          uuid NOT NULL,
    passengers       jsonb NOT NULL,
    contact          jsonb NOT NULL,
    -- How the customer pays: a card token and its last four digits, miles
    -- offered. Never a card number.
    payment          jsonb NOT NULL,
    -- The flight as it was quoted (number, route, departure).
    flight           jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (booking_id);

-- A partition for every month from the oldest booking's to the newest's or
-- the month after this one, whichever is later (booking creates the rest at
-- start); months without bookings between them get one too: no gaps.
DO $$
DECLARE
    oldest timestamptz;
    newest timestamptz;
    month  timestamptz;
    last   timestamptz;
BEGIN
    -- Postgres 15 has no min(uuid); the primary key's index gives both ends.
    SELECT to_timestamp(('x' || substr(replace(booking_id::text, '-', ''), 1, 12))::bit(48)::bigint / 1000.0)
      INTO oldest
      FROM bookings_unpartitioned ORDER BY booking_id LIMIT 1;
    SELECT to_timestamp(('x' || substr(replace(booking_id::text, '-', ''), 1, 12))::bit(48)::bigint / 1000.0)
      INTO newest
      FROM bookings_unpartitioned ORDER BY booking_id DESC LIMIT 1;
    -- least/greatest skip the NULLs of an empty table.
    month := date_trunc('month', least(oldest, now()) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    last := date_trunc('month', greatest(newest, now() + interval '1 month') AT TIME ZONE 'UTC')
            AT TIME ZONE 'UTC';
    WHILE month <= last LOOP
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF bookings FOR VALUES FROM (%L) TO (%L)',
            'bookings_p' || to_char(month AT TIME ZONE 'UTC', 'YYYY_MM'),
            (lpad(to_hex(floor(extract(epoch FROM month) * 1000)::bigint), 12, '0')
                || '00000000000000000000')::uuid,
            (lpad(to_hex(floor(extract(epoch FROM month + interval '1 month') * 1000)::bigint), 12, '0')
                || '00000000000000000000')::uuid);
        month := month + interval '1 month';
    END LOOP;
END $$;

INSERT INTO bookings (booking_id, customer_id, flight_id, status, seats, total_amount, currency,
                      hold_id, passengers, contact, payment, flight, created_at, updated_at)
SELECT booking_id, customer_id, flight_id, status, seats, total_amount, currency,
       hold_id, passengers, contact, payment, flight, created_at, updated_at
  FROM bookings_unpartitioned;

-- Same key + same fingerprint: the same booking; same key + another
-- fingerprint: refused. The unique key decides races between the two.
-- No foreign key to `bookings`: a key and its booking are written by one
-- statement, and a foreign key into a partitioned table makes creating each
-- new partition lock this table too, after `bookings`, while an insert locks
-- them the other way round: a deadlock (docs/partitioning.md).
CREATE TABLE booking_idempotency_keys (
    idempotency_key     text PRIMARY KEY,
    booking_id          uuid NOT NULL UNIQUE,
    -- NULL for keys made before fingerprints were keyed (0002).
    request_fingerprint text,
    created_at          timestamptz NOT NULL DEFAULT now()
);

INSERT INTO booking_idempotency_keys (idempotency_key, booking_id, request_fingerprint, created_at)
SELECT idempotency_key, booking_id, request_fingerprint, created_at
  FROM bookings_unpartitioned;

-- The old table's index names are free once it is gone; building the
-- indexes after the copy is faster than maintaining them during it.
DROP TABLE bookings_unpartitioned;

ALTER TABLE bookings ADD PRIMARY KEY (booking_id);
-- A customer's bookings, newest first: per partition, in id order; the
-- partitions are read newest first and the scan stops at the page's end.
CREATE INDEX bookings_by_customer ON bookings (customer_id, booking_id);
-- A flight cancelled by the airline cancels its live bookings.
CREATE INDEX bookings_live_by_flight ON bookings (flight_id) WHERE status IN ('pending', 'confirmed');

ANALYZE bookings;
ANALYZE booking_idempotency_keys;
