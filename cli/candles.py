"""tcpd candles: read the candle views, force a refresh after a backfill, show the policies.

Candles are built by TimescaleDB (sql/0100_candles.sql); this module only reads them and
asks TimescaleDB to refresh. See docs/candles.md.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import psycopg
import typer
from psycopg import sql
from rich.console import Console
from rich.table import Table

from cli.candle_table import candle_table
from cli.common import DatabaseConfigOption, DatabaseUrlOption, database_conninfo, reporting_errors
from ingest.db.connection import connect_sync
from ingest.db.edition import read_server_info
from ingest.errors import DatabaseError, TcpdError
from ingest.redact import redact_text
from ingest.storage.candle_refresh import refresh_candles

logger = logging.getLogger(__name__)

app = typer.Typer(
    help="OHLCV candles: show them, refresh them, inspect their policies.", no_args_is_help=True
)
policy_app = typer.Typer(help="Refresh, compression and retention policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


class Timeframe(StrEnum):
    """The candle timeframes, finest first; each is built from the one before it."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"

    @property
    def width(self) -> timedelta:
        return _WIDTHS[self.value]

    @property
    def view(self) -> str:
        return f"candles_{self.value}"

    @property
    def aggregate(self) -> str:
        return f"candles_{self.value}_agg"


