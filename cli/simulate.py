"""tcpd simulate: run the local OKX v5 simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from cli.common import reporting_errors
from ingest.errors import ConfigError
from ingest.simulator import OkxSimulator, SimulatorSettings

logger = logging.getLogger(__name__)


def simulate(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8765,
    symbols: Annotated[
        str, typer.Option(help="Comma-separated OKX instIds to generate trades for.")
    ] = "BTC-USDT",
    rate: Annotated[float, typer.Option(help="Trades per second over all symbols; 0 = unlimited.")] = 1000.0,
    trades_per_message: Annotated[int, typer.Option(help="Trades in each message.")] = 1,
    replay: Annotated[
        Path | None, typer.Option(help="Recorded OKX frames to serve (.json frame or .jsonl).")
    ] = None,
    total: Annotated[
        int | None, typer.Option(help="Stop generating after this many trades (all symbols).")
    ] = None,
    idle_timeout: Annotated[
        float, typer.Option(help="Close connections silent for this many seconds (code 4004).")
    ] = 30.0,
    resend_on_resubscribe: Annotated[
        int, typer.Option(help="Re-send the last K trades after a resubscribe (dedup tests).")
    ] = 0,
    books_rate: Annotated[
        float, typer.Option(help="books5 snapshots per second per subscribed instId; 0 = none.")
    ] = 10.0,
    tickers_rate: Annotated[
        float, typer.Option(help="tickers pushes per second per subscribed instId; 0 = none.")
    ] = 1.0,
    trades_channel: Annotated[
        str, typer.Option(help="Channel of the generated trades: trades-all (per fill) or trades.")
    ] = "trades-all",
    live: Annotated[
        bool,
        typer.Option(
            help="Trade on the clock whether or not anyone listens, as an exchange does (--no-live: "
            "the tape waits for subscribers); needs --rate."
        ),
    ] = True,
    history_trades: Annotated[
        int, typer.Option(help="Trades per instId the REST history keeps (the horizon).")
    ] = 100_000,
) -> None:
    """Serve OKX v5 public/business WebSockets on 127.0.0.1 with generated or replayed data
    (trades, plus books5 and tickers around the last trade price for subscribers)."""
    with reporting_errors():
        names = tuple(s.strip() for s in symbols.split(",") if s.strip())
        if not names:
            raise ConfigError("--symbols is empty; give instIds such as BTC-USDT,ETH-USDT")
        if rate < 0 or trades_per_message < 1 or (total is not None and total < 0):
            raise ConfigError("--rate must be >= 0, --trades-per-message >= 1, --total >= 0")
        if books_rate < 0 or tickers_rate < 0:
            raise ConfigError("--books-rate and --tickers-rate must be >= 0 (0 sends none)")
        if trades_channel not in ("trades", "trades-all"):
            raise ConfigError(f"--trades-channel is {trades_channel!r}; use trades-all or trades")
        if live and (not rate or replay is not None):
            raise ConfigError("--live needs a --rate above 0 and generated trades; add --no-live")
        if history_trades < 1:
            raise ConfigError("--history-trades must be >= 1")
        settings = SimulatorSettings(
            port=port,
            symbols=names,
            rate=rate or None,
            trades_per_message=trades_per_message,
            total=total,
            replay=replay,
            idle_timeout=idle_timeout,
            resend_on_resubscribe=resend_on_resubscribe,
            books_per_second=books_rate,
            tickers_per_second=tickers_rate,
            trades_channel=trades_channel,
            live=live,
            history_trades=history_trades,
            record=False,  # a long run would keep every trade in memory
        )
        asyncio.run(serve(settings))


async def serve(settings: SimulatorSettings) -> None:
    """Run a simulator with `settings` until SIGINT/SIGTERM; print its URLs, then its counters."""
    simulator = OkxSimulator(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await simulator.start()
    try:
        typer.echo(f"public_ws_url: {simulator.url}")
        typer.echo(f"business_ws_url: {simulator.business_url}")
        typer.echo("put these in the exchange config `connection` section; Ctrl-C stops", err=True)
        await stop.wait()
    finally:
        await simulator.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    counters = ", ".join(f"{k}={v}" for k, v in sorted(simulator.counters.items()))
    typer.echo(f"stopped: {counters or 'nothing sent'}", err=True)
