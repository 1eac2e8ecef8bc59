-- Rows the ingest service could not keep: its local spool was full (or could not be
-- written) during a database outage. One row per (exchange, symbol, data type, target
-- table) and loss episode, with the exchange-time range of the rows lost, so that the
-- gap-filling work can fetch them again. Written by the service when the database is
-- back (ingest/storage/spool_losses.py); loss_id is made by the service, so a range that
-- grows while the loss goes on is updated in place and a retried write is exactly once.

CREATE TABLE ingest_losses (
    loss_id TEXT PRIMARY KEY,
    exchange VARCHAR(50) NOT NULL,
    symbol VARCHAR(50) NOT NULL,
    data_type VARCHAR(20) NOT NULL,
    table_name TEXT NOT NULL,
    from_ts TIMESTAMPTZ NOT NULL,
    to_ts TIMESTAMPTZ NOT NULL,
    "rows" BIGINT NOT NULL CHECK ("rows" > 0),
    reason TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (from_ts <= to_ts)
);

CREATE INDEX ingest_losses_range_idx
ON ingest_losses (exchange, symbol, data_type, from_ts);
