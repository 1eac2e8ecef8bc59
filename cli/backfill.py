"""tcpd backfill: load an exchange's REST trade history into raw_trades (ingest.history.backfill).

Exit codes: 0 the range is complete, 1 partial (the range REST could not give is recorded in
ingest_gaps; also a run that stopped early: the same command continues it), 2 bad arguments.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from cli.common import (
    ERROR_EXIT,
    DatabaseConfigFileOption,
    DatabaseUrlOption,
    load_database,
    reporting_errors,
)
from ingest.config import DatabaseFile, ExchangeFile, load_exchange_file
from ingest.config.urls import loopback_http_url
from ingest.db.connection import connect_sync
from ingest.errors import ConfigError
from ingest.exchanges.registry import get_trade_history, get_venue
from ingest.history.backfill import Backfill, Outcome, Progress
from ingest.history.model import TradeHistorySource
from ingest.history.pacing import RequestPacer
from ingest.history.walk import HistoryReader
from ingest.instruments.http import RestClient, RetryPolicy
from ingest.storage.candle_refresh import refresh_candles
from ingest.storage.writer import CopyWriter

USER_AGENT = "tcpd-ingest (backfill)"


def parse_time(option: str, text: str) -> datetime:
    """An ISO 8601 time with its zone (2026-11-01T00:00Z); ConfigError naming `option`."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time; write e.g. 2026-11-01T00:00Z"
        ) from None
    if when.tzinfo is None:
        raise ConfigError(f"{option} {text!r} has no time zone; add Z (UTC) or an offset such as +01:00")
    return when.astimezone(UTC)


def backfill(
    config: Annotated[
        Path, typer.Option("--config", help="Exchange config file, e.g. config/okx.json.", dir_okay=False)
    ],
    symbol: Annotated[str, typer.Option("--symbol", help="A trading pair of that file, e.g. BTC-USDT.")],
    since: Annotated[str, typer.Option("--since", help="Oldest trade time to load, e.g. 2026-11-01T00:00Z.")],
    until: Annotated[
        str | None, typer.Option("--until", help="Load trades before this time (default: now).")
    ] = None,
    database_config: DatabaseConfigFileOption = None,
    database_url: DatabaseUrlOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="No progress bar; print the result as JSON.")
    ] = False,
) -> None:
    """Load the exchange's trade history over [--since, --until) into the same tables; resumable
    (run it again to continue), idempotent; candles over the range are refreshed afterwards."""
    with reporting_errors():
        start = parse_time("--since", since)
        end = parse_time("--until", until) if until is not None else datetime.now(UTC)
        end = min(end, datetime.now(UTC))
        if start >= end:
            raise ConfigError(f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})")
        exchange = load_exchange_file(config)
        # The venue's spelling of the pair (Binance: BTC-USDT is BTCUSDT), as rows hold it.
        to_stored = get_venue(exchange.exchange).stored_symbol
        if to_stored(symbol) not in {to_stored(pair.symbol) for pair in exchange.trading_pairs}:
            listed = ", ".join(pair.symbol for pair in exchange.trading_pairs)
            raise ConfigError(
                f"--symbol {symbol!r} is not in trading_pairs of {config} ({listed}); add it there"
            )
        symbol = to_stored(symbol)
        source = get_trade_history(exchange.exchange)
        if source is None:
            raise ConfigError(f"exchange {exchange.exchange!r} has no REST trade history to backfill from")
        database = load_database(database_config, database_url)
        outcome = asyncio.run(_load(exchange, database, source, symbol, start, end, as_json))
        refreshed = _refresh(database.database.conninfo(), start, end)
    _report(outcome, start, end, refreshed, as_json)
    raise typer.Exit(0 if outcome.complete else ERROR_EXIT)


async def _load(
    exchange: ExchangeFile[Any],
    database: DatabaseFile,
    source: TradeHistorySource,
    symbol: str,
    start: datetime,
    end: datetime,
    quiet: bool,
) -> Outcome:
    base_url = (
        exchange.gap_fill.rest_url
        or loopback_http_url(exchange.connection.main_ws_url())
        or source.default_base_url
    )
    conninfo = database.database.conninfo()
    writer = CopyWriter(conninfo, database.tables, database.writer, pool=database.database)
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    await writer.start()
    try:
        async with RestClient(base_url, timeout=exchange.gap_fill.timeout, headers=headers) as client:
            reader = HistoryReader(
                client,
                source,
                RequestPacer(source.rate_limits),
                RetryPolicy(attempts=8),
                store_raw_data=exchange.data_collection.store_raw_data,
            )
            job = Backfill(
                reader,
                source,
                writer,
                conninfo,
                exchange=exchange.exchange,
                symbol=symbol,
                since=start,
                until=end,
            )
            if quiet:
                return await job.run()
            return await _with_progress(job, start, end)
    finally:
        await writer.stop(60)


async def _with_progress(job: Backfill, start: datetime, end: datetime) -> Outcome:
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    total = (end - start).total_seconds()
    columns = (
        TextColumn(f"{job.exchange} {job.symbol}"),
        BarColumn(),
        TextColumn(
            "{task.fields[trades]:,} trades, {task.fields[rate]:,.0f}/s, back to {task.fields[reached]}"
        ),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Bar(*columns, transient=False) as bar:
        task = bar.add_task("backfill", total=total, trades=0, rate=0.0, reached=_when(end))

        def show(progress: Progress) -> None:
            reached = (
                end if progress.oldest_ms is None else datetime.fromtimestamp(progress.oldest_ms / 1000, UTC)
            )
            reached = max(reached, start)
            bar.update(
                task,
                completed=(end - reached).total_seconds(),
                trades=progress.trades,
                rate=progress.rate(),
                reached=_when(reached),
            )

        outcome = await job.run(show)
        if outcome.complete:
            bar.update(task, completed=total)
        return outcome


def _when(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%SZ")


def _refresh(conninfo: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Refresh the candles over the range; what was refreshed, per timeframe or window."""
    with connect_sync(conninfo, autocommit=True) as conn:
        done = refresh_candles(conn, start, end)
    if isinstance(done, dict):
        return [{"timeframe": tf, "candles_written": n} for tf, n in done.items()]
    return [{"aggregate": w.aggregate, "start": w.start, "end": w.end} for w in done]


def _report(
    outcome: Outcome, start: datetime, end: datetime, refreshed: list[dict[str, Any]], as_json: bool
) -> None:
    gap = outcome.gap
    result = {
        "exchange": gap.exchange,
        "symbol": gap.symbol,
        "since": start,
        "until": end,
        "complete": outcome.complete,
        "trades": outcome.progress.trades,
        "requests": outcome.progress.requests,
        "resumed_from": outcome.progress.resumed_from,
        "open_gap": None
        if outcome.complete
        else {"gap_id": gap.gap_id, "from_ts": gap.from_ts, "to_ts": gap.to_ts, "reason": gap.reason},
        "candles_refreshed": refreshed,
    }
    if as_json:
        typer.echo(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z).decode())
        return
    if outcome.complete:
        typer.echo(
            f"complete: {outcome.progress.trades:,} trades loaded ({outcome.progress.requests} requests)"
        )
    else:
        typer.echo(
            f"partial: {outcome.progress.trades:,} trades loaded; {_when(gap.from_ts)} to {_when(gap.to_ts)} "
            f"not available ({gap.reason}); see `tcpd gaps`",
            err=True,
        )
