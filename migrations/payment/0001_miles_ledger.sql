-- Miles are an append-only ledger (the accounting-journal model): a balance is
-- the sum of a customer's entries, never a stored number an update could corrupt.
CREATE TABLE miles_ledger (
    entry_id        uuid PRIMARY KEY,
    customer_id     text NOT NULL,
    miles           bigint NOT NULL CHECK (miles <> 0),
    kind            text NOT NULL CHECK (kind IN ('credit', 'redemption', 'refund')),
    reason          text NOT NULL,
    booking_id      uuid,
    -- A client-chosen key that makes a retried credit a no-op.
    idempotency_key text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT miles_ledger_idempotency UNIQUE (customer_id, idempotency_key),
    CONSTRAINT miles_ledger_sign CHECK ((kind = 'redemption') = (miles < 0))
);

CREATE INDEX miles_ledger_by_customer ON miles_ledger (customer_id, recorded_at);

-- Corrections are new entries; history is never rewritten, not even by the owner.
CREATE FUNCTION refuse_ledger_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the % ledger is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER miles_ledger_is_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON miles_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_rewrite();
