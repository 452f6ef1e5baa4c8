-- Exactly one message per (booking, kind, channel), delivered after commit by
-- the dispatcher. 0001's table held no data anywhere yet, so it is replaced
-- rather than altered.
DROP TABLE notifications;

-- Every message the service has accepted, as it is (or will be) delivered.
--
-- A row is written in the consumer's transaction together with the inbox row
-- and the saga reply; the unique (booking_id, kind, channel) makes a retried
-- or redelivered command find the existing row instead of sending again.
-- The dispatcher delivers `pending` rows through their channel after commit,
-- with `notification_id` as the provider's idempotency key, and marks them
-- `delivered` (or `failed` once the channel refuses for good or the retry
-- budget is spent). `seq` orders a booking's messages on a channel: the
-- dispatcher never delivers a row while an earlier one of the same booking and
-- channel is still pending, so a cancellation never overtakes its confirmation.
CREATE TABLE notifications (
    notification_id uuid PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    booking_id      uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('confirmation', 'cancellation', 'correction')),
    channel         text NOT NULL CHECK (channel IN ('email', 'sms')),
    -- The full address: the dispatcher needs it. Only masked forms leave the service.
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    -- The message id of the command that first asked for this message.
    caused_by       uuid NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at    timestamptz,
    CONSTRAINT notifications_once_per_booking_kind_channel UNIQUE (booking_id, kind, channel),
    CONSTRAINT notifications_delivered_iff_delivered_at
        CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);

CREATE INDEX notifications_by_booking ON notifications (booking_id, seq);
CREATE INDEX notifications_pending ON notifications (next_attempt_at, seq) WHERE status = 'pending';

-- The delivery sink's side: what "the world" received, keyed by the provider
-- idempotency key. A repeated delivery of the same key (the dispatcher
-- crashed between delivering and marking) is absorbed here and only counted
-- in `requests`, as a real provider deduplicates by its idempotency key.
CREATE TABLE sink_deliveries (
    notification_id    uuid PRIMARY KEY REFERENCES notifications (notification_id),
    channel            text NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient          text NOT NULL,
    requests           integer NOT NULL DEFAULT 1 CHECK (requests >= 1),
    first_delivered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_requested_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Wake the dispatcher as soon as a transaction that recorded messages
-- commits; it also polls, in case a notification is lost. Per schema, as the
-- outbox's channel: several services may share one database.
CREATE FUNCTION notifications_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notifications_' || current_schema(), '');
    RETURN NULL;
END $$;

CREATE TRIGGER notifications_recorded
    AFTER INSERT ON notifications
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_notify();
