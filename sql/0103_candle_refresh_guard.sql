-- tcpd:requires-tsl
-- The retention guard of 0101 compared `start_offset + margin > drop_after`; a refresh policy
-- with a NULL start_offset (refresh from the beginning) made that NULL, so it passed, and its
-- next run deleted every candle whose source rows a retention had already dropped.
-- A NULL start_offset now counts as an infinitely wide window: it is refused while the source
-- of that timeframe (raw_trades, or the candles it is built from) has a retention.

CREATE OR REPLACE FUNCTION tcpd_check_candle_policies() RETURNS VOID
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
        AND (r.start_offset IS NULL OR r.start_offset + tcpd_retention_margin() > k.drop_after)
    ORDER BY r.start_offset DESC NULLS FIRST
    LIMIT 1;
    IF FOUND AND bad.start_offset IS NULL THEN
        RAISE EXCEPTION
            'the % refresh window has no start (start_offset NULL) but raw_trades retention drops data older than %: its next run would delete the candles of the dropped data',
            bad.timeframe, bad.drop_after
            USING HINT = format(
                'give the %s refresh a start_offset of at most %s, or keep raw data forever first (tcpd_set_raw_retention(NULL))',
                bad.timeframe, bad.drop_after - tcpd_retention_margin()
            );
    ELSIF FOUND THEN
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
        AND (r.start_offset IS NULL OR r.start_offset + tcpd_retention_margin() > k.drop_after)
    ORDER BY r.start_offset DESC NULLS FIRST
    LIMIT 1;
    IF FOUND AND bad.start_offset IS NULL THEN
        RAISE EXCEPTION
            'the % refresh window has no start (start_offset NULL) but candles_% retention drops candles older than %: its next run would delete the candles built from them',
            bad.timeframe, bad.src, bad.drop_after
            USING HINT = format(
                'give the %s refresh a start_offset of at most %s, or keep candles_%s forever first (tcpd_set_candle_retention(%L, NULL))',
                bad.timeframe, bad.drop_after - tcpd_retention_margin(), bad.src, bad.src
            );
    ELSIF FOUND THEN
        RAISE EXCEPTION 'candles_% retention % is inside the % refresh window (start_offset %)',
            bad.src, bad.drop_after, bad.timeframe, bad.start_offset
            USING HINT = format('keep candles at least start_offset + %s', tcpd_retention_margin());
    END IF;
END;
$$;
