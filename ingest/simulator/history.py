"""The simulator's trade history over REST, like OKX's, on the WebSocket port.

- GET /api/v5/market/trades?instId=&limit=  the newest trades (limit 1-500, default 100).
- GET /api/v5/market/history-trades?instId=&type=1&after=&before=&limit=  paged by tradeId
  (limit 1-100, default 100): `after` gives trades older than that id, `before` newer ones,
  both together the ones between; without either, the newest. Newest first, always.
  Only type=1 (by tradeId) is served; type=2 (by time) is refused with 51000.

Both serve the same history the WebSocket streams: every trade published so far (with
`SimulatorSettings.live`, also those nobody received), minus the ones older than the newest
`history_trades` (the horizon: OKX keeps about three months). Objects carry instId, tradeId,
px, sz, side, source and ts, as strings. Over the per-path rate limit (OKX: 20 requests per 2 s
for history-trades, 100 for trades, per IP) the answer is HTTP 429 with code 50011, as OKX's.
Fault control: `fail_next(count, status)` answers the next requests with an error status,
`heal()` ends that.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.http11 import Request, Response

from ingest.simulator.generator import TradeGenerator
from ingest.simulator.instruments import json_response
from ingest.simulator.settings import SimulatorSettings
from ingest.simulator.streams import SentTrade

TRADES_PATH = "/api/v5/market/trades"
HISTORY_PATH = "/api/v5/market/history-trades"
WINDOW = 2.0  # seconds of OKX's rate-limit windows


def trade_object(trade: SentTrade) -> dict[str, str]:
    """One trade as OKX's REST answers list it."""
    return {
        "instId": trade.inst_id,
        "side": trade.side,
        "sz": trade.size,
        "px": trade.price,
        "source": "0",
        "tradeId": trade.trade_id,
        "ts": str(trade.ts_ms),
    }


def _error(status: HTTPStatus, code: str, msg: str) -> Response:
    return json_response(status, orjson.dumps({"code": code, "msg": msg, "data": []}))


class _Limit:
    """A sliding window: at most `count` requests per WINDOW seconds."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._times: deque[float] = deque()

    def admit(self, now: float) -> bool:
        times = self._times
        while times and times[0] <= now - WINDOW:
            times.popleft()
        if len(times) >= self._count:
            return False
        times.append(now)
        return True


class TradeHistoryEndpoint:
    """Answers /market/trades and /market/history-trades from the generated trade streams."""

    def __init__(
        self, settings: SimulatorSettings, stream_of: Callable[[str], TradeGenerator | None]
    ) -> None:
        self._keep = settings.history_trades
        self._stream_of = stream_of
        self._limits = {
            TRADES_PATH: _Limit(settings.trades_requests_per_2s),
            HISTORY_PATH: _Limit(settings.history_requests_per_2s),
        }
        self._faults: deque[HTTPStatus] = deque()
        self.requests: list[str] = []  # the query string of every request, in order
        self.rate_limited = 0  # requests answered 429 for the rate limit (not fail_next)

    def fail_next(self, count: int, status: HTTPStatus) -> None:
        """Answer the next `count` requests with `status` (429 with code 50011, 5xx with 50001)."""
        self._faults.extend([status] * count)

    def heal(self) -> None:
        """Stop failing: the error answers still queued by fail_next() are dropped."""
        self._faults.clear()

    def handles(self, request: Request) -> bool:
        return urlsplit(request.path).path in self._limits

    def respond(self, request: Request) -> Response:
        parts = urlsplit(request.path)
        self.requests.append(parts.query)
        if self._faults:
            status = self._faults.popleft()
            code = "50011" if status == HTTPStatus.TOO_MANY_REQUESTS else "50001"
            return _error(status, code, status.phrase)
        if not self._limits[parts.path].admit(time.monotonic()):
            self.rate_limited += 1
            return _error(HTTPStatus.TOO_MANY_REQUESTS, "50011", "Too Many Requests")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        stream = self._stream_of(query.get("instId", ""))
        if stream is None:
            return _error(HTTPStatus.BAD_REQUEST, "51001", "Instrument ID does not exist")
        try:
            trades = self._select(parts.path, query, stream)
        except ValueError as exc:
            return _error(HTTPStatus.BAD_REQUEST, "51000", f"Parameter {exc} error")
        body = {"code": "0", "msg": "", "data": [trade_object(t) for t in trades]}
        return json_response(HTTPStatus.OK, orjson.dumps(body))

    def _select(self, path: str, query: dict[str, str], stream: TradeGenerator) -> list[SentTrade]:
        """The trades to answer with, newest first; ValueError(parameter name) on a bad one."""
        newest = stream.published()
        oldest = max(1, newest - self._keep + 1)
        if path == TRADES_PATH:
            limit = _int(query, "limit", 100, 1, 500)
            return _newest_first(stream, max(oldest, newest - limit + 1), newest + 1)
        if query.get("type", "1") != "1":
            raise ValueError("type")
        limit = _int(query, "limit", 100, 1, 100)
        after = _int(query, "after", newest + 1, 0, None)  # ids below it
        before = _int(query, "before", 0, 0, None)  # ids above it
        hi = min(after, newest + 1)
        lo = max(oldest, before + 1, hi - limit)
        return _newest_first(stream, lo, hi)


def _newest_first(stream: TradeGenerator, lo: int, hi: int) -> list[SentTrade]:
    return stream.trades_by_id(lo, hi)[::-1] if hi > lo else []


def _int(query: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise ValueError(name)
    value = int(text)
    if value < low or (high is not None and value > high):
        raise ValueError(name)
    return value
