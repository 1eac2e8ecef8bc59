"""What a Binance simulator serves and how strict it is, fixed when it is created."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BinanceSimulatorSettings:
    """Settings of one BinanceSimulator; times in seconds. Binance's own values are the defaults,
    tests scale the time ones down.

    rate is in trades per second over all symbols (None: as fast as clients read); total is the
    number of trades over all symbols (None: endless), split evenly between symbols. With `live`
    trades are published on the clock whether anyone is subscribed or not (what a client missed
    is in the REST history); without it a symbol trades only while somebody listens to its
    trade or aggTrade stream. weights (None: even) gives each symbol, in the order of `symbols`,
    its relative share of `rate` (ingest.simulator.skew, `--skew zipf:S`).
    """

    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port; read it back from BinanceSimulator.port
    symbols: tuple[str, ...] = ("BTCUSDT",)  # Binance style; streams name them in lowercase
    rate: float | None = 1000.0
    weights: tuple[float, ...] | None = None  # relative trade rate per symbol; None: even
    total: int | None = None
    live: bool = False
    record: bool = True  # keep every batch's time so published_trades() can rebuild all trades
    # Keep-alive: a ping frame every ping_interval; no pong within pong_timeout closes.
    ping_interval: float = 20.0
    pong_timeout: float = 60.0
    # Limits per connection: incoming messages (text, ping, pong) per second, streams.
    max_messages_per_second: int = 5
    max_streams: int = 1024
    # Lifetime of a connection; serverShutdown is sent, the close follows shutdown_grace later.
    lifetime: float = 24 * 3600.0
    shutdown_grace: float = 1.0
    # Pushes per second for depth/bookTicker/ticker streams (None for depth: what the stream name
    # says, 10 for @100ms, 1 otherwise) and kline updates (None: Binance's 1 s for 1s klines, 2 s
    # for the others).
    depth_per_second: float | None = None
    book_ticker_per_second: float = 10.0
    ticker_per_second: float = 1.0
    kline_update_seconds: float | None = None
    write_limit: int = 1 << 20  # bytes buffered per connection before the tape waits for it
    batch_trades: int = 1000  # trades published per symbol per step when rate is None
    # REST: the newest N trades of each symbol are served; the weight budget is per minute.
    history_trades: int = 1_000_000
    weight_per_minute: int = 6000
