-- The relay is woken in its own process (messaging::outbox::OUTBOX_WRITTEN),
-- not by a NOTIFY from the writing transaction: Postgres serializes the
-- commits of notifying transactions on one lock held through the WAL flush,
-- and every business transaction writes to the outbox. Relays of older
-- releases still poll, so dropping the trigger only slows them down.
DROP TRIGGER IF EXISTS outbox_written ON outbox;
DROP FUNCTION IF EXISTS outbox_notify();
