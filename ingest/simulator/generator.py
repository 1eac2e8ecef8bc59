"""Generated trades: an endless or bounded `trades` stream built in big chunks.

Building is the simulator's only per-trade Python work, so the 1-trade-per-message case
(the benchmark's) formats whole frames, WebSocket header included, through C-level map()
calls; the ASCII-only frames are encoded as latin-1 so the header bytes fit in the str
template.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import re
import time
from collections.abc import Iterator

from ingest.errors import ConfigError
from ingest.simulator.streams import SentTrade, Stream
from ingest.simulator.wire import text_frame

_INST_ID = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")

# Prices (tenths, wandering +-100.0 around 64000) and sizes (1e-8 units, never zero) come
# from small tables of exact decimal strings, so building a trade costs no arithmetic.
_PRICES = tuple(f"{t // 10}.{t % 10}" for t in (639_000 + (k * 7919) % 2001 for k in range(2001)))
_SIZES = tuple(f"{u // 10**8}.{u % 10**8:08d}" for u in ((k * 104_729) % 99_999_999 + 1 for k in range(4099)))
_SIDES = ("buy", "sell")


def trade_values(i: int) -> tuple[str, str, str]:
    """(price, size, side) of generated trade `i`: exact decimal strings, periodic in `i`.

    Venue-neutral: other simulators derive their own wire fields from the same tables."""
    return _PRICES[i % 2001], _SIZES[i % 4099], _SIDES[(i >> 3) & 1]


class TradeGenerator(Stream):
    """An endless (or `limit`-long) `trades` stream with increasing trade ids.

    Trade i (ids start at 1) has price _PRICES[i % 2001], size _SIZES[i % 4099] and side
    _SIDES[(i >> 3) & 1], all exact decimal strings; ts is the wall clock in ms when its
    chunk was built, never decreasing. Frame f carries ids 1 + f*N .. (f+1)*N.
    """

    def __init__(
        self,
        inst_id: str,
        *,
        trades_per_message: int,
        chunk_trades: int,
        limit: int | None,
        channel: str = "trades",
    ) -> None:
        if not _INST_ID.fullmatch(inst_id):
            raise ConfigError(f"simulator symbol {inst_id!r} is not an OKX instId like BTC-USDT")
        if trades_per_message < 1:
            raise ConfigError("trades_per_message must be at least 1")
        if channel not in TRADE_CHANNELS:
            raise ConfigError(f"simulator trade channel {channel!r}: use one of {', '.join(TRADE_CHANNELS)}")
        super().__init__(channel, inst_id)
        self._per = trades_per_message
        # Whole messages per chunk, so a message never straddles two chunks (and two ts).
        self._chunk = max(1, chunk_trades // trades_per_message) * trades_per_message
        self._limit = limit
        self._next_id = 1
        self._chunk_ts: list[tuple[int, int]] = []  # (first trade id, ts) per chunk
        self._carry: list[str] = []  # trades of a message split by an id-width boundary
        self._prefix = '{"arg":{"channel":"' + channel + '","instId":"' + inst_id + '"},"data":['

    def extend(self) -> bool:
        """Build the next chunk of messages; False once `limit` trades were built."""
        first = self._next_id
        n = self._chunk
        if self._limit is not None:
            n = min(n, self._limit - (first - 1))
            if n <= 0:
                return False
        last_ts = self._chunk_ts[-1][1] if self._chunk_ts else 0
        ts = max(last_ts, time.time_ns() // 1_000_000)
        self._chunk_ts.append((first, ts))
        self._next_id = first + n
        lo = first
        while lo < first + n:  # runs of trade ids with the same number of digits
            hi = min(first + n, 10 ** len(str(lo)))
            if self._per == 1:
                self.frames += _single_trade_frames(self.channel, self.inst_id, ts, lo, hi)
            else:
                final = self._limit is not None and hi - 1 == self._limit
                self._add_grouped(_trade_texts(self.channel, self.inst_id, ts, lo, hi), final)
            lo = hi
        if self._per == 1:
            self.counts += [1] * n
        return True

    def _add_grouped(self, texts: list[str], final: bool) -> None:
        # Chunks hold whole messages, but a run boundary (10, 100, ...) may split one:
        # carry the tail over to the next run. Only the very last message of a bounded
        # stream may be short, so frame f always starts at trade id 1 + f * per.
        texts = self._carry + texts
        per = self._per
        whole = len(texts) if final else len(texts) - len(texts) % per
        for k in range(0, whole, per):
            group = texts[k : k + per]
            self.frames.append(text_frame((self._prefix + ",".join(group) + "]}").encode()))
            self.counts.append(len(group))
        self._carry = texts[whole:]

    def trades_in(self, first: int, stop: int) -> list[SentTrade]:
        """Rebuild the trades of absolute frames [first, stop) from their ids."""
        return self.trades_by_id(1 + first * self._per, 1 + stop * self._per)

    def published(self) -> int:
        """The id of the newest trade handed out (0: none yet): what the exchange has published,
        whether a client received it or not."""
        return min(self.pos * self._per, self._next_id - 1)

    def trades_by_id(self, lo: int, hi: int) -> list[SentTrade]:
        """Trades with ids lo .. hi-1 (never past the last one built), rebuilt from their ids."""
        lo = max(1, lo)
        hi = min(hi, self._next_id)
        starts = [c[0] for c in self._chunk_ts]
        out: list[SentTrade] = []
        inst = self.inst_id
        for i in range(lo, hi):
            ts = self._chunk_ts[bisect.bisect_right(starts, i) - 1][1]
            out.append(SentTrade(inst, str(i), _PRICES[i % 2001], _SIZES[i % 4099], _SIDES[(i >> 3) & 1], ts))
        return out

    def last_trade(self) -> tuple[str, str]:
        """(price, size) of the last trade handed out, or of trade 1 before any was."""
        i = max(1, min(self.pos * self._per, self._next_id - 1))
        return _PRICES[i % 2001], _SIZES[i % 4099]

    def trim(self, keep: int) -> None:
        """Forget old frames (trades are rebuilt from ids, so only frames are kept)."""
        drop = self.pos - self.base - keep
        if drop > 0:
            del self.frames[:drop]
            del self.counts[:drop]
            self.base += drop


def _cycles(lo: int) -> tuple[Iterator[str], Iterator[str]]:
    """Prices and sizes of trades lo, lo+1, ...: both are periodic in the trade id."""
    prices = itertools.cycle(_PRICES[lo % 2001 :] + _PRICES[: lo % 2001])
    sizes = itertools.cycle(_SIZES[lo % 4099 :] + _SIZES[: lo % 4099])
    return prices, sizes


# The channels a generated trade stream can answer on: OKX's `trades` pushes one object per
# taker order and price with `count` and `seqId` (each generated trade is one fill: count 1);
# `trades-all` (on /ws/v5/business) one object per fill, without them.
TRADE_CHANNELS = ("trades", "trades-all")


def _trade_json(channel: str, inst_id: str, side: str, ts: int) -> str:
    """A %-template of one trade object (tradeId, px, sz and, for `trades`, seqId left open)."""
    head = (
        '{"instId":"'
        + inst_id
        + '","tradeId":"%s","px":"%s","sz":"%s","side":"'
        + side
        + '","ts":"'
        + str(ts)
    )
    if channel == "trades-all":
        return head + '","source":"0"}'
    return head + '","count":"1","source":"0","seqId":%s}'


def _fields(
    channel: str, ids: list[str], prices: Iterator[str], sizes: Iterator[str]
) -> Iterator[tuple[str, ...]]:
    """The %-arguments of each trade's template: the id twice for `trades` (tradeId, seqId)."""
    if channel == "trades-all":
        return zip(ids, prices, sizes, strict=False)
    return zip(ids, prices, sizes, ids, strict=False)


