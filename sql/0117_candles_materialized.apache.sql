-- tcpd:no-transaction
-- Apache edition: materialized candles (docs/candles.md, "Materialized candles on the Apache
-- edition"). Until 0115 the views computed every candle from raw_trades at query time, so
-- candles_1d over a year aggregated every trade of that year. Now each timeframe has a plain
-- table materialized_candles_<tf> with the aggregate columns of the TSL edition's
-- candles_<tf>_agg, kept by tcpd_refresh_apache_candles() (the service runs it every
-- candles.refresh_interval seconds; ingest/storage/candle_refresh.py). The views keep their
-- names, columns and rules (closed by the wall clock, complete by ingest_watermarks) and read
--   - the table, for buckets before the last refresh's cutoff (materialized_before),
--   - raw_trades, for closed buckets from that cutoff on (the tail the refresh has not reached),
--   - raw_trades, for materialized buckets holding rows the last refresh did not see (late or
--     backfilled trades): such a bucket is computed live, not read from the table,
-- so a query is right at any time, whether the service refreshed a second or a week ago.
-- "Rows the last refresh did not see": raw_trades.inserted_xid (new column, default: the
-- inserting transaction's id) is not visible in the snapshot that refresh recorded. Exact
-- under concurrent writers, explicit ids and any commit order (raw_trades.id is not: a
-- transaction can commit a lower id after a higher one). A BRIN index finds those rows
-- without reading the rest. Rows deleted by hand are not noticed: after a DELETE from
-- raw_trades, call tcpd_refresh_apache_candles(from, to) over the range.
-- Statement by statement (no transaction) and idempotent: adding the column takes a brief
-- exclusive lock, the first refresh (every candle of the history, as long as one query of
-- candles_1m over everything took before) then runs without holding up the writer.

ALTER TABLE raw_trades ADD COLUMN IF NOT EXISTS inserted_xid BIGINT;

ALTER TABLE raw_trades ALTER COLUMN inserted_xid SET DEFAULT txid_current();

COMMENT ON COLUMN raw_trades.inserted_xid IS
'Apache edition: the id of the transaction that inserted the row (NULL: before 0117); '
'tcpd_refresh_apache_candles() finds the rows it has not seen by it';

CREATE INDEX IF NOT EXISTS raw_trades_inserted_xid_idx ON raw_trades
USING brin (inserted_xid) WITH (autosummarize = TRUE);

CREATE TABLE IF NOT EXISTS materialized_candles_1m (
    exchange VARCHAR(50) NOT NULL,
    symbol VARCHAR(50) NOT NULL,
    bucket_start TIMESTAMPTZ NOT NULL,
    open NUMERIC,
    high NUMERIC,
    low NUMERIC,
    "close" NUMERIC,
    volume NUMERIC,
    price_size NUMERIC,
    size_per_price NUMERIC,
    trade_count BIGINT,
    trade_rows BIGINT,
    PRIMARY KEY (exchange, symbol, bucket_start)
);

CREATE TABLE IF NOT EXISTS materialized_candles_5m (
    exchange VARCHAR(50) NOT NULL,
    symbol VARCHAR(50) NOT NULL,
    bucket_start TIMESTAMPTZ NOT NULL,
    open NUMERIC,
    high NUMERIC,
    low NUMERIC,
    "close" NUMERIC,
    volume NUMERIC,
    price_size NUMERIC,
    size_per_price NUMERIC,
    trade_count BIGINT,
    trade_rows BIGINT,
    PRIMARY KEY (exchange, symbol, bucket_start)
);

CREATE TABLE IF NOT EXISTS materialized_candles_15m (
    exchange VARCHAR(50) NOT NULL,
    symbol VARCHAR(50) NOT NULL,
    bucket_start TIMESTAMPTZ NOT NULL,
    open NUMERIC,
    high NUMERIC,
    low NUMERIC,
    "close" NUMERIC,
    volume NUMERIC,
    price_size NUMERIC,
    size_per_price NUMERIC,
    trade_count BIGINT,
    trade_rows BIGINT,
    PRIMARY KEY (exchange, symbol, bucket_start)
);

CREATE TABLE IF NOT EXISTS materialized_candles_1h (
    exchange VARCHAR(50) NOT NULL,
    symbol VARCHAR(50) NOT NULL,
    bucket_start TIMESTAMPTZ NOT NULL,
    open NUMERIC,
    high NUMERIC,
    low NUMERIC,
    "close" NUMERIC,
    volume NUMERIC,
    price_size NUMERIC,
    size_per_price NUMERIC,
    trade_count BIGINT,
    trade_rows BIGINT,
    PRIMARY KEY (exchange, symbol, bucket_start)
);

CREATE TABLE IF NOT EXISTS materialized_candles_4h (
    exchange VARCHAR(50) NOT NULL,
    symbol VARCHAR(50) NOT NULL,
    bucket_start TIMESTAMPTZ NOT NULL,
    open NUMERIC,
    high NUMERIC,
    low NUMERIC,
    "close" NUMERIC,
    volume NUMERIC,
    price_size NUMERIC,
    size_per_price NUMERIC,
    trade_count BIGINT,
    trade_rows BIGINT,
    PRIMARY KEY (exchange, symbol, bucket_start)
);

CREATE TABLE IF NOT EXISTS materialized_candles_1d (
    exchange VARCHAR(50) NOT NULL,
    symbol VARCHAR(50) NOT NULL,
    bucket_start TIMESTAMPTZ NOT NULL,
    open NUMERIC,
    high NUMERIC,
    low NUMERIC,
    "close" NUMERIC,
    volume NUMERIC,
    price_size NUMERIC,
    size_per_price NUMERIC,
    trade_count BIGINT,
    trade_rows BIGINT,
    PRIMARY KEY (exchange, symbol, bucket_start)
);

CREATE TABLE IF NOT EXISTS tcpd_apache_candle_state (
    timeframe TEXT PRIMARY KEY REFERENCES candle_timeframes (timeframe),
    materialized_before TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    refreshed_snapshot PG_SNAPSHOT,
    refreshed_at TIMESTAMPTZ
);

COMMENT ON TABLE tcpd_apache_candle_state IS
'per timeframe: materialized_candles_<tf> holds every bucket before materialized_before, '
'computed from every raw_trades row visible in refreshed_snapshot (and maybe more)';

INSERT INTO tcpd_apache_candle_state (timeframe)
SELECT timeframe FROM candle_timeframes
ON CONFLICT (timeframe) DO NOTHING;

-- The buckets of timeframe `tf` below its materialized_before that hold rows the last refresh
-- did not see, as ranges of consecutive buckets (so a backfilled month is one range, not
-- 43,200 minutes). STABLE: it reads with the snapshot of the query that calls it, the same
-- one the views read the tables with. It looks in every chunk (a late row can be anywhere)
-- through the BRIN index on inserted_xid, a few pages per chunk once the refresh has
-- summarized the index (tcpd_summarize_inserted_xid). The query is built with its values as
-- literals and run serially: a generic plan over a year of daily chunks (with a parameter
-- for the snapshot) spent 26 s in executor start-up for no row, a parallel one ~1 s starting
-- workers; this way it is planned per call (a few ms per hundred chunks) and reads nothing
-- else.
CREATE OR REPLACE FUNCTION tcpd_apache_candles_late(tf TEXT)
RETURNS TABLE (exchange VARCHAR, symbol VARCHAR, range_start TIMESTAMPTZ, range_end TIMESTAMPTZ)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
SET enable_seqscan = OFF
SET max_parallel_workers_per_gather = 0
AS $$
DECLARE
    st RECORD;
BEGIN
    SELECT s.refreshed_snapshot, s.materialized_before, t.width INTO st
    FROM tcpd_apache_candle_state AS s
    INNER JOIN candle_timeframes AS t ON s.timeframe = t.timeframe
    WHERE s.timeframe = tf;
    IF st.refreshed_snapshot IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'WITH b AS MATERIALIZED ('
        ' SELECT DISTINCT r.exchange, r.symbol, time_bucket(%1$L::INTERVAL, r."timestamp") AS bucket_start'
        ' FROM raw_trades AS r WHERE r.inserted_xid >= %2$s'
        ' AND NOT pg_visible_in_snapshot(r.inserted_xid::TEXT::XID8, %3$L::PG_SNAPSHOT)),'
        ' g AS (SELECT b.exchange, b.symbol, b.bucket_start, b.bucket_start - %1$L::INTERVAL'
        ' * row_number() OVER (PARTITION BY b.exchange, b.symbol ORDER BY b.bucket_start) AS island'
        ' FROM b WHERE b.bucket_start < %4$L)'
        ' SELECT g.exchange, g.symbol, min(g.bucket_start), max(g.bucket_start) + %1$L::INTERVAL'
        ' FROM g GROUP BY g.exchange, g.symbol, g.island',
        st.width,
        pg_snapshot_xmin(st.refreshed_snapshot)::TEXT::BIGINT,
        st.refreshed_snapshot,
        st.materialized_before
    );
END;
$$;

-- Summarize the page ranges of every raw_trades chunk's inserted_xid index that no summary
-- covers yet, the last, partly filled range of each chunk included (VACUUM and autosummarize
-- leave that one out, and a chunk smaller than one range, 128 pages, is all "last range": at
-- one trade every 6 s a year of daily chunks was never summarized and every lookup read the
-- whole table). Once summarized, inserts keep a range's summary up to date. A no-op costs
-- about 20 microseconds per chunk. Returns the ranges summarized.
CREATE OR REPLACE FUNCTION tcpd_summarize_inserted_xid()
RETURNS BIGINT
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN (
        SELECT coalesce(sum(brin_summarize_new_values(i.indexrelid)), 0)::BIGINT
        FROM pg_inherits AS h
        INNER JOIN pg_index AS i ON h.inhrelid = i.indrelid
        INNER JOIN pg_class AS c ON i.indexrelid = c.oid
        INNER JOIN pg_am AS a ON c.relam = a.oid
        WHERE h.inhparent = 'raw_trades'::REGCLASS AND a.amname = 'brin'
    );
END;
$$;

-- What the views compute from raw_trades for timeframe `tf`: the closed buckets from
-- materialized_before on, and the late ranges above. The time bounds are put in each query as
-- literals, so only the chunks they reach are planned and read.
CREATE OR REPLACE FUNCTION tcpd_apache_candles_live(tf TEXT)
RETURNS TABLE (
    exchange VARCHAR,
    symbol VARCHAR,
    bucket_start TIMESTAMPTZ,
    open NUMERIC,
    high NUMERIC,
    low NUMERIC,
    "close" NUMERIC,
    volume NUMERIC,
    price_size NUMERIC,
    size_per_price NUMERIC,
    trade_count BIGINT,
    trade_rows BIGINT
)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    st RECORD;
    late RECORD;
    aggs CONSTANT TEXT := 'first(r.price, extract(EPOCH FROM r."timestamp") * 1e46 + r.trade_seq * 1e20 + r.id),'
        ' max(r.price), min(r.price),'
        ' last(r.price, extract(EPOCH FROM r."timestamp") * 1e46 + r.trade_seq * 1e20 + r.id),'
        ' sum(r.size), sum(r.price * r.size), sum(r.size / nullif(r.price, 0)), sum(r.fill_count)::BIGINT,'
        ' count(*)';
BEGIN
    SELECT s.materialized_before, t.width INTO st
    FROM tcpd_apache_candle_state AS s
    INNER JOIN candle_timeframes AS t ON s.timeframe = t.timeframe
    WHERE s.timeframe = tf;
    RETURN QUERY EXECUTE format(
        'SELECT r.exchange, r.symbol, time_bucket(%1$L::INTERVAL, r."timestamp"), %2$s FROM raw_trades AS r'
        ' WHERE r."timestamp" >= %3$L AND r."timestamp" < %4$L GROUP BY 1, 2, 3',
        st.width, aggs, st.materialized_before, time_bucket(st.width, now())
    );
    SELECT
        array_agg(l.exchange) AS exchanges,
        array_agg(l.symbol) AS symbols,
        array_agg(l.range_start) AS starts,
        array_agg(l.range_end) AS ends,
        min(l.range_start) AS lo,
        max(l.range_end) AS hi
    INTO late
    FROM tcpd_apache_candles_late(tf) AS l;
    IF late.lo IS NOT NULL THEN
        RETURN QUERY EXECUTE format(
            'SELECT r.exchange, r.symbol, time_bucket(%1$L::INTERVAL, r."timestamp"), %2$s'
            ' FROM unnest($1, $2, $3, $4) AS l (exchange, symbol, range_start, range_end)'
            ' INNER JOIN raw_trades AS r ON r.exchange = l.exchange AND r.symbol = l.symbol'
            ' AND r."timestamp" >= l.range_start AND r."timestamp" < l.range_end'
            ' WHERE r."timestamp" >= %3$L AND r."timestamp" < %4$L GROUP BY 1, 2, 3',
            st.width, aggs, late.lo, late.hi
        ) USING late.exchanges, late.symbols, late.starts, late.ends;
    END IF;
END;
$$;

-- Materializes what changed since the last run, finest timeframe first (each coarser one is
-- built from the one below it, as on TSL): for each timeframe
--   (a) every bucket from the last cutoff to the start of the interval in progress now,
--   (b) the buckets of [range_start, range_end) below the last cutoff, when given (a backfill,
--       or after deleting raw trades by hand),
--   (c) the buckets below the last cutoff that hold rows the last run did not see, as ranges of
--       consecutive buckets.
-- Each is deleted and computed again (idempotent). Then the cutoff and this run's snapshot
-- (taken before reading anything) are recorded. Runs one at a time (advisory lock); the views
-- read the old or the new state, never a half. Returns the candles written per timeframe.
CREATE OR REPLACE FUNCTION tcpd_refresh_apache_candles(
    range_start TIMESTAMPTZ DEFAULT NULL, range_end TIMESTAMPTZ DEFAULT NULL
) RETURNS TABLE (candle_timeframe TEXT, candles_written BIGINT)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    tf RECORD;
    snap PG_SNAPSHOT;
    cutoff TIMESTAMPTZ;
    rs TIMESTAMPTZ;
    re TIMESTAMPTZ;
    src TEXT;
    tcol TEXT;
    aggs TEXT;
    written BIGINT;
    n BIGINT;
BEGIN
    IF (range_start IS NULL) <> (range_end IS NULL) THEN
        RAISE EXCEPTION 'tcpd_refresh_apache_candles: give both range_start and range_end, or neither';
    END IF;
    -- 'tcpdcndl' as a bigint: one refresh at a time.
    PERFORM pg_advisory_xact_lock(x'74637064636e646c'::BIGINT);
    PERFORM tcpd_summarize_inserted_xid();
    snap := pg_current_snapshot();
    CREATE TEMP TABLE IF NOT EXISTS tcpd_candle_touched (
        key_exchange TEXT, key_symbol TEXT, key_start TIMESTAMPTZ
    ) ON COMMIT DROP;
    CREATE TEMP TABLE IF NOT EXISTS tcpd_candle_ranges (
        key_exchange TEXT, key_symbol TEXT, key_start TIMESTAMPTZ, key_end TIMESTAMPTZ
    ) ON COMMIT DROP;
    TRUNCATE tcpd_candle_touched;
    -- The 1m buckets (below the last cutoff) of rows the last run did not see.
    INSERT INTO tcpd_candle_touched
    SELECT l.exchange, l.symbol, g.bucket_start
    FROM tcpd_apache_candles_late('1m') AS l
    CROSS JOIN
        LATERAL generate_series(
            l.range_start, l.range_end - INTERVAL '1 minute', INTERVAL '1 minute'
        ) AS g (bucket_start);
    ANALYZE tcpd_candle_touched;
    FOR tf IN
        SELECT t.timeframe, t.width, t.built_from, s.materialized_before
        FROM candle_timeframes AS t
        INNER JOIN tcpd_apache_candle_state AS s ON t.timeframe = s.timeframe
        ORDER BY t.sort_order
    LOOP
        IF tf.built_from IS NULL THEN
            src := 'raw_trades';
            tcol := '"timestamp"';
            aggs := 'first(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id),'
                ' max(price), min(price),'
                ' last(price, extract(EPOCH FROM "timestamp") * 1e46 + trade_seq * 1e20 + id),'
                ' sum(size), sum(price * size), sum(size / nullif(price, 0)), sum(fill_count)::BIGINT, count(*)';
        ELSE
            src := format('materialized_candles_%s', tf.built_from);
            tcol := 'bucket_start';
            aggs := 'first(open, bucket_start), max(high), min(low), last("close", bucket_start),'
                ' sum(volume), sum(price_size), sum(size_per_price), sum(trade_count)::BIGINT,'
                ' sum(trade_rows)::BIGINT';
        END IF;
        cutoff := greatest(time_bucket(tf.width, now()), tf.materialized_before);
        written := 0;
        -- (b) the range asked for, below the last cutoff
        rs := NULL;
        re := NULL;
        IF range_start IS NOT NULL AND range_start < range_end THEN
            rs := time_bucket(tf.width, range_start);
            re := least(time_bucket(tf.width, range_end - INTERVAL '1 microsecond') + tf.width, tf.materialized_before);
        END IF;
        -- (c) ranges of consecutive buckets holding rows the last run did not see, outside (b)
        TRUNCATE tcpd_candle_ranges;
        INSERT INTO tcpd_candle_ranges
        WITH b AS (
            SELECT DISTINCT k.key_exchange, k.key_symbol, time_bucket(tf.width, k.key_start) AS key_start
            FROM tcpd_candle_touched AS k
        ),

        g AS (
            SELECT
                b.key_exchange,
                b.key_symbol,
                b.key_start,
                b.key_start - tf.width * row_number() OVER (
                    PARTITION BY b.key_exchange, b.key_symbol ORDER BY b.key_start
                ) AS island
            FROM b
            WHERE
                b.key_start < tf.materialized_before
                AND (rs IS NULL OR NOT (b.key_start >= rs AND b.key_start < re))
        )

        SELECT g.key_exchange, g.key_symbol, min(g.key_start), max(g.key_start) + tf.width
        FROM g
        GROUP BY g.key_exchange, g.key_symbol, g.island;
        -- (a) and (b) are ranges of every symbol
        IF tf.materialized_before < cutoff THEN
            INSERT INTO tcpd_candle_ranges VALUES (NULL, NULL, tf.materialized_before, cutoff);
        END IF;
        IF rs < re THEN
            INSERT INTO tcpd_candle_ranges VALUES (NULL, NULL, rs, re);
        END IF;
        ANALYZE tcpd_candle_ranges;
        FOR rs, re IN SELECT k.key_start, k.key_end FROM tcpd_candle_ranges AS k WHERE k.key_exchange IS NULL LOOP
            EXECUTE format(
                'DELETE FROM materialized_candles_%s WHERE bucket_start >= $1 AND bucket_start < $2', tf.timeframe
            ) USING rs, re;
            EXECUTE format(
                'INSERT INTO materialized_candles_%s SELECT exchange, symbol, time_bucket($3, %s), %s'
                ' FROM %I WHERE %s >= $1 AND %s < $2 GROUP BY 1, 2, 3',
                tf.timeframe, tcol, aggs, src, tcol, tcol
            ) USING rs, re, tf.width;
            GET DIAGNOSTICS n = ROW_COUNT;
            written := written + n;
        END LOOP;
        IF EXISTS (SELECT FROM tcpd_candle_ranges AS k WHERE k.key_exchange IS NOT NULL) THEN
            EXECUTE format(
                'DELETE FROM materialized_candles_%s AS m USING tcpd_candle_ranges AS k'
                ' WHERE m.exchange = k.key_exchange AND m.symbol = k.key_symbol'
                ' AND m.bucket_start >= k.key_start AND m.bucket_start < k.key_end',
                tf.timeframe
            );
            EXECUTE format(
                'INSERT INTO materialized_candles_%s SELECT x.exchange, x.symbol, time_bucket($1, x.%s), %s'
                ' FROM tcpd_candle_ranges AS k INNER JOIN %I AS x ON x.exchange = k.key_exchange'
                ' AND x.symbol = k.key_symbol AND x.%s >= k.key_start AND x.%s < k.key_end GROUP BY 1, 2, 3',
                tf.timeframe, tcol, aggs, src, tcol, tcol
            ) USING tf.width;
            GET DIAGNOSTICS n = ROW_COUNT;
            written := written + n;
        END IF;
        UPDATE tcpd_apache_candle_state AS s
        SET materialized_before = cutoff, refreshed_snapshot = snap, refreshed_at = now()
        WHERE s.timeframe = tf.timeframe;
        candle_timeframe := tf.timeframe;
        candles_written := written;
        RETURN NEXT;
    END LOOP;
END;
$$;

COMMENT ON FUNCTION tcpd_refresh_apache_candles(TIMESTAMPTZ, TIMESTAMPTZ) IS
'Apache edition: materialize the closed candles that changed since the last run (and every bucket of '
'[range_start, range_end) when given); the service runs it every candles.refresh_interval seconds';

-- The history: every closed candle, once.
SELECT
    candle_timeframe,
    candles_written
FROM tcpd_refresh_apache_candles();

CREATE OR REPLACE VIEW candles_1m AS
WITH live AS MATERIALIZED (
    SELECT
        l.exchange,
        l.symbol,
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM tcpd_apache_candles_live('1m') AS l
)

SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '1 minute' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        m.exchange,
        m.symbol,
        m.bucket_start,
        m.open,
        m.high,
        m.low,
        m."close",
        m.volume,
        m.price_size,
        m.size_per_price,
        m.trade_count,
        m.trade_rows
    FROM materialized_candles_1m AS m
    WHERE
        m.bucket_start < (
            SELECT s.materialized_before
            FROM tcpd_apache_candle_state AS s
            WHERE s.timeframe = '1m'
        )
        AND NOT EXISTS (
            SELECT FROM live AS l
            WHERE l.exchange = m.exchange AND l.symbol = m.symbol AND l.bucket_start = m.bucket_start
        )
    UNION ALL
    SELECT
        l.exchange::VARCHAR(50),
        l.symbol::VARCHAR(50),
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM live AS l
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '1 minute'
    AND NOT EXISTS (
        SELECT FROM ingest_watermarks AS w
        WHERE
            w.exchange = c.exchange
            AND w.symbol = c.symbol
            AND w.committed_through < c.bucket_start + INTERVAL '1 minute'
    );

CREATE OR REPLACE VIEW candles_5m AS
WITH live AS MATERIALIZED (
    SELECT
        l.exchange,
        l.symbol,
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM tcpd_apache_candles_live('5m') AS l
)

SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '5 minutes' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        m.exchange,
        m.symbol,
        m.bucket_start,
        m.open,
        m.high,
        m.low,
        m."close",
        m.volume,
        m.price_size,
        m.size_per_price,
        m.trade_count,
        m.trade_rows
    FROM materialized_candles_5m AS m
    WHERE
        m.bucket_start < (
            SELECT s.materialized_before
            FROM tcpd_apache_candle_state AS s
            WHERE s.timeframe = '5m'
        )
        AND NOT EXISTS (
            SELECT FROM live AS l
            WHERE l.exchange = m.exchange AND l.symbol = m.symbol AND l.bucket_start = m.bucket_start
        )
    UNION ALL
    SELECT
        l.exchange::VARCHAR(50),
        l.symbol::VARCHAR(50),
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM live AS l
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '5 minutes'
    AND NOT EXISTS (
        SELECT FROM ingest_watermarks AS w
        WHERE
            w.exchange = c.exchange
            AND w.symbol = c.symbol
            AND w.committed_through < c.bucket_start + INTERVAL '5 minutes'
    );

CREATE OR REPLACE VIEW candles_15m AS
WITH live AS MATERIALIZED (
    SELECT
        l.exchange,
        l.symbol,
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM tcpd_apache_candles_live('15m') AS l
)

SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '15 minutes' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        m.exchange,
        m.symbol,
        m.bucket_start,
        m.open,
        m.high,
        m.low,
        m."close",
        m.volume,
        m.price_size,
        m.size_per_price,
        m.trade_count,
        m.trade_rows
    FROM materialized_candles_15m AS m
    WHERE
        m.bucket_start < (
            SELECT s.materialized_before
            FROM tcpd_apache_candle_state AS s
            WHERE s.timeframe = '15m'
        )
        AND NOT EXISTS (
            SELECT FROM live AS l
            WHERE l.exchange = m.exchange AND l.symbol = m.symbol AND l.bucket_start = m.bucket_start
        )
    UNION ALL
    SELECT
        l.exchange::VARCHAR(50),
        l.symbol::VARCHAR(50),
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM live AS l
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '15 minutes'
    AND NOT EXISTS (
        SELECT FROM ingest_watermarks AS w
        WHERE
            w.exchange = c.exchange
            AND w.symbol = c.symbol
            AND w.committed_through < c.bucket_start + INTERVAL '15 minutes'
    );

CREATE OR REPLACE VIEW candles_1h AS
WITH live AS MATERIALIZED (
    SELECT
        l.exchange,
        l.symbol,
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM tcpd_apache_candles_live('1h') AS l
)

SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '1 hour' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        m.exchange,
        m.symbol,
        m.bucket_start,
        m.open,
        m.high,
        m.low,
        m."close",
        m.volume,
        m.price_size,
        m.size_per_price,
        m.trade_count,
        m.trade_rows
    FROM materialized_candles_1h AS m
    WHERE
        m.bucket_start < (
            SELECT s.materialized_before
            FROM tcpd_apache_candle_state AS s
            WHERE s.timeframe = '1h'
        )
        AND NOT EXISTS (
            SELECT FROM live AS l
            WHERE l.exchange = m.exchange AND l.symbol = m.symbol AND l.bucket_start = m.bucket_start
        )
    UNION ALL
    SELECT
        l.exchange::VARCHAR(50),
        l.symbol::VARCHAR(50),
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM live AS l
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '1 hour'
    AND NOT EXISTS (
        SELECT FROM ingest_watermarks AS w
        WHERE
            w.exchange = c.exchange
            AND w.symbol = c.symbol
            AND w.committed_through < c.bucket_start + INTERVAL '1 hour'
    );

CREATE OR REPLACE VIEW candles_4h AS
WITH live AS MATERIALIZED (
    SELECT
        l.exchange,
        l.symbol,
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM tcpd_apache_candles_live('4h') AS l
)

SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '4 hours' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        m.exchange,
        m.symbol,
        m.bucket_start,
        m.open,
        m.high,
        m.low,
        m."close",
        m.volume,
        m.price_size,
        m.size_per_price,
        m.trade_count,
        m.trade_rows
    FROM materialized_candles_4h AS m
    WHERE
        m.bucket_start < (
            SELECT s.materialized_before
            FROM tcpd_apache_candle_state AS s
            WHERE s.timeframe = '4h'
        )
        AND NOT EXISTS (
            SELECT FROM live AS l
            WHERE l.exchange = m.exchange AND l.symbol = m.symbol AND l.bucket_start = m.bucket_start
        )
    UNION ALL
    SELECT
        l.exchange::VARCHAR(50),
        l.symbol::VARCHAR(50),
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM live AS l
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '4 hours'
    AND NOT EXISTS (
        SELECT FROM ingest_watermarks AS w
        WHERE
            w.exchange = c.exchange
            AND w.symbol = c.symbol
            AND w.committed_through < c.bucket_start + INTERVAL '4 hours'
    );

CREATE OR REPLACE VIEW candles_1d AS
WITH live AS MATERIALIZED (
    SELECT
        l.exchange,
        l.symbol,
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM tcpd_apache_candles_live('1d') AS l
)

SELECT
    c.exchange,
    c.symbol,
    c.bucket_start,
    c.bucket_start + INTERVAL '24 hours' AS ts,
    c.open,
    c.high,
    c.low,
    c."close",
    c.volume,
    v.quote_volume,
    c.trade_count,
    v.quote_volume / nullif(v.base_volume, 0) AS vwap,
    v.base_volume,
    c.trade_rows
FROM (
    SELECT
        m.exchange,
        m.symbol,
        m.bucket_start,
        m.open,
        m.high,
        m.low,
        m."close",
        m.volume,
        m.price_size,
        m.size_per_price,
        m.trade_count,
        m.trade_rows
    FROM materialized_candles_1d AS m
    WHERE
        m.bucket_start < (
            SELECT s.materialized_before
            FROM tcpd_apache_candle_state AS s
            WHERE s.timeframe = '1d'
        )
        AND NOT EXISTS (
            SELECT FROM live AS l
            WHERE l.exchange = m.exchange AND l.symbol = m.symbol AND l.bucket_start = m.bucket_start
        )
    UNION ALL
    SELECT
        l.exchange::VARCHAR(50),
        l.symbol::VARCHAR(50),
        l.bucket_start,
        l.open,
        l.high,
        l.low,
        l."close",
        l.volume,
        l.price_size,
        l.size_per_price,
        l.trade_count,
        l.trade_rows
    FROM live AS l
) AS c
LEFT JOIN instruments AS i ON c.exchange = i.exchange AND c.symbol = i.symbol
CROSS JOIN
    LATERAL tcpd_candle_volumes(
        i.contract_type, i.contract_value * i.contract_multiplier, c.volume, c.price_size, c.size_per_price
    ) AS v
WHERE
    c.bucket_start <= now() - INTERVAL '24 hours'
    AND NOT EXISTS (
        SELECT FROM ingest_watermarks AS w
        WHERE
            w.exchange = c.exchange
            AND w.symbol = c.symbol
            AND w.committed_through < c.bucket_start + INTERVAL '24 hours'
    );
