"""OKX subscription building and the exchange registry (no I/O)."""

from __future__ import annotations

import orjson
import pytest

from ingest.errors import ConfigError
from ingest.exchanges.base import Subscription
from ingest.exchanges.okx import OkxAdapter
from ingest.exchanges.okx.subscribe import MAX_MESSAGE_BYTES, subscribe_messages
from ingest.exchanges.registry import VENUES, get_adapter, supported_exchanges
from ingest.model import DataType

URLS = {"public": "ws://127.0.0.1:1/ws/v5/public", "business": "ws://127.0.0.1:1/ws/v5/business"}
ALL = [DataType.TRADE, DataType.ORDERBOOK, DataType.TICKER, DataType.CANDLE]


def expected(url: str, message: str, streams: int, carries_trades: bool = False) -> Subscription:
    """The Subscription of one subscribe message; its unsubscribe names the same args."""
    return Subscription(
        url,
        (message,),
        carries_trades=carries_trades,
        streams=streams,
        unsubscribe=(message.replace('"op":"subscribe"', '"op":"unsubscribe"', 1),),
    )


def test_public_and_business_connections_with_default_channels() -> None:
    subs = OkxAdapter().subscriptions("BTC-USDT", ALL, {}, URLS)
    assert subs == [
        expected(
            URLS["public"],
            '{"op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"},'
            '{"channel":"books5","instId":"BTC-USDT"},{"channel":"tickers","instId":"BTC-USDT"}]}',
            3,
            carries_trades=True,
        ),
        expected(
            URLS["business"], '{"op":"subscribe","args":[{"channel":"candle1m","instId":"BTC-USDT"}]}', 1
        ),
    ]


def test_trades_all_goes_to_business_beside_the_candles() -> None:
    subs = OkxAdapter().subscriptions("BTC-USDT", ALL, {"trades": "trades-all"}, URLS)
    assert subs == [
        expected(
            URLS["business"],
            '{"op":"subscribe","args":[{"channel":"trades-all","instId":"BTC-USDT"},'
            '{"channel":"candle1m","instId":"BTC-USDT"}]}',
            2,
            carries_trades=True,
        ),
        expected(
            URLS["public"],
            '{"op":"subscribe","args":[{"channel":"books5","instId":"BTC-USDT"},'
            '{"channel":"tickers","instId":"BTC-USDT"}]}',
            2,
        ),
    ]


def test_configured_candle_channel_and_duplicates() -> None:
    subs = OkxAdapter().subscriptions(
        "ETH-USDT", [DataType.CANDLE, DataType.CANDLE], {"candle": "candle5m", "trades": "trades"}, URLS
    )
    assert subs == [
        expected(
            URLS["business"], '{"op":"subscribe","args":[{"channel":"candle5m","instId":"ETH-USDT"}]}', 1
        )
    ]


def test_only_public_types_need_no_business_url() -> None:
    subs = OkxAdapter().subscriptions("BTC-USDT", [DataType.TRADE], {}, {"public": URLS["public"]})
    assert [s.url for s in subs] == [URLS["public"]]


@pytest.mark.parametrize(
    ("data_types", "channels", "urls", "message"),
    [
        ([DataType.BALANCE], {}, URLS, "okx data type 'balance' belongs to a trading pair"),
        (
            [DataType.ORDERBOOK],
            {"orderbook": "books-l2-tbt"},
            URLS,
            "okx channel 'books-l2-tbt' for channels.orderbook",
        ),
        ([DataType.CANDLE], {"candle": "candle7m"}, URLS, "okx channel 'candle7m' for channels.candle"),
        ([DataType.TRADE], {"trade": "trades"}, URLS, "unknown okx channels key(s) trade"),
        (
            [DataType.CANDLE],
            {},
            {"public": URLS["public"]},
            "okx channel 'candle1m' needs the 'business' websocket URL",
        ),
    ],
)
def test_bad_settings_raise_config_error(
    data_types: list[DataType], channels: dict[str, str], urls: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        OkxAdapter().subscriptions("BTC-USDT", data_types, channels, urls)


def test_empty_symbol_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="empty symbol"):
        OkxAdapter().subscriptions("", [DataType.TRADE], {}, URLS)


def test_large_subscriptions_are_split_under_64kb() -> None:
    args = [{"channel": "trades", "instId": f"COIN{i}-USDT"} for i in range(3000)]
    messages = subscribe_messages(args)
    assert len(messages) > 1
    assert all(len(m.encode()) <= MAX_MESSAGE_BYTES for m in messages)
    decoded = [orjson.loads(m) for m in messages]
    assert all(d["op"] == "subscribe" for d in decoded)
    assert [a for d in decoded for a in d["args"]] == args
    # greedy packing: no message could have taken the next message's first arg
    for message, following in zip(messages, decoded[1:], strict=False):
        assert len(message.encode()) + 1 + len(orjson.dumps(following["args"][0])) > MAX_MESSAGE_BYTES


def test_registry() -> None:
    assert supported_exchanges() == sorted(VENUES)
    assert "okx" in supported_exchanges()
    adapter = get_adapter(" OKX ")
    assert (adapter.name, adapter.ping_text) == ("okx", "ping")
    with pytest.raises(
        ConfigError, match=r"unsupported exchange 'kraken': supported exchanges are binance, okx;"
    ):
        get_adapter("kraken")
