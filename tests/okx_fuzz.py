"""Mutated real OKX frames for the bad-input fuzz tests, and the accounting they check.

The corpus is every recorded frame of tests/data/okx (data and control frames). A mutation
is structural (a field of one item set to an awkward value or removed, items duplicated,
`data` emptied or replaced, the channel changed, the frame wrapped or nested) or
byte-level (a byte flipped, a span cut, repeated or inserted, the frame truncated); a
mutated frame has one to three of them. A `random.Random` drives every choice, so a seed
(drawn by hypothesis in the tests) reproduces a stream exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from ingest.errors import FrameError
from ingest.exchanges.okx import OkxAdapter
from ingest.exchanges.okx.channels import CANDLE_CHANNELS
from ingest.exchanges.okx.fields import MAX_MS, MAX_SYMBOL_CHARS, MAX_TRADE_ID_CHARS, MIN_MS
from ingest.rows import MarketRow, TradeRow

OKX_DATA = Path(__file__).parent / "data" / "okx"  # see tests/data/README.md


def corpus() -> list[bytes]:
    """Every recorded OKX frame, as received (bytes), but the incremental `books` ones: their
    parse depends on the frames before them (the seqId chain), so parse() frame by frame is
    no reference for them; test_okx_books.py fuzzes them against the kept book instead."""
    frames = [
        p.read_bytes().rstrip(b"\n")
        for p in sorted(OKX_DATA.iterdir())
        if p.suffix in (".json", ".txt") and not p.name.startswith("books_")
    ]
    for line in (OKX_DATA / "ccxt_okx_ws_messages.extract.jsonl").read_text(encoding="utf-8").splitlines():
        frames.append(orjson.loads(line)["raw"].encode())
    return frames


# Values a field may be set to: the edges of the accepted ranges on both sides, wrong types.
AWKWARD: tuple[Any, ...] = (
    "1e309", "1e999", "1E+2", "1e-8", "0", "0.0", "000", "-1", "+1", "", " 1", "1 ", "NaN", "Infinity",
    "1" * 20, "1" * 21, "0." + "1" * 20, "0." + "1" * 21, "64040.", ".5", "1,5", "١٢٣", "0x10",
    "1786538760", "1786538760218", "1786538760218000", "1262303999999", "1262304000000",
    "4102444799999", "4102444800000", "0001786538760", "buy", "sell", "BUY", "x" * 51, "y" * 101,
    "a\u0000b", "\u00e9", "\U0001f600", None, True, 0, 1.5, -1, 2**64 - 1, -(2**63), [], {},
    ["1", "2"], {"px": "1"},
)  # fmt: skip


def _items(obj: Any) -> list[Any] | None:
    data = obj.get("data") if isinstance(obj, dict) else None
    return data if isinstance(data, list) and data else None


def _set_field(rng: random.Random, obj: Any) -> None:
    items = _items(obj)
    if items is None:
        return
    i = rng.randrange(len(items))
    item = items[i]
    value = rng.choice(AWKWARD)
    if isinstance(item, dict):
        keys = [*item, "px", "sz", "ts", "side", "tradeId", "instId", "extra"]
        item[rng.choice(keys)] = value
    elif isinstance(item, list) and item:
        item[rng.randrange(len(item))] = value
    else:
        items[i] = value


def _drop_field(rng: random.Random, obj: Any) -> None:
    items = _items(obj)
    if items is not None and isinstance(items[0], dict) and items[0]:
        del items[0][rng.choice(list(items[0]))]


def _duplicate_items(rng: random.Random, obj: Any) -> None:
    items = _items(obj)
    if items is not None:
        items.extend(orjson.loads(orjson.dumps(items)) * rng.randint(1, 4))


def _replace_data(rng: random.Random, obj: Any) -> None:
    if isinstance(obj, dict):
        obj["data"] = rng.choice(([], {}, "x", None, 7, [[]], [None]))


def _change_channel(rng: random.Random, obj: Any) -> None:
    arg = obj.get("arg") if isinstance(obj, dict) else None
    if isinstance(arg, dict):
        arg["channel"] = rng.choice(("trades", "books5", "tickers", "candle1m", "candle1s", "x", 1, None))
        if rng.random() < 0.3:
            arg.pop("instId", None)


def _nest(rng: random.Random, obj: Any) -> Any:
    return rng.choice(([obj], {"data": obj}, {"arg": obj, "data": [obj]}))


STRUCTURAL: tuple[Callable[[random.Random, Any], Any], ...] = (
    _set_field, _set_field, _set_field, _drop_field, _duplicate_items, _replace_data, _change_channel, _nest,
)  # fmt: skip


def _bytes_mutation(rng: random.Random, frame: bytes) -> bytes:
    if not frame:
        return bytes([rng.randrange(256)])
    n = len(frame)
    i = rng.randrange(n)
    j = min(n, i + rng.randint(1, 16))
    kind = rng.randrange(6)
    if kind == 0:  # flip one byte
        return frame[:i] + bytes([frame[i] ^ (1 << rng.randrange(8))]) + frame[i + 1 :]
    if kind == 1:  # truncate
        return frame[:i]
    if kind == 2:  # cut a span
        return frame[:i] + frame[j:]
    if kind == 3:  # repeat a span
        return frame[:j] + frame[i:j] + frame[j:]
    if kind == 4:  # insert random bytes
        return frame[:i] + rng.randbytes(rng.randint(1, 8)) + frame[i:]
    # replace a digit with something else plausible
    digits = [k for k, b in enumerate(frame) if 48 <= b <= 57]
    if not digits:
        return frame
    k = rng.choice(digits)
    return frame[:k] + rng.choice((b"e", b"e309", b".", b"-", b"9" * 30, b"", b'"')) + frame[k + 1 :]


def mutate(rng: random.Random, frame: bytes) -> bytes:
    """One to three mutations of `frame`."""
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.65:
            try:
                obj = orjson.loads(frame)
            except orjson.JSONDecodeError:
                frame = _bytes_mutation(rng, frame)
                continue
            result = rng.choice(STRUCTURAL)(rng, obj)
            frame = orjson.dumps(obj if result is None else result)
        else:
            frame = _bytes_mutation(rng, frame)
    return frame


def stream(rng: random.Random, frames: list[bytes], count: int, mutated_share: float) -> list[bytes]:
    """`count` frames from the corpus, `mutated_share` of them mutated."""
    out = []
    for _ in range(count):
        frame = rng.choice(frames)
        out.append(mutate(rng, frame) if rng.random() < mutated_share else frame)
    return out


@dataclass
class Accounts:
    """What a stream of frames became; the identities in `check()` must hold."""

    frames: int = 0
    frames_refused: int = 0  # whole frames dead-lettered
    controls: int = 0  # control frames (acks, errors, notices, pong)
    data_frames: int = 0
    items: int = 0  # items of data frames
    items_stored: int = 0  # became a row (a trade and its raw copy count once)
    items_refused: int = 0  # dead-lettered alone
    items_ignored: int = 0  # candles still open (confirm "0"): ignored by design
    trades: list[TradeRow] = field(default_factory=list)
    market: list[MarketRow] = field(default_factory=list)
    dead_letters: int = 0  # frames_refused + items_refused

    def check(self) -> None:
        """Every frame and every item is accounted for exactly once."""
        assert self.frames == self.frames_refused + self.controls + self.data_frames
        assert self.items == self.items_stored + self.items_refused + self.items_ignored
        assert self.dead_letters == self.frames_refused + self.items_refused


def account(okx: OkxAdapter, frames: list[bytes], store_raw_data: bool) -> Accounts:
    """Parse `frames` one by one with parse() (the reference) and account for each."""
    acc = Accounts()
    for frame in frames:
        acc.frames += 1
        try:
            result = okx.parse(frame, store_raw_data)
        except FrameError:
            acc.frames_refused += 1
            acc.dead_letters += 1
            continue
        if result.control is not None:
            assert (result.trades, result.market, result.rejected) == ([], [], [])
            acc.controls += 1
            continue
        msg = orjson.loads(frame)
        channel, items = msg["arg"]["channel"], msg["data"]
        stored = len(result.trades) if channel == "trades" else len(result.market)
        ignored = len(items) - stored - len(result.rejected)
        open_candles = sum(1 for v in items if isinstance(v, list) and len(v) >= 9 and v[8] == "0")
        assert 0 <= ignored <= (open_candles if channel in CANDLE_CHANNELS else 0), frame
        acc.data_frames += 1
        acc.items += len(items)
        acc.items_stored += stored
        acc.items_refused += len(result.rejected)
        acc.items_ignored += ignored
        acc.dead_letters += len(result.rejected)
        acc.trades += result.trades
        acc.market += result.market
    acc.check()
    return acc


def check_trade_in_range(trade: TradeRow) -> None:
    """What docs/collector.md promises of every stored trade, checked independently."""
    for text in (trade.price, trade.size):
        whole, _, fraction = text.partition(".")
        assert whole or fraction, text  # "5." and ".5" are plain decimals, "." is not
        for digits in (whole, fraction):
            assert digits == "" or digits.isdigit(), text
            assert digits.isascii(), text
            assert len(digits) <= 20, text
        assert Decimal(text) > 0, text
    assert trade.side in ("buy", "sell")
    assert 0 < len(trade.symbol) <= MAX_SYMBOL_CHARS
    assert 0 < len(trade.trade_id) <= MAX_TRADE_ID_CHARS
    assert MIN_MS <= trade.ts_ms < MAX_MS
    assert "\\u0000" not in trade.raw_json
