-- market_data gets a natural key, so a resent observation is a duplicate and not a second row:
-- a trade resent after a resubscribe, the books5 and tickers snapshot an exchange pushes on
-- every (re)subscribe, a batch retried after an outage, a second collector (active-active).
--
-- The key is (exchange, symbol, data_type, "timestamp", content): the content is the 64-bit
-- jsonb_hash_extended of the stored jsonb, which is canonical (key order and spacing do not
-- matter). One rule for every data type, with no venue's field names in SQL:
--   trade     the exchange's trade object, which carries the trade id: one row per trade
--   orderbook one row per snapshot and exchange timestamp (a resent snapshot is the same)
--   ticker    likewise
--   candle    the closed candle with its interval: 1m and 5m candles of the same start differ
-- jsonb_hash_extended hashes the jsonb as stored: md5 of its text would need the jsonb printed
-- for every row, which made an INSERT of 300,000 trade objects 1.47x slower than without a
-- key, against 1.11x for this hash (docs/performance.md). Two different observations with the
-- same exchange, symbol, type and millisecond would have to collide in 64 bits to be taken
-- for one: negligible. The hash is PostgreSQL's own for jsonb hash indexes and hash
-- partitions, stable like them. The unique index includes "timestamp", as every
-- unique index of a hypertable must, and replaces (exchange, symbol, "timestamp" DESC): it
-- serves the same per-symbol time ranges once data_type is given, and a third index would
-- slow COPY down (see docs/migrations.md).

-- Duplicates already stored: keep the first stored copy (lowest id) of each observation.
-- A self-join on id, not ctid: compressed chunks (TSL) have no ctid to select.
DELETE FROM market_data AS later
USING market_data AS earlier
WHERE
    earlier.exchange = later.exchange
    AND earlier.symbol = later.symbol
    AND earlier.data_type = later.data_type
    AND earlier."timestamp" = later."timestamp"
    AND jsonb_hash_extended(earlier."data", 0) = jsonb_hash_extended(later."data", 0)
    AND earlier.id < later.id;

CREATE UNIQUE INDEX market_data_observation_key
ON market_data (exchange, symbol, data_type, "timestamp" DESC, jsonb_hash_extended("data", 0));

DROP INDEX market_data_exchange_symbol_time_idx;
