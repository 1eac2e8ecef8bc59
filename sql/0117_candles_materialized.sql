-- TSL edition: nothing to do. 0117_candles_materialized.apache.sql gives the Apache edition
-- materialized candle tables behind the same views; on TSL the continuous aggregates of 0105
-- (candles_<tf>_agg, refreshed by their policies) already are that. A version with an Apache
-- variant needs this main file, so it only records the version (and says so on the view).

COMMENT ON VIEW candles_1m IS '1-minute candles, read from the continuous aggregate candles_1m_agg';
