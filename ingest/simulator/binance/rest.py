"""Binance's REST market data on the simulator's port, from the same tapes the streams publish.

- GET /api/v3/trades?symbol=&limit=  the newest trades (limit 1-1000, default 500), weight 25.
- GET /api/v3/historicalTrades?symbol=&limit=&fromId=  from fromId on (the newest without it),
  weight 25.
- GET /api/v3/aggTrades?symbol=&fromId=&startTime=&endTime=&limit=  aggregate trades from
  fromId, or with T in [startTime, endTime] (at most an hour apart), or the newest; weight 4.
- GET /api/v3/exchangeInfo[?symbol=|symbols=[...]]  a minimal listing of the symbols, weight 20.

Oldest first, always; only the newest `history_trades` trades of a symbol are kept. Request
weight is counted per UTC minute (every answer carries X-MBX-USED-WEIGHT-1M); over the budget
the answer is HTTP 429, code -1003, with Retry-After in seconds, as Binance's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import orjson
from websockets.http11 import Response

from ingest.simulator.binance.settings import BinanceSimulatorSettings
from ingest.simulator.binance.tape import AggTrade, PublishedTrade, Tape, agg_of
from ingest.simulator.instruments import json_response

TRADES_PATH = "/api/v3/trades"
HISTORICAL_PATH = "/api/v3/historicalTrades"
AGG_TRADES_PATH = "/api/v3/aggTrades"
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
WEIGHTS = {TRADES_PATH: 25, HISTORICAL_PATH: 25, AGG_TRADES_PATH: 4, EXCHANGE_INFO_PATH: 20}
HOUR_MS = 3_600_000


class RestError(Exception):
    """A request the endpoint refuses: HTTP 400 with Binance's code and message."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def trade_object(t: PublishedTrade) -> dict[str, Any]:
    """One trade as /trades and /historicalTrades list it."""
    quote = Decimal(t.price) * Decimal(t.qty)
    return {
        "id": t.trade_id,
        "price": t.price,
        "qty": t.qty,
        "quoteQty": f"{quote.normalize():f}",
        "time": t.time_ms,
        "isBuyerMaker": t.buyer_maker,
        "isBestMatch": True,
    }


def agg_object(a: AggTrade) -> dict[str, Any]:
    """One aggregate trade as /aggTrades lists it."""
    return {
        "a": a.agg_id,
        "p": a.price,
        "q": a.qty,
        "f": a.first,
        "l": a.last,
        "T": a.time_us // 1000,
        "m": a.buyer_maker,
        "M": True,
    }


