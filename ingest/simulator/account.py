"""The simulator's OKX /ws/v5/private endpoint: login checked as OKX documents it, and the
`account` channel (a paged snapshot on subscribe, then event_update pushes on changes).

Login (ingest.exchanges.okx.login has the client's side): the timestamp must be Unix
seconds (else 60004) no more than LOGIN_WINDOW s old (else 60006; more than that ahead of
this clock is 60004 too), the API key the configured one (60005), the passphrase too
(60024), and the sign Base64(HMAC-SHA256(secret, timestamp + "GET" + "/users/self/verify"))
(60007). Answers carry OKX's codes and messages and never echo a credential. A refused
connection stays open, as OKX leaves it: the client decides what to do.

Balances change only while some connection is subscribed, one currency per change, each
change with a fresh uTime; every detail pushed (snapshots included) is kept in `pushed`
for value checks. `eqUsd` moves on every push, as a price-driven field does on OKX.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from websockets.exceptions import ConnectionClosed

from ingest.simulator.client import Client

logger = logging.getLogger(__name__)

LOGIN_WINDOW = 30  # seconds, as OKX documents it
_VERIFY = "GET/users/self/verify"


@dataclass(frozen=True, slots=True)
class SimulatedAccount:
    """The test account of a simulator's /ws/v5/private: its credentials (never shown in a
    repr), its starting cash balance per currency, the details per snapshot page and how
    often a balance changes (0: never)."""

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    passphrase: str = field(repr=False)
    balances: tuple[tuple[str, str], ...] = (("USDT", "10000.5"), ("BTC", "0.25"), ("ETH", "3"))
    page_size: int = 20
    changes_per_second: float = 5.0
    uid: str = "44000000000001"


@dataclass(slots=True)
class _Balance:
    cash: Decimal
    frozen: Decimal
    u_time: int


def expected_sign(secret: str, timestamp: str) -> str:
    """The sign OKX expects for `timestamp` (computed here on its own, not imported)."""
    return base64.b64encode(
        hmac.new(secret.encode(), (timestamp + _VERIFY).encode(), hashlib.sha256).digest()
    ).decode()


class AccountEndpoint:
    """Login checks and the account channel of one simulator."""

    def __init__(self, account: SimulatedAccount, counters: Counter[str]) -> None:
        self.account = account
        self.counters = counters
        # This exchange's clock (seconds); tests move it to make a client's timestamp stale.
        self.clock: Callable[[], float] = time.time
        self.changing = True  # False: balances stay as they are (tests stop the pushes)
        self.pushed: list[dict[str, str]] = []  # every detail sent, snapshots included
        now = int(time.time() * 1000)
        self._balances = {ccy: _Balance(Decimal(cash), Decimal(0), now) for ccy, cash in account.balances}
        # client -> its subscriptions, by currency filter (None: every currency)
        self._subscribers: dict[Client, set[str | None]] = {}
        self._turn = itertools.cycle([ccy for ccy, _ in account.balances])
        self._steps = itertools.count(1)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.account.changes_per_second > 0:
            self._task = asyncio.create_task(self._changes(), name="okx-simulator-account")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def drop(self, client: Client) -> None:
        self._subscribers.pop(client, None)

    # -- login -------------------------------------------------------------------------
    async def login(self, client: Client, args: object) -> None:
        self.counters["logins"] += 1
        problem = self._login_problem(args)
        if problem is None:
            client.logged_in = True
            await _send(client, {"event": "login", "code": "0", "msg": "", "connId": client.conn_id})
            return
        self.counters["logins_refused"] += 1
        code, msg = problem
        await _send(client, {"event": "error", "code": code, "msg": msg, "connId": client.conn_id})

    def _login_problem(self, args: object) -> tuple[str, str] | None:
        if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
            return "60009", "Login failed."
        arg: dict[str, Any] = args[0]
        for name in ("apiKey", "passphrase", "timestamp", "sign"):
            if not isinstance(arg.get(name), str) or not arg[name]:
                return "60027", f"Parameter {name} can not be empty."
        timestamp = arg["timestamp"]
        if not (timestamp.isascii() and timestamp.isdigit()):
            return "60004", "Invalid timestamp"
        age = self.clock() - int(timestamp)
        if age > LOGIN_WINDOW:
            return "60006", "Timestamp request expired"
        if age < -LOGIN_WINDOW:
            return "60004", "Invalid timestamp"
        account = self.account
        if not hmac.compare_digest(arg["apiKey"], account.api_key):
            return "60005", "Invalid apiKey"
        if not hmac.compare_digest(arg["passphrase"], account.passphrase):
            return "60024", "Wrong passphrase"
        try:
            base64.b64decode(arg["sign"], validate=True)
        except (binascii.Error, ValueError):
            return "60007", "Invalid sign"
        if not hmac.compare_digest(arg["sign"], expected_sign(account.api_secret, timestamp)):
            return "60007", "Invalid sign"
        return None

    # -- the account channel -----------------------------------------------------------------
    async def subscribe(self, client: Client, op: str, arg: dict[str, Any]) -> None:
        if not client.logged_in:
            await _send(
                client, {"event": "error", "code": "60011", "msg": "Please log in", "connId": client.conn_id}
            )
            return
        ccy = arg.get("ccy") if isinstance(arg.get("ccy"), str) else None
        if ccy is not None and ccy not in self._balances:
            msg = f"Wrong URL or channel:account,ccy:{ccy} doesn't exist."
            await _send(client, {"event": "error", "code": "60018", "msg": msg, "connId": client.conn_id})
            return
        echo = {k: v for k, v in arg.items() if k in ("channel", "ccy")}
        await _send(client, {"event": op, "arg": echo, "connId": client.conn_id})
        if op == "unsubscribe":
            self._subscribers.get(client, set()).discard(ccy)
            return
        self.counters["account_subscribes"] += 1
        self._subscribers.setdefault(client, set()).add(ccy)
        await self._snapshot(client, ccy)

    async def _snapshot(self, client: Client, ccy: str | None) -> None:
        ccys = [c for c in self._balances if ccy is None or c == ccy]
        size = max(1, self.account.page_size)
        pages = [ccys[i : i + size] for i in range(0, len(ccys), size)] or [[]]
        for number, page in enumerate(pages, 1):
            push = self._push(ccy, "snapshot", page)
            push["curPage"] = number
            push["lastPage"] = number == len(pages)
            await _send(client, push)

    def _push(self, ccy: str | None, event_type: str, ccys: list[str]) -> dict[str, Any]:
        details = [self._detail(c) for c in ccys]
        self.pushed.extend(details)
        arg = {"channel": "account", "uid": self.account.uid}
        if ccy is not None:
            arg["ccy"] = ccy
        u_time = max((self._balances[c].u_time for c in ccys), default=int(time.time() * 1000))
        total = sum((Decimal(d["eqUsd"]) for d in details), Decimal(0))
        data = {"uTime": str(u_time), "totalEq": str(total), "details": details}
        return {"arg": arg, "eventType": event_type, "data": [data]}

    def _detail(self, ccy: str) -> dict[str, str]:
        b = self._balances[ccy]
        eq = b.cash
        # A price-driven field that changes on every push without a balance change.
        eq_usd = eq * (Decimal(1) + Decimal(next(self._steps) % 7) / 1000)
        return {
            "ccy": ccy,
            "eq": str(eq),
            "cashBal": str(b.cash),
            "availBal": str(b.cash - b.frozen),
            "frozenBal": str(b.frozen),
            "eqUsd": str(eq_usd),
            "uTime": str(b.u_time),
        }

    async def _changes(self) -> None:
        while True:
            await asyncio.sleep(1.0 / self.account.changes_per_second)
            if not any(self._subscribers.values()) or not self.changing:
                continue
            ccy = next(self._turn)
            b = self._balances[ccy]
            step = next(self._steps)
            b.cash += Decimal(step % 5 + 1) / Decimal(100)
            b.frozen = Decimal(step % 3) / Decimal(1000)
            b.u_time = max(b.u_time + 1, int(time.time() * 1000))
            for client, filters in list(self._subscribers.items()):
                for wanted in list(filters):
                    if wanted is None or wanted == ccy:
                        await _send(client, self._push(wanted, "event_update", [ccy]))

    def balances_now(self) -> dict[str, tuple[str, str, str, str, int]]:
        """Per currency: (eq, cashBal, availBal, frozenBal, uTime ms) as the next push shows them."""
        return {
            c: (str(b.cash), str(b.cash), str(b.cash - b.frozen), str(b.frozen), b.u_time)
            for c, b in self._balances.items()
        }


async def _send(client: Client, msg: dict[str, Any]) -> None:
    if not client.writable():
        return
    with contextlib.suppress(ConnectionClosed):
        await client.ws.send(orjson.dumps(msg).decode())
