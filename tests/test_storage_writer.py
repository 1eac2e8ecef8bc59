"""CopyWriter against a real, migrated database: values in equal values out, exactly once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest

from ingest.model import DataType
from ingest.rows import DeadLetter, MarketRow, TradeRow
from ingest.storage import CollectorStatusRow, QueueClosedError
from ingest.storage import writer as writer_module
from ingest.storage.statements import COMMIT
from tests.storage_support import (
    T0_MS,
    count,
    expected_trades,
    make_writer,
    read_trades,
    trade,
    wait_until,
)


async def test_rows_round_trip_value_for_value(migrated_db_dsn: str) -> None:
    trades = [trade(i) for i in range(2500)]
    # Extreme decimals: more digits than DECIMAL(20,8) holds, tiny and huge.
    trades.append(
        TradeRow(
            "okx",
            "ETH-USDT",
            "x1",
            "123456789012345678901234.123456789012",
            "0.000000000000000000000001",
            "buy",
            T0_MS,
            '{"k": [1, 2.5, null]}',
        )
    )
    # raw_json empty = raw data not stored: NULL.
    trades.append(TradeRow("okx", "ETH-USDT", "x2", "1", "2", "sell", 0, ""))
    market = [
        MarketRow("okx", "BTC-USDT", DataType.TICKER, T0_MS + 7, '{"last": "60000.1", "n": 1}'),
        MarketRow("okx", "BTC-USDT", DataType.CANDLE, 86_400_000 * 20_000 + 999, "[1, 2]"),
    ]
    dead = [DeadLetter("okx", T0_MS + 9, "not JSON", "{oops")]
    writer = make_writer(migrated_db_dsn, batch_max_rows=1000)
    await writer.start()
    for i in range(0, len(trades), 7):  # uneven puts spanning batches
        await writer.put(trades[i : i + 7])
    await writer.put([*market, *dead])
    await writer.stop(30)

    assert read_trades(migrated_db_dsn) == expected_trades(trades)
    with psycopg.connect(migrated_db_dsn) as conn:
        got_market = conn.execute(
            'SELECT exchange, symbol, data_type, "timestamp", data FROM market_data ORDER BY "timestamp"'
        ).fetchall()
        got_dead = conn.execute("SELECT exchange, received_at, reason, raw_text FROM dead_letters").fetchall()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert got_market == [
        (
            m.exchange,
            m.symbol,
            m.data_type.value,
            epoch + timedelta(milliseconds=m.ts_ms),
            orjson.loads(m.data_json),
        )
        for m in market
    ]
    assert got_dead == [("okx", epoch + timedelta(milliseconds=T0_MS + 9), "not JSON", "{oops")]
    stats = writer.stats()
    assert stats["rows_written"] == {"raw_trades": len(trades), "market_data": 2, "dead_letters": 1}
    assert stats["queue_rows"] == 0


async def test_special_characters_round_trip(migrated_db_dsn: str) -> None:
    nasty = "tab\there, newline\nthere, cr\rback\\slash \\N é ü 中文 🚀"
    raw = orjson.dumps({"text": nasty, "quote": 'say "hi"', "path": "C:\\dir\\n"}).decode()
    trades = [
        TradeRow("okx", nasty, "id\t1", "1.5", "2", "buy", T0_MS, raw),
        TradeRow("ok\\x", "S\nY", "\\N", "3", "4", "sell", T0_MS, '"\\\\N"'),
        TradeRow("okx", "PLAIN", "3", "5", "6", "buy", T0_MS, '"\\\\N"'),
    ]
    market = [MarketRow(nasty, "SYM", DataType.ORDERBOOK, T0_MS, raw)]
    dead = [DeadLetter(nasty, T0_MS, nasty, nasty + "\x01\x7f")]
    writer = make_writer(migrated_db_dsn)
    await writer.start()
    await writer.put([*trades, *market, *dead])
    await writer.stop(30)

    assert read_trades(migrated_db_dsn) == expected_trades(trades)
    with psycopg.connect(migrated_db_dsn) as conn:
        assert conn.execute("SELECT exchange, data FROM market_data").fetchall() == [
            (nasty, orjson.loads(raw))
        ]
        assert conn.execute("SELECT exchange, reason, raw_text FROM dead_letters").fetchall() == [
            (nasty, nasty, nasty + "\x01\x7f")
        ]


async def test_duplicates_within_and_across_batches_are_stored_once(migrated_db_dsn: str) -> None:
    first = [trade(i) for i in range(100)]
    # Same batch: every trade twice. Next batch: half old (replayed after a reconnect), half new.
    second = [trade(i) for i in range(50, 150)]
    writer = make_writer(migrated_db_dsn, batch_max_rows=10_000, batch_max_delay=0.05)
    await writer.start()
    await writer.put(first + first)
    await wait_until(lambda: writer.stats()["batches"] >= 1, 10, "the first batch")
    await writer.put(second)
    await writer.stop(30)

    assert read_trades(migrated_db_dsn) == expected_trades([trade(i) for i in range(150)])
    stats = writer.stats()
    assert stats["rows_written"]["raw_trades"] == 150
    assert stats["duplicates_skipped"] == 100 + 50
    # Same trade id at another time is another trade (the key includes the timestamp).
    writer = make_writer(migrated_db_dsn)
    await writer.start()
    await writer.put([trade(1, ts_ms=T0_MS + 10_000)])
    await writer.stop(30)
    assert count(migrated_db_dsn, "raw_trades") == 151


async def test_a_single_row_is_committed_by_time(migrated_db_dsn: str) -> None:
    writer = make_writer(migrated_db_dsn, batch_max_rows=5000, batch_max_delay=0.1)
    await writer.start()
    try:
        await writer.put([trade(1)])
        # Far from a full batch: only the delay can flush it. Generous bound, not a timing test.
        await wait_until(lambda: count(migrated_db_dsn, "raw_trades") == 1, 5.0, "the row")
    finally:
        await writer.stop(10)
    assert writer.stats()["last_flush_time"] is not None


async def test_full_queue_blocks_put_until_rows_are_written(migrated_db_dsn: str) -> None:
    writer = make_writer(migrated_db_dsn, queue_max_rows=5, batch_max_rows=2)
    await writer.start()
    writer.pause()
    await writer.put([trade(i) for i in range(5)])
    blocked = asyncio.create_task(writer.put([trade(5), trade(6)]))
    await asyncio.sleep(0.3)
    assert not blocked.done(), "put() returned although the queue was full"
    assert writer.stats()["queue_rows"] == 5
    assert writer.stats()["queue_fill"] == 1.0
    writer.resume()
    await asyncio.wait_for(blocked, 10)
    await writer.stop(10)
    assert read_trades(migrated_db_dsn) == expected_trades([trade(i) for i in range(7)])


async def test_stop_flushes_everything_and_refuses_more(migrated_db_dsn: str) -> None:
    writer = make_writer(migrated_db_dsn, batch_max_rows=100_000, batch_max_delay=60)
    await writer.start()
    rows = [trade(i) for i in range(3000)]
    await writer.put(rows)
    await writer.stop(30)  # the 60 s delay must not hold the flush back
    assert count(migrated_db_dsn, "raw_trades") == 3000
    assert writer.unwritten == 0
    with pytest.raises(QueueClosedError):
        await writer.put([trade(5000)])


async def test_stop_timeout_reports_unwritten_rows(caplog: pytest.LogCaptureFixture) -> None:
    # Nobody listens on port 1: the database stays "down" for the whole test.
    writer = make_writer("postgresql://postgres@127.0.0.1:1/none?connect_timeout=1")
    await writer.start()
    await writer.put([trade(i) for i in range(42)])
    await wait_until(lambda: writer.stats()["outage"], 20, "the outage to be noticed")
    assert writer.stats()["last_error"]
    with caplog.at_level(logging.ERROR, logger="ingest.storage.writer"):
        await writer.stop(1.0)
    assert writer.unwritten == 42
    assert any("42 rows NOT written" in r.getMessage() for r in caplog.records)


async def test_bad_rows_are_dead_lettered_and_the_rest_kept(migrated_db_dsn: str) -> None:
    good = [trade(i) for i in range(20)]
    bad = TradeRow("okx", "BTC-USDT", "bad", "not-a-number", "1", "buy", T0_MS, "{}")
    writer = make_writer(migrated_db_dsn)
    await writer.start()
    await writer.put([*good[:10], bad, *good[10:]])
    await writer.stop(30)
    assert read_trades(migrated_db_dsn) == expected_trades(good)
    with psycopg.connect(migrated_db_dsn) as conn:
        reason, raw_text = conn.execute("SELECT reason, raw_text FROM dead_letters").fetchall()[0]
    assert "not-a-number" in reason
    assert orjson.loads(raw_text)["price"] == "not-a-number"
    assert writer.stats()["rows_rejected"] == 1


async def test_unknown_commit_outcome_is_resolved_without_duplicates(
    migrated_db_dsn: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The connection "dies" right after COMMIT reached the server: the client sees an
    # error although the batch is in. Append-only market rows must not be written twice.
    real_execute = psycopg.AsyncCursor.execute
    armed = {"left": 1}

    async def commit_then_fail(self: psycopg.AsyncCursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
        done = await real_execute(self, query, *args, **kw)
        if query is COMMIT and armed["left"]:
            armed["left"] -= 1
            raise psycopg.OperationalError("injected: connection lost after COMMIT")
        return done

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", commit_then_fail)
    rows = [MarketRow("okx", "BTC-USDT", DataType.TICKER, T0_MS + i, "{}") for i in range(10)]
    writer = make_writer(migrated_db_dsn)
    await writer.start()
    with caplog.at_level(logging.INFO, logger="ingest.storage.writer"):
        await writer.put(rows)
        await writer.stop(30)
    assert armed["left"] == 0, "the fault was never injected"
    assert count(migrated_db_dsn, "market_data") == 10
    assert writer.stats()["retries"] == 1
    assert any("had committed before the error" in r.getMessage() for r in caplog.records)


async def test_unknown_outcome_of_a_trades_only_batch_is_resolved_by_the_unique_key(
    migrated_db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A trades-only batch is one COPY in autocommit, without a transaction id to look up:
    # when the connection "dies" just after that COPY committed, the retry meets the same
    # trades in raw_trades and goes through ON CONFLICT DO NOTHING. Stored once each.
    real_finish = psycopg.AsyncCopy.finish
    armed = {"left": 1}

    async def finish_then_fail(self: psycopg.AsyncCopy, exc: BaseException | None = None) -> None:
        await real_finish(self, exc)
        if exc is None and armed["left"]:
            armed["left"] -= 1
            raise psycopg.OperationalError("injected: connection lost after the COPY")

    monkeypatch.setattr(psycopg.AsyncCopy, "finish", finish_then_fail)
    rows = [trade(i) for i in range(20)]
    writer = make_writer(migrated_db_dsn)
    await writer.start()
    await writer.put(rows)
    await writer.stop(30)
    assert armed["left"] == 0, "the fault was never injected"
    assert read_trades(migrated_db_dsn) == expected_trades(rows)
    stats = writer.stats()
    assert stats["retries"] == 1
    # The writer cannot tell its own committed rows from a replay: they count as skipped.
    assert stats["duplicates_skipped"] == 20


async def test_workers_keep_their_connection_until_the_lease_ends(
    migrated_db_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def requests_for_batches(batches: int, first_id: int) -> int:
        writer = make_writer(migrated_db_dsn, batch_max_delay=0.01)
        await writer.start()
        for i in range(batches):
            await writer.put([trade(first_id + i)])
            await wait_until(lambda n=i + 1: writer.stats()["batches"] >= n, 10, f"batch {i + 1}")
        requests = int(writer._pool.get_stats()["requests_num"])  # type: ignore[union-attr]
        await writer.stop(10)
        return requests

    # Kept: one pool request per worker, however many batches.
    assert await requests_for_batches(6, first_id=0) <= 2
    # A lease that ends at once: every batch takes a connection from the pool again.
    monkeypatch.setattr(writer_module, "LEASE_SECONDS", 0.0)
    assert await requests_for_batches(6, first_id=100) >= 6
    assert count(migrated_db_dsn, "raw_trades") == 12


async def test_write_status_upserts_one_row_per_collector(migrated_db_dsn: str) -> None:
    writer = make_writer(migrated_db_dsn)
    await writer.start()
    t1 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    await writer.write_status(
        [
            CollectorStatusRow(
                "okx-BTC", "okx", "BTC-USDT", "running", {"messages": 1, "at": t1}, {"healthy": True}, t1
            ),
            CollectorStatusRow("okx-ETH", "okx", "ETH-USDT", "starting", {}, {}, t1),
        ]
    )
    t2 = t1 + timedelta(seconds=5)
    await writer.write_status(
        [
            CollectorStatusRow(
                "okx-BTC",
                "okx",
                "BTC-USDT",
                "stopped",
                {"messages": 2, "px": Decimal("1.10")},
                {"healthy": False},
                t2,
            ),
        ]
    )
    await writer.stop(10)
    with psycopg.connect(migrated_db_dsn) as conn:
        got = conn.execute(
            "SELECT collector, status, status_json, health_json, updated_at FROM collector_status "
            "ORDER BY collector"
        ).fetchall()
    assert got == [
        ("okx-BTC", "stopped", {"messages": 2, "px": "1.10"}, {"healthy": False}, t2),
        ("okx-ETH", "starting", {}, {}, t1),
    ]


def test_status_rows_need_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CollectorStatusRow("c", "okx", "S", "running", {}, {}, datetime(2026, 1, 1))


async def test_what_cannot_be_stored_as_given_is_dead_lettered(migrated_db_dsn: str) -> None:
    writer = make_writer(migrated_db_dsn)
    await writer.start()
    not_utf8 = TradeRow("okx", "BTC-USDT", "7", "1", "1", "buy", T0_MS, '{"a": "\udcff"}')
    surrogate = MarketRow("okx", "BAD\ud800", DataType.TICKER, T0_MS, "{}")
    await writer.put([trade(1), ("not", "a", "row"), not_utf8, surrogate, trade(2)])  # type: ignore[list-item]
    await writer.stop(10)
    assert read_trades(migrated_db_dsn) == expected_trades([trade(1), trade(2)])
    assert count(migrated_db_dsn, "market_data") == 0
    with psycopg.connect(migrated_db_dsn) as conn:
        got = conn.execute("SELECT reason, raw_text FROM dead_letters ORDER BY id").fetchall()
    letters = sorted(
        ((reason, orjson.loads(raw)) for reason, raw in got),
        key=lambda letter: (letter[0], letter[1].get("table") != "raw_trades"),
    )
    assert letters == [
        ("rejected by the writer: not a row: tuple", {"object": "('not', 'a', 'row')"}),
        (
            "rejected by the writer: text is not valid UTF-8 (UnicodeEncodeError)",
            {"table": "raw_trades", "symbol": "BTC-USDT", "trade_id": "7", "price": "1", "size": "1",
             "side": "buy", "ts_ms": T0_MS, "raw": '{"a": "\\udcff"}'},
        ),
        (
            "rejected by the writer: text is not valid UTF-8 (UnicodeEncodeError)",
            {"table": "market_data", "symbol": "BAD\\ud800", "data_type": "ticker", "ts_ms": T0_MS,
             "data": "{}"},
        ),
    ]  # fmt: skip
    assert writer.stats()["rows_rejected"] == 3


async def test_round_trip_on_the_tsl_engine(migrated_tsl_dsn: str) -> None:
    # the staging tables and the duplicate handling work on the TSL edition too, with the
    # default concurrency
    trades = [trade(i) for i in range(300)]
    market = [MarketRow("okx", "BTC-USDT", DataType.CANDLE, T0_MS + i, '{"c": "1.5"}') for i in range(5)]
    writer = make_writer(migrated_tsl_dsn, batch_max_rows=100)
    await writer.start()
    for i in range(0, 300, 10):
        await writer.put([*trades[i : i + 10], *trades[max(0, i - 3) : i]])
    await writer.put(market)
    await writer.stop(60)
    assert read_trades(migrated_tsl_dsn) == expected_trades(trades)
    assert count(migrated_tsl_dsn, "market_data") == 5
