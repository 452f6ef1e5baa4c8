-- Routing slips, in the schema of the service that orchestrates them. The slip
-- itself is a JSON document (the saga's whole state, read and written as one);
-- the columns beside it exist to be indexed: the timer worker looks for due
-- sagas, the operator API for sagas by status.
CREATE TABLE sagas (
    saga_id        uuid PRIMARY KEY,
    saga_type      text NOT NULL,
    status         text NOT NULL CHECK (status IN
                       ('running', 'completed', 'compensating', 'compensated',
                        'failed_compensation', 'parked')),
    slip           jsonb NOT NULL,
    next_wakeup_at timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    finished_at    timestamptz
);

CREATE INDEX sagas_due ON sagas (next_wakeup_at) WHERE next_wakeup_at IS NOT NULL;
CREATE INDEX sagas_by_status ON sagas (status, updated_at DESC);
