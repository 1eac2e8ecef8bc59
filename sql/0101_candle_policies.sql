-- tcpd:requires-tsl
-- Storage policies around the candles: compression (columnstore) and retention of the raw
-- tables, optional retention of candles, and the functions that change them safely.
-- Defaults: raw_trades and market_data compressed after 7 days, dropped after 2 years;
-- candles kept forever. Change them with the tcpd_set_* functions below, never by editing
-- this file. Every change is checked by tcpd_check_candle_policies(): raw data (and the
-- candles a coarser timeframe is built from) must outlive every refresh window by a margin,
-- or a refresh would find the source rows gone and delete the candles built from them.

ALTER TABLE raw_trades SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'exchange, symbol',
    timescaledb.compress_orderby = '"timestamp" DESC, id DESC'
);

ALTER TABLE market_data SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'exchange, symbol',
    timescaledb.compress_orderby = '"timestamp" DESC, id DESC'
);

SELECT add_compression_policy('raw_trades', compress_after => INTERVAL '7 days');

SELECT add_compression_policy('market_data', compress_after => INTERVAL '7 days');

SELECT add_retention_policy('raw_trades', drop_after => INTERVAL '2 years');

SELECT add_retention_policy('market_data', drop_after => INTERVAL '2 years');

-- One row per policy that concerns candles or the raw tables, with its settings.
CREATE VIEW tcpd_candle_policies AS
SELECT
    j.job_id,
    j.hypertable_name AS relation,
    t.timeframe,
    j.schedule_interval,
    j.next_start,
    (j.config ->> 'start_offset')::INTERVAL AS start_offset,
    (j.config ->> 'end_offset')::INTERVAL AS end_offset,
    (j.config ->> 'drop_after')::INTERVAL AS drop_after,
    (j.config ->> 'compress_after')::INTERVAL AS compress_after,
    CASE j.proc_name
        WHEN 'policy_refresh_continuous_aggregate' THEN 'refresh'
        WHEN 'policy_retention' THEN 'retention'
        ELSE 'compression'
    END AS kind
FROM timescaledb_information.jobs AS j
LEFT JOIN candle_timeframes AS t ON j.hypertable_name = t.aggregate_name
WHERE
    j.proc_name IN ('policy_refresh_continuous_aggregate', 'policy_retention', 'policy_compression')
    AND (j.hypertable_name IN ('raw_trades', 'market_data') OR t.timeframe IS NOT NULL);

-- Margin kept between any refresh window and the oldest source data a retention keeps.
CREATE FUNCTION tcpd_retention_margin() RETURNS INTERVAL
LANGUAGE plpgsql IMMUTABLE
AS $$ BEGIN RETURN INTERVAL '7 days'; END; $$;

-- Raises when a retention would let a refresh window reach data that is already dropped.
CREATE FUNCTION tcpd_check_candle_policies() RETURNS VOID
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    bad RECORD;
BEGIN
    -- Raw trades feed the 1m aggregate, which feeds every coarser one.
    SELECT r.timeframe, r.start_offset, k.drop_after INTO bad
    FROM tcpd_candle_policies AS r
    CROSS JOIN tcpd_candle_policies AS k
    WHERE
        r.kind = 'refresh' AND k.kind = 'retention' AND k.relation = 'raw_trades'
        AND r.start_offset + tcpd_retention_margin() > k.drop_after
    ORDER BY r.start_offset DESC
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'raw_trades retention % is inside the % refresh window (start_offset %)',
            bad.drop_after, bad.timeframe, bad.start_offset
            USING HINT = format('keep raw data at least start_offset + %s', tcpd_retention_margin());
    END IF;
    -- Candles of timeframe S feed every coarser timeframe T (sort_order above S).
    SELECT s.timeframe AS src, r.timeframe, r.start_offset, k.drop_after INTO bad
    FROM tcpd_candle_policies AS k
    INNER JOIN candle_timeframes AS s ON k.timeframe = s.timeframe
    INNER JOIN candle_timeframes AS t ON t.sort_order >= s.sort_order
    INNER JOIN tcpd_candle_policies AS r ON r.timeframe = t.timeframe AND r.kind = 'refresh'
    WHERE
        k.kind = 'retention'
        AND r.start_offset + tcpd_retention_margin() > k.drop_after
    ORDER BY r.start_offset DESC
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'candles_% retention % is inside the % refresh window (start_offset %)',
            bad.src, bad.drop_after, bad.timeframe, bad.start_offset
            USING HINT = format('keep candles at least start_offset + %s', tcpd_retention_margin());
    END IF;
