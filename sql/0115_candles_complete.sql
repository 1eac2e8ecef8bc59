-- tcpd:requires-tsl
-- Candles shown only once closed AND complete (docs/candles.md, "Complete candles"): the
-- writer keeps, per (exchange, symbol), the exchange time up to which everything it accepted is
-- committed (ingest_watermarks, written by tcpd run, see ingest/storage/watermarks.py). Each
-- user-facing view keeps the wall-clock rule (no open interval, no future leakage) and also
-- hides a candle ending after its symbol's watermark. A symbol with no watermark row (data
-- loaded by older versions, by hand or by tools that do not keep watermarks) keeps the
-- wall-clock rule alone. The filter is in the views only: the continuous aggregates below them
-- are unchanged, so nothing is rematerialized and their refresh is not held back.
-- Same view names and columns as 0105 (CREATE OR REPLACE VIEW).

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
FROM candles_1m_agg AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '1 minute'
    AND NOT EXISTS (
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
FROM candles_5m_agg AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '5 minutes'
    AND NOT EXISTS (
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
FROM candles_15m_agg AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '15 minutes'
    AND NOT EXISTS (
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
FROM candles_1h_agg AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '1 hour'
    AND NOT EXISTS (
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
FROM candles_4h_agg AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '4 hours'
    AND NOT EXISTS (
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
FROM candles_1d_agg AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '24 hours'
    AND NOT EXISTS (
        SELECT FROM ingest_watermarks AS w
        WHERE
            w.exchange = c.exchange
            AND w.symbol = c.symbol
            AND w.committed_through < c.bucket_start + INTERVAL '24 hours'
    );
