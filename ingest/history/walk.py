"""Walk an exchange's REST trade history back from a sequence number (ingest.history.model).

`HistoryReader.between(symbol, after, before)` yields, page by page, newest first, the rows of
the fills strictly between `after` and `before` (sequence numbers) and, when `since_ms` is
given, not older than it. It starts with the venue's "newest" request when that reaches down
to `before` (one request fills the usual short gap at the live edge), then pages back with
`older_than` until a page reaches `after` (or `since_ms`). What it could not cover is said in
`Walk.missing`, never left out silently:
- below: the history ended (an empty page: older than the venue keeps), or made no progress;
- above: the newest trades over REST stayed behind `before` (REST lagging the live stream).
Requests are paced (RequestPacer) and retried (get_json); an ExchangeError ends the walk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.history.model import HistoryPage, HistoryRequest, TradeHistorySource
from ingest.history.pacing import RequestPacer
from ingest.rows import DataRow, TradeRow

if TYPE_CHECKING:
    # Not at run time: the HTTP client (httpcore, ~1.5 MB) loads with the first REST client,
    # not with every `tcpd run` that imports the gap filler (tests/test_memory_imports.py).
    from ingest.instruments.http import RestClient, RetryPolicy

logger = logging.getLogger(__name__)

# When REST's newest trade is still below the first one received live: how often and how far
# apart the newest are asked for again before the walk goes on without them.
LAG_RETRIES = 5
LAG_DELAY = 1.0


@dataclass(slots=True)
class Walk:
    """What one walk found."""

    trades: int = 0  # trade rows yielded
    requests: int = 0
    rejected: list[tuple[str | bytes, str]] = field(default_factory=list)  # items refused
    lowest: int | None = None  # lowest sequence number seen
    lowest_ms: int | None = None  # exchange time of the oldest trade seen
    newest_ms: int | None = None  # exchange time of the newest trade yielded
    missing: list[tuple[int, int]] = field(default_factory=list)  # (after, before) not covered

    @property
    def complete(self) -> bool:
        return not self.missing


class HistoryReader:
    """Reads one venue's trade history through one REST client."""

    def __init__(
        self,
        client: RestClient,
        source: TradeHistorySource,
        pacer: RequestPacer,
        policy: RetryPolicy,
        *,
        store_raw_data: bool,
    ) -> None:
        self._client = client
        self._source = source
        self._pacer = pacer
        self._policy = policy
        self._store_raw = store_raw_data

    async def page(self, symbol: str, request: HistoryRequest, walk: Walk) -> HistoryPage:
        """One paced, retried request, parsed; counted in `walk`."""
        from ingest.instruments.http import get_json  # loaded already: `client` is a RestClient

        await self._pacer.wait(request.path)
        walk.requests += 1
        payload = await get_json(self._client, request.path, request.params, self._policy)
        page = self._source.parse(symbol, payload, self._store_raw)
        walk.rejected.extend(page.rejected)
        return page

    def _spans(self, rows: list[DataRow]) -> list[tuple[int, int]]:
        span = self._source.span
        return [s for r in rows if isinstance(r, TradeRow) and (s := span(r)) is not None]

    async def between(
        self, symbol: str, after: int, before: int, walk: Walk, since_ms: int | None = None
    ) -> AsyncIterator[list[DataRow]]:
        """Rows of the fills in (after, before), page by page; `walk` tells what was covered."""
        if before - after <= 1:
            return
        cursor = before  # everything in [cursor, before) is covered
        top = after  # the highest sequence number REST has shown
        for attempt in range(LAG_RETRIES + 1):
            page = await self.page(symbol, self._source.newest(symbol), walk)
            spans = self._spans(page.rows)
            if spans:
                top = max(top, max(last for _first, last in spans))
            if top >= before - 1 or attempt == LAG_RETRIES:
                break
            await asyncio.sleep(LAG_DELAY)
        if top < before - 1:
            walk.missing.append((top, before))
            cursor = top + 1
        if spans and min(first for first, _last in spans) <= cursor:
            kept = self._keep(page.rows, after, cursor, walk, since_ms)
            cursor = min(cursor, min(first for first, _last in spans))
            if kept:
                yield kept
        while cursor > after + 1 and not self._older_than_since(walk, since_ms):
            page = await self.page(symbol, self._source.older_than(symbol, cursor), walk)
            spans = self._spans(page.rows)
            lowest = min((first for first, _last in spans), default=None)
            if lowest is None or lowest >= cursor:
                why = "the history ends" if lowest is None else "the history made no progress"
                logger.info("%s: %s below sequence number %d", symbol, why, cursor)
                walk.missing.append((after, cursor))
                return
            kept = self._keep(page.rows, after, cursor, walk, since_ms)
            cursor = lowest
            if kept:
                yield kept

    @staticmethod
    def _older_than_since(walk: Walk, since_ms: int | None) -> bool:
        return since_ms is not None and walk.lowest_ms is not None and walk.lowest_ms < since_ms

    def _keep(
        self, rows: list[DataRow], after: int, below: int, walk: Walk, since_ms: int | None
    ) -> list[DataRow]:
        """The rows of fills in (after, below) and not older than since_ms; a trade's raw copy
        (the MarketRow the parser appends after it) goes with it."""
        span = self._source.span
        kept: list[DataRow] = []
        keep = False
        for row in rows:
            if isinstance(row, TradeRow):
                s = span(row)
                if s is not None and (walk.lowest is None or s[0] < walk.lowest):
                    walk.lowest = s[0]
                if s is not None and (walk.lowest_ms is None or row.ts_ms < walk.lowest_ms):
                    walk.lowest_ms = row.ts_ms
                keep = (
                    s is not None
                    and s[0] > after
                    and s[1] < below
                    and (since_ms is None or row.ts_ms >= since_ms)
                )
                if keep:
                    walk.trades += 1
                    if walk.newest_ms is None or row.ts_ms > walk.newest_ms:
                        walk.newest_ms = row.ts_ms
            if keep:
                kept.append(row)
        return kept
