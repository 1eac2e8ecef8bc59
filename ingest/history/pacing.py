"""Client-side rate limits: at most `count` requests per `seconds`, per path, shared by every
collector of one exchange (the exchange counts per IP address). Staying under the limit keeps
429s rare; get_json still honours one (Retry-After, jittered backoff) when it comes."""

from __future__ import annotations

from collections.abc import Mapping

from ingest.sliding_window import SlidingWindow


class RequestPacer:
    """`await pacer.wait(path)` before each request: it returns once the request fits the limit."""

    def __init__(self, limits: Mapping[str, tuple[int, float]], share: float = 0.8) -> None:
        # `share`: the part of the exchange's limit used, leaving room for clocks that differ
        # and for other clients on the same address.
        self._windows = {
            path: SlidingWindow(max(1, int(count * share)), seconds)
            for path, (count, seconds) in limits.items()
        }

    async def wait(self, path: str) -> None:
        window = self._windows.get(path)
        if window is not None:
            await window.wait()