def _trade_texts(channel: str, inst_id: str, ts: int, lo: int, hi: int) -> list[str]:
    """JSON texts of trades lo..hi-1, built by C-level map() calls (no per-trade Python)."""
    templates = [_trade_json(channel, inst_id, side, ts) for side in _SIDES]
    ids = list(map(str, range(lo, hi)))
    # the side of trade i is _SIDES[(i >> 3) & 1]: period 16
    side_templates = itertools.cycle([templates[(i >> 3) & 1] for i in range(lo, lo + 16)])
    prices, sizes = _cycles(lo)
    return list(map(operator.mod, side_templates, _fields(channel, ids, prices, sizes)))


def _single_trade_frames(channel: str, inst_id: str, ts: int, lo: int, hi: int) -> list[bytes]:
    """Complete WebSocket frames for trades lo..hi-1 (same id width), one trade each.

    Within the run every field has a fixed width except the side, so the frame header is
    baked into one template per side and a frame costs one C-level % and one encode.
    """
    prefix = '{"arg":{"channel":"' + channel + '","instId":"' + inst_id + '"},"data":['
    bodies = [prefix + _trade_json(channel, inst_id, side, ts) + "]}" for side in _SIDES]
    width = len(str(lo))
    sample = next(_fields(channel, ["0" * width], iter(_PRICES), iter(_SIZES)))
    templates = [_header(len(body % sample)) + body for body in bodies]
    ids = list(map(str, range(lo, hi)))
    side_templates = itertools.cycle([templates[(i >> 3) & 1] for i in range(lo, lo + 16)])
    prices, sizes = _cycles(lo)
    texts = map(operator.mod, side_templates, _fields(channel, ids, prices, sizes))
    return list(map(operator.methodcaller("encode", "latin-1"), texts))


def _header(payload_len: int) -> str:
    """The frame header for a payload of `payload_len` bytes, as a %-template fragment."""
    header = text_frame(b"x" * payload_len)[:-payload_len].decode("latin-1")
    return header.replace("%", "%%")  # a length byte may be 0x25
