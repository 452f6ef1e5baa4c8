-- Messaging tables, created in the schema of each service that holds them.

-- Messages written in the same transaction as the state change that caused
-- them; the relay publishes them and marks them published after the broker
-- acknowledges. `id` orders a key's messages: writers of one key are
-- serialized by their aggregate (row lock or version check), so id order is
-- commit order per key.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    uuid NOT NULL UNIQUE,
    topic         text NOT NULL,
    partition_key text NOT NULL,
    message_type  text NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{}'::jsonb,
    payload       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at  timestamptz
);

CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_unpublished_by_key ON outbox (partition_key, id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Wake the relay as soon as a transaction that wrote to the outbox commits
-- (notifications are delivered at commit, and folded within a transaction).
-- The channel is per schema: several services may share one database.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_' || current_schema(), '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_written
    AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- The messages each consumer has applied, keyed by message id and written in
-- the same transaction as the effect: a redelivered message finds its row and
-- is acknowledged without being applied again.
CREATE TABLE inbox (
    consumer     text NOT NULL,
    message_id   uuid NOT NULL,
    message_type text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, message_id)
);

CREATE INDEX inbox_processed_at ON inbox (processed_at);

-- Messages a consumer could not apply after its retry budget, or could not
-- read at all. Parked, visible, and replayable; one row per delivery
-- position, so a redelivered poison message does not park twice.
CREATE TABLE dead_letters (
    id              uuid PRIMARY KEY,
    consumer        text NOT NULL,
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    partition_key   text,
    message_id      uuid,
    message_type    text,
    headers         jsonb NOT NULL DEFAULT '{}'::jsonb,
    payload         bytea NOT NULL,
    error           text NOT NULL,
    attempts        integer NOT NULL,
    status          text NOT NULL DEFAULT 'parked'
                    CHECK (status IN ('parked', 'replay_requested', 'replayed', 'discarded')),
    parked_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (consumer, topic, kafka_partition, kafka_offset)
);

CREATE INDEX dead_letters_by_status ON dead_letters (consumer, status, parked_at);
