-- Gaps: ranges of an exchange's history that are not stored, whatever made them. One row
-- per (exchange, symbol, data type) and hole, with the exchange-time range in which rows
-- are missing and, where the exchange numbers its trades, the stored trades that bound it.
-- Two kinds of writer:
--   - the disk spool, when it was full (rows_lost: how many rows it received and dropped;
--     formerly the ingest_losses table of 0108, whose rows move here);
--   - gap filling (after a reconnect, at start-up, `tcpd backfill`), for a hole the
--     exchange's history could not fill (older than its horizon, history down too long).
-- A later attempt that fills the hole sets filled_at and rows_filled: the row stays, as the
-- record of what happened. Open gaps are the rows without filled_at. gap_id is made by the
-- service, so a range that grows while the hole goes on is updated in place and a retried
-- write is exactly once. `tcpd gaps` lists them.

CREATE TABLE ingest_gaps (
    gap_id TEXT PRIMARY KEY,
    exchange VARCHAR(50) NOT NULL,
    symbol VARCHAR(50) NOT NULL,
    data_type VARCHAR(20) NOT NULL,
    from_ts TIMESTAMPTZ NOT NULL,
    to_ts TIMESTAMPTZ NOT NULL,
    after_trade_id TEXT,
    before_trade_id TEXT,
    rows_lost BIGINT CHECK (rows_lost > 0),
    reason TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_attempt_at TIMESTAMPTZ,
    last_error TEXT,
    filled_at TIMESTAMPTZ,
    rows_filled BIGINT CHECK (rows_filled >= 0),
    CHECK (from_ts <= to_ts),
    CHECK ((filled_at IS NULL) = (rows_filled IS NULL))
);

CREATE INDEX ingest_gaps_open_idx
ON ingest_gaps (exchange, symbol, data_type, from_ts)
WHERE filled_at IS NULL;

INSERT INTO ingest_gaps (
    gap_id, exchange, symbol, data_type, from_ts, to_ts, rows_lost, reason, recorded_at
)
SELECT
    loss_id,
    exchange,
    symbol,
    data_type,
    from_ts,
    to_ts,
    "rows",
    reason,
    recorded_at
FROM ingest_losses;

DROP TABLE ingest_losses;

-- What 0108 called ingest_losses, kept readable for queries written against it.
CREATE VIEW ingest_losses AS
SELECT
    gap_id AS loss_id,
    exchange,
    symbol,
    data_type,
    CASE data_type
        WHEN 'trade' THEN 'raw_trades'
        WHEN 'dead_letter' THEN 'dead_letters'
        ELSE 'market_data'
    END AS table_name,
    from_ts,
    to_ts,
    rows_lost AS "rows",
    reason,
    recorded_at
FROM ingest_gaps
WHERE rows_lost IS NOT NULL;
