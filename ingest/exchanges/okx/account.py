"""OKX's private `account` channel: its config symbol, its subscription and its pushes. No I/O.

Config: a trading pair whose symbol is `account` (every currency) or `account:<CCY>` (one
currency, e.g. `account:USDT`), with data_types ["balance"] (docs/configuration.md). It is
subscribed on /ws/v5/private after a login, with updateInterval "0": OKX pushes a snapshot
(eventType "snapshot", in pages: curPage, lastPage) on subscribe, then a push per change
(eventType "event_update") carrying the currencies that changed:

    {"arg":{"channel":"account","uid":"..."},"eventType":"snapshot","curPage":1,"lastPage":true,
     "data":[{"uTime":"...","totalEq":"...","details":[{"ccy":"USDT","eq":"...","cashBal":"...",
       "availBal":"...","frozenBal":"...","uTime":"...",...}]}]}

Each currency of `details` becomes one BALANCE row: symbol = the currency, timestamp = its
`uTime` (the time its balance last changed; the push's `uTime` when it has none), data = its
balance only, under venue-neutral names: {"currency": ccy, "equity": eq, "cash": cashBal,
"available": availBal, "frozen": frozenBal}, each value the decimal string OKX wrote. Fields that
move with prices without a balance change (eqUsd, ...) are left out, so a currency resent in
a later snapshot (a reconnect's) is the same row, stored once (market_data's key, sql/0102).
Pages need no assembling: every detail stands alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ingest.config.secrets import ExchangeCredentials
from ingest.errors import ConfigError, FrameError
from ingest.exchanges.base import Subscription
from ingest.exchanges.okx.channels import EXCHANGE, PRIVATE_URL_KEY
from ingest.exchanges.okx.fields import Kind, check_value, ms_or_none
from ingest.exchanges.okx.login import OkxLogin
from ingest.model import DataType
from ingest.rows import DataRow, MarketRow

ACCOUNT = "account"
CHANNEL = "account"
# updateInterval "0": a push on every balance change (OKX's default is periodic pushes).
EXTRA_PARAMS = '{"updateInterval":"0"}'
CREDENTIAL_NAMES = "OKX_API_KEY, OKX_API_SECRET and OKX_API_PASSPHRASE"

_CCY = re.compile(r"[A-Z0-9]{1,20}", re.ASCII)
_SIGNED = re.compile(r"-?(?:\d{1,20}(?:\.\d{0,20})?|\.\d{1,20})", re.ASCII)
# A BALANCE row's data, venue-neutral (sql/0120 reads these names): OKX's field for each.
# availBal and frozenBal may be "" (not applicable to the account mode).
BALANCE_FIELDS = {"equity": "eq", "cash": "cashBal", "available": "availBal", "frozen": "frozenBal"}
_MAY_BE_EMPTY = ("availBal", "frozenBal")

Rejected = list[tuple[str | bytes, str]]


def is_account_symbol(symbol: str) -> bool:
    """True for `account` and `account:<anything>` (the balance pairs of the config)."""
    return symbol == ACCOUNT or symbol.startswith(ACCOUNT + ":")


def currency_of(symbol: str) -> str | None:
    """The currency of `account:<CCY>`, None for `account`; ConfigError for a bad one."""
    if symbol == ACCOUNT:
        return None
    ccy = symbol[len(ACCOUNT) + 1 :]
    if not _CCY.fullmatch(ccy):
        raise ConfigError(
            f"okx trading pair {symbol!r}: the currency after 'account:' must be an OKX currency "
            f"code such as USDT (A-Z, 0-9); use 'account' for every currency"
        )
    return ccy


def account_subscription(
    symbol: str,
    data_types: Sequence[DataType],
    urls: Mapping[str, str],
    credentials: ExchangeCredentials | None,
) -> Subscription:
    """The /ws/v5/private subscription of an `account` pair, logged in with `credentials`."""
    if list(dict.fromkeys(data_types)) != [DataType.BALANCE]:
        raise ConfigError(
            f'okx trading pair {symbol!r} collects balances only: set its data_types to ["balance"] '
            f"(trades, books and tickers belong to an instrument's pair such as BTC-USDT)"
        )
    ccy = currency_of(symbol)
    url = urls.get(PRIVATE_URL_KEY)
    if not url:
        raise ConfigError(
            f"okx balances need connection.{PRIVATE_URL_KEY}_ws_url (the /ws/v5/private endpoint)"
        )
    if credentials is None or not credentials.passphrase:
        raise ConfigError(
            f"okx trading pair {symbol!r} (balances) needs an API key: set {CREDENTIAL_NAMES} "
            f"in the environment (.env.example lists them), or disable the pair"
        )
    arg: dict[str, str] = {"channel": CHANNEL}
    if ccy is not None:
        arg["ccy"] = ccy
    arg["extraParams"] = EXTRA_PARAMS
    sub = orjson.dumps(arg).decode()
    return Subscription(
        url,
        ('{"op":"subscribe","args":[' + sub + "]}",),
        streams=1,
        unsubscribe=('{"op":"unsubscribe","args":[' + sub + "]}",),
        login=OkxLogin(credentials),
    )


def account_route(arg: Mapping[str, Any]) -> bytes:
    """The route key of an account push or answer (the config symbol it belongs to)."""
    ccy = arg.get("ccy")
    return f"{ACCOUNT}:{ccy}".encode() if type(ccy) is str and ccy else ACCOUNT.encode()


def account(
    arg: dict[str, Any], data: list[Any], store_raw_data: bool, rows: list[DataRow], rejected: Rejected
) -> None:
    """`account`: one BALANCE row per currency of each data item's `details`."""
    for item in data:
        if type(item) is not dict or type(item.get("details")) is not list:
            _refuse(arg, item, "account: expected an object with a 'details' list", rejected)
            continue
        pushed = ms_or_none(item.get("uTime"))
        for detail in item["details"]:
            try:
                rows.append(_balance(detail, pushed))
            except FrameError as exc:
                _refuse(arg, {**item, "details": [detail]}, exc.reason, rejected)


def _balance(detail: object, pushed: int | None) -> MarketRow:
    if type(detail) is not dict:
        raise FrameError(f"account: a detail is a JSON {type(detail).__name__}, expected an object")
    ccy = check_value("account: field 'ccy'", Kind.SYMBOL, detail.get("ccy"))
    values = {"currency": ccy}
    for stored, name in BALANCE_FIELDS.items():
        value = detail.get(name, "")
        may_be_empty = name in _MAY_BE_EMPTY
        if type(value) is not str or not (_SIGNED.fullmatch(value) or (value == "" and may_be_empty)):
            what = "a plain decimal string" + (" or empty" if may_be_empty else "")
            raise FrameError(f"account {ccy}: field {name!r} must be {what}, got {value!r:.40}")
        values[stored] = value
    ts = ms_or_none(detail.get("uTime")) or pushed
    if ts is None:
        raise FrameError(f"account {ccy}: no valid 'uTime' (milliseconds) in the detail or the push")
    return MarketRow(EXCHANGE, ccy, DataType.BALANCE, ts, orjson.dumps(values).decode())


def _refuse(arg: dict[str, Any], item: object, reason: str, rejected: Rejected) -> None:
    rejected.append((orjson.dumps({"arg": arg, "data": [item]}), reason))
