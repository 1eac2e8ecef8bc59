-- Apache edition variant of 0100_candles.sql: the same views and columns, computed at query
-- time from raw_trades (no continuous aggregates, no policies on this edition).
-- Each view filters raw trades to closed intervals before grouping, so an interval in progress
-- never appears and the time filter reaches the raw_trades index.
-- open/close tie-break: trades with equal "timestamp" are ordered by id (insertion order),
-- packed into one numeric ordering value exactly as in 0100_candles.sql.

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
('1m', INTERVAL '1 minute', 'candles_1m', NULL, NULL, 1),
('5m', INTERVAL '5 minutes', 'candles_5m', NULL, '1m', 2),
('15m', INTERVAL '15 minutes', 'candles_15m', NULL, '5m', 3),
('1h', INTERVAL '1 hour', 'candles_1h', NULL, '15m', 4),
('4h', INTERVAL '4 hours', 'candles_4h', NULL, '1h', 5),
('1d', INTERVAL '24 hours', 'candles_1d', NULL, '4h', 6);

CREATE VIEW candles_1m AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '1 minute', "timestamp") AS bucket_start,
    time_bucket(INTERVAL '1 minute', "timestamp") + INTERVAL '1 minute' AS ts,
    first(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS "close",
    sum(size) AS volume,
    sum(price * size) AS quote_volume,
    count(*) AS trade_count,
    sum(price * size) / nullif(sum(size), 0) AS vwap
FROM raw_trades
WHERE "timestamp" < time_bucket(INTERVAL '1 minute', now())
GROUP BY exchange, symbol, time_bucket(INTERVAL '1 minute', "timestamp");

CREATE VIEW candles_5m AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '5 minutes', "timestamp") AS bucket_start,
    time_bucket(INTERVAL '5 minutes', "timestamp") + INTERVAL '5 minutes' AS ts,
    first(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS "close",
    sum(size) AS volume,
    sum(price * size) AS quote_volume,
    count(*) AS trade_count,
    sum(price * size) / nullif(sum(size), 0) AS vwap
FROM raw_trades
WHERE "timestamp" < time_bucket(INTERVAL '5 minutes', now())
GROUP BY exchange, symbol, time_bucket(INTERVAL '5 minutes', "timestamp");

CREATE VIEW candles_15m AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '15 minutes', "timestamp") AS bucket_start,
    time_bucket(INTERVAL '15 minutes', "timestamp") + INTERVAL '15 minutes' AS ts,
    first(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS "close",
    sum(size) AS volume,
    sum(price * size) AS quote_volume,
    count(*) AS trade_count,
    sum(price * size) / nullif(sum(size), 0) AS vwap
FROM raw_trades
WHERE "timestamp" < time_bucket(INTERVAL '15 minutes', now())
GROUP BY exchange, symbol, time_bucket(INTERVAL '15 minutes', "timestamp");

CREATE VIEW candles_1h AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '1 hour', "timestamp") AS bucket_start,
    time_bucket(INTERVAL '1 hour', "timestamp") + INTERVAL '1 hour' AS ts,
    first(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS "close",
    sum(size) AS volume,
    sum(price * size) AS quote_volume,
    count(*) AS trade_count,
    sum(price * size) / nullif(sum(size), 0) AS vwap
FROM raw_trades
WHERE "timestamp" < time_bucket(INTERVAL '1 hour', now())
GROUP BY exchange, symbol, time_bucket(INTERVAL '1 hour', "timestamp");

CREATE VIEW candles_4h AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '4 hours', "timestamp") AS bucket_start,
    time_bucket(INTERVAL '4 hours', "timestamp") + INTERVAL '4 hours' AS ts,
    first(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS "close",
    sum(size) AS volume,
    sum(price * size) AS quote_volume,
    count(*) AS trade_count,
    sum(price * size) / nullif(sum(size), 0) AS vwap
FROM raw_trades
WHERE "timestamp" < time_bucket(INTERVAL '4 hours', now())
GROUP BY exchange, symbol, time_bucket(INTERVAL '4 hours', "timestamp");

CREATE VIEW candles_1d AS
SELECT
    exchange,
    symbol,
    time_bucket(INTERVAL '1 day', "timestamp") AS bucket_start,
    time_bucket(INTERVAL '1 day', "timestamp") + INTERVAL '24 hours' AS ts,
    first(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS open,
    max(price) AS high,
    min(price) AS low,
    last(price, extract(EPOCH FROM "timestamp") * 1e26 + id) AS "close",
    sum(size) AS volume,
    sum(price * size) AS quote_volume,
    count(*) AS trade_count,
    sum(price * size) / nullif(sum(size), 0) AS vwap
FROM raw_trades
WHERE "timestamp" < time_bucket(INTERVAL '1 day', now())
GROUP BY exchange, symbol, time_bucket(INTERVAL '1 day', "timestamp");
