"""OKX balances without a network: the login frame and its answers, the account channel's
pushes parsed to BALANCE rows, the `account` pair's subscription and its config errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.config import ConfigFileError, ExchangeCredentials, parse_exchange_file
from ingest.errors import ConfigError
from ingest.exchanges.base import ControlKind
from ingest.exchanges.okx import VENUE, OkxAdapter
from ingest.exchanges.okx.login import OkxLogin, login_answer, login_frame
from ingest.exchanges.okx.routing import frame_route
from ingest.model import DataType
from ingest.rows import MarketRow

# Real-looking values (OKX's formats: a UUID key, a 32-hex-digit secret).
KEY = "985d5b66-57ce-40fb-b714-afc0b9787083"
SECRET = "22582BD0CFF14C41EDBF1AB98506286D"
PASSPHRASE = "Pass-phrase-7"
CREDENTIALS = ExchangeCredentials(KEY, SECRET, PASSPHRASE)
URLS = {
    "public": "wss://ws.okx.com:8443/ws/v5/public",
    "business": "wss://ws.okx.com:8443/ws/v5/business",
    "private": "wss://ws.okx.com:8443/ws/v5/private",
}


def independent_sign(secret: str, timestamp: str) -> str:
    message = timestamp + "GET" + "/users/self/verify"
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


def test_the_login_frame_is_signed_with_the_time_in_seconds() -> None:
    frame = orjson.loads(login_frame(CREDENTIALS, 1538054050.987))
    assert frame == {
        "op": "login",
        "args": [
            {
                "apiKey": KEY,
                "passphrase": PASSPHRASE,
                "timestamp": "1538054050",
                "sign": independent_sign(SECRET, "1538054050"),
            }
        ],
    }


def test_every_login_is_signed_anew_with_the_clock() -> None:
    now = [1700000000.0]
    login = OkxLogin(CREDENTIALS, clock=lambda: now[0])
    first = orjson.loads(login.frame())["args"][0]
    now[0] += 45
    second = orjson.loads(login.frame())["args"][0]
    assert (first["timestamp"], second["timestamp"]) == ("1700000000", "1700000045")
    assert second["sign"] == independent_sign(SECRET, "1700000045") != first["sign"]


def test_a_login_shows_no_credential() -> None:
    login = OkxLogin(CREDENTIALS)
    [sub] = OkxAdapter().subscriptions("account", [DataType.BALANCE], {}, URLS, CREDENTIALS)
    for text in (repr(login), str(login), repr(sub), repr(CREDENTIALS)):
        for secret in (KEY, SECRET, PASSPHRASE):
            assert secret not in text


def test_login_answers() -> None:
    ok = login_answer(b'{"event":"login","code":"0","msg":"","connId":"a4d3ae55"}')
    assert ok is not None
    assert ok.kind is ControlKind.LOGGED_IN
    refused = login_answer(b'{"event":"error","code":"60009","msg":"Login failed.","connId":"a4d3ae55"}')
    assert refused is not None
    assert refused.kind is ControlKind.REFUSED
    assert refused.detail.startswith("OKX error 60009: Login failed.")
    assert "OKX_API_KEY" in refused.detail
    stale = login_answer(b'{"event":"error","code":"60006","msg":"Timestamp request expired","connId":"1"}')
    assert stale is not None
    assert stale.kind is ControlKind.REFUSED
    assert "clock" in stale.detail
    passphrase = login_answer(b'{"event":"error","code":"60024","msg":"Wrong passphrase","connId":"1"}')
    assert passphrase is not None
    assert "OKX_API_PASSPHRASE" in passphrase.detail
    retry = login_answer(b'{"event":"error","code":"63999","msg":"Login failed due to internal error."}')
    assert retry is not None
    assert retry.kind is ControlKind.ERROR
    assert login_answer(b'{"event":"subscribe","arg":{"channel":"account"}}') is None
    assert login_answer(b"pong") is None


def account_push(details: list[dict[str, Any]], *, arg: dict[str, str] | None = None, **top: Any) -> bytes:
    return orjson.dumps(
        {
            "arg": arg or {"channel": "account", "uid": "44000000000001"},
            "eventType": "snapshot",
            "curPage": 1,
            "lastPage": True,
            **top,
            "data": [{"uTime": "1705474164160", "totalEq": "41624.32", "details": details}],
        }
    )


USDT = {
    "ccy": "USDT",
    "eq": "4992.890093622894",
    "cashBal": "4850.435693622894",
    "availBal": "4834.317093622894",
    "frozenBal": "158.5726",
    "eqUsd": "4991.542013297616",
    "uTime": "1705449605015",
    "newFieldNobodyKnows": {"x": 1},
}
# A borrowed currency (negative), in an account mode where available and frozen do not apply.
BTC = {"ccy": "BTC", "eq": "-0.5", "cashBal": "-0.5", "availBal": "", "frozenBal": ""}
BTC["uTime"] = "1705449605016"


def test_an_account_push_is_one_balance_row_per_currency_with_exact_decimals() -> None:
    batch = OkxAdapter().parse_batch([account_push([USDT, BTC])], store_raw_data=False)
    assert batch.rejected == []
    assert batch.rows == [
        MarketRow(
            "okx",
            "USDT",
            DataType.BALANCE,
            1705449605015,
            '{"currency":"USDT","equity":"4992.890093622894","cash":"4850.435693622894",'
            '"available":"4834.317093622894","frozen":"158.5726"}',
        ),
        MarketRow(
            "okx",
            "BTC",
            DataType.BALANCE,
            1705449605016,
            '{"currency":"BTC","equity":"-0.5","cash":"-0.5","available":"","frozen":""}',
        ),
    ]
    # The precise path gives the same rows.
    assert OkxAdapter().parse(account_push([USDT, BTC]), False).market == batch.rows


def test_a_price_driven_field_does_not_make_a_resent_balance_another_row() -> None:
    again = {**USDT, "eqUsd": "4999.1"}
    first = OkxAdapter().parse_batch([account_push([USDT])], False).rows
    later = OkxAdapter().parse_batch([account_push([again], eventType="event_update")], False).rows
    assert first == later


def test_a_detail_without_utime_takes_the_pushs() -> None:
    detail = {k: v for k, v in USDT.items() if k != "uTime"}
    [row] = OkxAdapter().parse_batch([account_push([detail])], False).rows
    assert row.ts_ms == 1705474164160


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("eq", "1e5", "field 'eq' must be a plain decimal string"),
        ("cashBal", "", "field 'cashBal' must be a plain decimal string"),
        ("availBal", 5, "field 'availBal' must be a plain decimal string or empty"),
        ("ccy", "", "field 'ccy'"),
    ],
)
def test_a_bad_currency_is_refused_alone(field: str, value: object, reason: str) -> None:
    bad = {**BTC, field: value}
    batch = OkxAdapter().parse_batch([account_push([USDT, bad])], False)
    assert [r.symbol for r in batch.rows] == ["USDT"]
    [(item, why)] = batch.rejected
    assert reason in why
    assert orjson.loads(item)["data"][0]["details"] == [bad]


def test_account_subscriptions() -> None:
    adapter = OkxAdapter()
    [sub] = adapter.subscriptions("account", [DataType.BALANCE], {}, URLS, CREDENTIALS)
    assert sub.url == URLS["private"]
    assert sub.login is not None
    assert not sub.carries_trades
    [message] = sub.messages
    assert orjson.loads(message) == {
        "op": "subscribe",
        "args": [{"channel": "account", "extraParams": '{"updateInterval":"0"}'}],
    }
    [one] = adapter.subscriptions("account:USDT", [DataType.BALANCE], {}, URLS, CREDENTIALS)
    assert orjson.loads(one.messages[0])["args"][0]["ccy"] == "USDT"
    assert orjson.loads(one.unsubscribe[0])["op"] == "unsubscribe"
    # public pairs have no login
    assert all(s.login is None for s in adapter.subscriptions("BTC-USDT", [DataType.TRADE], {}, URLS))


@pytest.mark.parametrize(
    ("symbol", "data_types", "credentials", "says"),
    [
        ("account", [DataType.BALANCE], None, "set OKX_API_KEY, OKX_API_SECRET and OKX_API_PASSPHRASE"),
        ("account", [DataType.BALANCE, DataType.TRADE], CREDENTIALS, 'set its data_types to ["balance"]'),
        ("BTC-USDT", [DataType.BALANCE], CREDENTIALS, "symbol 'account'"),
        ("account:usdt", [DataType.BALANCE], CREDENTIALS, "OKX currency code such as USDT"),
        (
            "account",
            [DataType.BALANCE],
            ExchangeCredentials(KEY, SECRET, None),
            "OKX_API_PASSPHRASE",
        ),
    ],
)
def test_bad_balance_settings_say_what_to_fix(
    symbol: str, data_types: list[DataType], credentials: ExchangeCredentials | None, says: str
) -> None:
    with pytest.raises(ConfigError) as info:
        OkxAdapter().subscriptions(symbol, data_types, {}, URLS, credentials)
    assert says in str(info.value)
    for secret in (KEY, SECRET, PASSPHRASE):
        assert secret not in str(info.value)


def test_account_frames_route_to_their_pair() -> None:
    assert frame_route(account_push([USDT])) == b"account"
    assert frame_route(account_push([USDT], arg={"channel": "account", "ccy": "USDT"})) == b"account:USDT"
    assert frame_route(b'{"event":"subscribe","arg":{"channel":"account","ccy":"BTC"},"connId":"1"}') == (
        b"account:BTC"
    )
    assert OkxAdapter().route_key("account:BTC") == b"account:BTC"


def test_the_private_url_is_a_connection_setting_with_okxs_default() -> None:
    base = {"exchange": "okx", "trading_pairs": [{"symbol": "account", "data_types": ["balance"]}]}
    default = parse_exchange_file({**base, "connection": {"public_ws_url": URLS["public"]}})
    assert default.connection.ws_urls()["private"] == "wss://ws.okx.com:8443/ws/v5/private"
    with pytest.raises(ConfigFileError) as info:
        parse_exchange_file(
            {**base, "connection": {"public_ws_url": URLS["public"], "private_ws_url": "http://x"}}
        )
    assert "private_ws_url" in str(info.value)


def test_env_example_lists_the_okx_credentials_empty() -> None:
    example = (Path(__file__).resolve().parent.parent / ".env.example").read_text(encoding="utf-8")
    values = dict(
        line.partition("=")[::2] for line in example.splitlines() if line.strip() and not line.startswith("#")
    )
    assert {name: values.get(name) for name in VENUE.credentials} == dict.fromkeys(VENUE.credentials, "")
