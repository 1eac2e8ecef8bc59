"""Make before break: when the two connections of a switch have proven that nothing fell between.

After a RECONNECT_SOON notice the collector reads the old connection and its replacement
side by side (websocket_collector.py). The old one may be closed once the two trade streams
overlap: once one trade (exchange, symbol, trade id, time: raw_trades' key) has arrived on
both. Each connection delivers its trades in order and without holes, so the old one holds
everything up to that trade and the new one everything from its subscription on, which is no
later than that trade: their union is complete. The first trades of the new connection alone
prove nothing: its stream may run ahead of the old one's (another server of the exchange),
and the trades between the old one's position and the new one's first would be on neither.

Only trades are compared: they are the stream that must lose nothing, and a common ticker
would not prove that the trades overlap. Books and tickers are snapshots (each replaces the
last); a connection without trades, or a quiet symbol, ends its switch when the exchange
closes the old connection or after HANDOVER_OVERLAP. The rows delivered twice in the overlap
are stored once: the writer skips them by the tables' unique keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from ingest.rows import Row, TradeRow

# How long the old connection is read beside its replacement when no trade arrives on both
# (a quiet symbol, no trades subscribed) and the exchange does not close the old one itself.
HANDOVER_OVERLAP = 30.0
# Trades remembered per connection while none is common: bounds memory (10 s at 10,000
# trades/s; the first common trade of a busy stream comes within milliseconds).
MAX_REMEMBERED_TRADES = 100_000

TradeKey = tuple[str, str, str, int]


class Overlap:
    """The trades two connections delivered during one switch; `found` is set at the first
    trade both delivered."""

    def __init__(self) -> None:
        self.found = asyncio.Event()
        self._old: set[TradeKey] = set()
        self._new: set[TradeKey] = set()

    def old_delivered(self, rows: Sequence[Row]) -> None:
        self._see(rows, self._old, self._new)

    def new_delivered(self, rows: Sequence[Row]) -> None:
        self._see(rows, self._new, self._old)

    def _see(self, rows: Sequence[Row], mine: set[TradeKey], theirs: set[TradeKey]) -> None:
        if self.found.is_set():
            return
        keys = [(r.exchange, r.symbol, r.trade_id, r.ts_ms) for r in rows if type(r) is TradeRow]
        if not theirs.isdisjoint(keys):
            self.found.set()
            mine.clear()
            theirs.clear()
        elif len(mine) < MAX_REMEMBERED_TRADES:
            mine.update(keys)
