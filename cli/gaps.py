"""tcpd gaps: the ranges of exchange history that are not stored (the ingest_gaps table)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import psycopg
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.common import DatabaseConfigFileOption, DatabaseUrlOption, database_conninfo, reporting_errors
from ingest.db.connection import connect_sync
from ingest.errors import DatabaseError
from ingest.redact import redact_text
from ingest.storage.gaps import list_gaps

out = Console(highlight=False)


def gaps(
    database_config: DatabaseConfigFileOption = None,
    database_url: DatabaseUrlOption = None,
    exchange: Annotated[str | None, typer.Option("--exchange", help="Only this exchange, e.g. okx.")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only this symbol, e.g. BTC-USDT.")] = None,
    include_filled: Annotated[
        bool, typer.Option("--all", help="Also the gaps filled since they were recorded.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """List the gaps in the stored history: open ones (nothing stored yet), or --all."""
    with reporting_errors():
        conninfo = database_conninfo(database_config, database_url)
        rows = read_gaps(conninfo, include_filled=include_filled, exchange=exchange, symbol=symbol)
    if as_json:
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z).decode())
        return
    out.print(render(rows, include_filled=include_filled))


def read_gaps(conninfo: str, **filters: Any) -> list[dict[str, Any]]:
    """The rows of ingest_gaps that `filters` (ingest.storage.gaps.list_gaps) select."""
    with connect_sync(conninfo) as conn:
        try:
            return list_gaps(conn, **filters)
        except psycopg.Error as exc:
            reason = redact_text(str(exc)).strip().splitlines()[0]
            raise DatabaseError(
                f"cannot read table 'ingest_gaps': {reason} (is the schema migrated? `tcpd db migrate`)"
            ) from None


def _when(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _span(row: dict[str, Any]) -> str:
    seconds = (row["to_ts"] - row["from_ts"]).total_seconds()
    if seconds < 120:
        return f"{seconds:.3f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _state(row: dict[str, Any]) -> str:
    if row["filled_at"] is not None:
        return f"[green]filled[/] {_when(row['filled_at'])} ({row['rows_filled']} rows)"
    tried = f", {row['attempts']} attempt(s)" if row["attempts"] else ""
    error = f": {escape(row['last_error'])}" if row["last_error"] else ""
    return f"[red]open[/]{tried}{error}"


def render(rows: list[dict[str, Any]], *, include_filled: bool) -> Table:
    """The gaps as a rich table, times in UTC; two lines a gap, readable in 80 columns."""
    table = Table(title="Gaps in the stored history" + (" (filled ones too)" if include_filled else ""))
    table.add_column("gap", no_wrap=True)
    table.add_column("from / to (UTC)", no_wrap=True)
    table.add_column("span", no_wrap=True, justify="right")
    table.add_column("lost", no_wrap=True, justify="right")
    table.add_column("reason / state")
    for row in rows:
        table.add_row(
            f"{escape(row['exchange'])} {escape(row['symbol'])}\n{escape(row['data_type'])}",
            f"{_when(row['from_ts'])}\n{_when(row['to_ts'])}",
            _span(row),
            "" if row["rows_lost"] is None else str(row["rows_lost"]),
            f"{escape(row['reason'])}\n{_state(row)}",
        )
    if not rows:
        table.caption = "no gap recorded" if include_filled else "no open gap"
    return table
