"""OKX trade history: GET /api/v5/market/trades (the newest, up to 500) and
GET /api/v5/market/history-trades?type=1 (paged by tradeId, up to 100, about three months).

Both answer {"code": "0", "msg": "", "data": [trade, ...]}, newest first, one object per fill
with the fields of the WebSocket `trades-all` channel (instId, tradeId, px, sz, side, ts, source).
`after=<tradeId>` asks for the trades older than that id. OKX allows 100 requests per 2 s for
/market/trades and 20 per 2 s for /market/history-trades, per IP. Rows come from the same
parser as the live stream (handlers.trades), so REST and live rows are alike byte for byte
where their fields are.

Sequence numbers are tradeIds: one per fill. A live `trades` push aggregates the `count` fills
of one taker order at one price and carries the last fill's id, so it covers
tradeId - count + 1 .. tradeId (seen in recorded OKX traffic); a `trades-all` push is one fill.
"""

from __future__ import annotations

from collections.abc import Mapping

from ingest.errors import ExchangeError
from ingest.exchanges.okx.handlers import trades
from ingest.exchanges.okx.instruments import DEFAULT_REST_URL
from ingest.history.model import HistoryPage, HistoryRequest
from ingest.rows import DataRow, TradeRow

NEWEST_PATH = "/api/v5/market/trades"
HISTORY_PATH = "/api/v5/market/history-trades"
NEWEST_LIMIT = 500
HISTORY_LIMIT = 100


class OkxTradeHistory:
    """TradeHistorySource for OKX (see ingest.history)."""

    default_base_url = DEFAULT_REST_URL
    rate_limits: Mapping[str, tuple[int, float]] = {NEWEST_PATH: (100, 2.0), HISTORY_PATH: (20, 2.0)}
    page_size = HISTORY_LIMIT

    def newest(self, symbol: str) -> HistoryRequest:
        return HistoryRequest(NEWEST_PATH, {"instId": symbol, "limit": str(NEWEST_LIMIT)})

    def older_than(self, symbol: str, seq: int) -> HistoryRequest:
        params = {"instId": symbol, "type": "1", "after": str(seq), "limit": str(HISTORY_LIMIT)}
        return HistoryRequest(HISTORY_PATH, params)

    def parse(self, symbol: str, payload: object, store_raw_data: bool) -> HistoryPage:
        if type(payload) is not dict:
            raise ExchangeError(f"trade history: expected a JSON object, got {type(payload).__name__}")
        code, data = payload.get("code"), payload.get("data")
        if code != "0":
            msg = payload.get("msg")
            raise ExchangeError(f"trade history: OKX error code {code!r:.20}: {msg!r:.200}")
        if type(data) is not list:
            raise ExchangeError("trade history: field 'data' is not a list")
        rows: list[DataRow] = []
        rejected: list[tuple[str | bytes, str]] = []
        trades({"channel": "trades-all", "instId": symbol}, data, store_raw_data, rows, rejected)
        foreign = [r for r in rows if r.symbol != symbol]
        if foreign:
            other = foreign[0].symbol
            raise ExchangeError(f"trade history for {symbol}: the answer holds trades of {other!r:.60}")
        return HistoryPage(rows, rejected)

    def span(self, row: TradeRow) -> tuple[int, int] | None:
        last = int(row.trade_seq)
        if last <= 0:
            return None
        return last - int(row.fill_count) + 1, last
