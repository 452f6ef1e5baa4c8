-- The dispatcher claims a pending notification only when no earlier pending
-- one exists for the same booking and channel (per-recipient order). Without
-- this index that check scanned every pending row for every candidate: with
-- a few hundred pending under load it was the most expensive statement in
-- pg_stat_statements (2.1 ms a claim, see docs/benchmarks.md).
CREATE INDEX notifications_pending_by_booking
    ON notifications (booking_id, channel, seq)
    WHERE status = 'pending';
