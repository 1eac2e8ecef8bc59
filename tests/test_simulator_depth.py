"""The OKX simulator's full-depth `books` (ingest/simulator/depth.py): the seqId chain,
the injected gap, reset and heartbeats, and its own book at a chosen time."""

from __future__ import annotations

from typing import Any

import orjson

from ingest.books.book import Book
from ingest.simulator.depth import DEPTH, DepthBook


def item(payload: bytes) -> tuple[str, dict[str, Any]]:
    msg = orjson.loads(payload)
    assert msg["arg"] == {"channel": "books", "instId": "BTC-USDT"}
    return msg["action"], msg["data"][0]


def test_snapshot_then_chained_updates_rebuild_the_simulators_book() -> None:
    sim = DepthBook("BTC-USDT")
    action, snap = item(sim.snapshot(1_000))
    assert action == "snapshot"
    assert snap["prevSeqId"] == -1
    assert len(snap["bids"]) == DEPTH
    assert len(snap["asks"]) == DEPTH
    assert snap["checksum"] == 0
    book = Book()
    book.load(snap["bids"], snap["asks"])
    last = snap["seqId"]
    for now in range(1_100, 6_100, 100):
        action, upd = item(sim.update(now))
        assert action == "update"
        assert upd["prevSeqId"] == last
        assert upd["seqId"] > last
        book.apply(upd["bids"], upd["asks"])
        last = upd["seqId"]
        assert book.canonical() == sim.book_at(int(upd["ts"])).canonical()
    assert book.canonical() == sim.current().canonical()
    assert book.canonical() == sim.book_at_seq(last).canonical()
    assert float(book.top(1)[0][0][0]) < float(book.top(1)[1][0][0])  # never crossed


def test_injected_gap_skips_a_change_that_a_fresh_snapshot_carries() -> None:
    sim = DepthBook("BTC-USDT")
    _, snap = item(sim.snapshot(1_000))
    _, first = item(sim.update(1_100))
    sim.inject_gap()
    _, after = item(sim.update(1_200))
    assert after["prevSeqId"] != first["seqId"]  # the lost change's seqId
    assert after["prevSeqId"] > first["seqId"]
    lost = sim.book_at(int(after["ts"]) - 1)  # the state the lost change made
    client = Book()
    client.load(snap["bids"], snap["asks"])
    client.apply(first["bids"], first["asks"])
    assert client.canonical() != lost.canonical()
    _, fresh = item(sim.snapshot(1_300))
    client.load(fresh["bids"], fresh["asks"])
    assert client.canonical() == sim.current().canonical()


def test_injected_reset_and_heartbeats() -> None:
    sim = DepthBook("BTC-USDT")
    sim.snapshot(1_000)
    _, first = item(sim.update(1_100))
    sim.inject_heartbeats(2)
    beats = [item(sim.update(t))[1] for t in (1_200, 1_300)]
    assert [(b["seqId"], b["prevSeqId"], b["bids"], b["asks"]) for b in beats] == [
        (first["seqId"], first["seqId"], [], [])
    ] * 2
    sim.inject_reset()
    _, reset = item(sim.update(1_400))
    assert reset["prevSeqId"] == first["seqId"]
    assert reset["seqId"] < reset["prevSeqId"]
    _, after = item(sim.update(1_500))
    assert after["prevSeqId"] == reset["seqId"]
