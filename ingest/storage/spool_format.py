"""The on-disk format of spool segments: JSON Lines, one row per line.

    {"tcpd_spool":3,"created_ms":1764759000000}          header, the first line of a segment
    ["t",exchange,symbol,trade_id,price,size,side,ts_ms,raw_json,fill_count,trade_seq]  a TradeRow
    ["m",exchange,symbol,data_type,ts_ms,data_json,trade_id]          a MarketRow
    ["d",exchange,received_ms,reason,raw_text]                        a DeadLetter

Why JSON Lines: every field of a row is already text or an integer, so a line is the row
exactly (prices stay decimal strings), orjson writes and reads it at about a microsecond
a row, and an operator can read a segment with `head`, `jq` or `grep`. Older segments are
still read: version 1 (trades without fill_count and trade_seq, written before sql/0104)
gives its trades the columns' defaults, "1" and "0"; versions 1 and 2 (market rows without
trade_id, written before sql/0118) give their market rows trade_id "" (NULL). A line is complete
only with its newline: a segment cut short by a crash ends in a line without one (or in
zeros after a power loss), which `decode` reports as a torn record instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from ingest.model import DataType
from ingest.rows import DeadLetter, MarketRow, Row, TradeRow

FORMAT_VERSION = 3
_READ_VERSIONS = (1, 2, FORMAT_VERSION)
# Bytes of an unreadable record kept in its dead letter (the rest is in the log's count).
KEPT_BYTES = 4096
_EXCHANGE = re.compile(rb'^\["[tmd]","((?:[^"\\]|\\.)*)"')
_DATA_TYPES = {d.value: d for d in DataType}
_TRADE_FIELDS = (len(TradeRow._fields), len(TradeRow._fields) - 2)  # versions 2 and 3, version 1
_MARKET_FIELDS = (len(MarketRow._fields), len(MarketRow._fields) - 1)  # version 3, versions 1 and 2


def header(created_ms: int) -> bytes:
    """The first line of a segment."""
    return orjson.dumps({"tcpd_spool": FORMAT_VERSION, "created_ms": created_ms}) + b"\n"


def encode(rows: Sequence[Row]) -> bytes:
    """The lines of `rows`, in order, each ending in a newline."""
    dumps = orjson.dumps
    out: list[bytes] = []
    for r in rows:
        kind = type(r)
        if kind is TradeRow:
            out.append(dumps(("t", *r)))
        elif kind is MarketRow:
            out.append(dumps(("m", *r)))
        elif kind is DeadLetter:
            out.append(dumps(("d", *r)))
        else:
            raise TypeError(f"not a row: {kind.__name__}")
    out.append(b"")
    return b"\n".join(out)


@dataclass(slots=True)
class Decoded:
    """What one segment holds: its rows in order, and what could not be read back."""

    created_ms: int | None
    rows: list[Row] = field(default_factory=list)
    # (byte offset, the record's first KEPT_BYTES bytes, why): torn or corrupted records
    unreadable: list[tuple[int, bytes, str]] = field(default_factory=list)


def _row(item: object) -> Row:
    if not isinstance(item, list) or not item:
        raise ValueError("not a row array")
    kind, rest = item[0], item[1:]
    if kind == "t" and len(rest) in _TRADE_FIELDS:
        row: Row = TradeRow(*rest)
    elif kind == "m" and len(rest) in _MARKET_FIELDS:
        row = MarketRow(rest[0], rest[1], _DATA_TYPES[rest[2]], *rest[3:])
    elif kind == "d" and len(rest) == 4:
        row = DeadLetter(*rest)
    else:
        raise ValueError(f"unknown record kind {kind!r} with {len(rest)} fields")
    return row


def decode(data: bytes) -> Decoded:
    """Read a whole segment back. Never raises on bad content: it lands in `unreadable`."""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the segment ends with a complete line
    created: int | None = None
    out = Decoded(created_ms=None)
    offset = 0
    for n, line in enumerate(lines):
        if n == 0 and line.startswith(b"{"):
            try:
                head = orjson.loads(line)
                created = int(head["created_ms"])
                if head.get("tcpd_spool") not in _READ_VERSIONS:
                    raise ValueError(f"unknown spool format {head.get('tcpd_spool')!r}")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                out.unreadable.append((offset, line[:KEPT_BYTES], f"bad segment header ({exc})"))
            offset += len(line) + 1
            continue
        try:
            out.rows.append(_row(orjson.loads(line)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            out.unreadable.append((offset, line[:KEPT_BYTES], f"corrupted record ({exc})"))
        offset += len(line) + 1
    if tail.strip(b"\x00"):
        out.unreadable.append((offset, tail[:KEPT_BYTES], f"torn record: {len(tail)} bytes without an end"))
    elif tail:
        out.unreadable.append((offset, b"", f"torn record: {len(tail)} zero bytes at the end"))
    out.created_ms = created
    return out


def exchange_of(record: bytes) -> str:
    """The exchange named at the start of a (possibly torn) record, or "" when unknown."""
    match = _EXCHANGE.match(record)
    if not match:
        return ""
    try:
        name = orjson.loads(b'"' + match.group(1) + b'"')
    except orjson.JSONDecodeError:
        return ""
    return name if isinstance(name, str) else ""
