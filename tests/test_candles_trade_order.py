"""open/close follow the exchange's own trade order, not the order rows were stored in.

Two writer workers interleave and a retried batch gets later identity ids than the batch
committed meanwhile, so `id` is not arrival order. OKX tradeIds increase per instrument:
candles break "timestamp" ties by raw_trades.trade_seq (the numeric tradeId). Here batch 1
fails once and is written again only after batch 2 is committed: its rows get the highest ids,
and open/close must still be the prices of the lowest/highest tradeId.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest

from ingest.exchanges.okx import OkxAdapter
from ingest.model import DataType
from ingest.rows import MarketRow, TradeRow
from tests.storage_support import make_writer

T0 = datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
T1_MS = T0_MS + 59_999  # the interval's last millisecond


def okx_trades(*trades: tuple[str, str, int, str]) -> list[TradeRow]:
    """OKX trades (tradeId, px, ts_ms, count) of BTC-USDT, parsed by the real adapter."""
    data = [
        {"instId": "BTC-USDT", "tradeId": tid, "px": px, "sz": "1", "side": "buy", "ts": str(ts), "count": n}
        for tid, px, ts, n in trades
    ]
    frame = orjson.dumps({"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": data}).decode()
    return OkxAdapter().parse(frame, store_raw_data=False).trades


BATCH_1 = okx_trades(("100", "10", T0_MS, "2"), ("200", "40", T1_MS, "1"))
BATCH_2 = okx_trades(("101", "20", T0_MS, "3"), ("201", "50", T1_MS, "4"))


async def stored(dsn: str, trade_id: str) -> bool:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM raw_trades WHERE trade_id = %s", (trade_id,))
        row = await cur.fetchone()
        return row is not None and row[0] == 1


@pytest.mark.parametrize(
    "role",
    [
        pytest.param("migrated_db_dsn", marks=pytest.mark.db),
        pytest.param("migrated_tsl_dsn", marks=pytest.mark.tsl),
    ],
)
async def test_open_close_follow_trade_ids_when_batch_1_is_retried_after_batch_2(
    role: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn: str = request.getfixturevalue(role)
    real_write, real_finish = psycopg.AsyncCopy.write, psycopg.AsyncCopy.finish
    data: dict[int, bytes] = {}
    failed: list[bool] = []

    async def write(self: psycopg.AsyncCopy, buffer: Any) -> None:
        data[id(self)] = data.get(id(self), b"") + bytes(buffer)
        await real_write(self, buffer)

    async def finish(self: psycopg.AsyncCopy, exc: BaseException | None = None) -> None:
        if exc is None and not failed and b"\t100\t" in data.get(id(self), b""):
            failed.append(True)
            # Batch 1's COPY is aborted (nothing of it committed), then it waits for batch 2
            # (the other worker) to commit before it reports the failure and is retried.
            injected = psycopg.OperationalError("injected: batch 1 lost before its commit")
            await real_finish(self, injected)
            for _ in range(1000):  # polls the database: up to 20 s
                if await stored(dsn, "101"):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("batch 2 was never committed")
            raise injected
        await real_finish(self, exc)

    monkeypatch.setattr(psycopg.AsyncCopy, "write", write)
    monkeypatch.setattr(psycopg.AsyncCopy, "finish", finish)
    writer = make_writer(dsn, batch_max_rows=2)  # two workers (the default): one per batch
    await writer.start()
    await writer.put(BATCH_1)
    await writer.put(BATCH_2)
    # A later ticker moves the symbol's watermark past the hour (candles show once complete).
    await writer.put([MarketRow("okx", "BTC-USDT", DataType.TICKER, T0_MS + 2 * 3_600_000, "{}")])
    await writer.stop(30)
    assert failed == [True], "batch 1 was never failed"
    assert writer.stats()["retries"] >= 1

    with psycopg.connect(dsn, autocommit=True) as conn:
        ids: dict[str, int] = dict(conn.execute("SELECT trade_id, id FROM raw_trades").fetchall())
        assert min(ids["100"], ids["200"]) > max(ids["101"], ids["201"]), "batch 1 was not stored last"
        row = conn.execute(
            "SELECT open, close, high, low, trade_count, trade_rows FROM candles_1m WHERE bucket_start = %s",
            (T0,),
        ).fetchone()
        hour = conn.execute(
            "SELECT open, close, trade_count FROM candles_1h WHERE bucket_start = %s", (T0,)
        ).fetchone()
        by_id = conn.execute(
            'SELECT first(price, extract(EPOCH FROM "timestamp") * 1e26 + id),'
            ' last(price, extract(EPOCH FROM "timestamp") * 1e26 + id) FROM raw_trades'
        ).fetchone()
    # The tie rule before 0105 (storage order) gets both wrong on these rows:
    assert by_id == (Decimal(20), Decimal(40))
    # tradeId 100 opens (T0, lowest id), tradeId 201 closes (T1, highest id); 2+1+3+4 fills.
    assert row == (Decimal(10), Decimal(50), Decimal(50), Decimal(10), 10, 4)
    assert hour == (Decimal(10), Decimal(50), 10)
