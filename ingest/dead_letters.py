"""What a collector keeps of the input it refuses: bounded dead letters, counted when dropped.

Why bounded: a feed that turns bad (a format change, a broken relay) would otherwise write
one dead letter per frame, as fast as trades, into a table nobody reads at that rate. So
each collector keeps at most `per_hour` dead letters per hour (counted from the first one
of the hour, on the monotonic clock) and counts the ones it drops, and each dead letter
keeps at most MAX_RAW_BYTES of what was refused (enough for any OKX frame of the channels
parsed here; the reason says when the text was cut).
"""

from __future__ import annotations

import logging
import time

from ingest.rows import DeadLetter, safe_text

logger = logging.getLogger(__name__)

HOUR = 3600.0
MAX_RAW_BYTES = 16 * 1024


def raw_text(raw: str | bytes, limit: int = MAX_RAW_BYTES) -> tuple[str, int]:
    """At most `limit` bytes of `raw` as text a PostgreSQL text column takes (bad UTF-8
    replaced, NUL spelled \\u0000), and the full size of `raw` in bytes."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return safe_text(data[:limit].decode("utf-8", "replace")), len(data)


def dead_letter(exchange: str, raw: str | bytes, reason: str) -> DeadLetter:
    """A dead letter for `raw`, received now; the reason notes a cut text."""
    text, size = raw_text(raw)
    if size > MAX_RAW_BYTES:
        reason = f"{reason} (first {MAX_RAW_BYTES} of {size} bytes kept)"
    return DeadLetter(exchange, int(time.time() * 1000), reason, text)


class DeadLetterCap:
    """At most `per_hour` dead letters per hour; `dropped` counts the rest."""

    def __init__(self, name: str, per_hour: int) -> None:
        self._name = name
        self.per_hour = per_hour
        self._window_start: float | None = None
        self._kept_in_window = 0
        self._dropped_in_window = 0
        self.kept = 0
        self.dropped = 0

    def admit(self, now: float | None = None) -> bool:
        """True if one more dead letter may be kept now (time.monotonic); else count a drop."""
        now = time.monotonic() if now is None else now
        if self._window_start is None or now - self._window_start >= HOUR:
            if self._dropped_in_window:
                logger.warning(
                    "%s: %d dead letters dropped in the last hour (limit %d per hour)",
                    self._name,
                    self._dropped_in_window,
                    self.per_hour,
                )
            self._window_start = now
            self._kept_in_window = self._dropped_in_window = 0
        if self._kept_in_window < self.per_hour:
            self._kept_in_window += 1
            self.kept += 1
            return True
        if not self._dropped_in_window:
            logger.warning(
                "%s: %d dead letters this hour, the limit (dead_letters_per_hour): the rest of "
                "the hour is counted, not kept",
                self._name,
                self.per_hour,
            )
        self.dropped += 1
        self._dropped_in_window += 1
        return False
