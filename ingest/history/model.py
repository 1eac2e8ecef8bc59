"""What an exchange package provides so that its trade history can be fetched (no I/O here).

Sequence numbers: a venue numbers the trades of one instrument (OKX: tradeId, one per fill).
A stored row covers the fills span(row) = (first, last), both inclusive: one fill for a
per-fill row, several for an aggregated one (OKX `trades` with `count`). A gap is the open
interval (after, before) between the last fill stored and the first fill received live.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

from ingest.rows import DataRow, TradeRow


class HistoryRequest(NamedTuple):
    """One GET: a path below the REST base URL and its query parameters."""

    path: str
    params: dict[str, str]


class HistoryPage(NamedTuple):
    """One decoded answer: the rows it gives (trades, and their raw copies when raw data is
    stored) and the items refused, as (frame, reason) like the live parser's."""

    rows: list[DataRow]
    rejected: list[tuple[str | bytes, str]]


class TradeHistorySource(Protocol):
    """A venue's REST trade history, newest first, paged by sequence number."""

    default_base_url: str
    # Requests allowed per path, as (count, seconds), per IP address.
    rate_limits: Mapping[str, tuple[int, float]]
    page_size: int  # trades one `older_than` page holds at most

    def newest(self, symbol: str) -> HistoryRequest:
        """The newest trades of `symbol` (one request)."""
        ...

    def older_than(self, symbol: str, seq: int) -> HistoryRequest:
        """The page of trades of `symbol` just below sequence number `seq`."""
        ...

    def parse(self, symbol: str, payload: object, store_raw_data: bool) -> HistoryPage:
        """Rows of one decoded JSON answer; ExchangeError when the exchange reports an error
        or the answer does not have the documented shape."""
        ...

    def span(self, row: TradeRow) -> tuple[int, int] | None:
        """The (first, last) sequence numbers of the fills `row` covers; None when the row
        carries none (then nothing can be said about gaps around it)."""
        ...
