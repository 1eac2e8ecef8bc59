"""End to end: mutated real OKX frames mixed into the simulator's stream, through the real
collector and COPY writer into the native database; every frame is stored or
dead-lettered and the counts add up, with one connection from start to end."""

from __future__ import annotations

import asyncio
import random

import orjson
import psycopg

from ingest.exchanges.okx import OkxAdapter
from tests.collector_support import collector_for, simulator, wait_for
from tests.okx_fuzz import account, corpus, stream
from tests.storage_support import make_writer

MUTATED_FRAMES = 5000
SIM_TRADES = 2000
SEED = 7  # a fixed stream: the expected counts are computed from it below


def _data_frames() -> list[bytes]:
    # Control frames stay out: a recorded 64008 notice would make the collector reconnect
    # (by design), and this test proves that bad input alone never does.
    okx = OkxAdapter()
    return [f for f in corpus() if f != b"pong" and b'"data"' in f and okx.parse(f, True).control is None]


def _db(dsn: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, prepare_threshold=None) as conn:
        return conn.execute(query).fetchall()


async def test_mutated_frames_in_a_live_stream_are_each_stored_or_dead_lettered(migrated_db_dsn: str) -> None:
    frames = stream(random.Random(SEED), _data_frames(), MUTATED_FRAMES, mutated_share=0.9)
    expected = account(OkxAdapter(), frames, store_raw_data=True)
    writer = make_writer(migrated_db_dsn)
    await writer.start()
    async with simulator(total=SIM_TRADES, rate=1000.0) as sim:
        collector = collector_for(sim, writer, store_raw_data=True, dead_letters_per_hour=10**6)
        await collector.start()
        try:
            await wait_for(lambda: collector.stats.rows_received > 0, what="first trades")
            for start in range(0, len(frames), 250):
                assert await sim.inject(tuple(frames[start : start + 250])) == 250
                await asyncio.sleep(0.05)
            total = 1 + SIM_TRADES + MUTATED_FRAMES  # + the subscribe ack
            await wait_for(lambda: collector.stats.messages_received == total, within=30, what="every frame")
        finally:
            await collector.stop()
            await writer.stop(30)
    stats = collector.get_status()["statistics"]
    assert (sim.counters["connections"], stats["reconnect_attempts"], stats["restarts"]) == (1, 0, 0)
    assert stats["messages_received"] - stats["messages_processed"] == expected.frames_refused
    assert (stats["dead_letters"], stats["dead_letters_dropped"]) == (expected.dead_letters, 0)
    assert writer.stats()["rows_rejected"] == 0  # the parser's bounds are what the database takes

    want_trades = {("okx", t.symbol, t.trade_id, t.ts_ms) for t in expected.trades}
    want_trades |= {("okx", t.inst_id, t.trade_id, t.ts_ms) for t in sim.sent_trades}
    stored = _db(
        migrated_db_dsn,
        'SELECT exchange, symbol, trade_id, (extract(epoch FROM "timestamp") * 1000)::bigint FROM raw_trades',
    )
    assert len(stored) == len(set(stored))
    assert set(stored) == want_trades
    assert _db(migrated_db_dsn, "SELECT count(*) FROM dead_letters") == [(expected.dead_letters,)]
    # market_data: the raw copy of every stored trade, one row per trade id as in raw_trades
    # (sql/0118: a mutated frame repeating a trade id with other fields is that trade again),
    # plus the books, tickers and candles, one row per distinct content.
    raw_copies = _db(
        migrated_db_dsn,
        "SELECT 'okx', symbol, trade_id, (extract(epoch FROM \"timestamp\") * 1000)::bigint"
        " FROM market_data WHERE data_type = 'trade'",
    )
    assert len(raw_copies) == len(set(raw_copies))
    assert set(raw_copies) == want_trades
    others = _db(
        migrated_db_dsn,
        'SELECT count(*), count(DISTINCT (symbol, data_type, "timestamp", data)) FROM market_data'
        " WHERE data_type <> 'trade'",
    )
    sort_keys = orjson.OPT_SORT_KEYS
    want_others = {
        (m.symbol, m.data_type.value, m.ts_ms, orjson.dumps(orjson.loads(m.data_json), option=sort_keys))
        for m in expected.market
        if m.data_type.value != "trade"
    }
    assert others == [(len(want_others), len(want_others))]
    assert expected.frames_refused > 1000
    assert expected.items_refused > 500
    assert expected.items_stored > 500
