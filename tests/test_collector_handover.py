"""OKX notice 64008 (the adapter's RECONNECT_SOON) under load, without REST: make before
break loses nothing and stores nothing twice. Real simulator on 127.0.0.1 at 2,000 trades/s,
real CopyWriter, native database.

The simulator's stream position is shared by every connection subscribed to it, and pauses
while nobody is subscribed. A real exchange keeps trading while a client reconnects, so an
observer connection (a plain websockets client, spared by the notices) stays subscribed all
along: the tape then advances at its rate during every switch, and what the collector did
not read while it had no connection open is gone, as on the real exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from ingest.collector.batch_receiver import BatchClientConnection
from ingest.collector.handover import MAX_REMEMBERED_TRADES, Overlap
from ingest.collector.link_pool import pool_for_loop
from ingest.collector.websocket_collector import WebSocketCollector
from ingest.model import DataType
from ingest.rows import MarketRow, TradeRow
from ingest.simulator import OkxSimulator, SentTrade
from tests.collector_support import MemorySink, collector_for, simulator, wait_for
from tests.service_support import db_trades, query, sent_tuples_of, wait_count
from tests.storage_support import make_writer

RATE = 2000.0
SECONDS = 20
NOTICES = 5


async def observe(sim: OkxSimulator) -> tuple[ClientConnection, str, asyncio.Task[None]]:
    """Subscribe an observer to BTC-USDT trades; its connection, connId and reading task."""
    ws = await connect(sim.url, compression=None, max_size=None)
    await ws.send(orjson.dumps({"op": "subscribe", "args": [{"channel": "trades", "instId": "BTC-USDT"}]}))
    ack = orjson.loads(await ws.recv())
    assert ack["event"] == "subscribe"

    async def drain() -> None:
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass

    return ws, str(ack["connId"]), asyncio.create_task(drain())


def produced(sim: OkxSimulator) -> list[SentTrade]:
    """Every trade of the tape once (the simulator records one per connection it went to)."""
    return list({t.trade_id: t for t in sim.sent_trades}.values())


def canonical(data: object) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


async def test_notice_64008_under_load_loses_nothing_and_stores_no_duplicate(
    migrated_db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ingest.collector.link")
    dsn = migrated_db_dsn
    total = int(RATE * SECONDS)
    async with simulator(
        total=total,
        rate=RATE,
        trades_per_message=10,
        chunk_trades=100,
        idle_timeout=3600.0,
        books_per_second=0.0,
        tickers_per_second=20.0,
    ) as sim:
        writer = make_writer(dsn)
        await writer.start()
        # store_raw_data: every trade is also a market_data row (type trade), so the test
        # sees the overlap's duplicates skipped in both tables.
        collector = collector_for(
            sim, writer, data_types=(DataType.TRADE, DataType.TICKER), store_raw_data=True
        )
        observer: ClientConnection | None = None
        try:
            await collector.start()
            await wait_for(lambda: sim.counters["trades"] >= 2000, what="the stream under way")
            observer, observer_id, _reading = await observe(sim)
            for _ in range(NOTICES):
                await sim.notice_and_close(delay=1.0, sparing={observer_id})
                await asyncio.sleep(1.5)
            await wait_for(lambda: len(produced(sim)) == total, within=SECONDS + 30, what="the whole tape")
            with contextlib.suppress(AssertionError):  # a shortfall is reported below, exactly
                await wait_count(dsn, "SELECT count(*) FROM raw_trades", total, within=20)
            stats: dict[str, Any] = collector.get_status()["statistics"]
        finally:
            await collector.stop()
            await writer.stop(30)
            if observer is not None:
                await observer.close()
    tape = sent_tuples_of(produced(sim))
    stored = await db_trades(dsn)
    missing = sorted(set(tape) - set(stored), key=lambda t: int(t[1]))
    lost_ids = [t[1] for t in missing[:5]]
    assert not missing, f"{len(missing)} trades lost across the switches, e.g. ids {lost_ids}"
    assert stored == tape  # every trade once, value for value: no gap, no duplicate row
    # market_data: each trade once (type trade), and each ticker pushed to the collector's
    # connections once per observation (pushes of equal ts and content are one observation).
    rows = await query(
        dsn, 'SELECT data_type, (extract(epoch FROM "timestamp") * 1000)::bigint, data FROM market_data'
    )
    stored_trades = sorted((int(ts), d["tradeId"]) for kind, ts, d in rows if kind == "trade")
    assert stored_trades == sorted((t.ts_ms, t.trade_id) for t in produced(sim))
    stored_tickers = sorted((int(ts), canonical(d)) for kind, ts, d in rows if kind == "ticker")
    sent_tickers = {
        (int(item["ts"]), canonical(item))
        for q in sim.sent_quotes
        for item in orjson.loads(q.payload)["data"]
    }
    assert stored_tickers == sorted(sent_tickers)
    assert len(stored_tickers) > 0
    assert sim.counters["notices"] == NOTICES
    assert stats["handovers"] == NOTICES
    switches = [r.getMessage() for r in caplog.records if "switched to a new connection" in r.getMessage()]
    assert len(switches) == NOTICES
    assert all(m.endswith("once a trade arrived on both") for m in switches), switches
    assert stats["handover_failures"] == 0
    assert stats["restarts"] == 0
    # The overlaps really overlapped: some trades went to both connections, skipped once.
    assert writer.stats()["duplicates_skipped"] > 0


def trade(n: int, symbol: str = "BTC-USDT") -> TradeRow:
    return TradeRow("okx", symbol, str(n), "64000.1", "0.5", "buy", 1_796_000_000_000 + n, "")


def test_the_new_connections_first_trades_alone_do_not_prove_the_overlap() -> None:
    overlap = Overlap()
    trades = [trade(n) for n in range(10)]
    overlap.old_delivered(trades[:3])
    overlap.new_delivered(trades[5:7])  # the new stream runs ahead: 3 and 4 on neither yet
    assert not overlap.found.is_set()
    overlap.old_delivered(trades[3:6])  # the old one reaches a trade the new one has
    assert overlap.found.is_set()


def test_a_trade_the_new_connection_delivers_after_the_old_one_proves_the_overlap() -> None:
    overlap = Overlap()
    overlap.old_delivered([trade(n) for n in range(3)])
    overlap.new_delivered([trade(2)])
    assert overlap.found.is_set()


def test_only_trades_prove_the_overlap() -> None:
    overlap = Overlap()
    ticker = MarketRow("okx", "BTC-USDT", DataType.TICKER, 1_796_000_000_000, '{"last": "64000.1"}')
    overlap.old_delivered([ticker, trade(1)])
    overlap.new_delivered([ticker, trade(2, "ETH-USDT"), trade(3)])
    assert not overlap.found.is_set()


def test_trades_that_never_coincide_are_remembered_up_to_a_bound() -> None:
    overlap = Overlap()
    for start in range(0, 2 * MAX_REMEMBERED_TRADES, 10_000):
        overlap.old_delivered([trade(n) for n in range(start, start + 10_000)])
    assert len(overlap._old) == MAX_REMEMBERED_TRADES
    assert not overlap.found.is_set()


async def test_a_replacement_that_cannot_connect_leaves_the_old_connection_read_to_its_end() -> None:
    """Fault injection: the replacement's connect is refused once; the old connection is read
    until the exchange closes it, then the collector reconnects as after any close."""
    async with simulator(total=None, rate=500.0, idle_timeout=3600.0) as sim:
        sink = MemorySink()
        collector = collector_for(sim, sink)
        assert isinstance(collector, WebSocketCollector)
        pool = pool_for_loop()
        connect = pool.dial
        refused: list[str] = []

        async def refuse_once(url: str, **options: Any) -> BatchClientConnection:
            if sim.counters["notices"] and not refused:
                refused.append(url)
                raise ConnectionRefusedError("refused by the test")
            return await connect(url, **options)

        pool.dial = refuse_once
        await collector.start()
        try:
            await wait_for(lambda: len(sink.trades) >= 200, what="the stream under way")
            await sim.notice_and_close(delay=0.5)
            await wait_for(lambda: sim.counters["subscribes"] == 2, what="the reconnect after the close")
            before = len(sink.trades)
            await wait_for(lambda: len(sink.trades) >= before + 200, what="trades on the new connection")
            stats = collector.get_status()["statistics"]
            url = sim.url
        finally:
            await collector.stop()
    assert refused == [url]
    assert (stats["handovers"], stats["handover_failures"]) == (0, 1)
    assert "replacement connection" in stats["last_error"]
    assert "refused by the test" in stats["last_error"]
