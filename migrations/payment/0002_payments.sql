-- Card payments, the booking payment ledger and its closure.
--
-- Money is exact: numeric plus an ISO 4217 code, never a float.

-- The simulated card gateway's vault. In production the card processor issues
-- the token (usually from a browser-side form) and payment never holds a card
-- number (PAN); here the simulated gateway plays the processor, and since it
-- only accepts its published test cards, no real card number can land in
-- this table. The CVC is checked at tokenization and never stored.
CREATE TABLE card_tokens (
    card_token  uuid PRIMARY KEY,
    number      text NOT NULL CHECK (number ~ '^[0-9]{12,19}$'),
    brand       text NOT NULL,
    last4       text NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
    -- MM/YY as printed on the card; valid through the end of that month.
    expiry      text NOT NULL CHECK (expiry ~ '^(0[1-9]|1[0-2])/[0-9]{2}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- How many times the simulated gateway was asked to charge a card for a
-- booking. Kept in the database (in the charging transaction) so the flaky
-- test card behaves the same across restarts and redeliveries.
CREATE TABLE gateway_attempts (
    booking_id      uuid NOT NULL,
    card_token      uuid NOT NULL,
    attempts        integer NOT NULL CHECK (attempts > 0),
    last_attempt_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (booking_id, card_token)
);

-- The booking payment ledger: every capture and every refund, one row per
-- payment method. Append-only: a refund is a new row that points at the
-- capture it gives back, never an edit of it.
CREATE TABLE payment_ledger (
    payment_id        uuid PRIMARY KEY,
    booking_id        uuid NOT NULL,
    customer_id       text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('capture', 'refund')),
    method            text NOT NULL CHECK (method IN ('card', 'miles')),
    -- For miles, their money value.
    amount            numeric NOT NULL CHECK (amount > 0),
    currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- How many miles, for the miles method only.
    miles             bigint CHECK (miles > 0),
    -- The card token, for the card method only. Deliberately no foreign key
    -- to card_tokens: with a real processor the tokens live there, not here.
    card_token        uuid,
    -- The gateway's reference for a card capture or refund.
    gateway_reference text,
    -- For a refund, the capture it gives back.
    refund_of         uuid REFERENCES payment_ledger (payment_id),
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    -- Never two captures (or two refunds) of one method for one booking,
    -- whatever is redelivered or raced: the database decides.
    CONSTRAINT payment_ledger_once_per_booking UNIQUE (booking_id, method, kind),
    CONSTRAINT payment_ledger_refund_of_capture UNIQUE (refund_of),
    CONSTRAINT payment_ledger_miles_fields CHECK ((method = 'miles') = (miles IS NOT NULL)),
    CONSTRAINT payment_ledger_card_fields CHECK ((method = 'card') = (card_token IS NOT NULL)),
    CONSTRAINT payment_ledger_refund_link CHECK ((kind = 'refund') = (refund_of IS NOT NULL))
);

CREATE INDEX payment_ledger_by_customer ON payment_ledger (customer_id, recorded_at);

CREATE TRIGGER payment_ledger_is_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON payment_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_rewrite();

-- A booking whose payment is closed: a Refund was applied to it (even if it
-- had paid nothing), so a TakePayment arriving later is refused and a late
-- capture can never outlive its refund.
CREATE TABLE payment_closures (
    booking_id uuid PRIMARY KEY,
    reason     text NOT NULL,
    closed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER payment_closures_are_final
    BEFORE UPDATE OR DELETE OR TRUNCATE ON payment_closures
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_rewrite();

-- A booking redeems miles once and gets them back once, even if a bug
-- bypassed payment_ledger's constraint.
CREATE UNIQUE INDEX miles_ledger_once_per_booking
    ON miles_ledger (booking_id, kind) WHERE booking_id IS NOT NULL;
