-- The event store: events, rolling snapshots, projection checkpoints.
-- Created unqualified: each service applies this in its own schema.

CREATE TABLE events (
    -- Global order is (transaction_id, sequence); see the crate docs for why a
    -- sequence alone is not enough for subscribers.
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    sequence       bigint      GENERATED ALWAYS AS IDENTITY,
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL CHECK (version > 0),
    event_type     text        NOT NULL,
    payload        jsonb       NOT NULL,
    metadata       jsonb       NOT NULL DEFAULT '{}',
    -- When the row was written (not committed): monotonic per stream, because
    -- the version check makes every append read its predecessor first.
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT events_pkey PRIMARY KEY (transaction_id, sequence),
    -- Optimistic concurrency: two writers expecting the same version race for
    -- the same (stream_id, version) and the database lets exactly one win.
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

-- No index on recorded_at: "as of a time" is rare and scans one stream
-- through events_stream_version_key; every append would pay for the index.

-- One rolling snapshot per stream: the latest replaces the previous one.
CREATE TABLE snapshots (
    stream_id      text        PRIMARY KEY,
    version        bigint      NOT NULL CHECK (version > 0),
    schema_version integer     NOT NULL,
    state          jsonb       NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now()
);

-- Which generation of a projection's read model is live (behind its views).
CREATE TABLE projections (
    projection      text        PRIMARY KEY,
    live_generation integer     NOT NULL CHECK (live_generation > 0),
    swapped_at      timestamptz NOT NULL DEFAULT now()
);

-- How far each generation of a projection has read; written in the same
-- transaction as the read-model rows it accounts for.
CREATE TABLE projection_checkpoints (
    projection     text        NOT NULL REFERENCES projections (projection) ON DELETE CASCADE,
    generation     integer     NOT NULL CHECK (generation > 0),
    transaction_id xid8        NOT NULL,
    sequence       bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, generation)
);
