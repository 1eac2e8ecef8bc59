"""Which OKX v5 channel carries which data type, and which endpoint serves it.

The private `account` channel (balances) exists only on /ws/v5/private, after a login.
Candle channels and trades-all exist only on /ws/v5/business; trades, books5 and tickers on
/ws/v5/public. Subscribing to a candle channel on /public is answered with error 60018.

Trades come from one of two channels (docs/collector.md, "Which trade channel"):
- `trades` (/public): one push per taker order and price, `count` fills aggregated; its
  tradeId is the LAST fill's id (a push with count c covers fills tradeId-c+1 .. tradeId:
  consecutive pushes of recorded OKX traffic show it: 613 count 2, then 614 count 1).
- `trades-all` (/business): one push per fill, as the REST history lists them, so live and
  gap-filled rows have the same granularity. config/okx.json uses it.
"""

from __future__ import annotations

from ingest.model import DataType

EXCHANGE = "okx"

# Keys of the `channels` mapping in the exchange config, one per supported data type.
CONFIG_KEYS: dict[DataType, str] = {
    DataType.TRADE: "trades",
    DataType.ORDERBOOK: "orderbook",
    DataType.TICKER: "ticker",
    DataType.CANDLE: "candle",
    DataType.BALANCE: "balance",
}

DEFAULT_CHANNELS: dict[DataType, str] = {
    DataType.TRADE: "trades",
    DataType.ORDERBOOK: "books5",
    DataType.TICKER: "tickers",
    DataType.CANDLE: "candle1m",
    DataType.BALANCE: "account",
}

# OKX candle bar sizes; the `utc` variants align day-or-longer buckets on UTC midnight
# instead of Hong Kong time.
CANDLE_INTERVALS: tuple[str, ...] = (
    "1s", "1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "12H",
    "1D", "2D", "3D", "5D", "1W", "1M", "3M",
    "6Hutc", "12Hutc", "1Dutc", "2Dutc", "3Dutc", "5Dutc", "1Wutc", "1Mutc", "3Mutc",
)  # fmt: skip

CANDLE_CHANNELS: dict[str, str] = {f"candle{i}": i for i in CANDLE_INTERVALS}

PUBLIC_CHANNELS: frozenset[str] = frozenset({"trades", "books5", "books", "tickers"})

# Only channels the parser understands. books5 is a full 5-level snapshot on every push;
# `books` (400 levels, 100 ms) is a snapshot then incremental updates whose seqId chain is
# checked per instId (book_seq.py). Chosen by the pair's `channels.orderbook`.
INCREMENTAL_BOOK_CHANNELS: frozenset[str] = frozenset({"books"})

ALLOWED_CHANNELS: dict[DataType, frozenset[str]] = {
    DataType.TRADE: frozenset({"trades", "trades-all"}),
    DataType.ORDERBOOK: frozenset({"books5", "books"}),
    DataType.TICKER: frozenset({"tickers"}),
    DataType.CANDLE: frozenset(CANDLE_CHANNELS),
    DataType.BALANCE: frozenset({"account"}),
}

PUBLIC_URL_KEY = "public"
BUSINESS_URL_KEY = "business"
# /ws/v5/private: the account channel, after a login (ingest.exchanges.okx.login).
PRIVATE_URL_KEY = "private"


BUSINESS_CHANNELS: frozenset[str] = frozenset({"trades-all", *CANDLE_CHANNELS})


def url_key(channel: str) -> str:
    """Key of the `urls` mapping whose endpoint serves `channel`."""
    return BUSINESS_URL_KEY if channel in BUSINESS_CHANNELS else PUBLIC_URL_KEY
