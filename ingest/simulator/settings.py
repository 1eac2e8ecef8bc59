"""What a simulator serves and how it misbehaves, fixed when it is created."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ingest.simulator.account import SimulatedAccount


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Settings of one OkxSimulator.

    rate is in trades per second over all symbols (None: as fast as clients read);
    total is the number of generated trades over all symbols (None: endless), split
    evenly between symbols. resend_on_resubscribe re-sends the last K trades (rounded up
    to whole messages) when a stream that was sent before gets a new subscriber, to test
    deduplication; 0 means a resubscribed stream simply continues. weights (None: even)
    gives each symbol, in the order of `symbols`, its relative share of `rate`
    (ingest.simulator.skew, `--skew zipf:S`): a few symbols busy, most quiet.
    """

    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port; read it back from OkxSimulator.port
    symbols: tuple[str, ...] = ("BTC-USDT",)
    rate: float | None = None
    weights: tuple[float, ...] | None = None  # relative trade rate per symbol; None: even
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
    # Full-depth `books` pushes per second (a snapshot at subscribe, then updates: depth.py).
    depth_per_second: float = 10.0
    tickers_per_second: float = 1.0
    extra_symbols: tuple[str, ...] = field(default=())  # accepted for subscribe, no generated data
    # The channel generated trades answer on: "trades" (/ws/v5/public, one push per taker order
    # and price) or "trades-all" (/ws/v5/business, one push per fill). One of the two per run.
    trades_channel: str = "trades"
    # live: trades are published on the clock (at `rate`) whether anyone is subscribed or not,
    # like a real exchange; what a client missed is in the REST history. Needs `rate`.
    live: bool = False
    # REST history (GET /api/v5/market/history-trades, /market/trades): the newest N published
    # trades of each symbol are kept (OKX keeps about three months); older ones are gone.
    history_trades: int = 1_000_000
    # OKX's limits per IP: 20 requests per 2 s for history-trades, 100 per 2 s for trades.
    history_requests_per_2s: int = 20
    trades_requests_per_2s: int = 100
    # /ws/v5/private: the test account (credentials, balances); None: the endpoint refuses
    # every login with 60005.
    account: SimulatedAccount | None = None
