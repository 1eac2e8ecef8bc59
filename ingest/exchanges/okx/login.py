"""OKX v5 WebSocket login (/ws/v5/private): the signed login frame and its answer. No I/O.

    {"op":"login","args":[{"apiKey","passphrase","timestamp","sign"}]}

`timestamp` is Unix time in seconds; `sign` is Base64(HMAC-SHA256(secret, timestamp + "GET" +
"/users/self/verify")). OKX refuses a login whose timestamp is more than 30 s old, so the
frame is built on every connection, never cached. Answers: {"event":"login","code":"0"} or
{"event":"error","code":"600xx","msg":...}; the codes below are OKX's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable

import orjson

from ingest.config.secrets import ExchangeCredentials
from ingest.exchanges.base import Control, ControlKind
from ingest.redact import MASK

VERIFY_METHOD = "GET"
VERIFY_PATH = "/users/self/verify"
# Seconds after its timestamp OKX still accepts a login.
LOGIN_WINDOW = 30

# OKX's login error codes, each with what to do about it. All but LOGIN_RETRYABLE are
# refusals retrying cannot fix.
LOGIN_CAUSES: dict[str, str] = {
    "60004": "invalid timestamp: check this machine's clock",
    "60005": "invalid API key: check OKX_API_KEY",
    "60006": "login timestamp expired (older than 30 s): check this machine's clock (NTP)",
    "60007": "invalid signature: check OKX_API_SECRET",
    "60009": "login failed: check OKX_API_KEY, OKX_API_SECRET and OKX_API_PASSPHRASE",
    "60024": "wrong passphrase: check OKX_API_PASSPHRASE",
    "60031": "the API key does not exist: check OKX_API_KEY",
}
# 63999: "Login failed due to internal error. Please try again later."
LOGIN_RETRYABLE = frozenset({"63999"})


def sign(secret: str, timestamp: str) -> str:
    """OKX's login signature of `timestamp` (Unix seconds, as sent) with `secret`."""
    message = f"{timestamp}{VERIFY_METHOD}{VERIFY_PATH}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def login_frame(credentials: ExchangeCredentials, now: float) -> str:
    """The login frame for `credentials` at Unix time `now` (seconds)."""
    timestamp = str(int(now))
    arg = {
        "apiKey": credentials.api_key,
        "passphrase": credentials.passphrase or "",
        "timestamp": timestamp,
        "sign": sign(credentials.api_secret, timestamp),
    }
    return orjson.dumps({"op": "login", "args": [arg]}).decode()


def login_answer(frame: bytes) -> Control | None:
    """LOGGED_IN, REFUSED (naming OKX's code, message and the cause), ERROR (retryable), or
    None for a frame that is not a login answer."""
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    if type(msg) is not dict:
        return None
    event, code = msg.get("event"), str(msg.get("code", ""))
    if event == "login":
        if code == "0":
            return Control(ControlKind.LOGGED_IN, "logged in")
        event = "error"  # a login event with a non-zero code is a refusal all the same
    if event != "error":
        return None
    text = f"OKX error {code or '?'}: {str(msg.get('msg', ''))[:200]}"
    if code in LOGIN_RETRYABLE:
        return Control(ControlKind.ERROR, text)
    cause = LOGIN_CAUSES.get(code, "check OKX_API_KEY, OKX_API_SECRET and OKX_API_PASSPHRASE")
    return Control(ControlKind.REFUSED, f"{text} ({cause})")


class OkxLogin:
    """Subscription.login for /ws/v5/private: a fresh signed frame on every connection."""

    def __init__(self, credentials: ExchangeCredentials, clock: Callable[[], float] = time.time) -> None:
        self._credentials = credentials
        self._clock = clock

    def __repr__(self) -> str:
        return f"OkxLogin(credentials={MASK})"

    def frame(self) -> str:
        return login_frame(self._credentials, self._clock())

    def answer(self, frame: bytes) -> Control | None:
        return login_answer(frame)
