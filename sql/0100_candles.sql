-- tcpd:requires-tsl
-- OHLCV candles as continuous aggregates: candles_1m_agg over raw_trades, then each
-- coarser timeframe built from the one below it (5m from 1m, 15m from 5m, ... 1d from 4h).
-- Users query the plain views candles_<tf>: they add the right-aligned stamp ts (the
-- interval's exclusive end) and hide every interval that has not closed yet.
-- open/close tie-break: trades with equal "timestamp" are ordered by id (insertion order).
-- first()/last() take one ordering value, so ("timestamp", id) is packed into one exact numeric:
-- epoch seconds (6 decimals) * 1e26 + id = microseconds * 1e20 + id; any bigint id fits
-- (|id| < 9.3e18 < 1e20 / 2), so the order is exactly ("timestamp", id).
-- (A row value fails: chunk-wise partial aggregation cannot serialize anonymous records.)
-- Real-time aggregation (materialized_only = false) makes a closed candle visible as soon as its
-- trades are stored; refresh policies materialize it later. See docs/candles.md.

CREATE TABLE candle_timeframes (
    timeframe TEXT PRIMARY KEY,
    width INTERVAL NOT NULL,
    view_name TEXT NOT NULL UNIQUE,
    aggregate_name TEXT UNIQUE,
    built_from TEXT REFERENCES candle_timeframes (timeframe),
    sort_order INTEGER NOT NULL UNIQUE
);

INSERT INTO candle_timeframes (timeframe, width, view_name, aggregate_name, built_from, sort_order)
VALUES
('1m', INTERVAL '1 minute', 'candles_1m', 'candles_1m_agg', NULL, 1),
('5m', INTERVAL '5 minutes', 'candles_5m', 'candles_5m_agg', '1m', 2),
('15m', INTERVAL '15 minutes', 'candles_15m', 'candles_15m_agg', '5m', 3),
('1h', INTERVAL '1 hour', 'candles_1h', 'candles_1h_agg', '15m', 4),
('4h', INTERVAL '4 hours', 'candles_4h', 'candles_4h_agg', '1h', 5),
('1d', INTERVAL '24 hours', 'candles_1d', 'candles_1d_agg', '4h', 6);

CREATE MATERIALIZED VIEW candles_1m_agg
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '1 minute', "timestamp") AS bucket_start,
    first(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS "close",
    sum(size) AS volume,
    sum(price * size) AS quote_volume,
    count(*) AS trade_count
FROM raw_trades
GROUP BY exchange, symbol, time_bucket(INTERVAL '1 minute', "timestamp")
WITH NO DATA;

CREATE INDEX candles_1m_agg_exchange_symbol_start_idx
ON candles_1m_agg (exchange, symbol, bucket_start DESC);

SELECT add_continuous_aggregate_policy(
    'candles_1m_agg',
    start_offset => INTERVAL '1 day',
    end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute'
);

CREATE VIEW candles_1m AS
SELECT
    exchange,
    symbol,
    bucket_start,
    bucket_start + INTERVAL '1 minute' AS ts,
    open,
    high,
    low,
    "close",
    volume,
    quote_volume,
    trade_count,
    quote_volume / nullif(volume, 0) AS vwap
FROM candles_1m_agg
WHERE bucket_start <= now() - INTERVAL '1 minute';

CREATE MATERIALIZED VIEW candles_5m_agg
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '5 minutes', bucket_start) AS bucket_start,
    first(open, bucket_start) AS open,
    max(high) AS high,
    min(low) AS low,
    last("close", bucket_start) AS "close",
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(trade_count)::BIGINT AS trade_count
FROM candles_1m_agg
GROUP BY exchange, symbol, time_bucket(INTERVAL '5 minutes', bucket_start)
WITH NO DATA;

CREATE INDEX candles_5m_agg_exchange_symbol_start_idx
ON candles_5m_agg (exchange, symbol, bucket_start DESC);

SELECT add_continuous_aggregate_policy(
    'candles_5m_agg',
    start_offset => INTERVAL '2 days',
    end_offset => INTERVAL '5 minutes',
    schedule_interval => INTERVAL '5 minutes'
);

CREATE VIEW candles_5m AS
SELECT
    exchange,
    symbol,
    bucket_start,
    bucket_start + INTERVAL '5 minutes' AS ts,
    open,
    high,
    low,
    "close",
    volume,
    quote_volume,
    trade_count,
    quote_volume / nullif(volume, 0) AS vwap
FROM candles_5m_agg
WHERE bucket_start <= now() - INTERVAL '5 minutes';

