-- Two facts of a trade that candles need, and the instrument metadata that turns sizes into
-- base and quote volumes (see docs/candles.md, "Volumes").
-- fill_count: exchanges such as OKX push one trade per taker order and price, aggregating
--   several fills; the count of fills it reports (1 where the exchange reports none).
-- trade_seq: the exchange's own order of trades of one instrument (OKX: the numeric tradeId,
--   increasing per instrument), 0 where the exchange defines none. Candles order trades of
--   equal "timestamp" by (trade_seq, id), so open/close no longer depend on storage order.
-- Both are NOT NULL with a constant default: old rows read 1 and 0 without a rewrite, also in
-- compressed chunks.

ALTER TABLE raw_trades ADD COLUMN fill_count INTEGER NOT NULL DEFAULT 1;

ALTER TABLE raw_trades ADD COLUMN trade_seq BIGINT NOT NULL DEFAULT 0;

-- One row per instrument of an exchange, as its metadata service last described it.
-- Generic shape: an exchange adapter maps its own fields onto these columns.
-- instrument_type: spot, swap, futures (lower case); contract_type: linear or inverse for
-- contracts, NULL for spot. A contract's size unit is contract_value * contract_multiplier of
-- contract_value_currency (linear: the base currency; inverse: the quote currency).
CREATE TABLE instruments (
    exchange VARCHAR(50) NOT NULL,
    symbol VARCHAR(50) NOT NULL,
    instrument_type VARCHAR(20) NOT NULL,
    base_currency VARCHAR(20),
    quote_currency VARCHAR(20),
    settle_currency VARCHAR(20),
    contract_type VARCHAR(10),
    contract_value NUMERIC,
    contract_value_currency VARCHAR(20),
    contract_multiplier NUMERIC,
    lot_size NUMERIC,
    tick_size NUMERIC,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (exchange, symbol),
    CONSTRAINT instruments_contract_type_check CHECK (contract_type IN ('linear', 'inverse')),
    CONSTRAINT instruments_contract_check CHECK (
        contract_type IS NULL OR (contract_value > 0 AND contract_multiplier > 0)
    )
);

-- Base and quote volume of a candle from its size sums (docs/candles.md, "Volumes").
-- contract_size = contract_value * contract_multiplier; NULL type: sizes are in the base
-- currency (spot, or no instruments row). Inlined by the planner (plain SQL, no SET clause).
CREATE FUNCTION tcpd_candle_volumes(
    contract_type TEXT, contract_size NUMERIC, volume NUMERIC, price_size NUMERIC, size_per_price NUMERIC
) RETURNS TABLE (base_volume NUMERIC, quote_volume NUMERIC)
LANGUAGE sql IMMUTABLE  -- noqa: RF06
AS $$
SELECT
    CASE contract_type
        WHEN 'inverse' THEN size_per_price * contract_size
        WHEN 'linear' THEN volume * contract_size
        ELSE volume
    END,
    CASE contract_type
        WHEN 'inverse' THEN volume * contract_size
        WHEN 'linear' THEN price_size * contract_size
        ELSE price_size
    END
$$;
