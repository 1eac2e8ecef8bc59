-- Apache edition variant of 0106_candles_rematerialize.sql: candles are computed at query time
-- here, there is nothing to materialize. The file only records the version.

COMMENT ON VIEW candles_1m IS '1-minute candles, computed at query time from raw_trades';
