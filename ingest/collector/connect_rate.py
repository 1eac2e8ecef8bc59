"""The venue's limit on connection attempts, shared by every collector of a process.

Venues limit how often one IP may open connections (OKX: 3 a second; Binance: 300 in 5
minutes) and refuse or ban beyond it. A gate (a SlidingWindow) admits at most `attempts`
connection attempts in any window of `seconds`, across all collectors of one venue host in
this process (one gate per event loop, exchange and host), so a start with hundreds of pairs, or a
reconnect wave after a network blip, opens connections at the allowed rate instead of being
refused and retried in a storm.
"""

from __future__ import annotations

import asyncio
import weakref
from urllib.parse import urlsplit

from ingest.config.exchange import ConnectRate
from ingest.sliding_window import SlidingWindow

_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str, int, float], SlidingWindow]]
_GATES = weakref.WeakKeyDictionary()


def gate_for(exchange: str, url: str, rate: ConnectRate | None) -> SlidingWindow | None:
    """The gate every collector of `exchange` connecting to `url`'s host shares (None: no limit)."""
    if rate is None:
        return None
    gates = _GATES.setdefault(asyncio.get_running_loop(), {})
    key = (exchange, urlsplit(url).hostname or "", rate.attempts, rate.seconds)
    gate = gates.get(key)
    if gate is None:
        gate = gates[key] = SlidingWindow(rate.attempts, rate.seconds)
    return gate
