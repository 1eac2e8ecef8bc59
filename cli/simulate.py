"""tcpd simulate: run a local exchange simulator (OKX v5 or Binance spot) until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Protocol

import typer

from cli.common import reporting_errors
from ingest.errors import ConfigError
from ingest.simulator import OkxSimulator, SimulatorSettings
from ingest.simulator.binance import BinanceSimulator, BinanceSimulatorSettings
from ingest.simulator.skew import parse_skew

logger = logging.getLogger(__name__)


EXCHANGES = ("okx", "binance")
DEFAULT_SYMBOLS = {"okx": "BTC-USDT", "binance": "BTCUSDT"}


def simulate(
    exchange: Annotated[str, typer.Option(help="Venue to simulate: okx or binance.")] = "okx",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8765,
    symbols: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated symbols to generate trades for: OKX instIds (default BTC-USDT) "
            "or Binance symbols (default BTCUSDT)."
        ),
    ] = None,
    rate: Annotated[float, typer.Option(help="Trades per second over all symbols; 0 = unlimited.")] = 1000.0,
    skew: Annotated[
        str | None,
        typer.Option(
            help="Unequal trade rates, zipf:S: the k-th symbol of --symbols trades at a rate "
            "proportional to 1/k^S (zipf:1.2: a few busy, most quiet); default: even."
        ),
    ] = None,
    trades_per_message: Annotated[int | None, typer.Option(help="Trades in each message (OKX; 1).")] = None,
    replay: Annotated[
        Path | None, typer.Option(help="Recorded OKX frames to serve (.json frame or .jsonl).")
    ] = None,
    total: Annotated[
        int | None, typer.Option(help="Stop generating after this many trades (all symbols).")
    ] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(help="Close connections silent for this many seconds (OKX; 30, code 4004)."),
    ] = None,
    resend_on_resubscribe: Annotated[
        int | None, typer.Option(help="Re-send the last K trades after a resubscribe (OKX; 0; dedup tests).")
    ] = None,
    books_rate: Annotated[
        float | None,
        typer.Option(help="books5 snapshots per second per subscribed instId (OKX; 10); 0 = none."),
    ] = None,
    tickers_rate: Annotated[
        float, typer.Option(help="tickers (OKX) / @ticker (Binance) pushes per second per symbol; 0 = none.")
    ] = 1.0,
    trades_channel: Annotated[
        str | None,
        typer.Option(help="Channel of the generated trades (OKX): trades-all (per fill, default) or trades."),
    ] = None,
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
    """Serve OKX v5 public/business WebSockets (--exchange okx) or Binance spot streams and REST
    (--exchange binance) on 127.0.0.1 with generated or replayed data (trades, plus books and
    tickers around the last trade price for subscribers)."""
    with reporting_errors():
        if exchange not in EXCHANGES:
            raise ConfigError(f"--exchange is {exchange!r}; use okx or binance")
        names = tuple(s.strip() for s in (symbols or DEFAULT_SYMBOLS[exchange]).split(",") if s.strip())
        if not names:
            raise ConfigError("--symbols is empty; give instIds such as BTC-USDT,ETH-USDT")
        okx_only = {
            "--trades-per-message": trades_per_message,
            "--replay": replay,
            "--idle-timeout": idle_timeout,
            "--resend-on-resubscribe": resend_on_resubscribe,
            "--books-rate": books_rate,
            "--trades-channel": trades_channel,
        }
        given = [name for name, value in okx_only.items() if value is not None]
        if exchange == "binance" and given:
            raise ConfigError(
                f"{given[0]} is an OKX option; the Binance simulator does not take it "
                "(leave it out, or use --exchange okx)"
            )
        # The rules both venues' options share.
        if rate < 0 or (total is not None and total < 0):
            raise ConfigError("--rate and --total must be >= 0")
        if (books_rate or 0) < 0 or tickers_rate < 0:
            raise ConfigError("--books-rate and --tickers-rate must be >= 0 (0 sends none)")
        if live and not rate:
            raise ConfigError("--live needs a --rate above 0; add --no-live")
        if history_trades < 1:
            raise ConfigError("--history-trades must be >= 1")
        if skew is not None and replay is not None:
            raise ConfigError("--skew shapes generated trades, not --replay; leave one out")
        weights = None if skew is None else parse_skew(skew, len(names))
        if exchange == "binance":
            binance_settings = BinanceSimulatorSettings(
                port=port,
                symbols=names,
                rate=rate or None,
                weights=weights,
                total=total,
                live=live,
                ticker_per_second=tickers_rate,
                history_trades=history_trades,
                record=False,  # a long run would keep every batch in memory
            )
            asyncio.run(serve_binance(binance_settings))
            return
        # OKX's defaults for the options left out (None above only tells "not given").
        trades_per_message = 1 if trades_per_message is None else trades_per_message
        idle_timeout = 30.0 if idle_timeout is None else idle_timeout
        resend_on_resubscribe = 0 if resend_on_resubscribe is None else resend_on_resubscribe
        books_rate = 10.0 if books_rate is None else books_rate
        trades_channel = "trades-all" if trades_channel is None else trades_channel
        if trades_per_message < 1:
            raise ConfigError("--trades-per-message must be >= 1")
        if trades_channel not in ("trades", "trades-all"):
            raise ConfigError(f"--trades-channel is {trades_channel!r}; use trades-all or trades")
        if live and replay is not None:
            raise ConfigError("--live needs generated trades, not --replay; add --no-live")
        settings = SimulatorSettings(
            port=port,
            symbols=names,
            rate=rate or None,
            weights=weights,
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
        asyncio.run(serve_okx(settings))


class _Simulator(Protocol):
    @property
    def counters(self) -> Mapping[str, int]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def serve(simulator: _Simulator, where: Callable[[], list[str]], hint: Callable[[], str]) -> None:
    """Run `simulator` until SIGINT/SIGTERM: once it listens print `where()` (its URLs, on
    stdout) and `hint()` (stderr: what to run next); once it stopped, its counters."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await simulator.start()
    try:
        for line in where():
            typer.echo(line)
        typer.echo(hint(), err=True)
        await stop.wait()
    finally:
        await simulator.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    counters = ", ".join(f"{k}={v}" for k, v in sorted(simulator.counters.items()))
    typer.echo(f"stopped: {counters or 'nothing sent'}", err=True)


