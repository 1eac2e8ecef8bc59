"""tcpd status: show the collector_status table (what each running collector last reported) and
the database's scheduled jobs with the candle aggregates' lag (TSL edition)."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

import orjson
import psycopg
import typer
from psycopg import sql
from psycopg.rows import dict_row
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.common import (
    DEFAULT_DATABASE_CONFIG,
    DatabaseConfigFileOption,
    DatabaseUrlOption,
    database_conninfo,
    load_database,
    reporting_errors,
)
from ingest.config import TableNames
from ingest.db.connection import connect_sync
from ingest.errors import DatabaseError
from ingest.redact import redact_text
from ingest.storage.db_jobs import DbJobsSnapshot, read_db_jobs_sync
from ingest.storage.gaps import count_open

out = Console(highlight=False)


def status(
    database_config: DatabaseConfigFileOption = None,
    database_url: DatabaseUrlOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="A live table (rates, last data, queue) each second; Ctrl-C ends.")
    ] = False,
) -> None:
    """Print every collector's last reported status and health, and the database's jobs."""
    if watch and as_json:
        raise typer.BadParameter("--watch draws a table; leave out --json (or --watch)")
    with reporting_errors():
        conninfo = database_conninfo(database_config, database_url)
        tables = TableNames()
        if database_config is not None or DEFAULT_DATABASE_CONFIG.exists():
            tables = load_database(database_config, database_url).tables
        if watch:
            from cli.status_watch import watch as watch_live  # (imports rich.live only here)

            watch_live(conninfo, tables.collector_status, out)
            return
        rows, open_gaps = read_status(conninfo, tables.collector_status)
        jobs = read_jobs(conninfo)
    if as_json:
        shown = {"collectors": rows, "database_jobs": jobs_json(jobs)}
        typer.echo(orjson.dumps(shown, default=str, option=orjson.OPT_INDENT_2).decode())
        return
    out.print(render(rows, open_gaps))
    if jobs.jobs or jobs.lags:
        out.print(render_jobs(jobs))


def read_status(conninfo: str, table: str) -> tuple[list[dict[str, Any]], int | None]:
    """Every collector_status row, ordered by collector name, and how many gaps are open
    (None when the schema predates ingest_gaps)."""
    query = sql.SQL(
        "SELECT collector, exchange, symbol, status, status_json, health_json, updated_at "
        "FROM {} ORDER BY collector"
    ).format(sql.Identifier(table))
    with connect_sync(conninfo, autocommit=True) as conn:
        try:
            rows = [dict(row) for row in conn.cursor(row_factory=dict_row).execute(query).fetchall()]
        except psycopg.Error as exc:
            reason = redact_text(str(exc)).strip().splitlines()[0]
            raise DatabaseError(
                f"cannot read table {table!r}: {reason} (is the schema migrated? `tcpd db migrate`)"
            ) from None
        try:
            return rows, count_open(conn)
        except psycopg.errors.UndefinedTable:
            return rows, None


def render(rows: list[dict[str, Any]], open_gaps: int | None = 0) -> Table:
    """The status rows as a rich table (times in UTC); health issues and open gaps in the caption."""
    table = Table(title="Collectors")
    for column in ("collector", "status", "ok", "rows", "errors", "reconn", "updated"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        stats = (row["status_json"] or {}).get("statistics", {})
        health = row["health_json"] or {}
        table.add_row(
            row["collector"],
            row["status"],
            "[green]yes[/]" if health.get("is_healthy") else "[red]no[/]",
            str(stats.get("rows_received", "")),
            str(stats.get("errors", "")),
            str(stats.get("reconnect_attempts", "")),
            row["updated_at"].astimezone(UTC).strftime("%H:%M:%S"),
        )
    issues = [
        f"{row['collector']}: {issue}"
        for row in rows
        for issue in (row["health_json"] or {}).get("issues", [])
    ]
    notes = [escape(issue) for issue in issues]
    for row in rows:
        stats = (row["status_json"] or {}).get("statistics", {})
        if stats.get("book_gaps"):
            notes.append(
                escape(
                    f"{row['collector']}: {stats['book_gaps']} order book sequence gap(s), each "
                    f"resubscribed for a fresh snapshot; {stats.get('book_updates_dropped', 0)} "
                    "update(s) between a gap and its snapshot not stored (docs/books.md)"
                )
            )
    if not rows:
        notes.append("no collector has reported yet (is `tcpd run` running?)")
    if open_gaps:
        notes.append(f"[red]{open_gaps} open gap(s) in the stored history: `tcpd gaps`[/]")
    elif open_gaps is None:
        notes.append("gaps unknown: the schema predates ingest_gaps (`tcpd db migrate`)")
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table


def read_jobs(conninfo: str) -> DbJobsSnapshot:
    """The database's jobs and candle lags now (nothing on the Apache edition)."""
    with connect_sync(conninfo, autocommit=True) as conn:
        try:
            return read_db_jobs_sync(conn)
        except psycopg.Error as exc:
            reason = redact_text(str(exc)).strip().splitlines()[0]
            raise DatabaseError(f"cannot read the database's jobs: {reason}") from None


