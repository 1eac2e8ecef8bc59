"""market_data is exactly once (sql/0102, sql/0118): resends, restarts, a trade from two sources
and upgrades keep one row per observation."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from storage_support import T0_MS, make_writer, trade, wait_until

from ingest import paths
from ingest.db.migrations import migrate
from ingest.model import DataType
from ingest.rows import MarketRow, TradeRow

BOOK_A = '{"asks":[["60001.5","0.2","0","1"]],"bids":[["60000.5","1.1","0","3"]],"ts":"1700000000123"}'
BOOK_B = '{"asks":[["60001.5","0.3","0","1"]],"bids":[["60000.5","1.1","0","3"]],"ts":"1700000000123"}'
TICKER = '{"instId":"BTC-USDT","last":"60001","ts":"1700000000123"}'
TICKER_REORDERED = '{"ts": "1700000000123", "last": "60001", "instId": "BTC-USDT"}'  # same object
CANDLE_1M = '{"interval":"1m","start_ms":1700000000000,"open":"1","close":"2"}'
CANDLE_5M = '{"interval":"5m","start_ms":1700000000000,"open":"1","close":"3"}'


def market(data_type: DataType, data: str, ts_ms: int = T0_MS, symbol: str = "BTC-USDT") -> MarketRow:
    return MarketRow("okx", symbol, data_type, ts_ms, data)


def raw_copy(t: TradeRow, data: str | None = None) -> MarketRow:
    """The raw copy of trade `t` as a parser makes it; `data`: another shape of the same trade."""
    return MarketRow(
        t.exchange, t.symbol, DataType.TRADE, t.ts_ms, t.raw_json if data is None else data, t.trade_id
    )


def rest_shape(t: TradeRow) -> str:
    """The same trade as a REST trade history answers it (OKX: no count, no seqId, a source)."""
    shape = {"instId": t.symbol, "side": t.side, "sz": t.size, "px": t.price, "source": "0"}
    return orjson.dumps({**shape, "tradeId": t.trade_id, "ts": str(t.ts_ms)}).decode()


def observations() -> list[MarketRow]:
    """One of each kind, all distinct: two books and two candles share exchange, symbol and time."""
    raw_trade = trade(7)
    return [
        market(DataType.ORDERBOOK, BOOK_A),
        market(DataType.ORDERBOOK, BOOK_B),  # same time, other content: another snapshot
        market(DataType.ORDERBOOK, BOOK_A, ts_ms=T0_MS + 100),  # same content, later: another
        market(DataType.ORDERBOOK, BOOK_A, symbol="ETH-USDT"),
        market(DataType.TICKER, TICKER),
        raw_copy(raw_trade),
        market(DataType.CANDLE, CANDLE_1M, ts_ms=1_700_000_000_000),
        market(DataType.CANDLE, CANDLE_5M, ts_ms=1_700_000_000_000),
    ]


def read_trade_copies(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, prepare_threshold=None) as conn:
        return conn.execute(
            "SELECT symbol, trade_id, data FROM market_data WHERE data_type = 'trade' "
            "ORDER BY symbol, trade_id"
        ).fetchall()


def read_market(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, prepare_threshold=None) as conn:
        rows = conn.execute(
            'SELECT exchange, symbol, data_type, (extract(epoch FROM "timestamp") * 1000)::bigint, data '
            "FROM market_data"
        ).fetchall()
    return sorted(rows, key=_in_order)


def _in_order(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*row[:4], orjson.dumps(row[4], option=orjson.OPT_SORT_KEYS))


def expected(rows: list[MarketRow]) -> list[tuple[Any, ...]]:
    """What read_market returns after `rows` were written (when they are all distinct)."""
    return sorted(
        ((r.exchange, r.symbol, r.data_type.value, r.ts_ms, orjson.loads(r.data_json)) for r in rows),
        key=_in_order,
    )


@pytest.fixture(
    params=[pytest.param("native", marks=pytest.mark.db), pytest.param("tsl", marks=pytest.mark.tsl)]
)
def any_migrated_dsn(request: pytest.FixtureRequest) -> str:
    name = "migrated_db_dsn" if request.param == "native" else "migrated_tsl_dsn"
    return str(request.getfixturevalue(name))


async def test_resent_and_retried_market_rows_are_stored_once(any_migrated_dsn: str) -> None:
    dsn = any_migrated_dsn
    rows = observations()
    writer = make_writer(dsn, batch_max_rows=10_000)
    await writer.start()
    # One batch with every observation twice, the ticker once more with its keys reordered.
    await writer.put([*rows, *rows, market(DataType.TICKER, TICKER_REORDERED)])
    await wait_until(lambda: writer.stats()["batches"] >= 1, 10, "the first batch")
    # A resubscribe: the exchange sends its snapshot again, together with a new book.
    new_book = market(DataType.ORDERBOOK, BOOK_B, ts_ms=T0_MS + 200)
    await writer.put([rows[0], rows[4], new_book])
    await writer.stop(30)
    stats = writer.stats()

    # A restarted service (a new writer) replaying what it had seen before.
    again = make_writer(dsn)
    await again.start()
    await again.put(rows)
    await again.stop(30)

    assert read_market(dsn) == expected([*rows, new_book])
    assert stats["rows_written"]["market_data"] == len(rows) + 1
    assert stats["duplicates_skipped"] == len(rows) + 1 + 2
    assert again.stats()["rows_written"]["market_data"] == 0
    assert again.stats()["duplicates_skipped"] == len(rows)


async def test_a_duplicate_market_row_does_not_cost_the_trades_of_its_batch(migrated_db_dsn: str) -> None:
    book = market(DataType.ORDERBOOK, BOOK_A)
    writer = make_writer(migrated_db_dsn)
    await writer.start()
    await writer.put([book])
    await wait_until(lambda: writer.stats()["batches"] >= 1, 10, "the first batch")
    await writer.put([trade(1), trade(2), book])
    await writer.stop(30)
    assert writer.stats()["rows_written"] == {"raw_trades": 2, "market_data": 1, "dead_letters": 0}
    assert read_market(migrated_db_dsn) == expected([book])


async def test_a_trade_received_live_and_filled_from_rest_is_one_market_row(any_migrated_dsn: str) -> None:
    """The WebSocket object and the REST history object of one trade differ in content; the
    trade is still one row of market_data (its trade id is the key, sql/0118), as in raw_trades.
    The first stored copy stays. Two trades of the same millisecond stay two rows."""
    dsn = any_migrated_dsn
    first, second = trade(1), trade(2, ts_ms=T0_MS + 1)  # trade(1) is at T0_MS + 1 too
    live = make_writer(dsn)
    await live.start()
    await live.put([first, raw_copy(first), second, raw_copy(second)])
    await live.stop(30)
    # A second service fills a hole from REST history that the first had already stored, and
    # a third trade in it that nobody had.
    third = trade(3)
    filler = make_writer(dsn)
    await filler.start()
    rest = [first, raw_copy(first, rest_shape(first)), second, raw_copy(second, rest_shape(second))]
    await filler.put([*rest, third, raw_copy(third, rest_shape(third))])
    await filler.stop(30)

    assert read_trade_copies(dsn) == [
        ("BTC-USDT", "1", orjson.loads(first.raw_json)),
        ("BTC-USDT", "2", orjson.loads(second.raw_json)),
        ("BTC-USDT", "3", orjson.loads(rest_shape(third))),
    ]
    assert filler.stats()["rows_written"] == {"raw_trades": 1, "market_data": 1, "dead_letters": 0}
    assert filler.stats()["duplicates_skipped"] == 4


def _insert_market(conn: psycopg.Connection[Any], rows: list[tuple[int, str, str, int, str]]) -> None:
    for row_id, symbol, data_type, ts_ms, data in rows:
        conn.execute(
            'INSERT INTO market_data (id, exchange, symbol, data_type, "timestamp", data) '
            "VALUES (%s, 'okx', %s, %s, to_timestamp(%s / 1000.0), %s::jsonb)",
            (row_id, symbol, data_type, ts_ms, data),
        )


def _from_0102_on(_folder: str, names: list[str]) -> set[str]:
    """The migrations a database from before 0102 has not seen (0102 and every later one)."""
    return {name for name in names if name[:4].isdigit() and name[:4] >= "0102"}


def test_upgrade_removes_stored_duplicates_keeping_the_first(db_dsn: str, tmp_path: Path) -> None:
    """A database from before 0102 with duplicates: the upgrade keeps the lowest id of each."""
    before = tmp_path / "sql"
    shutil.copytree(paths.sql_dir(), before, ignore=_from_0102_on)
    assert not any(p.name.startswith("0102") for p in before.iterdir())
    migrate(db_dsn, sql_dir=before)
    day = 86_400_000  # two chunks
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        _insert_market(
            conn,
            [
                (5, "BTC-USDT", "orderbook", T0_MS, BOOK_A),
                (3, "BTC-USDT", "orderbook", T0_MS, BOOK_A),  # kept: lowest id
                (9, "BTC-USDT", "orderbook", T0_MS, BOOK_A),
                (4, "BTC-USDT", "orderbook", T0_MS, BOOK_B),  # other content: kept
                (6, "BTC-USDT", "ticker", T0_MS, TICKER),  # kept
                (7, "BTC-USDT", "ticker", T0_MS, TICKER_REORDERED),  # the same jsonb
                (8, "ETH-USDT", "ticker", T0_MS, TICKER),  # other symbol: kept
                (2, "BTC-USDT", "ticker", T0_MS + day, TICKER),  # other chunk: kept
                (1, "BTC-USDT", "ticker", T0_MS + day, TICKER),  # kept
            ],
        )

    applied = migrate(db_dsn)

    assert [name for name in applied if name.startswith("0102")] == ["0102_market_data_key.sql"]
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM market_data ORDER BY id").fetchall()]
        assert ids == [1, 3, 4, 6, 8]
        with pytest.raises(psycopg.errors.UniqueViolation):
            _insert_market(conn, [(10, "BTC-USDT", "orderbook", T0_MS, BOOK_A)])
        _insert_market(conn, [(11, "BTC-USDT", "orderbook", T0_MS + 1, BOOK_A)])


async def test_a_resent_row_of_a_compressed_chunk_is_skipped(migrated_tsl_dsn: str) -> None:
    """TSL: compression (sql/0101) keeps the key working for chunks already compressed."""
    old = T0_MS - 30 * 86_400_000
    old_trade = trade(4, ts_ms=old)
    rows = [market(DataType.ORDERBOOK, BOOK_A, ts_ms=old), market(DataType.TICKER, TICKER, ts_ms=old)]
    writer = make_writer(migrated_tsl_dsn)
    await writer.start()
    await writer.put([*rows, old_trade, raw_copy(old_trade)])
    await writer.stop(30)
    with psycopg.connect(migrated_tsl_dsn, prepare_threshold=None, autocommit=True) as conn:
        compressed = conn.execute(
            "SELECT count(compress_chunk(c)) FROM (SELECT show_chunks('market_data') UNION ALL "
            "SELECT show_chunks('raw_trades')) AS chunks (c)"
        ).fetchone()
        assert compressed == (2,)  # market_data's chunk and raw_trades'
    again = make_writer(migrated_tsl_dsn)
    await again.start()
    # The snapshots again, and the trade as REST history gives it (another shape, same trade).
    refill = [old_trade, raw_copy(old_trade, rest_shape(old_trade))]
    await again.put([*rows, *refill, market(DataType.TICKER, TICKER_REORDERED, ts_ms=old + 1)])
    await again.stop(30)
    assert again.stats()["duplicates_skipped"] == 4
    assert read_market(migrated_tsl_dsn) == expected(
        [*rows, raw_copy(old_trade), market(DataType.TICKER, TICKER, ts_ms=old + 1)]
    )


def test_upgrade_with_duplicates_in_a_compressed_chunk(tsl_dsn: str, tmp_path: Path) -> None:
    """TSL: the duplicates may sit in compressed chunks; the upgrade removes them there too."""
    before = tmp_path / "sql"
    shutil.copytree(paths.sql_dir(), before, ignore=_from_0102_on)
    migrate(tsl_dsn, sql_dir=before)
    old = T0_MS - 30 * 86_400_000
    with psycopg.connect(tsl_dsn, prepare_threshold=None, autocommit=True) as conn:
        _insert_market(
            conn,
            [
                (2, "BTC-USDT", "orderbook", old, BOOK_A),
                (1, "BTC-USDT", "orderbook", old, BOOK_A),
                (3, "BTC-USDT", "ticker", old, TICKER),
            ],
        )
        conn.execute("SELECT compress_chunk(c) FROM show_chunks('market_data') AS c")
        _insert_market(conn, [(4, "BTC-USDT", "ticker", old, TICKER_REORDERED)])

    migrate(tsl_dsn)

    with psycopg.connect(tsl_dsn, prepare_threshold=None, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM market_data ORDER BY id").fetchall()]
        assert ids == [1, 3]


def _before(version: str) -> Any:
    """A copytree ignore: the migrations a database from before `version` has not seen."""

    def ignore(_folder: str, names: list[str]) -> set[str]:
        return {name for name in names if name[:4].isdigit() and name[:4] >= version}

    return ignore


def test_upgrade_to_trade_ids_keeps_stored_rows_also_compressed(tsl_dsn: str, tmp_path: Path) -> None:
    """TSL: sql/0118 adds trade_id and rebuilds the key over compressed chunks; rows stored
    before keep trade_id NULL and their content key, new raw trades are keyed by trade id."""
    before = tmp_path / "sql"
    shutil.copytree(paths.sql_dir(), before, ignore=_before("0118"))
    migrate(tsl_dsn, sql_dir=before)
    old = T0_MS - 30 * 86_400_000
    t = trade(9, ts_ms=old)
    with psycopg.connect(tsl_dsn, prepare_threshold=None, autocommit=True) as conn:
        _insert_market(
            conn, [(1, "BTC-USDT", "orderbook", old, BOOK_A), (2, "BTC-USDT", "trade", old, t.raw_json)]
        )
        conn.execute("SELECT compress_chunk(c) FROM show_chunks('market_data') AS c")

    assert [name for name in migrate(tsl_dsn) if name.startswith("0118")] == [
        "0118_market_data_trade_key.sql"
    ]

    with psycopg.connect(tsl_dsn, prepare_threshold=None, autocommit=True) as conn:
        stored = conn.execute("SELECT id, trade_id FROM market_data ORDER BY id").fetchall()
        assert stored == [(1, None), (2, None)]
        with pytest.raises(psycopg.errors.UniqueViolation):  # the content key still holds
            _insert_market(conn, [(3, "BTC-USDT", "orderbook", old, BOOK_A)])
        insert = (
            'INSERT INTO market_data (exchange, symbol, data_type, "timestamp", data, trade_id) '
            "VALUES ('okx', 'BTC-USDT', 'trade', to_timestamp(%s / 1000.0), %s::jsonb, '10')"
        )
        conn.execute(insert, (old + 1, '{"tradeId": "10", "count": "1"}'))
        with pytest.raises(psycopg.errors.UniqueViolation):  # same trade, other shape
            conn.execute(insert, (old + 1, '{"tradeId": "10"}'))
