"""Turn rows into PostgreSQL COPY text-format bytes, one buffer per batch.

This is the writer's hot path, so it is built for CPU cost per row: one f-string per
row, one join and one encode per batch. Escaping (backslash, tab, newline, carriage
return: the only bytes COPY text format treats specially) is checked once per batch
with C-speed `count`/`in` over the joined text; only a batch that needs it pays for
per-field escaping.

Times are written as exact UTC text, "YYYY-MM-DD HH:MM:SS.mmm+00": the date-time part is
cached per second and the millisecond suffix comes from a table, so a row costs two
lookups, and the data can be COPied straight into the target tables (no SQL conversion).

Column orders here must match the COPY statements in ingest.storage.statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from ingest.rows import DeadLetter, MarketRow, TradeRow

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

# raw_data stays last: _clean() allows backslashes only as the NULL marker of the last field.
TRADE_COLUMNS = (
    "exchange",
    "symbol",
    "trade_id",
    "price",
    "size",
    "side",
    "timestamp",
    "fill_count",
    "trade_seq",
    "raw_data",
)
# trade_id stays last, for the same reason (NULL for every observation but a raw trade).
MARKET_COLUMNS = ("exchange", "symbol", "data_type", "timestamp", "data", "trade_id")
DEAD_LETTER_COLUMNS = ("exchange", "received_at", "reason", "raw_text")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLIS = [f".{i:03d}+00" for i in range(1000)]
_SECONDS: dict[int, str] = {}
_SECONDS_KEPT = 100_000  # cache bound (about a day of seconds)


def _second_text(second: int) -> str:
    try:
        return (_EPOCH + timedelta(seconds=second)).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError):
        # Outside Python's years 1..9999: text the server refuses, so the row is
        # isolated and dead-lettered with the reason instead of breaking the batch.
        return f"out-of-range epoch second {second}"


def _cache_seconds(millis: Iterable[int]) -> dict[int, str]:
    """Make sure every second of `millis` is cached; return the cache."""
    cache = _SECONDS
    missing = {ms // 1000 for ms in millis}.difference(cache)
    if missing:
        if len(cache) + len(missing) > _SECONDS_KEPT:
            cache.clear()
        for second in missing:
            cache[second] = _second_text(second)
    return cache


def ts_text(ms: int) -> str:
    """Epoch milliseconds as exact UTC timestamptz text (the per-row formatters inline this)."""
    return _cache_seconds((ms,))[ms // 1000] + _MILLIS[ms % 1000]


def escape(value: str) -> str:
    """Escape one text field for COPY text format."""
    return value.translate(_ESCAPES)


def _clean(data: bytes, rows: int, fields: int) -> bool:
    """True when `data` (rows x fields, tab separated, newline ended) needs no escaping.

    Checked on bytes: `in` is a memchr and bytes.count beats str.count. The only
    backslashes allowed are those of NULL markers in the last field: once the tab and
    newline counts match, a newline only ends a row, so b"\t\\N\n" can only be a last
    field that is exactly the NULL marker we wrote.
    """
    if b"\r" in data or data.count(b"\t") != rows * (fields - 1) or data.count(b"\n") != rows:
        return False
    return b"\\" not in data or data.count(b"\\") == data.count(b"\t\\N\n")


def trades_copy(rows: Sequence[TradeRow]) -> bytes:
    """COPY text data for raw_trades or its staging table, columns TRADE_COLUMNS.

    An empty raw_json means the raw object was not stored (store_raw_data off): NULL.
    """
    sec, ms = _cache_seconds([r.ts_ms for r in rows]), _MILLIS
    data = "".join(
        [
            f"{r.exchange}\t{r.symbol}\t{r.trade_id}\t{r.price}\t{r.size}\t{r.side}\t"
            f"{sec[r.ts_ms // 1000]}{ms[r.ts_ms % 1000]}\t{r.fill_count}\t{r.trade_seq}\t"
            f"{r.raw_json or NULL}\n"
            for r in rows
        ]
    ).encode()
    # A raw object that is literally \N would read back as NULL: escape that batch too.
    if _clean(data, len(rows), len(TRADE_COLUMNS)) and (
        b"\\" not in data or not any(r.raw_json == NULL for r in rows)
    ):
        return data
    return "".join(
        [
            f"{escape(r.exchange)}\t{escape(r.symbol)}\t{escape(r.trade_id)}\t{escape(r.price)}\t"
            f"{escape(r.size)}\t{escape(r.side)}\t{sec[r.ts_ms // 1000]}{ms[r.ts_ms % 1000]}\t"
            f"{escape(r.fill_count)}\t{escape(r.trade_seq)}\t{escape(r.raw_json) if r.raw_json else NULL}\n"
            for r in rows
        ]
    ).encode()


def market_copy(rows: Sequence[MarketRow]) -> bytes:
    """COPY text data for market_data, columns MARKET_COLUMNS.

    An empty trade_id (every observation but a raw trade) is NULL.
    """
    sec, ms = _cache_seconds([r.ts_ms for r in rows]), _MILLIS
    data = "".join(
        [
            f"{r.exchange}\t{r.symbol}\t{r.data_type.value}\t{sec[r.ts_ms // 1000]}{ms[r.ts_ms % 1000]}\t"
            f"{r.data_json}\t{r.trade_id or NULL}\n"
            for r in rows
        ]
    ).encode()
    # A trade id that is literally \N would read back as NULL: escape that batch too.
    if _clean(data, len(rows), len(MARKET_COLUMNS)) and (
        b"\\" not in data or not any(r.trade_id == NULL for r in rows)
    ):
        return data
    return "".join(
        [
            f"{escape(r.exchange)}\t{escape(r.symbol)}\t{escape(r.data_type.value)}\t"
            f"{sec[r.ts_ms // 1000]}{ms[r.ts_ms % 1000]}\t"
            f"{escape(r.data_json)}\t{escape(r.trade_id) if r.trade_id else NULL}\n"
            for r in rows
        ]
    ).encode()


def dead_letters_copy(rows: Sequence[DeadLetter]) -> bytes:
    """COPY text data for dead_letters, columns DEAD_LETTER_COLUMNS.

    Dead letters are rare and their text is arbitrary, so every field is escaped.
    """
    sec, ms = _cache_seconds([r.received_ms for r in rows]), _MILLIS
    return "".join(
        [
            f"{escape(r.exchange)}\t{sec[r.received_ms // 1000]}{ms[r.received_ms % 1000]}\t"
            f"{escape(r.reason)}\t{escape(r.raw_text)}\n"
            for r in rows
        ]
    ).encode()