class RestEndpoints:
    """Answers the REST paths above; `requests` keeps every (path, query) served, in order."""

    def __init__(self, settings: BinanceSimulatorSettings, tapes: dict[str, Tape]) -> None:
        self._budget = settings.weight_per_minute
        self._tapes = tapes
        self._minute = -1
        self.used_weight = 0  # in the current UTC minute
        self.rate_limited = 0  # requests answered 429
        self.requests: list[tuple[str, str]] = []
        self._routes: dict[str, Callable[[dict[str, str]], Any]] = {
            TRADES_PATH: self._trades,
            HISTORICAL_PATH: self._historical,
            AGG_TRADES_PATH: self._agg_trades,
            EXCHANGE_INFO_PATH: self._exchange_info,
        }

    def handles(self, path: str) -> bool:
        return path in self._routes

    def respond(self, path: str, query_string: str) -> Response:
        self.requests.append((path, query_string))
        now = time.time()
        minute = int(now // 60)
        if minute != self._minute:
            self._minute, self.used_weight = minute, 0
        weight = WEIGHTS[path]
        if self.used_weight + weight > self._budget:
            self.rate_limited += 1
            retry = max(1, math.ceil((minute + 1) * 60 - now))
            msg = (
                f"Too much request weight used; current limit is {self._budget} request weight per 1 MINUTE. "
                "Please use WebSocket Streams for live updates to avoid polling the API."
            )
            return self._answer(HTTPStatus.TOO_MANY_REQUESTS, {"code": -1003, "msg": msg}, str(retry))
        self.used_weight += weight
        query = {k: v[-1] for k, v in parse_qs(query_string).items()}
        try:
            return self._answer(HTTPStatus.OK, self._routes[path](query))
        except RestError as exc:
            return self._answer(HTTPStatus.BAD_REQUEST, {"code": exc.code, "msg": exc.msg})

    def _answer(self, status: HTTPStatus, body: Any, retry_after: str | None = None) -> Response:
        headers = {"X-MBX-USED-WEIGHT-1M": str(self.used_weight)}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return json_response(status, orjson.dumps(body), headers)

    def _tape(self, query: dict[str, str]) -> Tape:
        symbol = query.get("symbol", "")
        if not symbol:
            raise RestError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        tape = self._tapes.get(symbol)
        if tape is None:
            raise RestError(-1121, "Invalid symbol.")
        return tape

    def _trades(self, query: dict[str, str]) -> list[dict[str, Any]]:
        tape = self._tape(query)
        limit = _int(query, "limit", 500, 1, 1000)
        return [trade_object(t) for t in tape.trades(tape.published - limit + 1, tape.published)]

    def _historical(self, query: dict[str, str]) -> list[dict[str, Any]]:
        tape = self._tape(query)
        limit = _int(query, "limit", 500, 1, 1000)
        start = _int(query, "fromId", tape.published - limit + 1, 0, None)
        return [trade_object(t) for t in tape.trades(start, start + limit - 1)]

    def _agg_trades(self, query: dict[str, str]) -> list[dict[str, Any]]:
        tape = self._tape(query)
        limit = _int(query, "limit", 500, 1, 1000)
        newest = agg_of(tape.published) if tape.published else 0
        start_ms = _int(query, "startTime", -1, 0, None)
        end_ms = _int(query, "endTime", -1, 0, None)
        if "fromId" in query:
            if start_ms >= 0 or end_ms >= 0:
                raise RestError(-1128, "Combination of optional parameters invalid.")
            first = _int(query, "fromId", 0, 0, None)
            return [agg_object(a) for a in tape.aggregates(first, first + limit - 1)]
        if start_ms < 0 and end_ms < 0:
            return [agg_object(a) for a in tape.aggregates(newest - limit + 1, newest)]
        if start_ms >= 0 and end_ms >= 0 and end_ms - start_ms > HOUR_MS:
            raise RestError(-1127, "More than 1 hours between startTime and endTime.")
        if start_ms < 0:
            start_ms = end_ms - HOUR_MS
        if end_ms < 0:
            end_ms = start_ms + HOUR_MS
        first = agg_of(tape.first_at_or_after(start_ms * 1000))
        out: list[dict[str, Any]] = []
        while len(out) < limit and first <= newest:
            chunk = tape.aggregates(first, min(newest, first + limit - 1))
            for a in chunk:
                if a.time_us // 1000 > end_ms or len(out) == limit:
                    return out
                out.append(agg_object(a))
            first += limit
        return out

    def _exchange_info(self, query: dict[str, str]) -> dict[str, Any]:
        names = list(self._tapes)
        if "symbol" in query:
            names = [self._tape(query).symbol]
        elif "symbols" in query:
            try:
                wanted = orjson.loads(query["symbols"])
            except orjson.JSONDecodeError:
                raise RestError(-1100, "Illegal characters found in parameter 'symbols'.") from None
            if not isinstance(wanted, list) or any(w not in self._tapes for w in wanted):
                raise RestError(-1121, "Invalid symbol.")
            names = [str(w) for w in wanted]
        return {
            "timezone": "UTC",
            "serverTime": time.time_ns() // 1_000_000,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self._budget,
                }
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_object(name) for name in names],
        }


def _symbol_object(symbol: str) -> dict[str, Any]:
    quote = next(
        (q for q in ("USDT", "USDC", "FDUSD", "BTC", "ETH", "BNB") if symbol.endswith(q)), symbol[-4:]
    )
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": symbol.removesuffix(quote),
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01000000",
                "maxPrice": "1000000.00000000",
                "tickSize": "0.01000000",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00000001",
                "maxQty": "9000.00000000",
                "stepSize": "0.00000001",
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
    }


def _int(query: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise RestError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        )
    value = int(text)
    if value < low or (high is not None and value > high):
        raise RestError(-1102, f"'{name}' contains unexpected value. Cannot be greater than {high}.")
    return value
