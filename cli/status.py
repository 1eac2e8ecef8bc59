"""tcpd status: show the collector_status table (what each running collector last reported)."""

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
    """Print every collector's last reported status and health."""
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
    if as_json:
        typer.echo(orjson.dumps(rows, default=str, option=orjson.OPT_INDENT_2).decode())
        return
    out.print(render(rows, open_gaps))


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
