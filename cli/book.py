"""tcpd book: an incremental order book rebuilt at a chosen time (docs/books.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer

from cli.common import DatabaseConfigOption, DatabaseUrlOption, database_conninfo, reporting_errors
from ingest.books.rebuild import RebuiltBook, rebuild_book
from ingest.db.connection import connect_sync
from ingest.errors import TcpdError

app = typer.Typer(help="Full-depth order books: rebuild one at a chosen time.", no_args_is_help=True)

_COLUMN = 18  # price or size column width: 80 columns hold 4 of them with the separators


def parse_at(text: str) -> datetime:
    """ISO 8601; a time without an offset is UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise TcpdError(f"--at {text!r} is not an ISO 8601 time: use e.g. 2026-12-01T10:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def book_json(rebuilt: RebuiltBook, depth: int) -> dict[str, object]:
    bids, asks = rebuilt.book.top(depth)
    return {
        "exchange": rebuilt.exchange,
        "symbol": rebuilt.symbol,
        "at": _iso(rebuilt.at),
        "snapshot_time": _iso(rebuilt.snapshot_time),
        "updates_applied": rebuilt.updates,
        "seq_id": rebuilt.seq_id,
        "bids": [list(level) for level in bids],
        "asks": [list(level) for level in asks],
    }


def book_lines(rebuilt: RebuiltBook, depth: int) -> list[str]:
    """Bids and asks side by side, best first, exact decimals, within 80 columns."""
    bids, asks = rebuilt.book.top(depth)
    w = _COLUMN
    lines = [
        f"{rebuilt.exchange} {rebuilt.symbol} at {_iso(rebuilt.at)} (seqId {rebuilt.seq_id})",
        f"from the snapshot at {_iso(rebuilt.snapshot_time)} + {rebuilt.updates} update(s)",
        f"{'bid size':>{w}} {'bid price':>{w}} | {'ask price':<{w}} {'ask size'}",
        "-" * (w * 4 + 5),
    ]
    for i in range(max(len(bids), len(asks))):
        bid = f"{_cell(bids, i, 1):>{w}} {_cell(bids, i, 0):>{w}}"
        ask = f"{_cell(asks, i, 0):<{w}} {_cell(asks, i, 1):<{w}}"
        lines.append(f"{bid} | {ask}".rstrip())
    if not bids and not asks:
        lines.append("(the book is empty)")
    return lines


def _cell(levels: list[tuple[str, str]], i: int, j: int) -> str:
    if i >= len(levels):
        return ""
    text = levels[i][j]
    return text if len(text) <= _COLUMN else text[: _COLUMN - 1] + "…"


@app.command("show")
def show(
    exchange: Annotated[str, typer.Option("--exchange", help="Exchange name, e.g. okx.")],
    symbol: Annotated[str, typer.Option("--symbol", help="Trading pair, e.g. BTC-USDT.")],
    at: Annotated[str, typer.Option("--at", help="The time, ISO 8601 (UTC without an offset).")],
    depth: Annotated[int, typer.Option("--depth", min=1, max=10_000, help="Levels per side.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    config: DatabaseConfigOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Print the order book of one pair as it was at --at: the last full snapshot stored at
    or before it, plus the updates after it."""
    with reporting_errors():
        when = parse_at(at)
        with connect_sync(database_conninfo(config, database_url), autocommit=True) as conn:
            rebuilt = rebuild_book(conn, exchange, symbol, when)
    if as_json:
        typer.echo(orjson.dumps(book_json(rebuilt, depth), option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo("\n".join(book_lines(rebuilt, depth)))
