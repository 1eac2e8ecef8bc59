"""Dead letters for what the writer cannot store as given, so it is kept, never dropped.

Three cases: an object that is not a row, a row whose text cannot be encoded (lone
surrogates), and a row the database refused (bad number, too long).
The dead letter's raw_text is a JSON object with every field of the original row, made
safe for a text column: unencodable characters are backslash-escaped,
NUL (which no PostgreSQL text can hold) becomes \\u0000.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ingest.rows import DeadLetter, MarketRow, TradeRow, safe_text

__all__ = ["REJECTED_PREFIX", "is_rejection", "rejected", "safe_text"]

REJECTED_PREFIX = "rejected by the writer"


def _fields(row: object) -> tuple[str, dict[str, Any]]:
    if isinstance(row, TradeRow):
        return row.exchange, {
            "table": "raw_trades", "symbol": row.symbol, "trade_id": row.trade_id,
            "price": row.price, "size": row.size, "side": row.side, "ts_ms": row.ts_ms,
            "raw": row.raw_json,
        }  # fmt: skip
    if isinstance(row, MarketRow):
        fields = {
            "table": "market_data", "symbol": row.symbol, "data_type": row.data_type.value,
            "ts_ms": row.ts_ms, "data": row.data_json,
        }  # fmt: skip
        if row.trade_id:  # a raw trade copy
            fields["trade_id"] = row.trade_id
        return row.exchange, fields
    if isinstance(row, DeadLetter):
        return row.exchange, {
            "table": "dead_letters", "received_ms": row.received_ms, "reason": row.reason,
            "raw_text": row.raw_text,
        }  # fmt: skip
    return "unknown", {"object": repr(row)}


def rejected(row: object, reason: str) -> DeadLetter:
    """A dead letter holding `row` (any object) and why the writer could not store it."""
    exchange, fields = _fields(row)
    clean = {k: safe_text(v) if isinstance(v, str) else v for k, v in fields.items()}
    return DeadLetter(
        exchange=safe_text(str(exchange))[:50],  # dead_letters.exchange is varchar(50)
        received_ms=int(time.time() * 1000),
        reason=safe_text(f"{REJECTED_PREFIX}: {reason}"),
        raw_text=orjson.dumps(clean).decode(),
    )


def is_rejection(row: object) -> bool:
    """True for dead letters made by rejected(): if one of those fails too, give up on it."""
    return isinstance(row, DeadLetter) and row.reason.startswith(REJECTED_PREFIX)
