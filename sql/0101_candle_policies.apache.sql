-- Apache edition variant of 0101_candle_policies.sql. This edition has no compression,
-- retention or refresh policies (they are TSL features): raw data is kept until deleted by
-- hand and candles are computed at query time. The view keeps the same columns, empty, so
-- `tcpd candles policy show` works on both editions.

CREATE VIEW tcpd_candle_policies AS
SELECT
    NULL::INTEGER AS job_id,
    NULL::NAME AS relation,
    NULL::TEXT AS timeframe,
    NULL::INTERVAL AS schedule_interval,
    NULL::TIMESTAMPTZ AS next_start,
    NULL::INTERVAL AS start_offset,
    NULL::INTERVAL AS end_offset,
    NULL::INTERVAL AS drop_after,
    NULL::INTERVAL AS compress_after,
    NULL::TEXT AS kind
WHERE FALSE;