END;
$$;

-- Keep raw_trades and market_data for `keep` (NULL: forever). Default 2 years.
CREATE FUNCTION tcpd_set_raw_retention(keep INTERVAL) RETURNS VOID
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    rel TEXT;
BEGIN
    FOREACH rel IN ARRAY ARRAY['raw_trades', 'market_data'] LOOP
        PERFORM remove_retention_policy(rel::REGCLASS, if_exists => TRUE);
        IF keep IS NOT NULL THEN
            PERFORM add_retention_policy(rel::REGCLASS, drop_after => keep);
        END IF;
    END LOOP;
    PERFORM tcpd_check_candle_policies();
END;
$$;

-- Compress raw_trades and market_data chunks older than `after` (NULL: never). Default 7 days.
CREATE FUNCTION tcpd_set_compress_after(after INTERVAL) RETURNS VOID
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    rel TEXT;
BEGIN
    IF after IS NOT NULL AND after <= INTERVAL '0' THEN
        RAISE EXCEPTION 'compress_after must be positive, got %', after;
    END IF;
    FOREACH rel IN ARRAY ARRAY['raw_trades', 'market_data'] LOOP
        PERFORM remove_compression_policy(rel::REGCLASS, if_exists => TRUE);
        IF after IS NOT NULL THEN
            PERFORM add_compression_policy(rel::REGCLASS, compress_after => after);
        END IF;
    END LOOP;
END;
$$;

-- The aggregate behind a timeframe, or an error naming the valid ones.
CREATE FUNCTION tcpd_candle_aggregate(tf TEXT) RETURNS REGCLASS
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    agg TEXT;
BEGIN
    SELECT aggregate_name INTO agg FROM candle_timeframes WHERE timeframe = tf;
    IF agg IS NULL THEN
        RAISE EXCEPTION 'unknown timeframe %', tf USING HINT = (
            SELECT 'use one of ' || string_agg(timeframe, ', ' ORDER BY sort_order)
            FROM candle_timeframes
        );
    END IF;
    RETURN agg::REGCLASS;
END;
$$;

-- Refresh policy of one timeframe. end_offset must be >= 0 so an interval still in progress
-- is never materialized; schedule_interval is how often the policy runs.
CREATE FUNCTION tcpd_set_candle_refresh(
    tf TEXT, start_offset INTERVAL, end_offset INTERVAL, schedule_interval INTERVAL
) RETURNS VOID
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    agg REGCLASS := tcpd_candle_aggregate(tf);
BEGIN
    IF end_offset IS NULL OR end_offset < INTERVAL '0' THEN
        RAISE EXCEPTION 'end_offset must be >= 0 (got %): a negative one materializes open intervals',
            end_offset;
    END IF;
    PERFORM remove_continuous_aggregate_policy(agg, if_exists => TRUE);
    PERFORM add_continuous_aggregate_policy(
        agg, start_offset => start_offset, end_offset => end_offset,
        schedule_interval => schedule_interval
    );
    PERFORM tcpd_check_candle_policies();
END;
$$;

-- Keep candles of one timeframe for `keep` (NULL: forever, the default).
CREATE FUNCTION tcpd_set_candle_retention(tf TEXT, keep INTERVAL) RETURNS VOID
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    agg REGCLASS := tcpd_candle_aggregate(tf);
BEGIN
    PERFORM remove_retention_policy(agg, if_exists => TRUE);
    IF keep IS NOT NULL THEN
        PERFORM add_retention_policy(agg, drop_after => keep);
    END IF;
    PERFORM tcpd_check_candle_policies();
END;
$$;
