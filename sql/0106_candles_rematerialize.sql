-- tcpd:requires-tsl
-- tcpd:no-transaction
-- Materializes the candle aggregates rebuilt by 0105 over the whole history of raw_trades,
-- finest first (each reads the one below it). Without this the first policy run would move the
-- materialization watermark to now and hide every candle older than its refresh window.
-- Each window ends at the start of the interval in progress, so no open interval is
-- materialized. Idempotent: a rerun only recomputes what changed. On a large history this takes
-- as long as computing every candle once (see docs/candles.md, "Upgrading to 0105"). Then the
-- candle policies saved by 0105 are restored.

CALL refresh_continuous_aggregate('candles_1m_agg', NULL, time_bucket(INTERVAL '1 minute', now()));

CALL refresh_continuous_aggregate('candles_5m_agg', NULL, time_bucket(INTERVAL '5 minutes', now()));

CALL refresh_continuous_aggregate('candles_15m_agg', NULL, time_bucket(INTERVAL '15 minutes', now()));

CALL refresh_continuous_aggregate('candles_1h_agg', NULL, time_bucket(INTERVAL '1 hour', now()));

CALL refresh_continuous_aggregate('candles_4h_agg', NULL, time_bucket(INTERVAL '4 hours', now()));

CALL refresh_continuous_aggregate('candles_1d_agg', NULL, time_bucket(INTERVAL '1 day', now()));

-- The policies the old aggregates had (0100's defaults unless changed with tcpd_set_*), saved
-- by 0105. if_not_exists and the table check keep a rerun harmless.
DO $$
DECLARE
    p RECORD;
BEGIN
    IF to_regclass('tcpd_saved_candle_policies') IS NULL THEN
        RETURN;
    END IF;
    FOR p IN
        SELECT s.*, t.aggregate_name
        FROM tcpd_saved_candle_policies AS s
        INNER JOIN candle_timeframes AS t USING (timeframe)
    LOOP
        IF p.kind = 'refresh' THEN
            PERFORM add_continuous_aggregate_policy(
                p.aggregate_name::REGCLASS, start_offset => p.start_offset, end_offset => p.end_offset,
                schedule_interval => p.schedule_interval, if_not_exists => TRUE
            );
        ELSIF p.kind = 'retention' THEN
            PERFORM add_retention_policy(p.aggregate_name::REGCLASS, drop_after => p.drop_after, if_not_exists => TRUE);
        END IF;
    END LOOP;
END;
$$;

DROP TABLE IF EXISTS tcpd_saved_candle_policies;