# The simulator's URLs config/okx-simulator.json and config/binance-simulator.json point at
# (the README's offline trial): at these, the hint is the exact `tcpd run` line.
SIMULATOR_CONFIGS = {
    "config/okx-simulator.json": "ws://127.0.0.1:8765/ws/v5/public",
    "config/binance-simulator.json": "ws://127.0.0.1:8766",
}


def run_hint(url: str, keys: str) -> str:
    """What to do with a simulator listening at `url` (its main WebSocket URL)."""
    for path, shipped in SIMULATOR_CONFIGS.items():
        if url == shipped:
            return f"collect from it: tcpd run --config {path}   (Ctrl-C stops the simulator)"
    return f"put {keys} in a copy of the exchange config's `connection` section; Ctrl-C stops"


async def serve_okx(settings: SimulatorSettings) -> None:
    okx = OkxSimulator(settings)
    await serve(
        okx,
        lambda: [f"public_ws_url: {okx.url}", f"business_ws_url: {okx.business_url}"],
        lambda: run_hint(okx.url, "public_ws_url and business_ws_url"),
    )


async def serve_binance(settings: BinanceSimulatorSettings) -> None:
    binance = BinanceSimulator(settings)
    # ws_url is the value of connection.ws_url in a copy of config/binance.json.
    await serve(
        binance,
        lambda: [f"ws_url: {binance.base_url}", f"rest_url: {binance.rest_url}"],
        lambda: run_hint(binance.base_url, "ws_url (raw streams at /ws/<stream>, combined at /stream)"),
    )
