"""`tcpd status --watch`: the collectors as a live table, read from collector_status each second.

Rates come from two successive status rows of a collector (the service writes them every
writer.status_interval): messages and rows received between them, over the time between
their updated_at. Until a collector has written a second row its rates show "…"; the age of
its last data counts on from the row's last_data_received, so a stalled service shows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from cli.status import read_status


@dataclass(frozen=True, slots=True)
class Sample:
    """What one status row said about a collector's counters, and when."""

    at: datetime
    messages: int
    rows: int
    messages_per_s: float | None = None
    rows_per_s: float | None = None


def _counters(row: dict[str, Any]) -> tuple[int, int]:
    stats = (row["status_json"] or {}).get("statistics", {})
    return int(stats.get("messages_received") or 0), int(stats.get("rows_received") or 0)


def sample(row: dict[str, Any], before: Sample | None) -> Sample:
    """This row's sample, with rates against `before` (the collector's previous one)."""
    messages, rows = _counters(row)
    at = row["updated_at"]
    if before is None:
        return Sample(at, messages, rows)
    seconds = (at - before.at).total_seconds()
    if seconds <= 0:  # the same row again: keep the rates it gave
        return before
    if messages < before.messages or rows < before.rows:  # the service restarted: counters reset
        return Sample(at, messages, rows)
    return Sample(at, messages, rows, (messages - before.messages) / seconds, (rows - before.rows) / seconds)


def _rate(value: float | None) -> str:
    return "…" if value is None else f"{value:,.0f}"


def _age(iso: str | None, now: datetime) -> str:
    if not iso:
        return "never"
    seconds = (now - datetime.fromisoformat(iso)).total_seconds()
    return f"{max(seconds, 0.0):.1f}s"


def watch_table(rows: list[dict[str, Any]], samples: dict[str, Sample], now: datetime) -> Table:
    """The live table for `rows`; `samples` (by collector) is updated in place."""
    table = Table(title=f"Collectors at {now.astimezone(UTC):%H:%M:%S} UTC (Ctrl-C to leave)")
    for column in ("collector", "status", "msgs/s", "rows/s", "last data", "reconn", "queue"):
        if column in ("collector", "status"):
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, no_wrap=True, justify="right")
    for row in rows:
        name = row["collector"]
        current = samples[name] = sample(row, samples.get(name))
        status = row["status_json"] or {}
        health = row["health_json"] or {}
        queue = status.get("writer") or {}
        fill = queue.get("queue_fill")
        table.add_row(
            name,
            row["status"] if health.get("is_healthy") else f"{row['status']} [red](unhealthy)[/]",
            _rate(current.messages_per_s),
            _rate(current.rows_per_s),
            _age(health.get("last_data_received"), now),
            str(status.get("statistics", {}).get("reconnect_attempts", "")),
            "" if fill is None else f"{100 * fill:.0f}%",
        )
    if not rows:
        table.caption = "no collector has reported yet (is `tcpd run` running?)"
    return table


def watch(
    conninfo: str,
    table_name: str,
    console: Console,
    interval: float = 1.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    turns: Iterator[int] | None = None,
) -> None:
    """Redraw the table every `interval` seconds until Ctrl-C (or `turns` runs out, for tests)."""
    samples: dict[str, Sample] = {}
    with Live(console=console, auto_refresh=False) as live:
        try:
            for _ in turns if turns is not None else iter(int, 1):
                rows, _gaps = read_status(conninfo, table_name)
                live.update(watch_table(rows, samples, clock()), refresh=True)
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
