"""OKX `books`: the seqId/prevSeqId rules (normal, gap, heartbeat, reset) on frames, the
rows stored, the periodic snapshots of the kept book, the channel choice."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.books.book import Book
from ingest.errors import ConfigError
from ingest.exchanges.base import ControlKind
from ingest.exchanges.okx.adapter import OkxAdapter
from ingest.model import DataType
from ingest.simulator.depth import DepthBook
from tests.okx_fuzz import mutate

DATA = Path(__file__).parent / "data" / "okx"


def frame(
    action: str, seq: int, prev: int, ts: int, bids: Any = (), asks: Any = (), inst: str = "BTC-USDT"
) -> bytes:
    item = {
        "asks": list(asks),
        "bids": list(bids),
        "ts": str(ts),
        "checksum": 0,
        "prevSeqId": prev,
        "seqId": seq,
    }
    return orjson.dumps({"arg": {"channel": "books", "instId": inst}, "action": action, "data": [item]})


def actions(batch: Any) -> list[tuple[str, Any]]:
    return [(d["action"], d.get("seqId")) for d in (orjson.loads(r.data_json) for r in batch.rows)]


SNAP = frame("snapshot", 10, -1, 1_700_000_000_000, [["100.0", "1"], ["99.9", "2"]], [["100.1", "3"]])


def test_recorded_shape_snapshot_then_update_rows_and_book() -> None:
    adapter = OkxAdapter()
    snap = (DATA / "books_snapshot.handmade.json").read_bytes()
    update = (DATA / "books_update.handmade.json").read_bytes()
    batch = adapter.parse_batch([snap, update], True)
    assert batch.rejected == []
    assert batch.controls == []
    rows = batch.rows
    assert [(r.symbol, r.data_type, r.ts_ms) for r in rows] == [
        ("BTC-USDT", DataType.ORDERBOOK, 1597026383085),
        ("BTC-USDT", DataType.ORDERBOOK, 1597026383185),
    ]
    first, second = (orjson.loads(r.data_json) for r in rows)
    assert first["action"] == "snapshot"
    assert first["seqId"] == 123456
    assert first["prevSeqId"] == -1
    assert first["asks"][0] == ["8476.98", "415", "0", "13"]  # exactly as delivered
    assert second["action"] == "update"
    assert second["prevSeqId"] == 123456
    assert second["asks"] == [["8476.98", "0", "0", "0"], ["8477.50", "3", "0", "1"]]
    book = adapter.books.book("BTC-USDT")
    assert book is not None
    bids, asks = book.top()
    assert bids == [("8476.97", "200"), ("8475.55", "101"), ("8475.54", "100")]
    assert asks == [("8477", "7"), ("8477.34", "85"), ("8477.50", "3")]


def test_parse_gives_the_same_rows_as_parse_batch() -> None:
    a, b = OkxAdapter(), OkxAdapter()
    frames = [SNAP, frame("update", 12, 10, 1_700_000_000_100, [["100.0", "0"]])]
    batch = a.parse_batch(frames, True)
    single = [row for f in frames for row in b.parse(f, True).market]
    assert single == batch.rows


def test_gap_asks_for_a_resync_drops_updates_until_the_fresh_snapshot() -> None:
    adapter = OkxAdapter()
    frames = [
        SNAP,
        frame("update", 12, 10, 1_700_000_000_100, [["100.0", "5"]]),
        frame("update", 20, 15, 1_700_000_000_200, [["99.9", "7"]]),  # 13..15 lost
        frame("update", 22, 20, 1_700_000_000_300, [["99.8", "1"]]),  # still before the snapshot
    ]
    batch = adapter.parse_batch(frames, True)
    assert [c.kind for c in batch.controls] == [ControlKind.RESYNC]
    assert "prevSeqId 15 after seqId 12" in batch.controls[0].detail
    assert batch.book_updates_dropped == 2
    assert actions(batch) == [("snapshot", 10), ("update", 12), ("gap", 20)]
    gap = orjson.loads(batch.rows[-1].data_json)
    assert gap["expectedPrevSeqId"] == 12
    assert gap["prevSeqId"] == 15
    # the fresh snapshot restarts the chain
    fresh = frame("snapshot", 30, -1, 1_700_000_000_400, [["98.0", "4"]], [["101.0", "4"]])
    after = adapter.parse_batch(
        [fresh, frame("update", 31, 30, 1_700_000_000_500, [], [["101.0", "0"]])], True
    )
    assert after.controls == []
    assert after.book_updates_dropped == 0
    assert actions(after) == [("snapshot", 30), ("update", 31)]
    book = adapter.books.book("BTC-USDT")
    assert book is not None
    assert book.top() == ([("98.0", "4")], [])
    assert adapter.books.counters.gaps == 1


def test_heartbeat_is_not_stored_and_keeps_the_chain() -> None:
    adapter = OkxAdapter()
    batch = adapter.parse_batch(
        [
            SNAP,
            frame("update", 10, 10, 1_700_000_000_100),
            frame("update", 11, 10, 1_700_000_000_200, [["99.9", "0"]]),
        ],
        True,
    )
    assert batch.controls == []
    assert batch.book_updates_dropped == 0
    assert actions(batch) == [("snapshot", 10), ("update", 11)]
    assert adapter.books.counters.heartbeats == 1


def test_reset_lower_seq_id_is_not_a_gap() -> None:
    adapter = OkxAdapter()
    batch = adapter.parse_batch(
        [
            SNAP,
            frame("update", 3, 10, 1_700_000_000_100, [["99.9", "8"]]),  # maintenance reset
            frame("update", 5, 3, 1_700_000_000_200, [["99.7", "1"]]),
        ],
        True,
    )
    assert batch.controls == []
    assert batch.book_updates_dropped == 0
    assert actions(batch) == [("snapshot", 10), ("update", 3), ("update", 5)]
    assert adapter.books.counters.resets == 1
    book = adapter.books.book("BTC-USDT")
    assert book is not None
    assert book.top()[0] == [("100.0", "1"), ("99.9", "8"), ("99.7", "1")]


def test_update_before_any_snapshot_is_dropped_and_asks_once() -> None:
    adapter = OkxAdapter()
    batch = adapter.parse_batch(
        [
            frame("update", 12, 10, 1_700_000_000_100),
            frame("update", 13, 12, 1_700_000_000_200, [["1", "1"]]),
        ],
        True,
    )
    assert [c.kind for c in batch.controls] == [ControlKind.RESYNC]
    assert batch.book_updates_dropped == 2


def test_periodic_snapshot_of_the_kept_book() -> None:
    adapter = OkxAdapter()
    adapter.set_book_snapshot_interval(1.0)
    t0 = 1_700_000_000_000
    batch = adapter.parse_batch(
        [
            SNAP,
            frame("update", 11, 10, t0 + 500, [["99.9", "0"]]),
            frame("update", 12, 11, t0 + 1000, [], [["100.2", "9"]]),
            frame("update", 13, 12, t0 + 1500, [["99.5", "2"]]),
        ],
        True,
    )
    assert actions(batch) == [
        ("snapshot", 10),
        ("update", 11),
        ("update", 12),
        ("snapshot", 12),
        ("update", 13),
    ]
    periodic = orjson.loads(batch.rows[3].data_json)
    assert periodic["source"] == "collector"
    assert batch.rows[3].ts_ms == t0 + 1000
    assert periodic["bids"] == [["100.0", "1"]]
    assert periodic["asks"] == [["100.1", "3"], ["100.2", "9"]]


def test_bad_level_is_dead_lettered_and_breaks_the_chain() -> None:
    adapter = OkxAdapter()
    bad = frame("update", 11, 10, 1_700_000_000_100, [["-1", "1"]])
    batch = adapter.parse_batch(
        [SNAP, bad, frame("update", 12, 11, 1_700_000_000_200, [["99.9", "1"]])], True
    )
    assert len(batch.rejected) == 1
    assert "books: bids[0] price" in batch.rejected[0][1]
    assert orjson.loads(batch.rejected[0][0])["action"] == "update"  # re-parsable
    assert [c.kind for c in batch.controls] == [ControlKind.RESYNC]
    # the book is unknown from the last push applied (the snapshot) on: a gap marker says so
    assert actions(batch) == [("snapshot", 10), ("gap", 10)]
    assert batch.rows[1].ts_ms == batch.rows[0].ts_ms
    assert batch.book_updates_dropped == 1


def test_unknown_fields_are_ignored_and_checksum_not_used() -> None:
    item = {"asks": [], "bids": [["1.5", "2"]], "ts": "1700000000000", "checksum": -12345, "prevSeqId": -1,
            "seqId": 1, "newField": {"x": 1}}  # fmt: skip
    msg = {
        "arg": {"channel": "books", "instId": "ETH-USDT", "extra": 1},
        "action": "snapshot",
        "data": [item],
    }
    batch = OkxAdapter().parse_batch([orjson.dumps(msg)], True)
    assert batch.rejected == []
    assert len(batch.rows) == 1


def test_bad_action_is_refused_with_the_reason() -> None:
    batch = OkxAdapter().parse_batch([SNAP.replace(b'"snapshot"', b'"partial"')], True)
    assert batch.rows == []
    assert "'action' must be 'snapshot' or 'update'" in batch.rejected[0][1]


def test_channel_books_is_chosen_by_channels_orderbook_and_marks_the_subscription() -> None:
    urls = {"public": "wss://x/ws/v5/public", "business": "wss://x/ws/v5/business"}
    adapter = OkxAdapter()
    subs = adapter.subscriptions(
        "BTC-USDT", [DataType.TRADE, DataType.ORDERBOOK], {"orderbook": "books"}, urls
    )
    assert [orjson.loads(m)["args"] for m in subs[0].messages] == [
        [{"channel": "trades", "instId": "BTC-USDT"}, {"channel": "books", "instId": "BTC-USDT"}]
    ]
    # after a gap only the book is resubscribed: the pair's trades go on
    assert [orjson.loads(m) for m in subs[0].resync] == [
        {"op": "unsubscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]},
        {"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT"}]},
    ]
    assert adapter.subscriptions("BTC-USDT", [DataType.ORDERBOOK], {}, urls)[0].resync == ()
    with pytest.raises(ConfigError, match=r"channels.orderbook.*use one of: books, books5"):
        adapter.subscriptions("BTC-USDT", [DataType.ORDERBOOK], {"orderbook": "books50"}, urls)


def test_book_levels_compare_by_value() -> None:
    adapter = OkxAdapter()
    adapter.parse_batch([SNAP, frame("update", 11, 10, 1_700_000_000_100, [["100.00", "0"]])], True)
    book = adapter.books.book("BTC-USDT")
    assert book is not None
    assert book.canonical()[0] == [(Decimal("99.9"), Decimal("2"))]


def replay(rows: Any) -> dict[str, Any]:
    """What a reader of the stored rows knows at the end: per symbol the book from the last
    snapshot and the updates after it, or None after a gap marker."""
    books: dict[str, Any] = {}
    for row in rows:
        data = orjson.loads(row.data_json)
        if "action" not in data:
            continue  # a mutated channel (books5, tickers...): not this chain
        if data["action"] == "snapshot":
            books[row.symbol] = Book()
            books[row.symbol].load(data["bids"], data["asks"])
        elif data["action"] == "gap":
            books[row.symbol] = None
        elif books.get(row.symbol) is not None:
            books[row.symbol].apply(data["bids"], data["asks"])
    return books


@pytest.mark.parametrize("seed", range(30))
def test_mutated_books_streams_never_store_a_wrong_book(seed: int) -> None:
    """Simulated books pushes, a share of them mutated (tests/okx_fuzz.py's mutations) or
    dropped: parse_batch never raises, and the book a reader rebuilds from the stored rows
    is the book the adapter kept, for every symbol, or is marked unknown by a gap."""
    rng = random.Random(seed)
    sim = DepthBook("BTC-USDT", depth=50, seed=seed)
    frames = [sim.snapshot(1_700_000_000_000)]
    for i in range(300):
        if rng.random() < 0.05:
            sim.update(1_700_000_000_000 + 100 * (i + 1))  # lost on the way
            continue
        f = (
            sim.update(1_700_000_000_000 + 100 * (i + 1))
            if i % 50
            else sim.snapshot(1_700_000_000_000 + 100 * i)
        )
        frames.append(mutate(rng, f) if rng.random() < 0.2 else f)
    adapter = OkxAdapter()
    stored = []
    for start in range(0, len(frames), 64):
        batch = adapter.parse_batch(frames[start : start + 64], True)
        stored += batch.rows
        for row in batch.rows:
            assert orjson.loads(row.data_json).get("action", "gap") in {"snapshot", "update", "gap"}
    for symbol, book in replay(stored).items():
        kept = adapter.books.book(symbol)
        if book is None:
            assert kept is None
        else:
            assert kept is not None
            assert book.canonical() == kept.canonical()
