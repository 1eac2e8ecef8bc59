"""Binance spot stream names for one symbol, and the SUBSCRIBE frames that request them.

Binance names a stream `<symbol>@<type>` with the symbol in lowercase ("btcusdt@aggTrade");
its payloads spell the symbol in uppercase ("BTCUSDT"), which is what rows store. The
`channels` keys of the exchange config are the venue-neutral ones (trades, orderbook,
ticker, candle); their values are Binance stream types:

- trades: `trade` (one push per fill, the default) or `aggTrade` (one push per taker order
  and price, its fills counted by l - f + 1)
- orderbook: `depth5`, `depth10`, `depth20` (partial book snapshots, pushed every 1000 ms)
  with an optional `@100ms` or `@1000ms` suffix (default `depth20@100ms`); or `bookTicker`
  (best bid and ask on every change). `@1000ms` is the documented default speed and is
  written without the suffix on the wire. The diff-depth streams (`depth`, `depth@100ms`)
  need local book state and are not offered.
- ticker: `ticker` (the rolling 24 h statistics)
- candle: `kline_<interval>` (default `kline_1m`)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import orjson

from ingest.errors import ConfigError
from ingest.exchanges.base import Combined, Subscription
from ingest.exchanges.fields_common import MAX_SYMBOL_CHARS
from ingest.model import DataType

EXCHANGE = "binance"

# Keys of the `channels` mapping in the exchange config (the same keys as OKX's).
CONFIG_KEYS: dict[DataType, str] = {
    DataType.TRADE: "trades",
    DataType.ORDERBOOK: "orderbook",
    DataType.TICKER: "ticker",
    DataType.CANDLE: "candle",
}

DEFAULT_STREAMS: dict[DataType, str] = {
    DataType.TRADE: "trade",
    DataType.ORDERBOOK: "depth20@100ms",
    DataType.TICKER: "ticker",
    DataType.CANDLE: "kline_1m",
}

KLINE_INTERVALS: tuple[str, ...] = (
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M",
)  # fmt: skip
KLINE_STREAMS: frozenset[str] = frozenset(f"kline_{i}" for i in KLINE_INTERVALS)

DEPTH_LEVELS: tuple[int, ...] = (5, 10, 20)
# Every spelling of a partial-depth stream type the parser accepts; @1000ms is kept so a
# stream name written with the suffix still finds its handler.
DEPTH_STREAMS: frozenset[str] = frozenset(
    f"depth{n}{speed}" for n in DEPTH_LEVELS for speed in ("", "@100ms", "@1000ms")
)

ALLOWED_STREAMS: dict[DataType, frozenset[str]] = {
    DataType.TRADE: frozenset({"trade", "aggTrade"}),
    DataType.ORDERBOOK: DEPTH_STREAMS | {"bookTicker"},
    DataType.TICKER: frozenset({"ticker"}),
    DataType.CANDLE: KLINE_STREAMS,
}

PUBLIC_URL_KEY = "public"

# A connection listens to at most 1024 streams (Binance "WebSocket Limits"); the same
# limit bounds one SUBSCRIBE frame.
MAX_STREAMS_PER_CONNECTION = 1024

_SEPARATORS = str.maketrans("", "", "-/_")

# Request ids: a symbol has at most a few streams, so each subscription takes one id for
# its one SUBSCRIBE frame (and one for its UNSUBSCRIBE).
_request_ids = itertools.count(1)


def wire_symbol(symbol: str) -> str:
    """The lowercase symbol of Binance stream names: "BTC-USDT", "btc/usdt", "BTCUSDT" -> "btcusdt".

    ConfigError for anything but ASCII letters and digits once "-", "/" and "_" are removed."""
    wire = symbol.strip().translate(_SEPARATORS)
    if not wire or not wire.isascii() or not wire.isalnum() or len(wire) > MAX_SYMBOL_CHARS:
        raise ConfigError(
            f"binance trading_pairs symbol {symbol!r} is not a Binance spot symbol; write it as "
            "base and quote asset, e.g. BTCUSDT (BTC-USDT, BTC/USDT and lowercase are accepted too)"
        )
    return wire.lower()


def stored_symbol(symbol: str) -> str:
    """The symbol as rows store it (Binance's payload spelling): "BTC-USDT" -> "BTCUSDT"."""
    return wire_symbol(symbol).upper()


def resolve_stream(data_type: DataType, channels: Mapping[str, str]) -> str:
    """The Binance stream type for `data_type`, from the config mapping or the default."""
    key = CONFIG_KEYS.get(data_type)
    if key is None:
        supported = ", ".join(d.value for d in CONFIG_KEYS)
        raise ConfigError(
            f"data type {data_type.value!r} is not supported for binance public collection "
            f"(balance needs a login); supported data types: {supported}"
        )
    stream = channels.get(key, DEFAULT_STREAMS[data_type])
    if stream not in ALLOWED_STREAMS[data_type]:
        raise ConfigError(
            f"binance stream {stream!r} for channels.{key} is not supported; {_allowed(data_type)}"
        )
    # 1000 ms is the partial book's default speed: the documented name has no suffix.
    return stream.removesuffix("@1000ms")


def _allowed(data_type: DataType) -> str:
    if data_type is DataType.ORDERBOOK:
        return "use depth5, depth10 or depth20 (optionally with @100ms or @1000ms) or bookTicker"
    if data_type is DataType.CANDLE:
        return "use kline_<interval> with an interval of " + ", ".join(KLINE_INTERVALS)
    return "use one of: " + ", ".join(sorted(ALLOWED_STREAMS[data_type]))


def stream_names(symbol: str, data_types: Sequence[DataType], channels: Mapping[str, str]) -> list[str]:
    """The stream names ("btcusdt@trade", ...) `data_types` of `symbol` need, in order, no duplicates."""
    known = set(CONFIG_KEYS.values())
    unknown = sorted(set(channels) - known)
    if unknown:
        raise ConfigError(
            f"unknown binance channels key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}"
        )
    wire = wire_symbol(symbol)
    names = (f"{wire}@{resolve_stream(d, channels)}" for d in dict.fromkeys(data_types))
    return list(dict.fromkeys(names))


def subscribe_frames(
    streams: Iterable[str],
    max_streams: int = MAX_STREAMS_PER_CONNECTION,
    first_id: int = 1,
    method: str = "SUBSCRIBE",
) -> tuple[str, ...]:
    """SUBSCRIBE (or UNSUBSCRIBE) frames for `streams`, at most `max_streams` each, with ids
    first_id, first_id+1, ...

    Binance answers each with {"result": null, "id": <id>}. It also allows a connection 5
    incoming messages a second: whoever sends several frames paces them."""
    if max_streams < 1:
        raise ValueError(f"max_streams must be at least 1, got {max_streams}")
    names = list(streams)
    return tuple(
        orjson.dumps(
            {"method": method, "params": names[start : start + max_streams], "id": first_id + n}
        ).decode()
        for n, start in enumerate(range(0, len(names), max_streams))
    )


def combine(subscriptions: Sequence[Subscription]) -> Combined:
    """One SUBSCRIBE frame (a new id) for the streams of every subscription; a connection
    carries at most MAX_STREAMS_PER_CONNECTION streams, which one frame may list."""
    names: list[str] = []
    for sub in subscriptions:
        for message in sub.messages:
            names.extend(orjson.loads(message)["params"])
    first_id = next(_request_ids)
    frames = subscribe_frames(names, first_id=first_id)
    return Combined(frames, tuple(str(first_id + n) for n in range(len(frames))))


def stream_url(base: str) -> str:
    """The combined-stream endpoint of a base URL, keeping its query (e.g. timeUnit=MICROSECOND)."""
    root, mark, query = base.partition("?")
    return root.rstrip("/") + "/stream" + mark + query


def build_subscriptions(
    symbol: str,
    data_types: Sequence[DataType],
    channels: Mapping[str, str],
    urls: Mapping[str, str],
) -> list[Subscription]:
    """One Subscription for `symbol`: the combined-stream endpoint and one SUBSCRIBE frame."""
    names = stream_names(symbol, data_types, channels)
    base = urls.get(PUBLIC_URL_KEY)
    if not base:
        raise ConfigError(
            f"binance needs the {PUBLIC_URL_KEY!r} websocket URL, e.g. wss://stream.binance.com:9443 "
            "(or wss://data-stream.binance.vision)"
        )
    if not names:
        return []
    # Ids unique in the process: on a connection shared by many pairs, an answer (or an
    # error) goes to the pair whose request it answers.
    first_id = next(_request_ids)
    subscribe = subscribe_frames(names, first_id=first_id)
    return [
        Subscription(
            stream_url(base),
            subscribe,
            carries_trades=DataType.TRADE in data_types,
            streams=len(names),
            unsubscribe=subscribe_frames(names, first_id=next(_request_ids), method="UNSUBSCRIBE"),
            request_ids=tuple(str(first_id + n) for n in range(len(subscribe))),
        )
    ]
