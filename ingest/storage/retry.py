"""Decide whether a failed batch is retried, and how long to wait before the next try.

One place decides retryable vs. bad data:
- bad data (SQLSTATE class 22 data exception, 23 integrity violation): retrying the same
  rows fails the same way, so the writer isolates the offending rows into dead letters;
- a transaction conflict (SQLSTATE class 40: deadlock, serialization failure) is no
  outage: the batch is simply tried again;
- everything else (connection lost, server restarting, pool timeout, missing table while
  migrations run...) is an outage: keep the rows and retry with jittered, capped,
  exponential backoff.
"""

from __future__ import annotations

import random

import psycopg

_BAD_DATA_CLASSES = ("22", "23")


def is_bad_data(exc: BaseException) -> bool:
    """True when `exc` says the rows themselves are unacceptable to the database."""
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate or ""
    return state[:2] in _BAD_DATA_CLASSES


def is_conflict(exc: BaseException) -> bool:
    """True when `exc` is a transaction conflict another try resolves (class 40)."""
    return isinstance(exc, psycopg.Error) and (exc.sqlstate or "").startswith("40")


class Backoff:
    """Jittered exponential backoff between initial and maximum delays ("full jitter")."""

    def __init__(self, initial: float, maximum: float) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("need 0 < retry_initial_delay <= retry_max_delay")
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0

    def next_delay(self) -> float:
        """Delay before the next try; grows 2x per attempt up to the maximum, jittered."""
        ceiling = min(self.maximum, self.initial * (2 ** min(self.attempt, 40)))
        self.attempt += 1
        # Never below `initial`: a restarting server needs a moment, and a zero
        # delay would spin.
        return random.uniform(self.initial, max(self.initial, ceiling))

    def reset(self) -> None:
        """Start again from the initial delay (after a success)."""
        self.attempt = 0
