-- market_data gets a natural key, so a resent observation is a duplicate and not a second row:
-- a trade resent after a resubscribe, the books5 and tickers snapshot an exchange pushes on
-- every (re)subscribe, a batch retried after an outage, a second collector (active-active).
--
-- The key is (exchange, symbol, data_type, "timestamp", content): the content is md5 of the
-- jsonb text, which jsonb makes canonical (key order and spacing do not matter). One rule for
-- every data type, with no venue's field names in SQL:
--   trade     the exchange's trade object, which carries the trade id: one row per trade
--   orderbook one row per snapshot and exchange timestamp (a resent snapshot is the same)
--   ticker    likewise
--   candle    the closed candle with its interval: 1m and 5m candles of the same start differ
-- The hash is a uuid (16 bytes, fixed width). The unique index includes "timestamp", as every
-- unique index of a hypertable must, and replaces (exchange, symbol, "timestamp" DESC): it
-- serves the same per-symbol time ranges once data_type is given, and a third index would
-- slow COPY down (see docs/migrations.md).

-- Duplicates already stored: keep the first stored copy (lowest id) of each observation.
DELETE FROM market_data
WHERE (tableoid, ctid) IN (
    SELECT
        copies.tableoid,
        copies.ctid
    FROM (
        SELECT
            tableoid,
            ctid,
            row_number() OVER (
                PARTITION BY exchange, symbol, data_type, "timestamp", md5("data"::TEXT)
                ORDER BY id, created_at
            ) AS copy_number
        FROM market_data
    ) AS copies
    WHERE copies.copy_number > 1
);

CREATE UNIQUE INDEX market_data_observation_key
ON market_data (exchange, symbol, data_type, "timestamp" DESC, (md5("data"::TEXT)::UUID));

DROP INDEX market_data_exchange_symbol_time_idx;