CREATE MATERIALIZED VIEW candles_15m_agg
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '15 minutes', bucket_start) AS bucket_start,
    first(open, bucket_start) AS open,
    max(high) AS high,
    min(low) AS low,
    last("close", bucket_start) AS "close",
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(trade_count)::BIGINT AS trade_count
FROM candles_5m_agg
GROUP BY exchange, symbol, time_bucket(INTERVAL '15 minutes', bucket_start)
WITH NO DATA;

CREATE INDEX candles_15m_agg_exchange_symbol_start_idx
ON candles_15m_agg (exchange, symbol, bucket_start DESC);

SELECT add_continuous_aggregate_policy(
    'candles_15m_agg',
    start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '15 minutes',
    schedule_interval => INTERVAL '15 minutes'
);

CREATE VIEW candles_15m AS
SELECT
    exchange,
    symbol,
    bucket_start,
    bucket_start + INTERVAL '15 minutes' AS ts,
    open,
    high,
    low,
    "close",
    volume,
    quote_volume,
    trade_count,
    quote_volume / nullif(volume, 0) AS vwap
FROM candles_15m_agg
WHERE bucket_start <= now() - INTERVAL '15 minutes';

CREATE MATERIALIZED VIEW candles_1h_agg
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '1 hour', bucket_start) AS bucket_start,
    first(open, bucket_start) AS open,
    max(high) AS high,
    min(low) AS low,
    last("close", bucket_start) AS "close",
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(trade_count)::BIGINT AS trade_count
FROM candles_15m_agg
GROUP BY exchange, symbol, time_bucket(INTERVAL '1 hour', bucket_start)
WITH NO DATA;

CREATE INDEX candles_1h_agg_exchange_symbol_start_idx
ON candles_1h_agg (exchange, symbol, bucket_start DESC);

SELECT add_continuous_aggregate_policy(
    'candles_1h_agg',
    start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes'
);

CREATE VIEW candles_1h AS
SELECT
    exchange,
    symbol,
    bucket_start,
    bucket_start + INTERVAL '1 hour' AS ts,
    open,
    high,
    low,
    "close",
    volume,
    quote_volume,
    trade_count,
    quote_volume / nullif(volume, 0) AS vwap
FROM candles_1h_agg
WHERE bucket_start <= now() - INTERVAL '1 hour';

CREATE MATERIALIZED VIEW candles_4h_agg
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '4 hours', bucket_start) AS bucket_start,
    first(open, bucket_start) AS open,
    max(high) AS high,
    min(low) AS low,
    last("close", bucket_start) AS "close",
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(trade_count)::BIGINT AS trade_count
FROM candles_1h_agg
GROUP BY exchange, symbol, time_bucket(INTERVAL '4 hours', bucket_start)
WITH NO DATA;

CREATE INDEX candles_4h_agg_exchange_symbol_start_idx
ON candles_4h_agg (exchange, symbol, bucket_start DESC);

SELECT add_continuous_aggregate_policy(
    'candles_4h_agg',
    start_offset => INTERVAL '14 days',
    end_offset => INTERVAL '4 hours',
    schedule_interval => INTERVAL '1 hour'
);

CREATE VIEW candles_4h AS
SELECT
    exchange,
    symbol,
    bucket_start,
    bucket_start + INTERVAL '4 hours' AS ts,
    open,
    high,
    low,
    "close",
    volume,
    quote_volume,
    trade_count,
    quote_volume / nullif(volume, 0) AS vwap
FROM candles_4h_agg
WHERE bucket_start <= now() - INTERVAL '4 hours';

CREATE MATERIALIZED VIEW candles_1d_agg
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '1 day', bucket_start) AS bucket_start,
    first(open, bucket_start) AS open,
    max(high) AS high,
    min(low) AS low,
    last("close", bucket_start) AS "close",
    sum(volume) AS volume,
    sum(quote_volume) AS quote_volume,
    sum(trade_count)::BIGINT AS trade_count
FROM candles_4h_agg
GROUP BY exchange, symbol, time_bucket(INTERVAL '1 day', bucket_start)
WITH NO DATA;

CREATE INDEX candles_1d_agg_exchange_symbol_start_idx
ON candles_1d_agg (exchange, symbol, bucket_start DESC);

SELECT add_continuous_aggregate_policy(
    'candles_1d_agg',
    start_offset => INTERVAL '30 days',
    end_offset => INTERVAL '1 day',
    schedule_interval => INTERVAL '1 hour'
);

CREATE VIEW candles_1d AS
SELECT
    exchange,
    symbol,
    bucket_start,
    bucket_start + INTERVAL '24 hours' AS ts,
    open,
    high,
    low,
    "close",
    volume,
    quote_volume,
    trade_count,
    quote_volume / nullif(volume, 0) AS vwap
FROM candles_1d_agg
WHERE bucket_start <= now() - INTERVAL '24 hours';
