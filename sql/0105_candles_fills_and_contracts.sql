-- tcpd:requires-tsl
-- Candles v2: trade_count counts exchange fills (sum of raw_trades.fill_count), open/close
-- ties follow the exchange's own order (trade_seq, then id), and base/quote volumes are right
-- for spot, linear and inverse contracts (the views join the instruments table at query time,
-- so loading or fixing instrument metadata changes the volumes without a refresh).
-- The aggregates keep size sums only: volume = sum(size), price_size = sum(price * size),
-- size_per_price = sum(size / price); trade_rows counts raw rows (pushes).
-- A continuous aggregate's query cannot be altered, so the aggregates of 0100 are dropped and
-- rebuilt under the same names (docs/candles.md explains the decision). Their policies (refresh
-- windows and candle retention, defaults or as changed) are kept in tcpd_saved_candle_policies;
-- 0106 materializes the history again and only then restores them (a policy job started
-- during that refresh would fail it as a concurrent refresh).
-- open/close order: ("timestamp", trade_seq, id) packed into one exact numeric:
-- microseconds * 1e40 + trade_seq * 1e20 + id (|trade_seq|, |id| < 9.3e18 < 1e20 / 2).

-- Refuse when the old aggregates hold candles older than the raw trades they could be rebuilt
-- from (a raw retention dropped them): rebuilding would lose those candles.
DO $$
DECLARE
    tf RECORD;
    oldest_raw TIMESTAMPTZ := (SELECT min("timestamp") FROM raw_trades);
    oldest_candle TIMESTAMPTZ;
BEGIN
    FOR tf IN SELECT timeframe, width, aggregate_name FROM candle_timeframes ORDER BY sort_order LOOP
        EXECUTE format('SELECT min(bucket_start) FROM %I', tf.aggregate_name) INTO oldest_candle;
        IF oldest_candle < coalesce(time_bucket(tf.width, oldest_raw), 'infinity') THEN
            RAISE EXCEPTION
                'candles_% holds candles from % on, but raw_trades only from %: rebuilding the candle aggregates (migration 0105) would lose the older ones',
                tf.timeframe, oldest_candle, coalesce(oldest_raw::TEXT, 'nowhere (empty)')
                USING HINT = 'copy the old candles out first (CREATE TABLE candles_archive_1m AS SELECT * FROM candles_1m, per timeframe), then DROP MATERIALIZED VIEW candles_1m_agg CASCADE and rerun tcpd db migrate';
        END IF;
    END LOOP;
END;
$$;

-- Dropping an aggregate deletes its policy jobs and their statistics; a job run finishing at
-- that moment updates the same statistics row and the drop fails with "tuple concurrently
-- updated". Blocking those updates until this transaction ends avoids the race (a job run that
-- waited then finds its job gone, which only ends that run).
LOCK TABLE _timescaledb_internal.bgw_job_stat IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE tcpd_saved_candle_policies AS
SELECT
    timeframe,
    kind,
    start_offset,
    end_offset,
    schedule_interval,
    drop_after
FROM tcpd_candle_policies
WHERE timeframe IS NOT NULL;

DROP VIEW IF EXISTS candles_1d, candles_4h, candles_1h, candles_15m, candles_5m, candles_1m;

DROP MATERIALIZED VIEW IF EXISTS candles_1d_agg;

DROP MATERIALIZED VIEW IF EXISTS candles_4h_agg;

DROP MATERIALIZED VIEW IF EXISTS candles_1h_agg;

DROP MATERIALIZED VIEW IF EXISTS candles_15m_agg;

DROP MATERIALIZED VIEW IF EXISTS candles_5m_agg;

DROP MATERIALIZED VIEW IF EXISTS candles_1m_agg;

CREATE MATERIALIZED VIEW candles_1m_agg
WITH (timescaledb.continuous, timescaledb.materialized_only = FALSE) AS
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
GROUP BY exchange, symbol, time_bucket(INTERVAL '1 minute', "timestamp")
WITH NO DATA;

CREATE INDEX candles_1m_agg_exchange_symbol_start_idx
ON candles_1m_agg (exchange, symbol, bucket_start DESC);

CREATE VIEW candles_1m AS
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
WHERE c.bucket_start <= now() - INTERVAL '1 minute';

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
    sum(price_size) AS price_size,
    sum(size_per_price) AS size_per_price,
    sum(trade_count)::BIGINT AS trade_count,
    sum(trade_rows)::BIGINT AS trade_rows
FROM candles_1m_agg
GROUP BY exchange, symbol, time_bucket(INTERVAL '5 minutes', bucket_start)
WITH NO DATA;

CREATE INDEX candles_5m_agg_exchange_symbol_start_idx
ON candles_5m_agg (exchange, symbol, bucket_start DESC);

CREATE VIEW candles_5m AS
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
WHERE c.bucket_start <= now() - INTERVAL '5 minutes';

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
    sum(price_size) AS price_size,
    sum(size_per_price) AS size_per_price,
    sum(trade_count)::BIGINT AS trade_count,
    sum(trade_rows)::BIGINT AS trade_rows
FROM candles_5m_agg
GROUP BY exchange, symbol, time_bucket(INTERVAL '15 minutes', bucket_start)
WITH NO DATA;

CREATE INDEX candles_15m_agg_exchange_symbol_start_idx
ON candles_15m_agg (exchange, symbol, bucket_start DESC);

CREATE VIEW candles_15m AS
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
WHERE c.bucket_start <= now() - INTERVAL '15 minutes';

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
    sum(price_size) AS price_size,
    sum(size_per_price) AS size_per_price,
    sum(trade_count)::BIGINT AS trade_count,
    sum(trade_rows)::BIGINT AS trade_rows
FROM candles_15m_agg
GROUP BY exchange, symbol, time_bucket(INTERVAL '1 hour', bucket_start)
WITH NO DATA;

CREATE INDEX candles_1h_agg_exchange_symbol_start_idx
ON candles_1h_agg (exchange, symbol, bucket_start DESC);

CREATE VIEW candles_1h AS
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
WHERE c.bucket_start <= now() - INTERVAL '1 hour';

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
    sum(price_size) AS price_size,
    sum(size_per_price) AS size_per_price,
    sum(trade_count)::BIGINT AS trade_count,
    sum(trade_rows)::BIGINT AS trade_rows
FROM candles_1h_agg
GROUP BY exchange, symbol, time_bucket(INTERVAL '4 hours', bucket_start)
WITH NO DATA;

CREATE INDEX candles_4h_agg_exchange_symbol_start_idx
ON candles_4h_agg (exchange, symbol, bucket_start DESC);

CREATE VIEW candles_4h AS
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
WHERE c.bucket_start <= now() - INTERVAL '4 hours';

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
    sum(price_size) AS price_size,
    sum(size_per_price) AS size_per_price,
    sum(trade_count)::BIGINT AS trade_count,
    sum(trade_rows)::BIGINT AS trade_rows
FROM candles_4h_agg
GROUP BY exchange, symbol, time_bucket(INTERVAL '1 day', bucket_start)
WITH NO DATA;

CREATE INDEX candles_1d_agg_exchange_symbol_start_idx
ON candles_1d_agg (exchange, symbol, bucket_start DESC);

CREATE VIEW candles_1d AS
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
WHERE c.bucket_start <= now() - INTERVAL '24 hours';
