-- balances_latest: the newest balance of every currency of every exchange account collected,
-- read from market_data's BALANCE rows (docs/configuration.md, "Balances").
--
-- A BALANCE row is one currency at one moment: symbol is the currency ("USDT"), "timestamp"
-- the exchange's time of that balance (OKX: the currency's uTime), data the balance under
-- venue-neutral names, set by each venue's parser: currency, equity, cash, available, frozen
-- (OKX: ccy, eq, cashBal, availBal, frozenBal). The numbers are decimal strings as the
-- exchange wrote them, read here as NUMERIC, so no value is rounded; an empty string (a field
-- that does not apply to the account mode) is NULL.
--
-- DISTINCT ON picks one row per (exchange, currency): the latest "timestamp", and of two rows
-- with the same timestamp (two contents: the exchange changed its mind within a millisecond)
-- the one stored last. The key index of sql/0118 (exchange, symbol, data_type, "timestamp"
-- DESC, ...) serves the order. A plain view: balances are few rows, and it is always current.

CREATE OR REPLACE VIEW balances_latest AS
SELECT DISTINCT ON (md.exchange, md.symbol)
    md.exchange,
    md.symbol AS currency,
    nullif(md."data" ->> 'equity', '')::NUMERIC AS equity,
    nullif(md."data" ->> 'cash', '')::NUMERIC AS cash,
    nullif(md."data" ->> 'available', '')::NUMERIC AS available,
    nullif(md."data" ->> 'frozen', '')::NUMERIC AS frozen,
    md."timestamp" AS as_of
FROM market_data AS md
WHERE md.data_type = 'balance'
ORDER BY md.exchange ASC, md.symbol ASC, md."timestamp" DESC, md.id DESC;
