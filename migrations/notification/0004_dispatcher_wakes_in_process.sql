-- The dispatcher is woken in its own process
-- (notification::dispatcher::NOTIFICATIONS_RECORDED), not by a NOTIFY from
-- the recording transaction, which would serialize those commits on
-- Postgres's notify lock. Older dispatchers still poll.
DROP TRIGGER IF EXISTS notifications_recorded ON notifications;
DROP FUNCTION IF EXISTS notifications_notify();
