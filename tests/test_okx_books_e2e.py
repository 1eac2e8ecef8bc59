"""OKX full-depth `books` end to end: the OKX simulator's `books` channel (injected
heartbeats, sequence gaps and a reset) -> the generic collector -> the real CopyWriter ->
a native database; the book rebuilt at chosen times equals the simulator's own book
then, level for level; `tcpd book show` prints it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from cli.main import app
from ingest.books.rebuild import rebuild_book
from ingest.collector import BaseDataCollector, ExchangeFactory
from ingest.errors import BookError
from ingest.model import DataType, ExchangeCollectorConfig
from ingest.simulator import OkxSimulator
from ingest.simulator.depth import DepthBook
from tests.collector_support import simulator, wait_for
from tests.storage_support import make_writer

SYMBOL = "BTC-USDT"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def at(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def books_collector(sim: OkxSimulator, sink: Any) -> BaseDataCollector:
    config = ExchangeCollectorConfig(
        exchange="okx",
        symbol=SYMBOL,
        data_types=[DataType.TRADE, DataType.ORDERBOOK],
        custom_params={
            "urls": sim.urls,
            "channels": {"trades": "trades", "orderbook": "books"},
            "book_snapshot_interval": 1.0,
            "reconnect_delay": 0.05,
            "max_reconnect_delay": 0.2,
        },
    )
    return ExchangeFactory.create_collector(config, sink)


def stored(dsn: str) -> list[tuple[int, dict[str, Any]]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            'SELECT (extract(epoch FROM "timestamp") * 1000)::bigint, data FROM market_data'
            " WHERE exchange = 'okx' AND symbol = %s AND data_type = 'orderbook' ORDER BY \"timestamp\", id",
            (SYMBOL,),
        ).fetchall()
    return [(int(ms), data) for ms, data in rows]


async def run_session(dsn: str) -> tuple[OkxSimulator, DepthBook, dict[str, Any]]:
    async with simulator(symbols=(SYMBOL,), depth_per_second=40.0, rate=1.0) as sim:
        writer = make_writer(dsn)
        await writer.start()
        collector = books_collector(sim, writer)
        try:
            await collector.start()
            await wait_for(lambda: SYMBOL in sim.depth_books, within=20, what="a books subscription")
            book = sim.depth_books[SYMBOL]

            async def pushes(n: int) -> None:
                target = book.sent + n
                await wait_for(lambda: book.sent >= target, within=30, what=f"{n} more book pushes")

            def gaps() -> int:
                return int(collector.get_status()["statistics"]["book_gaps"])

            await pushes(40)
            book.inject_heartbeats(3)
            await pushes(20)
            book.inject_gap()
            await wait_for(lambda: gaps() == 1, within=30, what="the first gap seen")
            await pushes(60)  # resubscribed, fresh snapshot, updates again
            book.inject_reset()
            await pushes(60)
            book.inject_gap()
            await wait_for(lambda: gaps() == 2, within=30, what="the second gap seen")
            await pushes(60)
            stats = collector.get_status()["statistics"]
            # trades + books at the start, then books alone once per gap: the trades went on
            assert sim.counters["subscribes"] == 2 + 2
        finally:
            await collector.stop()
            await writer.stop(30)
    return sim, book, stats


async def test_rebuilt_book_equals_the_simulators_book_at_chosen_times(migrated_db_dsn: str) -> None:
    dsn = migrated_db_dsn
    _sim, book, stats = await run_session(dsn)
    rows = stored(dsn)
    actions = [d["action"] for _, d in rows]
    assert actions.count("gap") == 2
    assert stats["book_gaps"] == 2
    snapshots = [(ms, d) for ms, d in rows if d["action"] == "snapshot"]
    venue_snaps = [ms for ms, d in snapshots if d.get("source") != "collector"]
    assert len(venue_snaps) == 3  # the first subscribe and one resubscribe per gap
    assert any(d.get("source") == "collector" for _, d in snapshots)  # periodic ones
    seqs = [d["seqId"] for _, d in rows if d["action"] == "update"]
    assert any(b < a for a, b in itertools.pairwise(seqs))  # the reset is stored, no gap
    # Where the book is not known: from the lost change (stamped 1 ms before the gap's
    # marker) to the fresh snapshot that follows it.
    unknown = []
    for ms, d in rows:
        if d["action"] == "gap":
            fresh = min(s for s in venue_snaps if s > ms)
            unknown.append((ms - 1, fresh))
    update_times = [ms for ms, d in rows if d["action"] == "update"]
    chosen = update_times[:: max(1, len(update_times) // 25)] + [t + 3 for t in update_times[5::40]]
    chosen += venue_snaps + [ms for ms, d in snapshots if d.get("source") == "collector"]
    compared = 0
    with psycopg.connect(dsn) as conn:
        for t in sorted(set(chosen)):
            if any(lo <= t < hi for lo, hi in unknown):
                continue
            rebuilt = rebuild_book(conn, "okx", SYMBOL, at(t))
            expected = book.book_at(t)
            assert rebuilt.book.canonical() == expected.canonical(), f"book differs at {t}"
            assert len(rebuilt.book.bids) > 300  # full depth, not a top-of-book
            compared += 1
        assert compared >= 20
        # Inside a gap window the rebuild refuses rather than showing a wrong book.
        for lo, _hi in unknown:
            with pytest.raises(BookError, match="sequence gap"):
                rebuild_book(conn, "okx", SYMBOL, at(lo + 1))
        with pytest.raises(BookError, match="no full order book snapshot"):
            rebuild_book(conn, "okx", SYMBOL, at(rows[0][0] - 1))

    # tcpd book show: the same book, top 5, exact decimals, within 80 columns
    t = update_times[len(update_times) // 3]
    if any(lo <= t < hi for lo, hi in unknown):
        t = venue_snaps[0]
    expected_bids, expected_asks = book.book_at(t).top(5)
    when = at(t).isoformat().replace("+00:00", "Z")
    args = ["book", "show", "--exchange", "okx", "--symbol", SYMBOL, "--at", when, "--depth", "5"]
    result = CliRunner().invoke(app, [*args, "--database-url", dsn])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines)
    body = [line.split() for line in lines[4:]]
    assert [(b[1], b[0]) for b in body] == expected_bids
    assert [(b[3], b[4]) for b in body] == expected_asks
    as_json = CliRunner().invoke(app, [*args, "--json", "--database-url", dsn])
    data = orjson.loads(as_json.output)
    assert data["bids"] == [list(level) for level in expected_bids]
    assert data["asks"] == [list(level) for level in expected_asks]
    bad = CliRunner().invoke(app, [*args[:6], "--at", "yesterday", "--database-url", dsn])
    assert bad.exit_code != 0
    assert "is not an ISO 8601 time" in bad.output
