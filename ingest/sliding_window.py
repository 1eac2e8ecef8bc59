"""SlidingWindow: at most `count` events in any `seconds`, waiters admitted in turn.

The client-side rate limits (REST requests per path, ingest.history.pacing; connection
attempts per venue host, ingest.collector.connect_rate) are all this one rule.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


class SlidingWindow:
    """`await window.wait()` before each event: it returns once the event fits (and counts it)."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.seconds = seconds
        self._times: deque[float] = deque()
        self._turn = asyncio.Lock()

    async def wait(self) -> None:
        async with self._turn:
            times = self._times
            while True:
                now = time.monotonic()
                while times and times[0] <= now - self.seconds:
                    times.popleft()
                if len(times) < self.count:
                    times.append(now)
                    return
                await asyncio.sleep(times[0] + self.seconds - now)
