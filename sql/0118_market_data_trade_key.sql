-- A raw trade in market_data is one row per trade, whichever source delivered it.
--
-- Until now market_data's key (sql/0102) was its content: (exchange, symbol, data_type,
-- "timestamp", jsonb_hash_extended(data)). A trade can reach the database in two shapes: the
-- exchange's WebSocket trade object, and the object its REST trade history returns when a gap
-- is filled (docs/gaps.md). The two differ (OKX's REST object has no count and no seqId;
-- Binance's has other field names altogether), so a trade stored by both (a second service of
-- an active-active pair filling a hole the first one had already stored, a fill racing a
-- replayed spool) was two rows in market_data, while raw_trades held it once.
--
-- trade_id: the trade's id for a raw trade (data_type 'trade'), as in raw_trades.trade_id; NULL
-- for every other observation. The key's last part is the trade id's hash where there is one,
-- the content's hash otherwise: books, tickers and candles keep the rule of 0102, trades get
-- raw_trades' rule. The first copy stored stays (the others are duplicates), so a trade's row
-- holds the shape of whichever source stored it first. trade_id also joins a raw copy to its
-- trade: market_data.trade_id = raw_trades.trade_id with the same exchange, symbol and
-- "timestamp".
--
-- Rows stored before this file keep trade_id NULL and their content key: they are not
-- rewritten (an UPDATE of every trade row, compressed chunks included, would cost an upgrade
-- more than it protects: a later copy of such a trade could only come from a gap fill, which
-- asks for the trades after the last stored one). hashtextextended is PostgreSQL's 64-bit
-- text hash, as jsonb_hash_extended is for jsonb; a trade id is short, so hashing it is
-- cheaper than hashing the whole trade object.

ALTER TABLE market_data ADD COLUMN trade_id VARCHAR(100);

DROP INDEX market_data_observation_key;

CREATE UNIQUE INDEX market_data_observation_key
ON market_data (
    exchange,
    symbol,
    data_type,
    "timestamp" DESC,
    (coalesce(hashtextextended(trade_id, 0), jsonb_hash_extended("data", 0)))
);
