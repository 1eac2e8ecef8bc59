-- Apache edition variant of 0115_candles_complete.sql: the same ingest_watermarks table, and
-- the views of 0105 (computed at query time from raw_trades) with the same completeness rule:
-- a candle shows once its interval closed by the wall clock and, when its symbol has a row in
-- ingest_watermarks, once its end is at or below that watermark.

CREATE TABLE IF NOT EXISTS ingest_watermarks (
    exchange TEXT NOT NULL,
    symbol TEXT NOT NULL,
    committed_through TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (exchange, symbol)
);

COMMENT ON TABLE ingest_watermarks IS
'per (exchange, symbol): the exchange time up to which every row the writer accepted is committed; '
'the candle views hide candles ending after it';

CREATE OR REPLACE VIEW candles_1m AS
SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '1 minute' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        exchange,
        symbol,
        time_bucket(INTERVAL '1 minute', "timestamp") AS bucket_start,
        first(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS open,
        max(price) AS high,
        min(price) AS low,
        last(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS "close",
        sum(size) AS volume,
        sum(price * size) AS price_size,
        sum(size / nullif(price, 0)) AS size_per_price,
        sum(fill_count)::BIGINT AS trade_count,
        count(*) AS trade_rows
    FROM raw_trades
    WHERE "timestamp" < time_bucket(INTERVAL '1 minute', now())
    GROUP BY exchange, symbol, time_bucket(INTERVAL '1 minute', "timestamp")
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE NOT EXISTS (
    SELECT FROM ingest_watermarks AS w
    WHERE
        w.exchange = c.exchange
        AND w.symbol = c.symbol
        AND w.committed_through < c.bucket_start + INTERVAL '1 minute'
);

CREATE OR REPLACE VIEW candles_5m AS
SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '5 minutes' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        exchange,
        symbol,
        time_bucket(INTERVAL '5 minutes', "timestamp") AS bucket_start,
        first(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS open,
        max(price) AS high,
        min(price) AS low,
        last(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS "close",
        sum(size) AS volume,
        sum(price * size) AS price_size,
        sum(size / nullif(price, 0)) AS size_per_price,
        sum(fill_count)::BIGINT AS trade_count,
        count(*) AS trade_rows
    FROM raw_trades
    WHERE "timestamp" < time_bucket(INTERVAL '5 minutes', now())
    GROUP BY exchange, symbol, time_bucket(INTERVAL '5 minutes', "timestamp")
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE NOT EXISTS (
    SELECT FROM ingest_watermarks AS w
    WHERE
        w.exchange = c.exchange
        AND w.symbol = c.symbol
        AND w.committed_through < c.bucket_start + INTERVAL '5 minutes'
);

CREATE OR REPLACE VIEW candles_15m AS
SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '15 minutes' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        exchange,
        symbol,
        time_bucket(INTERVAL '15 minutes', "timestamp") AS bucket_start,
        first(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS open,
        max(price) AS high,
        min(price) AS low,
        last(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS "close",
        sum(size) AS volume,
        sum(price * size) AS price_size,
        sum(size / nullif(price, 0)) AS size_per_price,
        sum(fill_count)::BIGINT AS trade_count,
        count(*) AS trade_rows
    FROM raw_trades
    WHERE "timestamp" < time_bucket(INTERVAL '15 minutes', now())
    GROUP BY exchange, symbol, time_bucket(INTERVAL '15 minutes', "timestamp")
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE NOT EXISTS (
    SELECT FROM ingest_watermarks AS w
    WHERE
        w.exchange = c.exchange
        AND w.symbol = c.symbol
        AND w.committed_through < c.bucket_start + INTERVAL '15 minutes'
);

CREATE OR REPLACE VIEW candles_1h AS
SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '1 hour' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        exchange,
        symbol,
        time_bucket(INTERVAL '1 hour', "timestamp") AS bucket_start,
        first(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS open,
        max(price) AS high,
        min(price) AS low,
        last(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS "close",
        sum(size) AS volume,
        sum(price * size) AS price_size,
        sum(size / nullif(price, 0)) AS size_per_price,
        sum(fill_count)::BIGINT AS trade_count,
        count(*) AS trade_rows
    FROM raw_trades
    WHERE "timestamp" < time_bucket(INTERVAL '1 hour', now())
    GROUP BY exchange, symbol, time_bucket(INTERVAL '1 hour', "timestamp")
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE NOT EXISTS (
    SELECT FROM ingest_watermarks AS w
    WHERE
        w.exchange = c.exchange
        AND w.symbol = c.symbol
        AND w.committed_through < c.bucket_start + INTERVAL '1 hour'
);

CREATE OR REPLACE VIEW candles_4h AS
SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '4 hours' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        exchange,
        symbol,
        time_bucket(INTERVAL '4 hours', "timestamp") AS bucket_start,
        first(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS open,
        max(price) AS high,
        min(price) AS low,
        last(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS "close",
        sum(size) AS volume,
        sum(price * size) AS price_size,
        sum(size / nullif(price, 0)) AS size_per_price,
        sum(fill_count)::BIGINT AS trade_count,
        count(*) AS trade_rows
    FROM raw_trades
    WHERE "timestamp" < time_bucket(INTERVAL '4 hours', now())
    GROUP BY exchange, symbol, time_bucket(INTERVAL '4 hours', "timestamp")
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE NOT EXISTS (
    SELECT FROM ingest_watermarks AS w
    WHERE
        w.exchange = c.exchange
        AND w.symbol = c.symbol
        AND w.committed_through < c.bucket_start + INTERVAL '4 hours'
);

CREATE OR REPLACE VIEW candles_1d AS
SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '24 hours' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        exchange,
        symbol,
        time_bucket(INTERVAL '1 day', "timestamp") AS bucket_start,
        first(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS open,
        max(price) AS high,
        min(price) AS low,
        last(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id) AS "close",
        sum(size) AS volume,
        sum(price * size) AS price_size,
        sum(size / nullif(price, 0)) AS size_per_price,
        sum(fill_count)::BIGINT AS trade_count,
        count(*) AS trade_rows
    FROM raw_trades
    WHERE "timestamp" < time_bucket(INTERVAL '1 day', now())
    GROUP BY exchange, symbol, time_bucket(INTERVAL '1 day', "timestamp")
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE NOT EXISTS (
    SELECT FROM ingest_watermarks AS w
    WHERE
        w.exchange = c.exchange
        AND w.symbol = c.symbol
        AND w.committed_through < c.bucket_start + INTERVAL '24 hours'
);
