"""Counters and clocks of one collector, and the status/health dictionaries built from them.

The hot path only increments integers and stores `time.monotonic()` values; wall-clock
times are derived when a status is asked for, so receiving a frame never formats a date.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def wall_iso(mono: float | None) -> str | None:
    """Turn a time.monotonic() reading into an ISO-8601 UTC timestamp (None stays None)."""
    if mono is None:
        return None
    wall = time.time() - (time.monotonic() - mono)
    return datetime.fromtimestamp(wall, UTC).isoformat()


def since(mono: float | None, now: float) -> float | None:
    """Seconds elapsed since a monotonic reading, rounded for display."""
    return None if mono is None else round(now - mono, 3)


@dataclass(slots=True)
class CollectorStatistics:
    """Mutable counters; the collector owns one and updates it in place."""

    messages_received: int = 0
    messages_processed: int = 0
    rows_received: int = 0  # trades + market rows parsed; what "received" means for storage
    rows_lost: int = 0  # received but never handed to the sink (forced stop)
    errors: int = 0
    restarts: int = 0
    reconnect_attempts: int = 0
    last_message_mono: float | None = None
    last_data_mono: float | None = None
    last_heartbeat_mono: float | None = None
    started_mono: float | None = None
    connected_mono: float | None = None
    last_restart_mono: float | None = None
    last_error: str | None = None
    callback_dropped: int = 0
    callback_errors: int = 0
    callback_calls: int = 0
    dead_letters: int = 0  # refused frames or items kept as dead letters
    dead_letters_dropped: int = 0  # refused, over the per-hour cap: counted, not kept
    messages_too_big: int = 0  # messages over max_message_bytes (connection closed with 1009)
    handovers: int = 0  # RECONNECT_SOON switches to a replacement connection (make before break)
    handover_failures: int = 0  # replacements that could not be opened or subscribed
    book_gaps: int = 0  # incremental book sequence gaps (each answered by a resubscribe)
    book_updates_dropped: int = 0  # book updates after a gap, before the fresh snapshot

    def as_dict(self, now: float) -> dict[str, Any]:
        """The spec's `statistics` dictionary (plus rows_received and callback counters)."""
        return {
            "messages_received": self.messages_received,
            "messages_processed": self.messages_processed,
            "rows_received": self.rows_received,
            "rows_lost": self.rows_lost,
            "errors": self.errors,
            "restarts": self.restarts,
            "uptime_seconds": since(self.started_mono, now),
            "reconnect_attempts": self.reconnect_attempts,
            "last_message_time": wall_iso(self.last_message_mono),
            "connection_uptime": since(self.connected_mono, now),
            "last_error": self.last_error,
            "last_restart_time": wall_iso(self.last_restart_mono),
            "dead_letters": self.dead_letters,
            "dead_letters_dropped": self.dead_letters_dropped,
            "messages_too_big": self.messages_too_big,
            "handovers": self.handovers,
            "handover_failures": self.handover_failures,
            "book_gaps": self.book_gaps,
            "book_updates_dropped": self.book_updates_dropped,
            "callbacks": {
                "calls": self.callback_calls,
                "errors": self.callback_errors,
                "dropped": self.callback_dropped,
            },
        }


def silent_since(stats: CollectorStatistics) -> float | None:
    """Since when (time.monotonic) the collector has had no data: its last data, or its last
    (re)connection or start if later (a connection that just opened has not been silent)."""
    marks = [m for m in (stats.last_data_mono, stats.connected_mono, stats.started_mono) if m]
    return max(marks) if marks else None


def health_issues(
    *,
    should_run: bool,
    is_running: bool,
    status: str,
    stats: CollectorStatistics,
    now: float,
    max_silence: float,
    heartbeat_limit: float,
    sink_pressure: str | None,
    holdup: str | None,
) -> list[str]:
    """Every reason the collector is not healthy, as readable sentences (empty = healthy).

    `holdup` (reading held up by the writer, see collector.base.holdup) replaces the
    silence sentences: the silence is ours, not the exchange's."""
    issues: list[str] = []
    if should_run and not is_running:
        issues.append("collector should be running but is not")
    if status == "error":
        issues.append(f"collector is in error state: {stats.last_error or 'unknown error'}")
    if should_run and is_running and holdup is None:
        silent = since(silent_since(stats), now)
        if silent is not None and silent > max_silence:
            issues.append(f"no data for {silent:.1f}s (limit {max_silence:.1f}s)")
        beats = [m for m in (stats.last_heartbeat_mono, stats.last_message_mono) if m]
        quiet = since(max(beats) if beats else stats.started_mono, now)
        if quiet is not None and quiet > heartbeat_limit:
            issues.append(f"no message or pong for {quiet:.1f}s (limit {heartbeat_limit:.1f}s)")
    if should_run and is_running and stats.connected_mono is None:
        issues.append("not connected")
    if holdup:
        issues.append(holdup)
    if sink_pressure:
        issues.append(sink_pressure)
    return issues
