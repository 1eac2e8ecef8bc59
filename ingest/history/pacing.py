"""Client-side rate limits: at most `count` requests per `seconds`, per path, shared by every
collector of one exchange (the exchange counts per IP address). Staying under the limit keeps
429s rare; get_json still honours one (Retry-After, jittered backoff) when it comes."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping


class _Window:
    """A sliding window of request times."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count = count
        self.seconds = seconds
        self.times: deque[float] = deque()
        self.lock = asyncio.Lock()


class RequestPacer:
    """`await pacer.wait(path)` before each request: it returns once the request fits the limit."""

    def __init__(self, limits: Mapping[str, tuple[int, float]], share: float = 0.8) -> None:
        # `share`: the part of the exchange's limit used, leaving room for clocks that differ
        # and for other clients on the same address.
        self._windows = {
            path: _Window(max(1, int(count * share)), seconds) for path, (count, seconds) in limits.items()
        }

    async def wait(self, path: str) -> None:
        window = self._windows.get(path)
        if window is None:
            return
        async with window.lock:
            times = window.times
            while True:
                now = time.monotonic()
                while times and times[0] <= now - window.seconds:
                    times.popleft()
                if len(times) < window.count:
                    times.append(now)
                    return
                await asyncio.sleep(times[0] + window.seconds - now)
