"""What a simulator serves and how it misbehaves, fixed when it is created."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Settings of one OkxSimulator.

    rate is in trades per second over all symbols (None: as fast as clients read);
    total is the number of generated trades over all symbols (None: endless), split
    evenly between symbols. resend_on_resubscribe re-sends the last K trades (rounded up
    to whole messages) when a stream that was sent before gets a new subscriber, to test
    deduplication; 0 means a resubscribed stream simply continues.
    """

    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port; read it back from OkxSimulator.port
    symbols: tuple[str, ...] = ("BTC-USDT",)
    rate: float | None = None
    trades_per_message: int = 1
    total: int | None = None
    replay: Path | None = None
    idle_timeout: float = 30.0
    resend_on_resubscribe: int = 0
    record: bool = True  # keep every sent trade in memory (turn off for long benchmarks)
    chunk_trades: int = 20_000  # trades built per chunk when `total` is not given
    batch_frames: int = 256  # frames written per stream per pump step
    write_limit: int = 1 << 20  # bytes buffered per connection before waiting for the client
    # Generated books5 / tickers pushes per second for each subscribed (connection, instId);
    # 0 disables. A recorded books5/tickers stream for an instId wins over generated pushes.
    books_per_second: float = 10.0
    tickers_per_second: float = 1.0
    extra_symbols: tuple[str, ...] = field(default=())  # accepted for subscribe, no generated data