def jobs_json(snapshot: DbJobsSnapshot) -> dict[str, Any]:
    """The jobs and lags as JSON-ready dicts (`--json`)."""
    jobs = [
        {
            "job_id": j.job_id,
            "proc": j.proc,
            "kind": j.kind,
            "target": j.target,
            "last_run_status": j.last_run_status,
            "failures_in_a_row": j.failures_in_a_row,
            "total_failures": j.total_failures,
            "total_successes": j.total_successes,
            "last_run_started_at": j.last_run_started_at,
            "last_success": j.last_success,
            "next_start": j.next_start,
            "scheduled": j.scheduled,
            "last_error": j.last_error,
        }
        for j in snapshot.jobs
    ]
    lags = [
        {"aggregate": c.aggregate, "materialized_until": c.materialized_until, "lag_seconds": c.lag_seconds}
        for c in snapshot.lags
    ]
    return {"read_at": snapshot.read_at, "jobs": jobs, "candle_lags": lags}


TARGET_WIDTH = 24  # characters of a job's target shown (the table fits 80 columns)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def render_jobs(snapshot: DbJobsSnapshot) -> Table:
    """The jobs as a rich table; a refresh job's row shows its aggregate's lag (the end of its
    newest materialized candle to now; "none": nothing materialized). Fits 80 columns; the
    last errors of failing jobs, one line per distinct error, in the caption."""
    lags = {c.aggregate: c.lag_seconds for c in snapshot.lags}
    table = Table(title="Database jobs")
    table.add_column("job", no_wrap=True, justify="right")
    table.add_column("kind", no_wrap=True)
    table.add_column("target", no_wrap=True, max_width=TARGET_WIDTH, overflow="ellipsis")
    table.add_column("last run", no_wrap=True)
    table.add_column("in row", no_wrap=True, justify="right")
    table.add_column("lag", no_wrap=True, justify="right")
    for job in snapshot.jobs:
        status = job.last_run_status or "never"
        if job.failing:
            status = f"[red]{escape(status)}[/]"
        elif not job.scheduled:
            status += " (paused)"
        table.add_row(
            str(job.job_id),
            job.kind,
            escape(job.target or job.proc),
            status,
            str(job.failures_in_a_row),
            _duration(lags[job.target]) if job.kind == "refresh" and job.target in lags else "",
        )
    errors: dict[str, list[str]] = {}
    for job in snapshot.jobs:
        if job.failing:
            errors.setdefault(job.last_error or "no error recorded", []).append(str(job.job_id))
    notes = [f"[red]failing[/] {', '.join(ids)}: {escape(error)}" for error, ids in errors.items()]
    if notes:
        table.caption = "\n".join(notes)
        table.caption_justify = "left"
    return table
