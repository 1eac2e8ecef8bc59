"""The hot path makes no reference cycles, so `tcpd run` can collect cycles rarely.

ingest.gc_policy raises the cyclic collector's thresholds a lot; that is only safe while
what the collector and the writer make per message is freed by reference counting alone.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.exchanges.okx import OkxAdapter
from ingest.gc_policy import THRESHOLDS
from ingest.storage.batch import Batch
from ingest.storage.queue import RowQueue

OKX_DATA = Path(__file__).parent / "data" / "okx"  # see tests/data/README.md
FRAME_FILES = (
    "trades_spot.json",
    "trades_swap.json",
    "books5_spot.json",
    "tickers_spot.json",
    "candle1m_spot_closed.derived.json",
    "subscribe_ack_trades.json",
    "notice_64008.handmade.json",
    "pong.handmade.txt",
)
MALFORMED = (b"{not json", b'{"arg": {"channel": "nope"}, "data": []}', b'{"arg": {}, "data": [1]}')


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def frames() -> list[bytes]:
    good = [(OKX_DATA / name).read_bytes().rstrip(b"\n") for name in FRAME_FILES]
    return (good + list(MALFORMED)) * 50


def test_parsing_queueing_and_formatting_make_no_cycles(collector_off: None) -> None:
    adapter = OkxAdapter()

    async def pipeline() -> int:
        queue = RowQueue(1_000_000)
        taken = 0
        for store_raw in (True, False):
            parsed = adapter.parse_batch(frames(), store_raw)
            # Every path was taken: rows, control frames, rejected frames.
            assert parsed.rows
            assert parsed.controls
            assert parsed.rejected
            await queue.put(parsed.rows, since=None)
            rows = await queue.take(10_000, 0.0)
            batch = Batch.build(rows)
            assert batch.trades
            assert batch.market
            taken += len(rows)
            queue.release(len(rows))
        return taken

    assert asyncio.run(pipeline()) > 0
    assert gc.collect() == 0, "something on the hot path left reference cycles behind"


def test_the_policy_freezes_start_up_and_raises_the_thresholds() -> None:
    probe = (
        "import gc; from ingest.gc_policy import keep_gc_off_the_hot_path as k; k(); "
        "print(gc.get_threshold(), gc.get_freeze_count() > 1000)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[0] == f"{THRESHOLDS} True"
