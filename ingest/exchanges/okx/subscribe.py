"""Builds OKX v5 subscribe messages for one symbol, grouped by endpoint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson

from ingest.config.secrets import ExchangeCredentials
from ingest.errors import ConfigError
from ingest.exchanges.base import Combined, Subscription
from ingest.exchanges.okx.account import account_subscription, is_account_symbol
from ingest.exchanges.okx.channels import (
    ALLOWED_CHANNELS,
    BUSINESS_URL_KEY,
    CONFIG_KEYS,
    DEFAULT_CHANNELS,
    INCREMENTAL_BOOK_CHANNELS,
    PUBLIC_URL_KEY,
    url_key,
)
from ingest.model import DataType

# OKX rejects a subscribe request whose args exceed 64 KB; stay under it per message.
MAX_MESSAGE_BYTES = 64 * 1024

_ENVELOPE_BYTES = len(b'{"op":"subscribe","args":[]}')


def resolve_channel(data_type: DataType, channels: Mapping[str, str]) -> str:
    """The OKX channel for `data_type`, from the config mapping or the default."""
    key = CONFIG_KEYS.get(data_type)
    if key is None:
        supported = ", ".join(d.value for d in CONFIG_KEYS)
        raise ConfigError(
            f"data type {data_type.value!r} is not supported for okx; supported data types: {supported}"
        )
    if data_type is DataType.BALANCE:
        raise ConfigError(
            "okx data type 'balance' belongs to a trading pair with the symbol 'account' "
            "(every currency) or 'account:<CCY>' (one currency): balances are per account, not per instrument"
        )
    channel = channels.get(key, DEFAULT_CHANNELS[data_type])
    if channel not in ALLOWED_CHANNELS[data_type]:
        allowed = ", ".join(sorted(ALLOWED_CHANNELS[data_type]))
        raise ConfigError(
            f"okx channel {channel!r} for channels.{key} is not supported; use one of: {allowed}"
        )
    return channel


def subscribe_messages(args: Sequence[Mapping[str, str]], op: str = "subscribe") -> tuple[str, ...]:
    """Pack subscribe (or unsubscribe) args into as few messages as fit under
    MAX_MESSAGE_BYTES each."""
    messages: list[str] = []
    batch: list[bytes] = []
    size = _ENVELOPE_BYTES
    for arg in args:
        encoded = orjson.dumps(arg)
        extra = len(encoded) + (1 if batch else 0)
        if batch and size + extra > MAX_MESSAGE_BYTES:
            messages.append(_envelope(op, batch))
            batch, size, extra = [], _ENVELOPE_BYTES, len(encoded)
        batch.append(encoded)
        size += extra
    if batch:
        messages.append(_envelope(op, batch))
    return tuple(messages)


def combine(subscriptions: Sequence[Subscription]) -> Combined:
    """The subscribe args of every subscription, packed into as few messages as fit. OKX
    acknowledges (or refuses) each arg by itself, naming its instId."""
    args = [arg for sub in subscriptions for message in sub.messages for arg in orjson.loads(message)["args"]]
    return Combined(subscribe_messages(args))


def _envelope(op: str, batch: list[bytes]) -> str:
    return '{"op":"' + op + '","args":[' + b",".join(batch).decode() + "]}"


def _resync(args: list[dict[str, str]]) -> tuple[str, ...]:
    # OKX answers a subscribe with a fresh snapshot; the pair's other channels go on.
    if not args:
        return ()
    return subscribe_messages(args, "unsubscribe") + subscribe_messages(args)


def build_subscriptions(
    symbol: str,
    data_types: Sequence[DataType],
    channels: Mapping[str, str],
    urls: Mapping[str, str],
    credentials: ExchangeCredentials | None = None,
) -> list[Subscription]:
    """One Subscription per endpoint needed by `data_types` for `symbol`; an `account`
    pair's balances: the /ws/v5/private subscription, logged in with `credentials`."""
    if not symbol:
        raise ConfigError("okx trading pair has an empty symbol; use an instId such as BTC-USDT")
    if is_account_symbol(symbol):
        return [account_subscription(symbol, data_types, urls, credentials)]
    known_keys = set(CONFIG_KEYS.values())
    unknown = sorted(set(channels) - known_keys)
    if unknown:
        raise ConfigError(
            f"unknown okx channels key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known_keys))}"
        )
    by_url: dict[str, list[dict[str, str]]] = {}
    trade_urls: set[str] = set()
    book_args: dict[str, list[dict[str, str]]] = {}
    for data_type in dict.fromkeys(data_types):  # drop duplicates, keep order
        channel = resolve_channel(data_type, channels)
        key = url_key(channel)
        url = urls.get(key)
        if not url:
            raise ConfigError(
                f"okx channel {channel!r} needs the {key!r} websocket URL "
                f"(config keys: {PUBLIC_URL_KEY}, {BUSINESS_URL_KEY})"
            )
        by_url.setdefault(url, []).append({"channel": channel, "instId": symbol})
        if data_type is DataType.TRADE:
            trade_urls.add(url)
        if channel in INCREMENTAL_BOOK_CHANNELS:
            book_args.setdefault(url, []).append({"channel": channel, "instId": symbol})
    return [
        Subscription(
            url,
            subscribe_messages(args),
            carries_trades=url in trade_urls,
            streams=len(args),
            unsubscribe=subscribe_messages(args, "unsubscribe"),
            resync=_resync(book_args.get(url, [])),
        )
        for url, args in by_url.items()
    ]