_WIDTHS = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}
COLUMNS = (
    "bucket_start",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trade_count",
    "vwap",
    "base_volume",
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _console() -> Console:
    # Built per command, not at import, so the terminal width is read when the command runs.
    return Console(highlight=False)


def _connect(config: Path | None, database_url: str | None) -> psycopg.Connection[Any]:
    return connect_sync(database_conninfo(config, database_url), autocommit=True)


def _db_error(what: str, exc: psycopg.Error) -> DatabaseError:
    return DatabaseError(f"{what}: {redact_text(str(exc)).strip()}")


WIDEN = 8  # each retry looks 8 times further back
MAX_WIDENINGS = 5


def fetch_candles(
    conn: psycopg.Connection[Any], exchange: str, symbol: str, timeframe: Timeframe, limit: int
) -> list[dict[str, Any]]:
    """The latest `limit` closed candles of one pair, oldest first.

    "ORDER BY ts DESC LIMIT n" alone reads the pair's whole history on both editions (the
    views are unions or aggregates, so no index can stop the scan early). A lower bound on
    bucket_start, passed as a value, lets the planner exclude chunks while planning, so the
    query looks back `limit` intervals first, then further when intervals had no trades.
    """
    view = sql.Identifier(timeframe.view)
    cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    bounded = sql.SQL(
        "SELECT {cols} FROM {view} WHERE exchange = %s AND symbol = %s AND bucket_start >= %s"
        " ORDER BY bucket_start DESC LIMIT %s"
    ).format(cols=cols, view=view)
    unbounded = sql.SQL(
        "SELECT {cols} FROM {view} WHERE exchange = %s AND symbol = %s ORDER BY bucket_start DESC LIMIT %s"
    ).format(cols=cols, view=view)
    try:
        now = _db_now(conn)
        reach = timeframe.width * (limit + 1)
        rows = []
        for _ in range(MAX_WIDENINGS):
            if reach >= now - EPOCH:
                break
            rows = conn.execute(bounded, (exchange, symbol, now - reach, limit)).fetchall()
            if len(rows) >= limit:
                break
            reach *= WIDEN
        if len(rows) < limit:
            rows = conn.execute(unbounded, (exchange, symbol, limit)).fetchall()
    except psycopg.Error as exc:
        raise _db_error(f"cannot read {timeframe.view} (run `tcpd db migrate`?)", exc) from None
    return [dict(zip(COLUMNS, row, strict=True)) for row in reversed(rows)]


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact: never through float
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


@app.command("show")
def show(
    exchange: Annotated[str, typer.Option("--exchange", help="Exchange name, e.g. okx.")],
    symbol: Annotated[str, typer.Option("--symbol", help="Trading pair, e.g. BTC-USDT.")],
    timeframe: Annotated[Timeframe, typer.Option("--timeframe", help="Candle width.")] = Timeframe.M1,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="Latest N candles.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    chart: Annotated[
        bool, typer.Option("--chart", help="Draw a candlestick chart (with volume) instead of a table.")
    ] = False,
    config: DatabaseConfigOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Print the latest closed candles of one pair (stamped with the end of their interval)."""
    if as_json and chart:
        raise typer.BadParameter("--chart and --json do not go together: pick one", param_hint="--chart")
    with reporting_errors(), _connect(config, database_url) as conn:
        candles = fetch_candles(conn, exchange, symbol, timeframe, limit)
    out = _console()
    if as_json:
        data = [{k: _json_value(v) for k, v in c.items()} for c in candles]
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    if not candles:
        out.print(f"No closed {timeframe.value} candles for {exchange} {symbol}.")
        return
    title = f"{exchange} {symbol} {timeframe.value} (ts = interval end, UTC)"
    if chart:
        _print_chart(candles, title, timeframe, out)
        return
    table, left_out = candle_table(candles, title, out)
    out.print(table)
    if left_out:
        out.print(f"Not shown at {out.width} columns: {', '.join(left_out)} (a wider terminal, or --json).")


def _print_chart(candles: list[dict[str, Any]], title: str, timeframe: Timeframe, out: Console) -> None:
    # imported here: plotext loads only for --chart
    from cli.candle_chart import candle_chart

    colour = out.is_terminal and not out.no_color
    size = (out.width, out.height - 1)  # one line left for the prompt
    typer.echo(candle_chart(candles, title, timeframe.width, size, colour))


def parse_time(text: str, option: str) -> datetime:
    """ISO 8601; a time without an offset is UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise TcpdError(f"{option} {text!r} is not an ISO 8601 time: use e.g. 2025-03-01T00:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def floor_to(ts: datetime, width: timedelta) -> datetime:
    """Start of the UTC-aligned interval of `width` holding `ts` (widths divide a day)."""
    return ts - (ts - EPOCH) % width


def refresh_windows(
    start: datetime, end: datetime, now: datetime, timeframes: list[Timeframe]
) -> list[tuple[Timeframe, datetime, datetime]]:
    """Per timeframe, [start, end) widened to whole intervals and cut at the interval in progress.

    Cutting matters: a materialized interval that was still open would stay stale after it
    closes until the next refresh; the views hide open intervals anyway.
    """
    windows = []
    for tf in timeframes:
        lo = floor_to(start, tf.width)
        hi = floor_to(end, tf.width)
        if hi < end:
            hi += tf.width
        hi = min(hi, floor_to(now, tf.width))
        if hi > lo:
            windows.append((tf, lo, hi))
    return windows


def _db_now(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


def _retentions(conn: psycopg.Connection[Any]) -> dict[str, timedelta]:
    """drop_after per relation (raw_trades, candles_<tf>_agg) that has a retention policy."""
    rows = conn.execute(
        "SELECT relation, drop_after FROM tcpd_candle_policies WHERE kind = 'retention'"
    ).fetchall()
    return {str(relation): keep for relation, keep in rows if keep is not None}


def source_of(tf: Timeframe) -> tuple[str, str]:
    """(relation, what it holds) a refresh of `tf` reads: raw_trades for 1m, else the finer candles."""
    order = list(Timeframe)
    index = order.index(tf)
    if index == 0:
        return "raw_trades", "raw trades"
    finer = order[index - 1]
    return finer.aggregate, f"{finer.view} candles"


def check_retention(
    windows: list[tuple[Timeframe, datetime, datetime]], retentions: dict[str, timedelta], now: datetime
) -> None:
    """Refuse a window whose source rows a retention policy has dropped (or is about to).

    A refresh where the source is gone finds nothing there and deletes the candles it built
    before; one day of margin covers the retention job running while we refresh.
    """
    for tf, lo, _hi in windows:
        relation, what = source_of(tf)
        keep = retentions.get(relation)
        if keep is None:
            continue
        oldest = now - keep + timedelta(days=1)
        if lo < oldest:
            lift = "raw-retention" if relation == "raw_trades" else f"candle-retention {source_tf(tf)}"
            raise TcpdError(
                f"--from {lo.isoformat()} reaches {what} the retention policy drops (older than {keep}): "
                f"refreshing {tf.view} there would delete those candles; start at {oldest.isoformat()} "
                f"or later, or keep that data first (tcpd candles policy {lift} never)"
            )


def source_tf(tf: Timeframe) -> str:
    """The timeframe `tf` is built from (tf must not be the finest)."""
    order = list(Timeframe)
    return order[order.index(tf) - 1].value


@app.command("refresh")
def refresh(
    from_: Annotated[str, typer.Option("--from", help="Start (ISO 8601; UTC when no offset).")],
    to: Annotated[str, typer.Option("--to", help="End, exclusive (ISO 8601); capped at now.")],
    timeframe: Annotated[
        Timeframe | None,
        typer.Option("--timeframe", help="Refresh this one and every coarser one (default: all)."),
    ] = None,
    config: DatabaseConfigOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Recompute candles over a window now, e.g. after a backfill older than the policy windows."""
    with reporting_errors():
        start, end = parse_time(from_, "--from"), parse_time(to, "--to")
        if start >= end:
            raise TcpdError(f"--from {start.isoformat()} must be before --to {end.isoformat()}")
        order = list(Timeframe)
        chosen = order[order.index(timeframe) :] if timeframe else order
        with _connect(config, database_url) as conn:
            if not read_server_info(conn).has_tsl:  # materialized candle tables (sql/0117)
                written = refresh_candles(conn, start, end)
                total = sum(written.values()) if isinstance(written, dict) else 0
                _console().print(
                    "Apache edition: materialized candles rebuilt over"
                    f" [{start.isoformat()}, {end.isoformat()}), {total} candles written"
                )
                return
            now = _db_now(conn)
            windows = refresh_windows(start, end, now, chosen)
            # Source rows older than a retention are gone; refreshing there deletes the candles.
            check_retention(windows, _retentions(conn), now)
            for tf, lo, hi in windows:
                try:
                    conn.execute(
                        "CALL refresh_continuous_aggregate(%s::REGCLASS, %s::TIMESTAMPTZ, %s::TIMESTAMPTZ)",
                        (tf.aggregate, lo, hi),
                    )
                except psycopg.Error as exc:
                    raise _db_error(f"refreshing {tf.aggregate} failed", exc) from None
                logger.info("refreshed %s over [%s, %s)", tf.aggregate, lo, hi)
                _console().print(f"refreshed {tf.view}: [{lo.isoformat()}, {hi.isoformat()})")


@policy_app.command("show")
def policy_show(config: DatabaseConfigOption = None, database_url: DatabaseUrlOption = None) -> None:
    """List refresh, compression and retention policies (change them with the tcpd_set_* SQL
    functions described in docs/candles.md)."""
    with reporting_errors(), _connect(config, database_url) as conn:
        try:
            rows = conn.execute(
                "SELECT kind, relation, timeframe, start_offset, end_offset, schedule_interval,"
                " compress_after, drop_after FROM tcpd_candle_policies ORDER BY kind, job_id"
            ).fetchall()
        except psycopg.Error as exc:
            raise _db_error("cannot read tcpd_candle_policies (run `tcpd db migrate`?)", exc) from None
    out = _console()
    if not rows:
        out.print("No policies (the Apache edition has none: candles are computed at query time).")
        return
    table = Table(title="candle and raw-data policies")
    for name in (
        "kind",
        "relation",
        "timeframe",
        "start_offset",
        "end_offset",
        "every",
        "compress_after",
        "drop_after",
    ):
        table.add_column(name)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)


NEVER = "never"
IntervalArg = Annotated[
    str, typer.Argument(help="A PostgreSQL interval such as '2 years' or '36 hours', or 'never'.")
]


def _call_setter(config: Path | None, database_url: str | None, function: str, args: tuple[Any, ...]) -> None:
    """Call one tcpd_set_* function; it validates and raises with a hint when refused."""
    placeholders = sql.SQL(", ").join(sql.Placeholder() * len(args))
    query = sql.SQL("SELECT {}({})").format(sql.Identifier(function), placeholders)
    with reporting_errors(), _connect(config, database_url) as conn:
        if not read_server_info(conn).has_tsl:
            raise TcpdError("the Apache edition has no policies (TimescaleDB's TSL edition has them)")
        try:
            conn.execute(query, args)
        except psycopg.Error as exc:
            detail = exc.diag.message_primary or str(exc)
            if exc.diag.message_hint:
                detail += f" (hint: {exc.diag.message_hint})"
            raise DatabaseError(f"{function} refused: {redact_text(detail).strip()}") from None
    _console().print(f"{function}: done. `tcpd candles policy show` lists the policies.")


def _interval(text: str) -> str | None:
    return None if text.strip().lower() == NEVER else text


@policy_app.command("raw-retention")
def policy_raw_retention(
    keep: IntervalArg, config: DatabaseConfigOption = None, database_url: DatabaseUrlOption = None
) -> None:
    """Keep raw_trades and market_data for KEEP (default 2 years), or 'never' drop them."""
    _call_setter(config, database_url, "tcpd_set_raw_retention", (_interval(keep),))


@policy_app.command("compress-after")
def policy_compress_after(
    after: IntervalArg, config: DatabaseConfigOption = None, database_url: DatabaseUrlOption = None
) -> None:
    """Compress raw_trades and market_data chunks older than AFTER (default 7 days), or 'never'."""
    _call_setter(config, database_url, "tcpd_set_compress_after", (_interval(after),))


@policy_app.command("candle-retention")
def policy_candle_retention(
    timeframe: Annotated[Timeframe, typer.Argument(help="Candle width.")],
    keep: IntervalArg,
    config: DatabaseConfigOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Keep candles of TIMEFRAME for KEEP, or 'never' drop them (the default)."""
    _call_setter(config, database_url, "tcpd_set_candle_retention", (timeframe.value, _interval(keep)))


@policy_app.command("refresh")
def policy_refresh(
    timeframe: Annotated[Timeframe, typer.Argument(help="Candle width.")],
    start_offset: Annotated[str, typer.Option("--start-offset", help="How far back to look.")],
    end_offset: Annotated[str, typer.Option("--end-offset", help="Wait after an interval closes.")],
    schedule: Annotated[str, typer.Option("--schedule", help="How often the policy runs.")],
    config: DatabaseConfigOption = None,
    database_url: DatabaseUrlOption = None,
) -> None:
    """Change the refresh policy of one timeframe (defaults in docs/candles.md)."""
    _call_setter(
        config,
        database_url,
        "tcpd_set_candle_refresh",
        (timeframe.value, start_offset, end_offset, schedule),
    )
