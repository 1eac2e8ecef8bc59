"""Binance spot trade history: GET /api/v3/trades (the newest, up to 1000) and
GET /api/v3/historicalTrades?fromId= (up to 1000 from a trade id on, oldest first).

Both answer a JSON list of fills {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker",
"isBestMatch"}; an error is an object {"code": -1121, "msg": "Invalid symbol."}. Rows are
the live `@trade` rows: trade_id and trade_seq the fill's id, fill_count 1, the taker side
"sell" when the buyer is the maker; with raw data, raw_data is the REST object as Binance sent
it (its field names differ from the stream's).

Sequence numbers are fill ids, consecutive per symbol. A live `@aggTrade` row covers the
fills f..l (trade_seq l, fill_count l - f + 1), so an aggregated stream's gaps are filled
with per-fill rows, as OKX's `trades` are (docs/gaps.md).

Limits: request weight per IP, 6000 a minute, both endpoints weigh 25. Each is given half:
120 a minute, so the pacer's 80 % of both stays below the budget (4,800 of 6,000).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ingest.errors import ExchangeError, FrameError
from ingest.exchanges.binance.fields import flag, ms, obj_of, positive, uint
from ingest.exchanges.binance.streams import EXCHANGE
from ingest.history.model import HistoryPage, HistoryRequest
from ingest.model import DataType
from ingest.rows import DataRow, MarketRow, TradeRow

DEFAULT_REST_URL = "https://api.binance.com"
NEWEST_PATH = "/api/v3/trades"
HISTORY_PATH = "/api/v3/historicalTrades"
PAGE_LIMIT = 1000
_WHERE = "historicalTrades"


class BinanceTradeHistory:
    """TradeHistorySource for Binance spot (see ingest.history)."""

    default_base_url = DEFAULT_REST_URL
    rate_limits: Mapping[str, tuple[int, float]] = {NEWEST_PATH: (120, 60.0), HISTORY_PATH: (120, 60.0)}
    page_size = PAGE_LIMIT

    def newest(self, symbol: str) -> HistoryRequest:
        return HistoryRequest(NEWEST_PATH, {"symbol": symbol, "limit": str(PAGE_LIMIT)})

    def older_than(self, symbol: str, seq: int) -> HistoryRequest:
        first = max(seq - PAGE_LIMIT, 0)
        limit = max(seq - first, 1)
        return HistoryRequest(HISTORY_PATH, {"symbol": symbol, "fromId": str(first), "limit": str(limit)})

    def parse(self, symbol: str, payload: object, store_raw_data: bool) -> HistoryPage:
        if type(payload) is dict and "code" in payload:
            code, msg = payload.get("code"), payload.get("msg")
            raise ExchangeError(f"trade history: Binance error code {code!r:.20}: {msg!r:.200}")
        if type(payload) is not list:
            raise ExchangeError(f"trade history: expected a JSON list, got {type(payload).__name__}")
        rows: list[DataRow] = []
        rejected: list[tuple[str | bytes, str]] = []
        for item in payload:
            try:
                _append_fill(symbol, item, store_raw_data, rows)
            except FrameError as exc:
                rejected.append((orjson.dumps(item), exc.reason))
        return HistoryPage(rows, rejected)

    def span(self, row: TradeRow) -> tuple[int, int] | None:
        last = int(row.trade_seq)
        if last < 0:
            return None
        return last - int(row.fill_count) + 1, last


def _append_fill(symbol: str, item: Any, store_raw_data: bool, rows: list[DataRow]) -> None:
    obj = obj_of(_WHERE, item)
    fill_id = str(uint(_WHERE, obj, "id"))
    price = positive(_WHERE, obj, "price")
    size = positive(_WHERE, obj, "qty")
    ts_ms = ms(_WHERE, obj, "time")
    side = "sell" if flag(_WHERE, obj, "isBuyerMaker") else "buy"
    raw = orjson.dumps(obj).decode() if store_raw_data else ""
    rows.append(TradeRow(EXCHANGE, symbol, fill_id, price, size, side, ts_ms, raw, "1", fill_id))
    if store_raw_data:
        rows.append(MarketRow(EXCHANGE, symbol, DataType.TRADE, ts_ms, raw, fill_id))
