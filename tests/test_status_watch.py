"""`tcpd status --watch` (cli/status_watch.py): rates from successive status rows, a real database."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from rich.console import Console
from typer.testing import CliRunner

from cli.main import app
from cli.status_watch import Sample, sample, watch
from ingest.service import status_rows

T0 = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)


def row(at: datetime, messages: int, rows: int, **status: Any) -> dict[str, Any]:
    stats = {"messages_received": messages, "rows_received": rows, "reconnect_attempts": 2}
    return {
        "collector": "okx-BTC-USDT",
        "status": "running",
        "status_json": {"statistics": stats, **status},
        "health_json": {"is_healthy": True, "last_data_received": (at - timedelta(seconds=1.5)).isoformat()},
        "updated_at": at,
    }


def test_rates_come_from_two_successive_rows() -> None:
    first = sample(row(T0, 1000, 2000), None)
    assert first == Sample(T0, 1000, 2000)
    second = sample(row(T0 + timedelta(seconds=5), 1500, 3000), first)
    assert (second.messages_per_s, second.rows_per_s) == (100.0, 200.0)
    # The same row read again keeps its rates; a restarted service (counters back to 0) starts over.
    assert sample(row(T0 + timedelta(seconds=5), 1500, 3000), second) == second
    restarted = sample(row(T0 + timedelta(seconds=10), 10, 20), second)
    assert restarted.messages_per_s is None


def test_status_rows_carry_the_writer_queue() -> None:
    class Collector:
        name, exchange, symbol = "okx-BTC-USDT", "okx", "BTC-USDT"

        def get_status(self) -> dict[str, Any]:
            return {"status": "running", "statistics": {}}

        def get_health_status(self) -> dict[str, Any]:
            return {"is_healthy": True}

    stats = {"queue_rows": 25, "queue_capacity": 100, "queue_fill": 0.25, "batches": 7}
    (only,) = status_rows([Collector()], stats)  # type: ignore[list-item]
    assert only.status_json["writer"] == {"queue_rows": 25, "queue_capacity": 100, "queue_fill": 0.25}


def _store(conn: psycopg.Connection[Any], r: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO collector_status (collector, exchange, symbol, status, status_json, health_json,"
        " updated_at) VALUES (%s, 'okx', 'BTC-USDT', %s, %s, %s, %s) ON CONFLICT (collector) DO UPDATE SET"
        " status_json = EXCLUDED.status_json, health_json = EXCLUDED.health_json,"
        " updated_at = EXCLUDED.updated_at",
        (r["collector"], r["status"], Jsonb(r["status_json"]), Jsonb(r["health_json"]), r["updated_at"]),
    )


def test_watch_reads_the_table_each_turn_and_shows_rates_age_and_queue(migrated_db_dsn: str) -> None:
    queue = {"queue_rows": 30, "queue_capacity": 100, "queue_fill": 0.3}
    with psycopg.connect(migrated_db_dsn, autocommit=True) as conn:

        def turns() -> Iterator[int]:
            _store(conn, row(T0, 1000, 2000, writer=queue))
            yield 1
            _store(conn, row(T0 + timedelta(seconds=4), 1400, 2800, writer=queue))  # the service wrote again
            yield 2

        out = io.StringIO()
        console = Console(file=out, width=120, color_system=None)
        watch(migrated_db_dsn, "collector_status", console, 0.0, lambda: T0 + timedelta(seconds=4), turns())
    text = out.getvalue()
    line = next(line for line in text.splitlines() if "okx-BTC-USDT" in line)
    assert line.split() == [
        "│",
        "okx-BTC-USDT",
        "│",
        "running",
        "│",
        "100",
        "│",
        "200",
        "│",
        "1.5s",
        "│",
        "2",
        "│",
        "30%",
        "│",
    ]


def test_watch_and_json_together_are_refused() -> None:
    result = CliRunner().invoke(
        app, ["status", "--watch", "--json", "--database-url", "postgresql://x@127.0.0.1:1/x"]
    )
    assert result.exit_code != 0
    assert "--watch draws a table" in result.output
