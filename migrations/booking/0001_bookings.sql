-- A booking as the customer sees it. Its saga (the routing slip) lives in
-- `sagas` under the same id; `status` here mirrors the slip's outcome and is
-- written in the same transaction as every change of the slip.
CREATE TABLE bookings (
    booking_id       uuid PRIMARY KEY,
    customer_id      text NOT NULL,
    flight_id        uuid NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed', 'cancelled')),
    seats            integer NOT NULL CHECK (seats BETWEEN 1 AND 9),
    -- The price: the quote's at first, the held fare's once seats are held.
    total_amount     numeric NOT NULL CHECK (total_amount >= 0),
    currency         text NOT NULL,
    hold_id          uuid NOT NULL UNIQUE,
    passengers       jsonb NOT NULL,
    contact          jsonb NOT NULL,
    -- How the customer pays: a card token and its last four digits, miles
    -- offered. Never a card number.
    payment          jsonb NOT NULL,
    -- The flight as it was quoted (number, route, departure).
    flight           jsonb NOT NULL,
    -- Same key + same fingerprint: the same booking; same key + another
    -- fingerprint: refused. The database decides races between the two.
    idempotency_key  text NOT NULL UNIQUE,
    request_fingerprint text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX bookings_by_customer ON bookings (customer_id, created_at DESC, booking_id);
-- A flight cancelled by the airline cancels its live bookings.
CREATE INDEX bookings_live_by_flight ON bookings (flight_id) WHERE status IN ('pending', 'confirmed');
