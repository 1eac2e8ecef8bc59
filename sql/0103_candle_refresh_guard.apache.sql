-- Apache edition variant of 0103_candle_refresh_guard.sql: this edition has no refresh or
-- retention policies, so there is no guard to fix. The file only records the version.

COMMENT ON VIEW tcpd_candle_policies IS 'refresh, compression and retention policies (none on the Apache edition)';
