-- The W3C trace context (`traceparent`, `tracestate`) of the request that
-- started the saga. Replies continue the trace from their Kafka headers; what
-- acts on a saga later without a message to carry it — the timer worker's
-- retries, step timeouts and deadline, an operator's retry, a cancellation —
-- continues it from here, so a saga is one trace however long it runs.
-- Nullable: sagas started before this column (or outside any trace) have none.
ALTER TABLE sagas ADD COLUMN trace_context jsonb;
