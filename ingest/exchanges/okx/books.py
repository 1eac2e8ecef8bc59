"""The `books` channel handler: validates each push's items, then hands them to the
BookSequencer, which checks the seqId chain and makes the rows (book_seq.py).

The push's `action` ("snapshot" or "update") is a field of the frame, not of `arg`: the
adapter passes it in `arg["action"]` for this handler (the only channel that has one).
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.errors import FrameError
from ingest.exchanges.okx.book_seq import BookPush, BookSequencer
from ingest.exchanges.okx.fields import Kind, check_levels, check_value
from ingest.rows import DataRow

CHANNEL = "books"
ACTIONS = frozenset({"snapshot", "update"})
_MAX_SEQ = 2**63 - 1


def books(
    sequencer: BookSequencer,
    arg: dict[str, Any],
    data: list[Any],
    store_raw_data: bool,
    rows: list[DataRow],
    rejected: list[tuple[str | bytes, str]],
) -> None:
    """`books`: every item checked, then sequenced; a bad item is dead-lettered and breaks
    its chain (the book is unknown until the fresh snapshot the sequencer asks for)."""
    action = arg.get("action")
    wire_arg = {k: v for k, v in arg.items() if k != "action"}
    symbol = check_value("books: arg.instId", Kind.SYMBOL, arg.get("instId"))
    if action not in ACTIONS:
        raise FrameError(f"books: field 'action' must be 'snapshot' or 'update', got {action!r:.40}")
    for item in data:
        try:
            push = _push(symbol, action, item)
        except FrameError as exc:
            frame = {"arg": wire_arg, "action": action, "data": [item]}
            rejected.append((orjson.dumps(frame), exc.reason))
            sequencer.broken(symbol, exc.reason, rows)
            continue
        sequencer.accept(push, rows)


def _push(symbol: str, action: str, item: object) -> BookPush:
    if type(item) is not dict:
        raise FrameError(f"books: expected a JSON object, got {type(item).__name__}")
    for name in ("asks", "bids", "ts", "seqId", "prevSeqId"):
        if name not in item:
            raise FrameError(f"books: missing field {name!r}")
    check_levels("books: asks", item["asks"])
    check_levels("books: bids", item["bids"])
    ts = check_value("books: field 'ts'", Kind.MS, item["ts"])
    seq, prev = item["seqId"], item["prevSeqId"]
    for name, value in (("seqId", seq), ("prevSeqId", prev)):
        if type(value) is not int or not -1 <= value <= _MAX_SEQ:
            raise FrameError(f"books: field {name!r} must be an integer from -1, got {value!r:.40}")
    return BookPush(symbol, action, int(ts), seq, prev, item["bids"], item["asks"], item)
