"""The simulator's /ws/v5/private as a plain client sees it: OKX's login checks and codes,
and the account channel's paged snapshot and event_update pushes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from ingest.simulator.account import SimulatedAccount
from tests.collector_support import simulator

KEY = "7d2c9e41-5a3b-4f86-9c1d-2e8b7a6f4d30"
SECRET = "E3B0C44298FC1C149AFBF4C8996FB924"
PASSPHRASE = "Sim-Pass-42"
ACCOUNT = SimulatedAccount(
    KEY,
    SECRET,
    PASSPHRASE,
    balances=(("USDT", "100.5"), ("BTC", "0.1"), ("ETH", "2"), ("SOL", "30"), ("XRP", "1000")),
    page_size=2,
    changes_per_second=20.0,
)


def login_frame(key: str = KEY, secret: str = SECRET, passphrase: str = PASSPHRASE, age: float = 0.0) -> str:
    timestamp = str(int(time.time() - age))
    digest = hmac.new(secret.encode(), f"{timestamp}GET/users/self/verify".encode(), hashlib.sha256).digest()
    arg = {
        "apiKey": key,
        "passphrase": passphrase,
        "timestamp": timestamp,
        "sign": base64.b64encode(digest).decode(),
    }
    return orjson.dumps({"op": "login", "args": [arg]}).decode()


async def answer(ws: ClientConnection) -> dict[str, Any]:
    msg: dict[str, Any] = orjson.loads(await ws.recv())
    return msg


async def test_a_correct_login_is_accepted() -> None:
    async with simulator(account=ACCOUNT) as sim, connect(sim.private_url) as ws:
        await ws.send(login_frame())
        reply = await answer(ws)
        assert {k: reply[k] for k in ("event", "code", "msg")} == {"event": "login", "code": "0", "msg": ""}


@pytest.mark.parametrize(
    ("change", "code", "msg"),
    [
        ({"secret": "0" * 32}, "60007", "Invalid sign"),
        ({"passphrase": "wrong"}, "60024", "Wrong passphrase"),
        ({"key": "00000000-0000-0000-0000-000000000000"}, "60005", "Invalid apiKey"),
        ({"age": 31}, "60006", "Timestamp request expired"),
        ({"age": -60}, "60004", "Invalid timestamp"),
        ({"age": "not a number"}, "60004", "Invalid timestamp"),
    ],
)
async def test_a_bad_login_gets_okxs_code_and_no_credential_back(
    change: dict[str, Any], code: str, msg: str
) -> None:
    if change.get("age") == "not a number":
        frame = login_frame().replace('"timestamp":"', '"timestamp":"x')
    else:
        frame = login_frame(**change)
    async with simulator(account=ACCOUNT) as sim, connect(sim.private_url) as ws:
        await ws.send(frame)
        raw = await ws.recv()
        expected = {"event": "error", "code": code, "msg": msg, "connId": ""}
        assert orjson.loads(raw) | {"connId": ""} == expected
        for secret in (KEY, SECRET, PASSPHRASE):
            assert secret not in str(raw)
        assert sim.counters["logins_refused"] == 1


async def test_the_window_is_30_seconds_old_at_most() -> None:
    async with simulator(account=ACCOUNT) as sim, connect(sim.private_url) as ws:
        await ws.send(login_frame(age=25))
        assert (await answer(ws))["code"] == "0"


async def test_the_account_channel_needs_a_login_then_pages_a_snapshot_and_pushes_updates() -> None:
    subscribe = orjson.dumps({"op": "subscribe", "args": [{"channel": "account"}]}).decode()
    async with simulator(account=ACCOUNT) as sim, connect(sim.private_url) as ws:
        await ws.send(subscribe)
        assert (await answer(ws))["code"] == "60011"
        await ws.send(login_frame())
        assert (await answer(ws))["code"] == "0"
        await ws.send(subscribe)
        assert (await answer(ws))["event"] == "subscribe"
        pages = [await answer(ws) for _ in range(3)]
        assert [(p["eventType"], p["curPage"], p["lastPage"]) for p in pages] == [
            ("snapshot", 1, False),
            ("snapshot", 2, False),
            ("snapshot", 3, True),
        ]
        details = [d for p in pages for d in p["data"][0]["details"]]
        assert [(d["ccy"], d["cashBal"]) for d in details] == [(c, v) for c, v in ACCOUNT.balances]
        update = await answer(ws)
        assert update["eventType"] == "event_update"
        [changed] = update["data"][0]["details"]
        assert changed["ccy"] == "USDT"
        assert changed["cashBal"] != "100.5"
        assert int(changed["uTime"]) > int(details[0]["uTime"])


async def test_one_currency_only() -> None:
    async with simulator(account=ACCOUNT) as sim, connect(sim.private_url) as ws:
        await ws.send(login_frame())
        await answer(ws)
        await ws.send(
            orjson.dumps({"op": "subscribe", "args": [{"channel": "account", "ccy": "ETH"}]}).decode()
        )
        assert (await answer(ws))["arg"] == {"channel": "account", "ccy": "ETH"}
        snapshot = await answer(ws)
        assert [d["ccy"] for d in snapshot["data"][0]["details"]] == ["ETH"]
        assert snapshot["arg"]["ccy"] == "ETH"
        update = await answer(ws)  # the next change of ETH, the others' skipped
        assert [d["ccy"] for d in update["data"][0]["details"]] == ["ETH"]
